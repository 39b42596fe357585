"""Checks for :mod:`transformer_spec.spec.linear`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check


def _draw(case: Case, with_bias: bool = True):
    batch = case.draw(cs.batch_shapes(), "batch")
    d_in, d_out = case.draw(cs.widths(), "d_in"), case.draw(cs.widths(), "d_out")
    x = case.draw(cs.float_arrays(batch + (d_in,), case.dtype), "x")
    w = case.draw(cs.float_arrays((d_in, d_out), case.dtype), "w")
    b = case.draw(cs.float_arrays((d_out,), case.dtype), "b") if with_bias else None
    return x, w, b


def _magnitude(case: Case, x, w, b):
    """|x| @ |w| + |b|: the scale of the rounding error of a sum of products."""
    m = np.abs(case.rounded(x)) @ np.abs(case.rounded(w)) * x.shape[-1] ** 0.5
    return m if b is None else m + np.abs(case.rounded(b))


@check(
    "linear.matches_reference",
    cover=cs.covering(batch=cs.BATCH_SHAPES, d_in=cs.WIDTHS, d_out=cs.WIDTHS, with_bias=(False, True)),
)
def matches_reference(case: Case) -> None:
    x, w, b = _draw(case, with_bias=case.draw(st.booleans(), "with_bias"))
    args = [case.array("x", x), case.array("w", w)] + ([] if b is None else [case.array("b", b)])
    got = case.numpy(case.call("linear", *args))
    expected = ref.linear(case.rounded(x), case.rounded(w), None if b is None else case.rounded(b))
    case.assert_close(got, expected, f"linear(x, w{', b' if b is not None else ''})", magnitude=_magnitude(case, x, w, b))


@check("linear.bias_is_added")
def bias_is_added(case: Case) -> None:
    x, w, b = _draw(case)
    xn, wn = case.array("x", x), case.array("w", w)
    with_bias = case.numpy(case.call("linear", xn, wn, case.array("b", b)))
    without = case.numpy(case.call("linear", xn, wn))
    expected = np.broadcast_to(case.rounded(b), with_bias.shape)
    case.assert_close(with_bias - without, expected, "linear(x, w, b) - linear(x, w)", magnitude=_magnitude(case, x, w, b))


@check("linear.acts_on_last_axis")
def acts_on_last_axis(case: Case) -> None:
    x, w, b = _draw(case)
    wn, bn = case.array("w", w), case.array("b", b)
    full = case.numpy(case.call("linear", case.array("x", x), wn, bn))
    flat = case.numpy(case.call("linear", case.array("x_2d", x.reshape(-1, x.shape[-1])), wn, bn))  # (prod(batch), Din)
    case.assert_close(
        full.reshape(-1, full.shape[-1]),
        flat,
        "linear on batched x vs on x flattened to 2-D",
        magnitude=_magnitude(case, x.reshape(-1, x.shape[-1]), w, b),
    )


@check("linear.errors", dtypes=ANY)
def errors(case: Case) -> None:
    x = case.array("x", np.zeros((2, 4)))
    w = case.array("w", np.zeros((3, 5)))
    case.expect_error(ShapeError, "'x'", "linear", x, w)
    w_good = case.array("w_good", np.zeros((4, 5)))
    case.expect_error(ShapeError, "'b'", "linear", x, w_good, case.array("b", np.zeros((4,))))
    case.expect_error(ShapeError, "'w'", "linear", x, case.array("w_rank3", np.zeros((4, 5, 1))))
    case.expect_error(DTypeError, "'x'", "linear", case.array("ids", np.zeros((2, 4), dtype=np.int64), "int64"), w_good)
