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


def _draw(case: Case, regimes=("normal", "ties", "wide")):
    shape = case.draw(cs.batch_shapes(), "batch") + (
        case.draw(cs.lengths(), "L"),
        case.draw(st.sampled_from(WIDTHS), "D"),
    )
    x = cs.draw_values(case, shape, regimes, "x")
    eps = case.draw(st.sampled_from(EPS), "eps")
    return x, eps


WIDTHS = (2, 3, 8)  # one odd width
COVER = cs.covering(batch=cs.BATCH_SHAPES, L=cs.COVER_LENGTHS, D=WIDTHS, eps=EPS, x_regime=("normal", "ties", "wide"))


@check("normalization.layer_norm_standardizes", cover=COVER)
def layer_norm_standardizes(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    y = case.numpy(
        case.call("layer_norm", case.array("x", x), case.array("w", np.ones(D)), case.array("b", np.zeros(D)), eps=eps)
    )
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


@check("normalization.layer_norm_matches_reference", cover=COVER)
def layer_norm_matches_reference(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    w = case.draw(cs.float_arrays((D,), case.dtype), "w")
    b = case.draw(cs.float_arrays((D,), case.dtype), "b")
    got = case.numpy(case.call("layer_norm", case.array("x", x), case.array("w", w), case.array("b", b), eps=eps))
    xr, wr, br = case.rounded(x), case.rounded(w), case.rounded(b)
    expected = ref.layer_norm(xr, wr, br, eps)
    # Rounding x by |x|·eps moves the normalised value by |x|·eps/σ: scale the tolerance by that condition number.
    condition = (np.abs(xr).max(axis=-1, keepdims=True) + 1e-30) / np.sqrt(xr.var(axis=-1, keepdims=True) + eps)
    case.assert_close(
        got, expected, "layer_norm(x, w, b)", magnitude=(np.abs(wr) * np.maximum(condition, 1) + np.abs(br)) * np.sqrt(D)
    )


@check("normalization.layer_norm_shift_scale_invariant")
def layer_norm_shift_scale_invariant(case: Case) -> None:
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(st.sampled_from((4, 8, 16)), "D"),)
    x = case.rounded(case.draw(cs.float_arrays(shape, case.dtype, ("normal",)), "x"))
    a = case.draw(st.sampled_from((0.5, 2.0, 4.0)), "a")  # powers of two: a*x is exact
    c = case.draw(st.sampled_from((-1.0, 0.5, 2.0)), "c")
    D = shape[-1]
    ones, zeros = case.array("w", np.ones(D)), case.array("b", np.zeros(D))
    eps = 1e-12 if case.dtype == "float64" else 0.0
    y1 = case.numpy(case.call("layer_norm", case.array("x", x), ones, zeros, eps=eps))
    y2 = case.numpy(case.call("layer_norm", case.array("ax_plus_c", case.rounded(a * x + c)), ones, zeros, eps=eps))
    spread = np.abs(x).max(axis=-1, keepdims=True) + abs(c) / a
    condition = spread / (x.std(axis=-1, keepdims=True) + 1e-30)
    case.assert_close(y2, y1, f"layer_norm({a}*x + {c}) vs layer_norm(x)", magnitude=np.maximum(condition, 1) * np.sqrt(D))


@check("normalization.rms_norm_unit_rms", cover=COVER)
def rms_norm_unit_rms(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    y = case.numpy(case.call("rms_norm", case.array("x", x), case.array("w", np.ones(D)), eps=eps))
    ms = np.mean(case.rounded(x) ** 2, axis=-1)
    expected = np.sqrt(ms / (ms + eps))
    got = np.sqrt(np.mean(y**2, axis=-1))
    case.assert_close(got, expected, "root mean square of rms_norm(x) rows", magnitude=np.ones_like(expected) * D)


@check("normalization.rms_norm_matches_reference", cover=COVER)
def rms_norm_matches_reference(case: Case) -> None:
    x, eps = _draw(case)
    D = x.shape[-1]
    w = case.draw(cs.float_arrays((D,), case.dtype), "w")
    got = case.numpy(case.call("rms_norm", case.array("x", x), case.array("w", w), eps=eps))
    xr, wr = case.rounded(x), case.rounded(w)
    expected = ref.rms_norm(xr, wr, eps)
    case.assert_close(got, expected, "rms_norm(x, w)", magnitude=np.maximum(np.abs(expected), np.abs(wr)) * np.sqrt(D))


@check("normalization.errors", dtypes=ANY)
def errors(case: Case) -> None:
    x = case.array("x", np.zeros((2, 4)))
    case.expect_error(ShapeError, "'w'", "layer_norm", x, case.array("w", np.ones(3)), case.array("b", np.zeros(4)))
    case.expect_error(ShapeError, "'b'", "layer_norm", x, case.array("w4", np.ones(4)), case.array("b3", np.zeros(3)))
    case.expect_error(ShapeError, "'w'", "rms_norm", x, case.array("w5", np.ones(5)))
    case.expect_error(
        DTypeError, "'x'", "rms_norm", case.array("ids", np.zeros((2, 4), dtype=np.int64), "int64"), case.array("w4b", np.ones(4))
    )
    case.expect_error(ConfigError, "eps", "layer_norm", x, case.array("w4c", np.ones(4)), case.array("b4", np.zeros(4)), eps=-1.0)
