"""Dtype names shared by every backend.

Backends convert these names to their native dtypes; the contract never
mentions a library's dtype object.
"""

from __future__ import annotations

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int32", "int64")
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)
