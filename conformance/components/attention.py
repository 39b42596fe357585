"""Checks for :mod:`transformer_spec.spec.attention`."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError
from transformer_spec.spec.tolerances import EPSILON

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

EXPLICIT_SCALE = 0.5  # the explicit scale of the table (a float: one program whatever its value)
MASK_SHAPES = ("shared", "batched")  # a mask of shape (L, S) for every batch element, or (..., L, S)

# The programs of every attention check: what a compiler specialises on (batch axes, L, S, Dh, Dv, the
# mask's shape, causal, scale None or explicit, need_weights). Two halves of ten rows, non-causal then
# causal: each half is a covering array of strength two over the batch axes, L, S, the mask (none, shared,
# batched), Dh, Dv and the scale, so a check that needs one causal value still meets every pair of the
# others; the masked rows of both halves cover every pair as well (for the checks that need a mask). A
# causal row with L > S runs with L and S swapped (queries are the last L of S positions).
# Every row runs with weights at its scale; the rows marked ``twin`` (twelve, covering every pair again)
# also run through the fast path (need_weights=False) at the other scale, so the checks of the fast path
# and of scale=None share these programs: 20 + 12 in all. Found by a local search; a greedy covering
# array needs 13 rows per half, and no 9-row half exists (4 three-valued dimensions leave no room for a
# two-valued one). A row without a mask still names a mask shape, so that name's pairs are covered too.
# fmt: off
ATTENTION_TABLE = (
    # causal batch   L  S  with_mask mask_shape Dh Dv scale twin
    (False, (),     1, 8, True,  "shared",  8, 2, 0.5,  True),
    (False, (3, 2), 1, 1, False, "shared",  8, 2, None, True),
    (False, (),     8, 3, False, "shared",  2, 8, None, True),
    (False, (2,),   1, 3, True,  "batched", 8, 2, 0.5,  True),
    (False, (3, 2), 3, 3, True,  "shared",  8, 8, None, False),
    (False, (),     3, 1, True,  "batched", 2, 8, 0.5,  True),
    (False, (2,),   8, 1, True,  "shared",  2, 8, None, False),
    (False, (3, 2), 8, 8, True,  "batched", 8, 2, 0.5,  False),
    (False, (3, 2), 1, 8, True,  "batched", 2, 8, None, False),
    (False, (2,),   3, 8, False, "batched", 2, 2, 0.5,  False),
    (True,  (),     1, 8, False, "shared",  2, 8, 0.5,  True),
    (True,  (),     8, 3, True,  "shared",  2, 2, 0.5,  True),
    (True,  (2,),   1, 3, True,  "batched", 8, 8, 0.5,  False),
    (True,  (),     1, 1, True,  "shared",  8, 2, None, False),
    (True,  (3, 2), 8, 8, True,  "batched", 8, 2, None, True),
    (True,  (),     3, 1, True,  "batched", 2, 8, 0.5,  False),
    (True,  (3, 2), 1, 1, True,  "shared",  2, 8, 0.5,  True),
    (True,  (2,),   3, 8, True,  "shared",  2, 2, None, True),
    (True,  (2,),   8, 1, False, "batched", 8, 8, None, True),
    (True,  (3, 2), 3, 3, False, "shared",  8, 2, None, True),
)
# fmt: on
_NAMES = ("causal", "batch", "L", "S", "with_mask", "mask_shape", "Dh", "Dv", "scale")
ROWS = [dict(zip(_NAMES, row[:-1])) for row in ATTENTION_TABLE]
TWINS = [dict(zip(_NAMES, row[:-1])) for row in ATTENTION_TABLE if row[-1]]


def _other_scale(scale: float | None) -> float | None:
    return EXPLICIT_SCALE if scale is None else None


Q_REGIMES = ("normal", "ties", "zeros")  # zero queries: equal scores, so uniform weights over the allowed keys


def _cover(rows: list[dict], draws_q: bool = True):
    """``rows`` as a cover; for a check that draws q, each regime of q's first batch element (a value, not a
    program) meets every option, so rows of mixed regimes (zero queries first, others after) are in it."""
    return cs.table_cover(cs.spread(rows, q_regime=Q_REGIMES) if draws_q else rows)


COVER = _cover(ROWS)  # with weights
COVER_FAST_PATH = _cover([{**row, "scale": _other_scale(row["scale"])} for row in TWINS])
COVER_BOTH_PATHS = _cover(TWINS)  # each row's weights program and its fast-path twin
CAUSAL_ROWS = [row for row in ROWS if row["causal"]]
COVER_CAUSAL = _cover(CAUSAL_ROWS)
COVER_NOT_CAUSAL = _cover([row for row in ROWS if not row["causal"]])
COVER_MASKED = _cover([row for row in ROWS if row["with_mask"]])


@dataclass(frozen=True)
class Program:
    """One row of ATTENTION_TABLE as drawn: the shapes and flags of a call (L <= S when causal)."""

    batch: tuple[int, ...]
    L: int
    S: int
    Dh: int
    Dv: int
    causal: bool
    mask_shape: tuple[int, ...] | None  # None: no mask
    scale: float | None


def _draw_program(case: Case, causal: bool | None = None, with_mask: bool | None = None) -> Program:
    """The program of a covering row (every name of ATTENTION_TABLE is drawn, so exploring adds none).
    ``causal`` and ``with_mask`` fix what a check needs where no row does (the thorough profile draws freely)."""
    batch = case.draw(cs.batch_shapes(), "batch")
    L, S = case.draw(cs.lengths(), "L"), case.draw(cs.lengths(), "S")
    causal = case.draw(st.booleans() if causal is None else st.just(causal), "causal")
    if causal and L > S:
        L, S = S, L  # queries are the last L of S positions: L <= S by construction
    mask_shape = None
    if case.draw(st.booleans() if with_mask is None else st.just(with_mask), "with_mask"):
        shared = case.draw(st.sampled_from(MASK_SHAPES), "mask_shape") == "shared"
        mask_shape = (L, S) if shared else batch + (L, S)
    Dh, Dv = case.draw(cs.widths(), "Dh"), case.draw(cs.widths(), "Dv")
    scale = case.draw(st.sampled_from((None, EXPLICIT_SCALE)), "scale")
    return Program(batch, L, S, Dh, Dv, causal, mask_shape, scale)


def _draw_qkv(case: Case, p: Program):
    """q (..., L, Dh), k (..., S, Dh), v (..., S, Dv) and the mask (or None). Each batch element is an
    independent example with its own value regime: attention never mixes batch elements."""
    stacked = len(p.batch)
    q = cs.draw_values(case, p.batch + (p.L, p.Dh), Q_REGIMES, "q", stacked_axes=stacked)
    k = cs.draw_values(case, p.batch + (p.S, p.Dh), ("normal", "ties"), "k", stacked_axes=stacked)
    v = cs.draw_values(case, p.batch + (p.S, p.Dv), ("normal", "ties"), "v", stacked_axes=stacked)
    mask = None if p.mask_shape is None else case.draw(cs.masks(p.mask_shape), "mask")
    return q, k, v, mask


def _call(case: Case, p: Program, q, k, v, mask, names=("q", "k", "v", "mask"), need_weights=True):
    """attention with the program's flags -> (out, weights or None) as NumPy."""
    kwargs = {"causal": p.causal, "scale": p.scale}
    if not need_weights:  # the default otherwise (one program either way: the signature fills defaults in)
        kwargs["need_weights"] = False
    if mask is not None:
        kwargs["mask"] = case.array(names[3], mask, "bool")
    out, weights = case.call("attention", case.array(names[0], q), case.array(names[1], k), case.array(names[2], v), **kwargs)
    return case.numpy(out), None if weights is None else case.numpy(weights)


