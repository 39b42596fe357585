"""Checks for :mod:`transformer_spec.spec.linear`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

# The programs every linear check shares, (batch axes, Din, Dout), in pairs that hold the same rows: x (Din,)
# and x (1, Din); x (3, 2, Din) and its flattened 2-D form (6, Din). So "batched vs flattened" compiles
# nothing new, and every check meets no batch axis, one, two, a single row and several. One w is square
# (a transposed w keeps its shape: only the values show it), the other is not (an output of x's width shows).
SIZES = (((), 8, 8), ((1,), 8, 8), ((3, 2), 2, 8), ((6,), 2, 8))
REGIMES = ("normal", "ties", "wide")


def _same_rows(sizes: tuple) -> tuple[int, ...]:
    """The batch axes of the other entry of ``sizes``' pair in SIZES (the same rows, laid out differently)."""
    return SIZES[SIZES.index(sizes) ^ 1][0]


def _draw(case: Case, with_bias: bool = True):
    sizes = case.draw(st.sampled_from(SIZES), "sizes")
    batch, d_in, d_out = sizes
    # Each row of x is an independent example with its own regime.
    x = cs.draw_values(case, batch + (d_in,), REGIMES, "x", stacked_axes=len(batch))
    w = case.draw(cs.float_arrays((d_in, d_out), case.dtype), "w")
    b = case.draw(cs.float_arrays((d_out,), case.dtype), "b") if with_bias else None
    return sizes, x, w, b


def _magnitude(case: Case, x, w, b):
    """|x| @ |w| + |b|: the scale of the rounding error of a sum of products."""
    m = np.abs(case.rounded(x)) @ np.abs(case.rounded(w)) * x.shape[-1] ** 0.5
    return m if b is None else m + np.abs(case.rounded(b))


COVER = cs.covering(sizes=SIZES, with_bias=(False, True), x_regime=REGIMES)


@check("linear.matches_reference", cover=COVER)
def matches_reference(case: Case) -> None:
    _, x, w, b = _draw(case, with_bias=case.draw(st.booleans(), "with_bias"))
    args = [case.array("x", x), case.array("w", w)] + ([] if b is None else [case.array("b", b)])
    got = case.numpy(case.call("linear", *args))
    expected = ref.linear(case.rounded(x), case.rounded(w), None if b is None else case.rounded(b))
    case.assert_close(got, expected, f"linear(x, w{', b' if b is not None else ''})", magnitude=_magnitude(case, x, w, b))


@check("linear.bias_is_added", cover=cs.covering(sizes=SIZES, x_regime=REGIMES))
def bias_is_added(case: Case) -> None:
    _, x, w, b = _draw(case)
    xn, wn = case.array("x", x), case.array("w", w)
    with_bias = case.numpy(case.call("linear", xn, wn, case.array("b", b)))
    without = case.numpy(case.call("linear", xn, wn))
    expected = np.broadcast_to(case.rounded(b), with_bias.shape)
    case.assert_close(with_bias - without, expected, "linear(x, w, b) - linear(x, w)", magnitude=_magnitude(case, x, w, b))


@check("linear.acts_on_last_axis", cover=COVER)
def acts_on_last_axis(case: Case) -> None:
    sizes, x, w, b = _draw(case, with_bias=case.draw(st.booleans(), "with_bias"))
    wb = [case.array("w", w)] + ([] if b is None else [case.array("b", b)])
    relaid = x.reshape(_same_rows(sizes) + x.shape[-1:])  # the same rows in the other layout of the pair
    got = case.numpy(case.call("linear", case.array("x", x), *wb))
    got_relaid = case.numpy(case.call("linear", case.array("x_relaid", relaid), *wb))
    rows = x.reshape(-1, x.shape[-1])  # (rows, Din)
    case.assert_close(
        got.reshape(-1, got.shape[-1]),  # (rows, Dout)
        got_relaid.reshape(-1, got_relaid.shape[-1]),  # (rows, Dout)
        f"linear on x {x.shape} vs on the same rows as {relaid.shape}",
        magnitude=_magnitude(case, rows, w, b),
    )


@check("linear.errors", dtypes=ANY, cover=cs.covering(sizes=SIZES, with_bias=(False, True)))
def errors(case: Case) -> None:
    batch, d_in, d_out = case.draw(st.sampled_from(SIZES), "sizes")
    b = case.array("b", np.zeros(d_out)) if case.draw(st.booleans(), "with_bias") else None
    x = case.array("x", np.zeros(batch + (d_in,)))
    w = case.array("w", np.zeros((d_in, d_out)))
    case.expect_error(ShapeError, "'x'", "linear", x, case.array("w_other_din", np.zeros((d_in + 1, d_out))), b)
    case.expect_error(ShapeError, "'b'", "linear", x, w, case.array("b_wrong", np.zeros((d_out + 1,))))
    case.expect_error(ShapeError, "'w'", "linear", x, case.array("w_rank3", np.zeros((d_in, d_out, 1))), b)
    case.expect_error(DTypeError, "'x'", "linear", case.array("ids", np.zeros(batch + (d_in,), dtype=np.int64), "int64"), w, b)
