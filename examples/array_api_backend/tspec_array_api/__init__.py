"""A transformer-spec backend on the Python Array API standard (see ``backend.py``)."""

from .backend import ArrayAPIBackend, ArrayAPIStrictBackend, erfc

__all__ = ["ArrayAPIBackend", "ArrayAPIStrictBackend", "erfc"]