def _out_magnitude(case: Case, q, k, v):
    """A bound on the rounding error of out: scores err by |q||k|·eps, which moves weights and so out by about |v| times that."""
    qn = np.linalg.norm(case.rounded(q), axis=-1)[..., :, None]  # (..., L, 1)
    kn = np.linalg.norm(case.rounded(k), axis=-1)[..., None, :]  # (..., 1, S)
    score_scale = 1 + qn * kn  # (..., L, S)
    vmax = np.abs(case.rounded(v)).max(axis=(-1, -2), keepdims=True)  # (..., 1, 1)
    return score_scale.max(axis=-1, keepdims=True) * (vmax + 1) * math.sqrt(k.shape[-2]) * 4, score_scale * 4


def _describe(p: Program) -> str:
    return f"causal={p.causal}, scale={p.scale}, mask={p.mask_shape}, batch={p.batch}, L={p.L}, S={p.S}, Dh={p.Dh}, Dv={p.Dv}"


@check("attention.rows_normalized", cover=COVER)
def rows_normalized(case: Case) -> None:
    p = _draw_program(case)
    q, k, v, mask = _draw_qkv(case, p)
    _, w = _call(case, p, q, k, v, mask)
    case.require(bool(np.all(w >= 0)), f"attention weights have negative entries: min {w.min()!r}")
    sums = w.sum(axis=-1)
    allowed = np.broadcast_to(ref.allowed_keys(p.L, p.S, mask, p.causal), w.shape).any(axis=-1)
    expected = np.where(allowed, 1.0, 0.0)
    error = np.abs(sums - expected)
    case.require(
        bool(np.all(error <= 4 * p.S * EPSILON[case.dtype])),
        f"attention weight rows sum to {sums.ravel()[np.argmax(error.ravel())]!r}, expected {expected.ravel()[np.argmax(error.ravel())]}",
    )


