"""Checks for :mod:`transformer_spec.spec.normalization`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError
from transformer_spec.spec.tolerances import EPSILON

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

EPS = (1e-5, 1e-6, 1e-2)
REGIMES = ("normal", "ties", "wide")
# The programs every norm check shares, x's shape (..., L, D): no batch axis and one row of the longest
# width; one batch axis, the longest length and an odd width; two batch axes, an odd length and width 2.
SHAPES = ((1, 8), (2, 8, 3), (3, 2, 3, 2))


def _draw(case: Case, regimes=REGIMES):
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    # Every row is normalised on its own: each is an independent example with its own regime.
    x = cs.draw_values(case, shape, regimes, "x", stacked_axes=len(shape) - 1)
    eps = case.draw(st.sampled_from(EPS), "eps")
    return x, eps


def _layer_norm(case: Case, name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, eps: float) -> np.ndarray:
    """layer_norm(x, w, b) in the case's dtype; ``b=None`` (no shift) is an option of its own."""
    shift = [] if b is None else [case.array("b", b)]
    return case.numpy(case.call("layer_norm", case.array(name, x), case.array("w", w), *shift, eps=eps))


# eps is a traced float: it is varied, not pinned. layer_norm also runs with and without its shift b.
RMS_COVER = cs.covering(shape=SHAPES, eps=EPS, x_regime=REGIMES, free=("eps",))
LAYER_NORM_COVER = cs.covering(shape=SHAPES, with_bias=(False, True), eps=EPS, x_regime=REGIMES, free=("eps",))


