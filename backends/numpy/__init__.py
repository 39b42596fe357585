"""The NumPy backend: the readable reference. Its kernels (``kernels.py``) read like the equations; it has no hooks
beyond the defaults (no compilation, the growing KV cache, no autodiff)."""

from .kernels import NumpyBackend

__all__ = ["NumpyBackend"]