@check("attention.matches_reference", examples_factor=2, cover=COVER)
def matches_reference(case: Case) -> None:
    p = _draw_program(case)
    q, k, v, mask = _draw_qkv(case, p)
    out, w = _call(case, p, q, k, v, mask)
    ref_out, ref_w = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v), mask, p.causal, p.scale)
    out_mag, w_mag = _out_magnitude(case, q, k, v)
    case.assert_close(w, ref_w, f"attention weights ({_describe(p)})", magnitude=w_mag)
    case.assert_close(out, ref_out, f"attention output ({_describe(p)})", magnitude=np.broadcast_to(out_mag, out.shape))


@check("attention.fast_path_matches_reference", examples_factor=2, cover=COVER_FAST_PATH)
def fast_path_matches_reference(case: Case) -> None:
    p = _draw_program(case)
    q, k, v, mask = _draw_qkv(case, p)
    out, weights = _call(case, p, q, k, v, mask, need_weights=False)
    case.require(weights is None, "attention(need_weights=False) returned weights; expected None")
    ref_out, _ = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v), mask, p.causal, p.scale)
    case.assert_close(
        out,
        ref_out,
        f"attention fast path ({_describe(p)})",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], ref_out.shape),
    )


@check("attention.default_scale", cover=COVER_BOTH_PATHS)
def default_scale(case: Case) -> None:
    p = _draw_program(case)
    q, k, v, mask = _draw_qkv(case, p)
    # The row's weights program has its scale and the fast-path twin the other one: scale=None runs on
    # whichever of the two has it, 1/sqrt(Dh) on the other, so both paths meet the default.
    default_has_weights = p.scale is None
    out_default, _ = _call(case, replace(p, scale=None), q, k, v, mask, need_weights=default_has_weights)
    out_explicit, _ = _call(case, replace(p, scale=1.0 / math.sqrt(p.Dh)), q, k, v, mask, need_weights=not default_has_weights)
    magnitude = np.broadcast_to(_out_magnitude(case, q, k, v)[0], out_default.shape)
    case.assert_close(
        out_default, out_explicit, f"attention(scale=None) vs attention(scale=1/sqrt(Dh)) ({_describe(p)})", magnitude=magnitude
    )
    ref_out, _ = ref.attention(case.rounded(q), case.rounded(k), case.rounded(v), mask, p.causal)
    case.assert_close(
        out_default, ref_out, f"attention(scale=None) vs reference with 1/sqrt(Dh) ({_describe(p)})", magnitude=magnitude
    )


