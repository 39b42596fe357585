"""``python -m transformer_spec`` is the ``tspec`` command."""

import sys

from .cli import main

sys.exit(main())
