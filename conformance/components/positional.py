"""Checks for :mod:`transformer_spec.spec.positional`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, OutOfRangeError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

BASES = (10000.0, 500.0)  # a traced float: varied, never pinned

# ---------------------------------------------------------------------- sinusoidal

# The tables every sinusoidal check shares, (length, offset), in pairs whose positions overlap (0..7 holds
# 5..7; 100..102 holds 101), so the offset check compiles nothing new. Length 1, odd and the longest; offset
# 0, small, and far (where sin(p·ω) in the dtype has lost digits). Each at width 2 and 8: eight programs.
SPANS = ((8, 0), (3, 5), (3, 100), (1, 101))
SINUSOIDAL_COVER = cs.covering(span=SPANS, dim=cs.WIDTHS, base=BASES, free=("base",))


def _draw_table(case: Case) -> tuple[int, int, int, float]:
    length, offset = case.draw(st.sampled_from(SPANS), "span")
    return length, offset, case.draw(cs.widths(), "dim"), case.draw(st.sampled_from(BASES), "base")


def _sinusoidal(case: Case, length: int, dim: int, base: float, offset: int) -> np.ndarray:
    return case.numpy(case.call("sinusoidal_encoding", length, dim, base=base, offset=offset, dtype=case.dtype))


def _position_magnitude(offset: int, shape: tuple[int, int]) -> np.ndarray:
    """sin(p·ω) computed in the dtype carries an argument error of about p·eps: allow for it, row by row."""
    return np.broadcast_to(np.arange(offset, offset + shape[0])[:, None] + 1.0, shape)


@check("positional.sinusoidal_matches_formula", cover=SINUSOIDAL_COVER)
def sinusoidal_matches_formula(case: Case) -> None:
    length, offset, dim, base = _draw_table(case)
    got = _sinusoidal(case, length, dim, base, offset)
    expected = ref.sinusoidal(length, dim, base, offset)
    case.assert_close(
        got,
        expected,
        f"sinusoidal_encoding({length}, {dim}, base={base}, offset={offset})",
        magnitude=_position_magnitude(offset, expected.shape),
    )


@check("positional.sinusoidal_distinct_positions", cover=SINUSOIDAL_COVER)
def sinusoidal_distinct_positions(case: Case) -> None:
    length, offset, dim, base = _draw_table(case)
    table = _sinusoidal(case, length, dim, base, offset)
    distance = np.linalg.norm(table[:, None, :] - table[None, :, :], axis=-1)  # (length, length)
    np.fill_diagonal(distance, np.inf)
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    # Pair 0 turns one radian per position: positions fewer than 6 apart (2π) differ clearly.
    case.require(
        float(distance[i, j]) > 0.05,
        f"positions {offset + i} and {offset + j} get (nearly) the same encoding: distance {distance[i, j]:.3g}",
    )


@check("positional.sinusoidal_offset_consistent", cover=SINUSOIDAL_COVER)
def sinusoidal_offset_consistent(case: Case) -> None:
    length, offset, dim, base = _draw_table(case)
    # The other table of the pair: rows 5..7 of the table from 0, or the far pair, whose offsets differ by one
    # (if every offset o gives rows o.. of the table from 0, two offsets agree where their positions overlap).
    other_length, other_offset = SPANS[SPANS.index((length, offset)) ^ 1]
    table = _sinusoidal(case, length, dim, base, offset)
    other = _sinusoidal(case, other_length, dim, base, other_offset)
    first, last = max(offset, other_offset), min(offset + length, other_offset + other_length)  # shared positions
    got = table[first - offset : last - offset]  # (last - first, dim)
    case.assert_close(
        got,
        other[first - other_offset : last - other_offset],
        f"positions {first}..{last - 1} of sinusoidal_encoding(offset={offset}) vs of the table with offset={other_offset}",
        magnitude=_position_magnitude(first, got.shape),
    )


# ---------------------------------------------------------------------- learned

# The windows every learned_positions call reads, (C, D, length, offset): the whole table, its first row, its
# last row, an odd window strictly inside a shorter table.
WINDOWS = ((8, 2, 8, 0), (8, 8, 1, 0), (8, 2, 1, 7), (4, 8, 3, 1))


@check("positional.learned_selects_rows", cover=cs.covering(window=WINDOWS))
def learned_selects_rows(case: Case) -> None:
    C, D, length, offset = case.draw(st.sampled_from(WINDOWS), "window")
    table = case.draw(cs.float_arrays((C, D), case.dtype), "table")
    native = case.array("table", table)
    got = case.numpy(case.call("learned_positions", native, length, offset=offset))
    case.require(
        bool(np.array_equal(got, case.rounded(table)[offset : offset + length])),
        f"learned_positions({length}, offset={offset}) is not rows {offset}..{offset + length - 1} of the table",
    )
    case.expect_error(OutOfRangeError, "context", "learned_positions", native, C - offset + 1, offset=offset)


# ---------------------------------------------------------------------- rotary

# The programs every rotary check shares, x's shape (..., L, Dh): each length (1, odd 3, the longest 8) with
# each head width, spread over no batch axis, one and two.
ROTARY_SHAPES = ((1, 2), (8, 8), (2, 3, 2), (2, 1, 8), (3, 2, 8, 2), (3, 2, 3, 8))
STARTS = (0, 1, 5, 100)  # the first position: positions are traced values, not part of the program


def _draw_heads(case: Case, names: tuple[str, ...] = ("x",), regimes: tuple[str, ...] = ("normal", "ties")) -> list[np.ndarray]:
    """One array per name, all of one drawn shape (..., L, Dh)."""
    shape = case.draw(st.sampled_from(ROTARY_SHAPES), "shape")
    # Rows of the batch axes are independent examples, each with its own regime.
    return [cs.draw_values(case, shape, regimes, name, stacked_axes=len(shape) - 2) for name in names]


def _draw_positions(case: Case, length: int) -> np.ndarray:
    start = case.draw(st.sampled_from(STARTS), "start")
    return np.arange(start, start + length)  # (L,)


def _rotary(case: Case, x, positions: np.ndarray, name: str = "positions", **kwargs) -> np.ndarray:
    return case.numpy(case.call("rotary", x, case.array(name, positions, "int64"), **kwargs))


def _angle_magnitude(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rotating by p·θ in the dtype errs by about p·eps radians: scale by |x|·(p + 1)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)  # (..., L, 1)
    return np.broadcast_to(norm * (positions[:, None] + 1.0) * 2, x.shape)


ROTARY_COVER = cs.covering(shape=ROTARY_SHAPES, start=STARTS, free=("start",))


@check("positional.rotary_preserves_norm", cover=ROTARY_COVER)
def rotary_preserves_norm(case: Case) -> None:
    (x,) = _draw_heads(case)
    got = _rotary(case, case.array("x", x), _draw_positions(case, x.shape[-2]))
    before, after = np.linalg.norm(case.rounded(x), axis=-1), np.linalg.norm(got, axis=-1)
    case.assert_close(after, before, "|rotary(x)| vs |x|", magnitude=before * x.shape[-1])


@check("positional.rotary_position_zero_is_identity", cover=cs.covering(shape=ROTARY_SHAPES))
def rotary_position_zero_is_identity(case: Case) -> None:
    (x,) = _draw_heads(case)
    got = _rotary(case, case.array("x", x), np.zeros(x.shape[-2], dtype=np.int64))
    case.assert_close(got, case.rounded(x), "rotary(x, positions=0) vs x")


@check("positional.rotary_relative", cover=cs.covering(shape=ROTARY_SHAPES))
def rotary_relative(case: Case) -> None:
    q, k = _draw_heads(case, ("q", "k"), ("normal",))
    L, Dh = q.shape[-2:]
    p, s = case.draw(st.integers(0, 20), "p"), case.draw(st.integers(0, 20), "s")
    shift = case.draw(st.integers(1, 20), "shift")
    qn, kn = case.array("q", q), case.array("k", k)

    def scores(pq: int, pk: int) -> np.ndarray:
        """<rotary(q, pq + i), rotary(k, pk + i)> for each row i: shape (..., L)."""
        rq = _rotary(case, qn, np.arange(pq, pq + L), f"pos_{pq}")
        rk = _rotary(case, kn, np.arange(pk, pk + L), f"pos_{pk}")
        return (rq * rk).sum(axis=-1)

    bound = np.linalg.norm(case.rounded(q), axis=-1) * np.linalg.norm(case.rounded(k), axis=-1)  # (..., L)
    case.assert_close(
        scores(p + shift, s + shift),
        scores(p, s),
        f"<rotary(q, {p + shift} + i), rotary(k, {s + shift} + i)> vs <rotary(q, {p} + i), rotary(k, {s} + i)>",
        magnitude=bound * (max(p, s) + L + shift + 1) * Dh,
    )


@check(
    "positional.rotary_matches_reference",
    cover=cs.covering(shape=ROTARY_SHAPES, start=STARTS, base=BASES, free=("start", "base")),
)
def rotary_matches_reference(case: Case) -> None:
    (x,) = _draw_heads(case)
    positions = _draw_positions(case, x.shape[-2])
    base = case.draw(st.sampled_from(BASES), "base")
    got = _rotary(case, case.array("x", x), positions, base=base)
    xr = case.rounded(x)
    case.assert_close(
        got, ref.rotary(xr, positions, base), f"rotary(x, positions, base={base})", magnitude=_angle_magnitude(xr, positions)
    )


# ---------------------------------------------------------------------- errors


@check(
    "positional.errors",
    dtypes=ANY,
    cover=cs.covering(span=SPANS, dim=cs.WIDTHS, shape=ROTARY_SHAPES, base=BASES),
)
def errors(case: Case) -> None:
    length, offset, dim, base = _draw_table(case)
    case.expect_error(ShapeError, "dim", "sinusoidal_encoding", length, dim + 1, base=base, offset=offset)
    case.expect_error(ConfigError, "length", "sinusoidal_encoding", 0, dim, base=base, offset=offset)
    case.expect_error(ConfigError, "offset", "sinusoidal_encoding", length, dim, base=base, offset=-1)
    shape = case.draw(st.sampled_from(ROTARY_SHAPES), "shape")
    L, Dh = shape[-2:]
    x = case.array("x", np.zeros(shape))
    positions = np.arange(L)  # (L,)
    case.expect_error(ShapeError, "positions", "rotary", x, case.array("positions", np.arange(L + 1), "int64"), base=base)
    odd = case.array("x_odd", np.zeros(shape[:-1] + (Dh + 1,)))  # an odd head width
    case.expect_error(ShapeError, "Dh", "rotary", odd, case.array("positions_of_x", positions, "int64"), base=base)
    negative = positions - L // 2 - 1  # starts below 0
    case.expect_error(OutOfRangeError, "positions", "rotary", x, case.array("negative", negative, "int64"), base=base)