@check("attention.causal", cover=COVER_CAUSAL)
def causal(case: Case) -> None:
    p = _draw_program(case, causal=True)
    q, k, v, mask = _draw_qkv(case, p)
    if p.L == 1:
        return  # the only query is the last position: no key lies in its future
    i = case.draw(st.integers(0, p.L - 2), "query")
    first_future = i + p.S - p.L + 1  # the first key query i must not see
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "change_seed"))
    k2, v2 = k.copy(), v.copy()
    k2[..., first_future:, :] = rng.standard_normal(k2[..., first_future:, :].shape) * 3
    v2[..., first_future:, :] = rng.standard_normal(v2[..., first_future:, :].shape) * 3
    out1, _ = _call(case, p, q, k, v, mask)
    out2, _ = _call(case, p, q, k2, v2, mask, names=("q", "k_changed", "v_changed", "mask"))
    case.assert_close(
        out2[..., : i + 1, :],
        out1[..., : i + 1, :],
        f"causal attention ({_describe(p)}): outputs of queries 0..{i} after changing keys/values from position {first_future} on",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out1.shape)[..., : i + 1, :],
    )


@check("attention.causal_sees_past", cover=_cover(CAUSAL_ROWS, draws_q=False))
def causal_sees_past(case: Case) -> None:
    p = _draw_program(case, causal=True)
    # Zero queries give equal scores: every allowed key gets weight 1/(number allowed) > 0. A mask of the
    # row's shape allows every key, so only the causal rule decides.
    q, k, v = np.zeros(p.batch + (p.L, p.Dh)), np.ones(p.batch + (p.S, p.Dh)), np.ones(p.batch + (p.S, p.Dv))
    mask = None if p.mask_shape is None else np.ones(p.mask_shape, dtype=bool)
    _, w = _call(case, p, q, k, v, mask)
    for i in range(p.L):
        last_allowed = i + p.S - p.L
        case.require(
            bool(np.all(w[..., i, last_allowed] > 0)) and bool(np.all(w[..., i, 0] > 0)),
            f"causal attention (L={p.L}, S={p.S}): query {i} gives zero weight to key {last_allowed} or key 0, which it may see",
        )


@check("attention.key_permutation_invariant", cover=COVER_NOT_CAUSAL)
def key_permutation_invariant(case: Case) -> None:
    p = _draw_program(case, causal=False)
    q, k, v, mask = _draw_qkv(case, p)
    perm = np.random.default_rng(case.draw(st.integers(0, 2**16), "perm_seed")).permutation(p.S)
    out1, _ = _call(case, p, q, k, v, mask)
    permuted_mask = None if mask is None else mask[..., perm]
    out2, _ = _call(
        case, p, q, k[..., perm, :], v[..., perm, :], permuted_mask, names=("q", "k_permuted", "v_permuted", "mask_permuted")
    )
    case.assert_close(
        out2,
        out1,
        f"attention with keys/values permuted vs original ({_describe(p)})",
        magnitude=np.broadcast_to(_out_magnitude(case, q, k, v)[0], out1.shape),
    )


