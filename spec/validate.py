"""Argument checks shared by every backend.

They look only at shapes (tuples of ints), dtype names and Python scalars, so
they run the same for NumPy, PyTorch and JAX arrays. Each raises an error from
:mod:`transformer_spec.spec.errors` whose message names the function, the argument, what it got
and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .dtypes import FLOAT_DTYPES, INT_DTYPES
from .errors import ConfigError, DTypeError, ShapeError


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_float(fn: str, arg: str, dtype: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"{fn}: argument {arg!r} has dtype {dtype}, expected a float dtype ({', '.join(FLOAT_DTYPES)})")


def check_int(fn: str, arg: str, dtype: str) -> None:
    if dtype not in INT_DTYPES:
        raise DTypeError(f"{fn}: argument {arg!r} has dtype {dtype}, expected an integer dtype ({', '.join(INT_DTYPES)})")


def check_bool(fn: str, arg: str, dtype: str) -> None:
    if dtype != "bool":
        raise DTypeError(f"{fn}: argument {arg!r} has dtype {dtype}, expected bool (True = may attend)")


def check_same_dtype(fn: str, args: dict[str, str]) -> None:
    if len(set(args.values())) > 1:
        got = ", ".join(f"{k}: {v}" for k, v in args.items())
        raise DTypeError(f"{fn}: arguments must share one float dtype, got {got}; convert them with asarray(x, dtype) first")


def check_rank(fn: str, arg: str, shape: Sequence[int], min_rank: int, expected: str) -> None:
    if len(shape) < min_rank:
        raise ShapeError(
            f"{fn}: argument {arg!r} has shape {fmt_shape(shape)} (rank {len(shape)}), expected {expected} (rank >= {min_rank})"
        )


def check_exact_rank(fn: str, arg: str, shape: Sequence[int], rank: int, expected: str) -> None:
    if len(shape) != rank:
        raise ShapeError(
            f"{fn}: argument {arg!r} has shape {fmt_shape(shape)} (rank {len(shape)}), expected {expected} (rank {rank})"
        )


def check_shape(fn: str, arg: str, shape: Sequence[int], expected_shape: Sequence[int], expected: str) -> None:
    if tuple(shape) != tuple(expected_shape):
        raise ShapeError(
            f"{fn}: argument {arg!r} has shape {fmt_shape(shape)}, expected {expected} = {fmt_shape(expected_shape)}"
        )


def check_nonempty(fn: str, arg: str, shape: Sequence[int], axis: int, what: str) -> None:
    if shape[axis] == 0:
        raise ShapeError(
            f"{fn}: argument {arg!r} has shape {fmt_shape(shape)} with an empty {what} axis; expected at least one element"
        )


def normalize_axis(fn: str, axis: int, rank: int) -> int:
    if not isinstance(axis, (int,)) or isinstance(axis, bool) or not -rank <= axis < rank:
        raise ShapeError(
            f"{fn}: axis {axis!r} is out of range for an array of rank {rank}; expected an int in [{-rank}, {rank - 1}]"
        )
    return axis % rank


def check_positive_int(fn: str, arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{fn}: {arg} = {value!r}, expected a positive integer")
    return value


def check_nonnegative_int(fn: str, arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{fn}: {arg} = {value!r}, expected a non-negative integer")
    return value


def check_positive_float(fn: str, arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{fn}: {arg} = {value!r}, expected a finite number > 0")
    return float(value)


def check_even(fn: str, arg: str, value: int, what: str) -> None:
    if value % 2:
        raise ShapeError(f"{fn}: {arg} = {value} must be even: {what}")
