"""Checks for :mod:`transformer_spec.spec.attention`."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, ShapeError
from transformer_spec.spec.tolerances import EPSILON

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check


def _draw_qkv(case: Case, causal: bool | None = None, with_mask: bool | None = None):
    """q (..., L, Dh), k (..., S, Dh), v (..., S, Dv), mask or None, causal flag, scale or None."""
    batch = case.draw(cs.batch_shapes(), "batch")
    L, S = case.draw(cs.lengths(), "L"), case.draw(cs.lengths(), "S")
    causal = case.draw(st.booleans(), "causal") if causal is None else causal
    if causal and L > S:
        L, S = S, L  # queries are the last L of S positions: L <= S by construction
    Dh, Dv = case.draw(cs.widths(), "Dh"), case.draw(cs.widths(), "Dv")
    q = case.draw(cs.float_arrays(batch + (L, Dh), case.dtype, ("normal", "ties", "zeros")), "q")
    k = case.draw(cs.float_arrays(batch + (S, Dh), case.dtype, ("normal", "ties")), "k")
    v = case.draw(cs.float_arrays(batch + (S, Dv), case.dtype, ("normal", "ties")), "v")
    with_mask = case.draw(st.booleans(), "with_mask") if with_mask is None else with_mask
    mask = case.draw(cs.masks(case.draw(st.sampled_from(((L, S), batch + (L, S))), "mask_shape")), "mask") if with_mask else None
    scale = case.draw(st.sampled_from((None, 0.5, 1.0)), "scale")
    return q, k, v, mask, causal, scale


def _call(case: Case, q, k, v, mask, causal, scale, names=("q", "k", "v", "mask")):
    args = [case.array(names[0], q), case.array(names[1], k), case.array(names[2], v)]
    kwargs = {"causal": causal, "scale": scale}
    if mask is not None:
        kwargs["mask"] = case.array(names[3], mask, "bool")
    out, weights = case.call("attention", *args, **kwargs)
    return case.numpy(out), case.numpy(weights)


def _out_magnitude(case: Case, q, k, v):
    """A bound on the rounding error of out: scores err by |q||k|·eps, which moves weights and so out by about |v| times that."""
    qn = np.linalg.norm(case.rounded(q), axis=-1)[..., :, None]  # (..., L, 1)
    kn = np.linalg.norm(case.rounded(k), axis=-1)[..., None, :]  # (..., 1, S)
    score_scale = 1 + qn * kn  # (..., L, S)
    vmax = np.abs(case.rounded(v)).max(axis=(-1, -2), keepdims=True)  # (..., 1, 1)
    return score_scale.max(axis=-1, keepdims=True) * (vmax + 1) * math.sqrt(k.shape[-2]) * 4, score_scale * 4


# Every option with every other: mask or none, causal or not, default or explicit scale, batch axes,
# one query / one key, odd and longest lengths.
SHAPES = {"batch": cs.BATCH_SHAPES, "L": cs.COVER_LENGTHS, "S": cs.COVER_LENGTHS, "scale": (None, 0.5)}
COVER = cs.covering(**SHAPES, causal=(False, True), with_mask=(False, True))
COVER_NO_FLAGS = cs.covering(**SHAPES)  # checks that fix causal and the mask themselves
COVER_MASK = cs.covering(**SHAPES, with_mask=(False, True))  # checks that fix causal=False
COVER_CAUSAL = cs.covering(**SHAPES, causal=(False, True))  # checks that always pass a mask


@check("attention.rows_normalized", cover=COVER)
def rows_normalized(case: Case) -> None:
    q, k, v, mask, causal, scale = _draw_qkv(case)
    _, w = _call(case, q, k, v, mask, causal, scale)
    case.require(bool(np.all(w >= 0)), f"attention weights have negative entries: min {w.min()!r}")
    sums = w.sum(axis=-1)
    allowed = np.broadcast_to(ref.allowed_keys(q.shape[-2], k.shape[-2], mask, causal), w.shape).any(axis=-1)
    expected = np.where(allowed, 1.0, 0.0)
    error = np.abs(sums - expected)
    case.require(
        bool(np.all(error <= 4 * k.shape[-2] * EPSILON[case.dtype])),
        f"attention weight rows sum to {sums.ravel()[np.argmax(error.ravel())]!r}, expected {expected.ravel()[np.argmax(error.ravel())]}",
    )


@check("attention.matches_reference", examples_factor=2, cover=COVER)
def matches_reference(case: Case) -> None:
    q, k, v, mask, causal, scale = _draw_qkv(case)
    out, w = _call(case, q, k, v, mask, causal, scale)
    ref_out, ref_w = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v), mask, causal, scale)
    out_mag, w_mag = _out_magnitude(case, q, k, v)
    case.assert_close(
        w,
        ref_w,
        f"attention weights (causal={causal}, scale={scale}, mask={'yes' if mask is not None else 'no'})",
        magnitude=w_mag,
    )
    case.assert_close(
        out,
        ref_out,
        f"attention output (causal={causal}, scale={scale}, mask={'yes' if mask is not None else 'no'})",
        magnitude=np.broadcast_to(out_mag, out.shape),
    )


@check("attention.fast_path_matches_reference", examples_factor=2, cover=COVER)
def fast_path_matches_reference(case: Case) -> None:
    q, k, v, mask, causal, scale = _draw_qkv(case)
    kwargs = {"causal": causal, "scale": scale, "need_weights": False}
    if mask is not None:
        kwargs["mask"] = case.array("mask", mask, "bool")
    out, weights = case.call("attention", case.array("q", q), case.array("k", k), case.array("v", v), **kwargs)
    case.require(weights is None, "attention(need_weights=False) returned weights; expected None")
    ref_out, _ = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v), mask, causal, scale)
    case.assert_close(
        case.numpy(out),
        ref_out,
        f"attention fast path (causal={causal}, scale={scale}, mask={'yes' if mask is not None else 'no'})",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], ref_out.shape),
    )


@check("attention.default_scale", cover=COVER_NO_FLAGS)
def default_scale(case: Case) -> None:
    q, k, v, _, _, _ = _draw_qkv(case, causal=False, with_mask=False)
    qn, kn, vn = case.array("q", q), case.array("k", k), case.array("v", v)
    out_default, _ = case.call("attention", qn, kn, vn)
    out_explicit, _ = case.call("attention", qn, kn, vn, scale=1.0 / math.sqrt(q.shape[-1]))
    case.assert_close(
        case.numpy(out_default),
        case.numpy(out_explicit),
        "attention(scale=None) vs attention(scale=1/sqrt(Dh))",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out_default.shape),
    )
    ref_out, _ = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v))
    case.assert_close(
        case.numpy(out_default),
        ref_out,
        "attention(scale=None) vs reference with 1/sqrt(Dh)",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out_default.shape),
    )


@check("attention.causal", cover=COVER_NO_FLAGS)
def causal(case: Case) -> None:
    q, k, v, _, _, scale = _draw_qkv(case, causal=True, with_mask=False)
    L, S = q.shape[-2], k.shape[-2]
    if L == 1:
        return  # the only query is the last position: no key lies in its future
    i = case.draw(st.integers(0, L - 2), "query")
    first_future = i + S - L + 1  # the first key query i must not see
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "change_seed"))
    k2, v2 = k.copy(), v.copy()
    k2[..., first_future:, :] = rng.standard_normal(k2[..., first_future:, :].shape) * 3
    v2[..., first_future:, :] = rng.standard_normal(v2[..., first_future:, :].shape) * 3
    out1, _ = _call(case, q, k, v, None, True, scale)
    out2, _ = _call(case, q, k2, v2, None, True, scale, names=("q", "k_changed", "v_changed", "mask"))
    case.assert_close(
        out2[..., : i + 1, :],
        out1[..., : i + 1, :],
        f"causal attention (L={L}, S={S}): outputs of queries 0..{i} after changing keys/values from position {first_future} on",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out1.shape)[..., : i + 1, :],
    )


@check("attention.causal_sees_past")
def causal_sees_past(case: Case) -> None:
    batch = case.draw(cs.batch_shapes(), "batch")
    S = case.draw(st.sampled_from((2, 3, 5, 8)), "S")
    L = case.draw(st.integers(1, S), "L")
    Dh = case.draw(cs.widths(), "Dh")
    # Zero queries give equal scores: every allowed key gets weight 1/(number allowed) > 0.
    q, k, v = np.zeros(batch + (L, Dh)), np.ones(batch + (S, Dh)), np.ones(batch + (S, Dh))
    _, w = _call(case, q, k, v, None, True, None)
    for i in range(L):
        last_allowed = i + S - L
        case.require(
            bool(np.all(w[..., i, last_allowed] > 0)) and bool(np.all(w[..., i, 0] > 0)),
            f"causal attention (L={L}, S={S}): query {i} gives zero weight to key {last_allowed} or key 0, which it may see",
        )


@check("attention.key_permutation_invariant", cover=COVER_MASK)
def key_permutation_invariant(case: Case) -> None:
    q, k, v, mask, _, scale = _draw_qkv(case, causal=False)
    perm = np.random.default_rng(case.draw(st.integers(0, 2**16), "perm_seed")).permutation(k.shape[-2])
    out1, _ = _call(case, q, k, v, mask, False, scale)
    out2, _ = _call(
        case,
        q,
        k[..., perm, :],
        v[..., perm, :],
        None if mask is None else mask[..., perm],
        False,
        scale,
        names=("q", "k_permuted", "v_permuted", "mask_permuted"),
    )
    case.assert_close(
        out2,
        out1,
        "attention with keys/values permuted vs original",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out1.shape),
    )


@check("attention.masked_keys_zero_weight", cover=COVER_CAUSAL)
def masked_keys_zero_weight(case: Case) -> None:
    q, k, v, mask, causal, scale = _draw_qkv(case, with_mask=True)
    _, w = _call(case, q, k, v, mask, causal, scale)
    allowed = np.broadcast_to(ref.allowed_keys(q.shape[-2], k.shape[-2], mask, causal), w.shape)
    leaked = np.where(allowed, 0.0, np.abs(w))
    case.require(
        bool(np.all(leaked == 0)),
        f"a disallowed key got weight {leaked.max()!r} at index {np.unravel_index(int(np.argmax(leaked)), leaked.shape)}; expected exactly 0",
    )


@check("attention.fully_masked_row_is_zero", cover=COVER_NO_FLAGS)
def fully_masked_row_is_zero(case: Case) -> None:
    q, k, v, _, _, scale = _draw_qkv(case, causal=False, with_mask=False)
    L, S = q.shape[-2], k.shape[-2]
    mask = np.ones((L, S), dtype=bool)
    row = case.draw(st.integers(0, L - 1), "masked_row")
    mask[row] = False
    case.note("mask", mask)
    out, w = _call(case, q, k, v, mask, False, scale)
    case.require(
        bool(np.all(w[..., row, :] == 0)),
        f"query {row} has no allowed key but its weights are {w[..., row, :].ravel()[:8]}; expected all 0",
    )
    case.require(
        bool(np.all(out[..., row, :] == 0)),
        f"query {row} has no allowed key but its output is {out[..., row, :].ravel()[:8]}; expected all 0",
    )


@check("attention.errors", dtypes=ANY)
def errors(case: Case) -> None:
    q, k, v = case.array("q", np.zeros((2, 3, 4))), case.array("k", np.zeros((2, 5, 4))), case.array("v", np.zeros((2, 5, 6)))
    case.expect_error(ShapeError, "'k'", "attention", q, case.array("k_wide", np.zeros((2, 5, 8))), v)
    case.expect_error(ShapeError, "'v'", "attention", q, k, case.array("v_short", np.zeros((2, 4, 6))))
    case.expect_error(
        ShapeError,
        "leading axes",
        "attention",
        q,
        case.array("k_batch3", np.zeros((3, 5, 4))),
        case.array("v_batch3", np.zeros((3, 5, 6))),
    )
    case.expect_error(
        ShapeError, "'mask'", "attention", q, k, v, mask=case.array("mask_wrong", np.ones((3, 4), dtype=bool), "bool")
    )
    case.expect_error(DTypeError, "'mask'", "attention", q, k, v, mask=case.array("mask_float", np.ones((3, 5))))
    case.expect_error(ShapeError, "causal", "attention", case.array("q_long", np.zeros((2, 6, 4))), k, v, causal=True)
    case.expect_error(ShapeError, "'q'", "attention", case.array("q_empty", np.zeros((2, 0, 4))), k, v)
    case.expect_error(ShapeError, "'q'", "attention", case.array("q_rank1", np.zeros((4,))), k, v)
