"""Helpers shared by the test modules: the checkout, the backends installed here, the CLI in a subprocess.

Tiers (pytest markers, registered in pyproject.toml):

* ``slow`` — more than a few seconds each (a backend through the whole suite, a
  training run, the docs build). ``pytest -m "not slow"`` is the quick loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from transformer_spec.backends import available_backends

ROOT = Path(__file__).resolve().parent.parent  # the checkout

# The built-in backends whose library is installed here, NumPy first.
BACKENDS = [name for name in ("numpy", "torch", "jax") if name in available_backends()]


def run_cli(
    *args: str, module: str = "transformer_spec.cli", env: dict | None = None, timeout: float = 600, cwd: Path | None = ROOT
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in a fresh interpreter, from the checkout, with the checkout on PYTHONPATH."""
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment
    )
