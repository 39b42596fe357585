"""transformer-spec: one import namespace for the contract, the backends, the suite and the application.

* ``transformer_spec.spec`` — the contract (repository folder ``spec/``);
* ``transformer_spec.backends`` — the kernels and the model written once (``backends/``);
* ``transformer_spec.conformance`` — the suite (``conformance/``);
* ``transformer_spec.*`` — the application: tokenizers, checkpoints, generation, training, the CLI.

``from transformer_spec import load_model`` gives the three-line API (see :mod:`transformer_spec.api`).
The names below are imported on first use, so ``import transformer_spec`` (and the CLI's
start-up) loads no backend it may not need. (The function ``generate`` is not
among them: ``transformer_spec.generate`` is its module; use ``from transformer_spec.generate import generate``.)
"""

from __future__ import annotations

import importlib
from typing import Any

from ._moved import install_moved_module_hints

install_moved_module_hints()

_LAZY = {
    "load_model": "transformer_spec.api",
    "Model": "transformer_spec.api",
    "GenerationResult": "transformer_spec.generate",
    "Checkpoint": "transformer_spec.checkpoint",
    "load_checkpoint": "transformer_spec.checkpoint",
    "save_checkpoint": "transformer_spec.checkpoint",
    "default_checkpoint_path": "transformer_spec.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transformer_spec' has no attribute {name!r}")
