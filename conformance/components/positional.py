"""Checks for :mod:`transformer_spec.spec.positional`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, OutOfRangeError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

BASES = (10000.0, 500.0)


OFFSETS = (0, 1, 7, 100)


@check(
    "positional.sinusoidal_matches_formula",
    cover=cs.covering(length=cs.LENGTHS, dim=cs.WIDTHS, offset=OFFSETS, base=BASES),
)
def sinusoidal_matches_formula(case: Case) -> None:
    length, dim = case.draw(cs.lengths(), "length"), case.draw(cs.widths(), "dim")
    offset = case.draw(st.sampled_from(OFFSETS), "offset")
    base = case.draw(st.sampled_from(BASES), "base")
    got = case.numpy(case.call("sinusoidal_encoding", length, dim, base=base, offset=offset, dtype=case.dtype))
    expected = ref.sinusoidal(length, dim, base, offset)
    # sin(p·ω) computed in the dtype carries an argument error of about p·eps: allow for it.
    positions = np.arange(offset, offset + length)[:, None] + 1.0
    case.assert_close(
        got,
        expected,
        f"sinusoidal_encoding({length}, {dim}, base={base}, offset={offset})",
        magnitude=np.broadcast_to(positions, expected.shape),
    )


@check("positional.sinusoidal_distinct_positions")
def sinusoidal_distinct_positions(case: Case) -> None:
    length = case.draw(st.sampled_from((2, 5, 8, 32)), "length")
    dim = case.draw(cs.widths(), "dim")
    table = case.numpy(case.call("sinusoidal_encoding", length, dim, dtype=case.dtype))
    distance = np.linalg.norm(table[:, None, :] - table[None, :, :], axis=-1)  # (length, length)
    np.fill_diagonal(distance, np.inf)
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    # Pair 0 turns one radian per position, so any two positions < 2π·(something) apart differ clearly.
    case.require(
        float(distance[i, j]) > 0.05, f"positions {i} and {j} get (nearly) the same encoding: distance {distance[i, j]:.3g}"
    )


@check("positional.sinusoidal_offset_consistent")
def sinusoidal_offset_consistent(case: Case) -> None:
    length, dim = case.draw(cs.lengths(), "length"), case.draw(cs.widths(), "dim")
    offset = case.draw(st.sampled_from((1, 3, 8)), "offset")
    full = case.numpy(case.call("sinusoidal_encoding", length + offset, dim, dtype=case.dtype))
    shifted = case.numpy(case.call("sinusoidal_encoding", length, dim, offset=offset, dtype=case.dtype))
    positions = np.arange(offset, offset + length)[:, None] + 1.0
    case.assert_close(
        shifted,
        full[offset:],
        f"sinusoidal_encoding(offset={offset}) vs rows {offset}.. of the full table",
        magnitude=np.broadcast_to(positions, shifted.shape),
    )


@check("positional.learned_selects_rows")
def learned_selects_rows(case: Case) -> None:
    C, D = case.draw(st.sampled_from((4, 8, 16)), "C"), case.draw(cs.widths(), "D")
    table = case.draw(cs.float_arrays((C, D), case.dtype), "table")
    length = case.draw(st.integers(1, C), "length")
    offset = case.draw(st.integers(0, C - length), "offset")
    native = case.array("table", table)
    got = case.numpy(case.call("learned_positions", native, length, offset=offset))
    case.require(
        bool(np.array_equal(got, case.rounded(table)[offset : offset + length])),
        f"learned_positions({length}, offset={offset}) is not rows {offset}..{offset + length - 1} of the table",
    )
    case.expect_error(OutOfRangeError, "context", "learned_positions", native, C - offset + 1, offset=offset)


def _draw_heads(case: Case):
    batch = case.draw(cs.batch_shapes(), "batch")
    L, Dh = case.draw(cs.lengths(), "L"), case.draw(cs.widths(), "Dh")
    x = case.draw(cs.float_arrays(batch + (L, Dh), case.dtype, ("normal", "ties")), "x")
    start = case.draw(st.sampled_from((0, 1, 5, 100)), "start")
    return x, np.arange(start, start + L)


def _angle_magnitude(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rotating by p·θ in the dtype errs by about p·eps radians: scale by |x|·(p + 1)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)  # (..., L, 1)
    return np.broadcast_to(norm * (positions[:, None] + 1.0) * 2, x.shape)


@check("positional.rotary_preserves_norm")
def rotary_preserves_norm(case: Case) -> None:
    x, positions = _draw_heads(case)
    got = case.numpy(case.call("rotary", case.array("x", x), case.array("positions", positions, "int64")))
    before, after = np.linalg.norm(case.rounded(x), axis=-1), np.linalg.norm(got, axis=-1)
    case.assert_close(after, before, "|rotary(x)| vs |x|", magnitude=before * x.shape[-1])


@check("positional.rotary_position_zero_is_identity")
def rotary_position_zero_is_identity(case: Case) -> None:
    x, _ = _draw_heads(case)
    zeros = np.zeros(x.shape[-2], dtype=np.int64)
    got = case.numpy(case.call("rotary", case.array("x", x), case.array("positions", zeros, "int64")))
    case.assert_close(got, case.rounded(x), "rotary(x, positions=0) vs x")


@check("positional.rotary_relative")
def rotary_relative(case: Case) -> None:
    Dh = case.draw(cs.widths(), "Dh")
    q = case.draw(cs.float_arrays((1, Dh), case.dtype, ("normal",)), "q")
    k = case.draw(cs.float_arrays((1, Dh), case.dtype, ("normal",)), "k")
    p, s = case.draw(st.integers(0, 20), "p"), case.draw(st.integers(0, 20), "s")
    shift = case.draw(st.integers(1, 20), "shift")
    qn, kn = case.array("q", q), case.array("k", k)

    def score(pq: int, pk: int) -> float:
        rq = case.numpy(case.call("rotary", qn, case.array(f"pos_{pq}", np.array([pq]), "int64")))
        rk = case.numpy(case.call("rotary", kn, case.array(f"pos_{pk}", np.array([pk]), "int64")))
        return float((rq * rk).sum())

    a, b = score(p, s), score(p + shift, s + shift)
    bound = np.linalg.norm(case.rounded(q)) * np.linalg.norm(case.rounded(k))
    case.assert_close(
        np.array(b),
        np.array(a),
        f"<rotary(q, {p + shift}), rotary(k, {s + shift})> vs <rotary(q, {p}), rotary(k, {s})>",
        magnitude=np.array(bound * (max(p, s) + shift + 1) * Dh),
    )


@check("positional.rotary_matches_reference", cover=cs.covering(L=cs.LENGTHS, Dh=cs.WIDTHS, base=BASES))
def rotary_matches_reference(case: Case) -> None:
    x, positions = _draw_heads(case)
    base = case.draw(st.sampled_from(BASES), "base")
    got = case.numpy(case.call("rotary", case.array("x", x), case.array("positions", positions, "int64"), base=base))
    xr = case.rounded(x)
    case.assert_close(
        got, ref.rotary(xr, positions, base), f"rotary(x, positions, base={base})", magnitude=_angle_magnitude(xr, positions)
    )


@check("positional.errors", dtypes=ANY)
def errors(case: Case) -> None:
    case.expect_error(ShapeError, "dim", "sinusoidal_encoding", 4, 3)
    case.expect_error(ConfigError, "length", "sinusoidal_encoding", 0, 4)
    case.expect_error(ConfigError, "offset", "sinusoidal_encoding", 4, 4, offset=-1)
    x = case.array("x", np.zeros((2, 3, 4)))
    case.expect_error(ShapeError, "positions", "rotary", x, case.array("positions", np.arange(2), "int64"))
    case.expect_error(
        ShapeError, "Dh", "rotary", case.array("x_odd", np.zeros((3, 5))), case.array("positions3", np.arange(3), "int64")
    )
    case.expect_error(OutOfRangeError, "positions", "rotary", x, case.array("negative", np.array([0, -1, 2]), "int64"))