@check("attention.masked_keys_zero_weight", cover=COVER)
def masked_keys_zero_weight(case: Case) -> None:
    p = _draw_program(case)  # rows without a mask still disallow keys when causal
    q, k, v, mask = _draw_qkv(case, p)
    _, w = _call(case, p, q, k, v, mask)
    allowed = np.broadcast_to(ref.allowed_keys(p.L, p.S, mask, p.causal), w.shape)
    leaked = np.where(allowed, 0.0, np.abs(w))
    case.require(
        bool(np.all(leaked == 0)),
        f"a disallowed key got weight {leaked.max()!r} at index {np.unravel_index(int(np.argmax(leaked)), leaked.shape)}; expected exactly 0",
    )


@check("attention.fully_masked_row_is_zero", cover=COVER_MASKED)
def fully_masked_row_is_zero(case: Case) -> None:
    p = _draw_program(case, with_mask=True)
    q, k, v, drawn = _draw_qkv(case, p)
    row = case.draw(st.integers(0, p.L - 1), "masked_row")
    mask = drawn.copy()
    mask[..., row, :] = False  # query `row` has no allowed key (in every batch element)
    case.note("mask", mask)
    out, w = _call(case, p, q, k, v, mask)
    case.require(
        bool(np.all(w[..., row, :] == 0)),
        f"query {row} has no allowed key but its weights are {w[..., row, :].ravel()[:8]}; expected all 0",
    )
    case.require(
        bool(np.all(out[..., row, :] == 0)),
        f"query {row} has no allowed key but its output is {out[..., row, :].ravel()[:8]}; expected all 0",
    )


@check("attention.errors", dtypes=ANY, cover=_cover(ROWS, draws_q=False))
def errors(case: Case) -> None:
    p = _draw_program(case)
    # Each bad argument comes with the row's valid options (batch axes, mask, causal, scale), so every option
    # meets the validation; each call raises, so none compiles anything.
    q, k, v = (
        case.array(name, np.zeros(p.batch + shape))
        for name, shape in (("q", (p.L, p.Dh)), ("k", (p.S, p.Dh)), ("v", (p.S, p.Dv)))
    )
    options = {"causal": p.causal, "scale": p.scale}
    if p.mask_shape is not None:
        options["mask"] = case.array("mask", np.ones(p.mask_shape, dtype=bool), "bool")

    def invalid(name: str, shape: tuple[int, ...], dtype: str | None = None):
        return case.array(name, np.ones(shape, dtype=bool) if dtype == "bool" else np.zeros(shape), dtype)

    case.expect_error(ShapeError, "'k'", "attention", q, invalid("k_wide", p.batch + (p.S, p.Dh + 2)), v, **options)
    case.expect_error(ShapeError, "'v'", "attention", q, k, invalid("v_long", p.batch + (p.S + 1, p.Dv)), **options)
    other_batch = (5,) + p.batch  # one more leading axis than q
    case.expect_error(
        ShapeError,
        "leading axes",
        "attention",
        q,
        invalid("k_batch", other_batch + (p.S, p.Dh)),
        invalid("v_batch", other_batch + (p.S, p.Dv)),
        **options,
    )
    unmasked = {name: value for name, value in options.items() if name != "mask"}
    case.expect_error(ShapeError, "'mask'", "attention", q, k, v, mask=invalid("mask_wrong", (p.L + 1, p.S), "bool"), **unmasked)
    case.expect_error(
        DTypeError, "'mask'", "attention", q, k, v, mask=invalid("mask_float", p.mask_shape or (p.L, p.S)), **unmasked
    )
    case.expect_error(ShapeError, "causal", "attention", invalid("q_long", p.batch + (p.S + 1, p.Dh)), k, v, causal=True)
    case.expect_error(ShapeError, "'q'", "attention", invalid("q_empty", p.batch + (0, p.Dh)), k, v, **options)
    case.expect_error(ShapeError, "'q'", "attention", invalid("q_rank1", (p.Dh,)), k, v, **options)
    case.expect_error(ConfigError, "scale", "attention", q, k, v, **{**options, "scale": -1.0})