@check("normalization.layer_norm_standardizes", cover=LAYER_NORM_COVER)
def layer_norm_standardizes(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    y = _layer_norm(case, "x", x, np.ones(D), np.zeros(D) if case.draw(st.booleans(), "with_bias") else None, eps)
    xr = case.rounded(x)
    var = xr.var(axis=-1)
    slack = 8 * D * EPSILON[case.dtype] * (1 + np.abs(xr).max(axis=-1) / np.sqrt(var + eps))
    mean_error = np.abs(y.mean(axis=-1))
    case.require(bool(np.all(mean_error <= slack)), f"layer_norm rows have mean up to {mean_error.max():.3g}, expected 0")
    expected_var = var / (var + eps)
    var_error = np.abs(y.var(axis=-1) - expected_var)
    worst = int(np.argmax(var_error.ravel()))
    case.require(
        bool(np.all(var_error <= 2 * slack + 1e-12)),
        f"layer_norm row variance {y.var(axis=-1).ravel()[worst]!r}, expected sigma^2/(sigma^2+eps) = {expected_var.ravel()[worst]!r} (biased variance, divide by D)",
    )


@check("normalization.layer_norm_matches_reference", cover=LAYER_NORM_COVER)
def layer_norm_matches_reference(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    w = case.draw(cs.float_arrays((D,), case.dtype), "w")
    b = case.draw(cs.float_arrays((D,), case.dtype), "b") if case.draw(st.booleans(), "with_bias") else None
    got = _layer_norm(case, "x", x, w, b, eps)
    xr, wr = case.rounded(x), case.rounded(w)
    br = np.zeros(D) if b is None else case.rounded(b)
    expected = ref.layer_norm(xr, wr, br, eps)
    # Rounding x by |x|·eps moves the normalised value by |x|·eps/σ: scale the tolerance by that condition number.
    condition = (np.abs(xr).max(axis=-1, keepdims=True) + 1e-30) / np.sqrt(xr.var(axis=-1, keepdims=True) + eps)
    case.assert_close(
        got,
        expected,
        f"layer_norm(x, w{'' if b is None else ', b'})",
        magnitude=(np.abs(wr) * np.maximum(condition, 1) + np.abs(br)) * np.sqrt(D),
    )


# Powers of two scale exactly; the shifts are exact in every dtype.
SCALES, SHIFTS = (0.5, 2.0, 4.0), (-1.0, 0.5, 2.0)


@check(
    "normalization.layer_norm_shift_scale_invariant",
    cover=cs.covering(shape=SHAPES, with_bias=(False, True), a=SCALES, c=SHIFTS, free=("a", "c")),
)
def layer_norm_shift_scale_invariant(case: Case) -> None:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    # Rows stacked with the plain regime only: eps = 0 leaves a row of ties (zero variance) undefined.
    x = case.rounded(cs.draw_values(case, shape, ("normal",), "x", stacked_axes=len(shape) - 1))
    a = case.draw(st.sampled_from(SCALES), "a")
    c = case.draw(st.sampled_from(SHIFTS), "c")
    D = shape[-1]
    b = np.zeros(D) if case.draw(st.booleans(), "with_bias") else None
    eps = 1e-12 if case.dtype == "float64" else 0.0
    # (a·x + c - mean) / sqrt(a²·var + eps) = (x - mean) / sqrt(var + eps/a²): with eps/a² on x the two agree
    # exactly, even on rows whose variance is not far above eps (two close values of a row of width 2).
    shifted = case.rounded(a * x + c)
    y1 = _layer_norm(case, "x", x, np.ones(D), b, eps / a**2)
    y2 = _layer_norm(case, "ax_plus_c", shifted, np.ones(D), b, eps)
    spread = np.abs(x).max(axis=-1, keepdims=True) + abs(c) / a
    condition = spread / (x.std(axis=-1, keepdims=True) + 1e-30)
    magnitude = np.broadcast_to(np.maximum(condition, 1) * np.sqrt(D), x.shape)
    # A row whose values round to one value (two close values in bfloat16, say) has no variance: with eps = 0
    # its layer norm is 0/0, undefined on either side, so only rows that keep a spread are compared.
    defined = (np.ptp(x, axis=-1) > 0) & (np.ptp(shifted, axis=-1) > 0)  # (...,): per row
    case.assert_close(y2[defined], y1[defined], f"layer_norm({a}*x + {c}) vs layer_norm(x)", magnitude=magnitude[defined])


@check("normalization.rms_norm_unit_rms", cover=RMS_COVER)
def rms_norm_unit_rms(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    y = case.numpy(case.call("rms_norm", case.array("x", x), case.array("w", np.ones(D)), eps=eps))
    ms = np.mean(case.rounded(x) ** 2, axis=-1)
    expected = np.sqrt(ms / (ms + eps))
    got = np.sqrt(np.mean(y**2, axis=-1))
    case.assert_close(got, expected, "root mean square of rms_norm(x) rows", magnitude=np.ones_like(expected) * D)


@check("normalization.rms_norm_matches_reference", cover=RMS_COVER)
def rms_norm_matches_reference(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    w = case.draw(cs.float_arrays((D,), case.dtype), "w")
    got = case.numpy(case.call("rms_norm", case.array("x", x), case.array("w", w), eps=eps))
    xr, wr = case.rounded(x), case.rounded(w)
    expected = ref.rms_norm(xr, wr, eps)
    case.assert_close(got, expected, "rms_norm(x, w)", magnitude=np.maximum(np.abs(expected), np.abs(wr)) * np.sqrt(D))


@check(
    "normalization.errors",
    dtypes=ANY,
    cover=cs.covering(shape=SHAPES, method=("layer_norm", "rms_norm"), with_bias=(False, True)),
)
def errors(case: Case) -> None:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    method = case.draw(st.sampled_from(("layer_norm", "rms_norm")), "method")
    D = shape[-1]
    # layer_norm's shift b, given or left out (rms_norm has none).
    shift = {"b": case.array("b", np.zeros(D))} if case.draw(st.booleans(), "with_bias") and method == "layer_norm" else {}
    x, w = case.array("x", np.zeros(shape)), case.array("w", np.ones(D))
    case.expect_error(ShapeError, "'w'", method, x, case.array("w_wrong", np.ones(D + 1)), **shift)
    case.expect_error(DTypeError, "'x'", method, case.array("ids", np.zeros(shape, dtype=np.int64), "int64"), w, **shift)
    case.expect_error(ConfigError, "eps", method, x, w, **shift, eps=-1.0)
    if method == "layer_norm":
        case.expect_error(ShapeError, "'b'", method, x, w, case.array("b_wrong", np.zeros(D + 1)))
