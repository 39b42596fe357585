"""Checks for :mod:`transformer_spec.spec.softmax`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, ShapeError
from transformer_spec.spec.tolerances import EPSILON

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

# The programs every softmax and log_softmax check shares (x's shape with each axis): no batch axis, one,
# two; along the last axis a reduced length of 8 (the longest), 3 (odd) and 1, along the first 8, 2 and 3.
# Six programs per method, however many checks and examples run.
SHAPES = ((8,), (2, 3), (3, 2, 1))
AXES = (-1, 0)  # the last axis and the first


def _draw_input(case: Case, regimes=("normal", "ties", "wide")) -> tuple[np.ndarray, int]:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    axis = case.draw(st.sampled_from(AXES), "axis")
    # Each slice along the axis is an independent example with its own regime (a huge slice next to a tiny
    # one): draw them stacked along the leading axes with the reduced axis last, then move it into place.
    at = axis % len(shape)  # the axis counted from the front
    reduced_last = shape[:at] + shape[at + 1 :] + (shape[at],)  # (..., n)
    x = cs.draw_values(case, reduced_last, regimes, "x", stacked_axes=len(shape) - 1)
    if at == len(shape) - 1:
        return x, axis
    return case.note("x_moved", np.moveaxis(x, -1, at)), axis  # shape: n back at the axis


def _cover(regimes=("normal", "ties", "wide")):
    """Every regime with every shape and axis."""
    return cs.covering(shape=SHAPES, axis=AXES, x_regime=regimes)


def _sum_tolerance(case: Case, n: int) -> float:
    return 4 * n * EPSILON[case.dtype]  # each of n terms rounds once, plus the division


@check("softmax.sums_to_one", cover=_cover())
def sums_to_one(case: Case) -> None:
    x, axis = _draw_input(case)
    p = case.numpy(case.call("softmax", case.array("x", x), axis=axis))
    total = p.sum(axis=axis)
    error = float(np.max(np.abs(total - 1.0)))
    case.require(
        error <= _sum_tolerance(case, x.shape[axis]),
        f"softmax(x, axis={axis}) sums to {total.ravel()[np.argmax(np.abs(total - 1).ravel())]!r} along the axis, expected 1 (error {error:.3g})",
    )


@check("softmax.non_negative", cover=_cover(("normal", "wide", "huge", "tiny")))
def non_negative(case: Case) -> None:
    x, axis = _draw_input(case, ("normal", "wide", "huge", "tiny"))
    p = case.numpy(case.call("softmax", case.array("x", x), axis=axis))
    case.require(bool(np.all((p >= 0) & (p <= 1))), f"softmax has entries outside [0, 1]: min {p.min()!r}, max {p.max()!r}")


@check("softmax.shift_invariant", cover=_cover())
def shift_invariant(case: Case) -> None:
    x, axis = _draw_input(case)
    shift = case.draw(st.sampled_from([-100.0, -3.0, 0.5, 7.0, 100.0]), "c")
    x_rounded = case.rounded(x)
    shifted = case.rounded(x_rounded + shift)
    # Only compare where the shift is exact in this dtype; otherwise the inputs differ, not just shift.
    if not np.allclose(shifted - x_rounded, shift, rtol=0, atol=0):
        x_rounded = case.rounded(np.round(x_rounded))
        shifted = x_rounded + shift
    p = case.numpy(case.call("softmax", case.array("x", x_rounded), axis=axis))
    q = case.numpy(case.call("softmax", case.array("x_plus_c", shifted), axis=axis))
    case.assert_close(q, p, f"softmax(x + {shift}) vs softmax(x)", magnitude=np.maximum(np.abs(p), 1.0))


@check("softmax.order_preserving", cover=_cover())
def order_preserving(case: Case) -> None:
    x, axis = _draw_input(case)
    xr = case.rounded(x)
    p = case.numpy(case.call("softmax", case.array("x", xr), axis=axis))
    xs, ps = np.moveaxis(xr, axis, -1), np.moveaxis(p, axis, -1)
    bigger = xs[..., :, None] > xs[..., None, :]  # (..., n, n): x_i > x_j
    case.require(bool(np.all(~bigger | (ps[..., :, None] >= ps[..., None, :]))), "a larger score got a smaller probability")


@check("softmax.finite_for_extreme_inputs", cover=_cover(("huge", "tiny", "wide")))
def finite_for_extreme_inputs(case: Case) -> None:
    x, axis = _draw_input(case, ("huge", "tiny", "wide"))
    p = case.numpy(case.call("softmax", case.array("x", x), axis=axis))
    case.require(bool(np.all(np.isfinite(p))), f"softmax of inputs up to {np.abs(x).max():.3g} is not finite: {p.ravel()[:8]}")
    total = p.sum(axis=axis)
    case.require(
        bool(np.all(np.abs(total - 1) <= _sum_tolerance(case, x.shape[axis]))),
        f"softmax of extreme inputs sums to {total.ravel()[:4]}, expected 1",
    )
    lp = case.numpy(case.call("log_softmax", case.array("x", x), axis=axis))
    case.require(
        bool(np.all(np.isfinite(lp))), f"log_softmax of inputs up to {np.abs(x).max():.3g} is not finite: {lp.ravel()[:8]}"
    )


@check("softmax.matches_reference", cover=_cover(("normal", "ties", "wide", "huge")))
def matches_reference(case: Case) -> None:
    x, axis = _draw_input(case, ("normal", "ties", "wide", "huge"))
    got = case.numpy(case.call("softmax", case.array("x", x), axis=axis))
    case.assert_close(got, ref.softmax(case.rounded(x), axis), f"softmax(x, axis={axis})")


@check("softmax.log_softmax_matches_reference", cover=_cover(("normal", "ties", "wide")))
def log_softmax_matches_reference(case: Case) -> None:
    x, axis = _draw_input(case, ("normal", "ties", "wide"))
    xr = case.rounded(x)
    got = case.numpy(case.call("log_softmax", case.array("x", x), axis=axis))
    # log-softmax subtracts numbers of the size of |x|: its rounding error scales with them.
    magnitude = np.abs(xr - xr.max(axis=axis, keepdims=True)) + 1.0
    case.assert_close(got, ref.log_softmax(xr, axis), f"log_softmax(x, axis={axis})", magnitude=magnitude)


@check("softmax.log_softmax_is_log_of_softmax", cover=_cover())
def log_softmax_is_log_of_softmax(case: Case) -> None:
    x, axis = _draw_input(case)
    xr = case.rounded(x)
    p = case.numpy(case.call("softmax", case.array("x", x), axis=axis))
    lp = case.numpy(case.call("log_softmax", case.array("x", x), axis=axis))
    magnitude = np.maximum(p, 1.0) * (np.abs(xr - xr.max(axis=axis, keepdims=True)) + 1.0)
    case.assert_close(np.exp(lp), p, "exp(log_softmax(x)) vs softmax(x)", magnitude=magnitude)


METHODS = ("softmax", "log_softmax")


@check("softmax.errors", dtypes=ANY, cover=cs.covering(shape=SHAPES, axis=AXES, method=METHODS))
def errors(case: Case) -> None:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    axis = case.draw(st.sampled_from(AXES), "axis")
    method = case.draw(st.sampled_from(METHODS), "method")
    ints = case.array("ids", np.zeros(shape, dtype=np.int64), "int64")
    case.expect_error(DTypeError, "'x'", method, ints, axis=axis)
    x = case.array("x", np.zeros(shape))
    case.expect_error(ShapeError, "axis", method, x, axis=len(shape))
    case.expect_error(ShapeError, "axis", method, x, axis=-len(shape) - 1)
    at = axis % len(shape)  # the axis counted from the front
    empty = case.array("empty", np.zeros(shape[:at] + (0,) + shape[at + 1 :]))  # shape with nothing along the axis
    case.expect_error(ShapeError, "'x'", method, empty, axis=axis)
