"""The documentation build: mkdocs hooks and the generators they call.

``mkdocs.yml`` loads :mod:`tools.docs.hooks`. Everything a page shows that comes
from code (math, invariant tables, reference source, figures, numbers, command
output, the conformance matrix) is produced here at build time, so the site
cannot drift from the modules it describes.
"""
