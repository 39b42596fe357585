"""transformer-spec's application layer: tokenizers, checkpoints, generation, the CLI.

``from tspec import load_model`` gives the three-line API (see :mod:`tspec.api`).
The names below are imported on first use, so ``import tspec`` (and the CLI's
start-up) loads no backend it may not need. (The function ``generate`` is not
among them: ``tspec.generate`` is its module; use ``from tspec.generate import generate``.)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_model": "tspec.api",
    "Model": "tspec.api",
    "GenerationResult": "tspec.generate",
    "Checkpoint": "tspec.checkpoint",
    "load_checkpoint": "tspec.checkpoint",
    "save_checkpoint": "tspec.checkpoint",
    "default_checkpoint_path": "tspec.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tspec' has no attribute {name!r}")
