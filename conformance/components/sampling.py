"""Checks for :mod:`transformer_spec.spec.sampling`.

Because ``u`` is an input, sampling is tested exactly: a grid of ``u`` values
gives every token a frequency within ``1/grid`` of its probability.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, NotFiniteError, ShapeError
from transformer_spec.spec.tolerances import EPSILON

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

GRID = 100  # u values per frequency check
TEMPERATURES = (0.25, 0.5, 1.0, 2.0)


VOCABULARIES = (1, 2, 3, 5, 8, 16)
# Which filters are on: neither, top_k alone, top_p alone, or both together.
FILTERS = ("neither", "top_k", "top_p", "both")
TOP_P = (0.1, 0.5, 0.8, 0.95, 1.0)


def sampling_logits(case: Case) -> np.ndarray:
    """(V,) logits on a 0.25 grid: exact ties are common, distinct values are clearly apart in any dtype."""
    V = case.draw(st.sampled_from(VOCABULARIES), "V")
    rng = np.random.default_rng(case.draw(st.integers(0, 2**32 - 1), "logits_seed"))
    spread = case.draw(st.sampled_from((2, 8, 24)), "spread")
    return case.note("logits", rng.integers(-spread, spread + 1, size=V) * 0.25)


def _options(case: Case, V: int, temperature: float | None = None):
    temperature = case.draw(st.sampled_from(TEMPERATURES), "temperature") if temperature is None else temperature
    filters = case.draw(st.sampled_from(FILTERS), "filters")
    top_k = case.draw(st.integers(1, V), "top_k") if filters in ("top_k", "both") else None
    top_p = case.draw(st.sampled_from(TOP_P), "top_p") if filters in ("top_p", "both") else None
    return temperature, top_k, top_p


# Every filter combination with every temperature and vocabulary size (one token, odd, the largest).
COVER = cs.covering(filters=FILTERS, temperature=TEMPERATURES, V=(1, 5, 16))
COVER_FILTERS_ONLY = cs.covering(filters=FILTERS, V=(1, 5, 16))
COVER_TEMPERATURE = cs.covering(temperature=TEMPERATURES, V=(1, 5, 16))


def _settle_top_p(case: Case, logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> float | None:
    """Move top_p to the middle of a gap between prefix masses, so rounding in the dtype cannot decide the cut.

    The kept prefix is the one whose mass interval (m_{j-1}, m_j] holds top_p; its midpoint keeps the same
    prefix. When that interval is narrower than the dtype's rounding of a V-term cumulative sum, the nearest
    wide-enough interval is used instead.
    """
    if top_p is None:
        return None
    margin = max(1e-3, 2 * len(logits) * EPSILON[case.dtype])
    p = ref.softmax(logits / temperature)
    ranked = sorted(range(len(p)), key=lambda i: (-p[i], i))[: top_k or len(p)]
    masses = np.concatenate([[0.0], np.cumsum(p[ranked]) / p[ranked].sum()])
    chosen = int(np.searchsorted(masses[1:], top_p, side="left")) + 1  # the interval holding top_p
    for j in sorted(range(1, len(masses)), key=lambda j: (abs(j - chosen), j)):
        if (masses[j] - masses[j - 1]) / 2 >= margin:
            return float(min(1.0, (masses[j - 1] + masses[j]) / 2))
    return 1.0


def _sample(case: Case, logits_native, u: float, temperature, top_k, top_p) -> int:
    return case.call("sample", logits_native, float(u), temperature=temperature, top_k=top_k, top_p=top_p)


def _slack(case: Case, V: int) -> float:
    return 1.0 / GRID + 8 * V * EPSILON[case.dtype]


def _frequencies(case: Case, logits, temperature, top_k, top_p) -> np.ndarray:
    native = case.array("logits", logits)
    counts = np.zeros(len(logits))
    for j in range(GRID):
        counts[_sample(case, native, (j + 0.5) / GRID, temperature, top_k, top_p)] += 1
    return counts / GRID


@check("sampling.greedy_is_argmax", cover=COVER_FILTERS_ONLY)
def greedy_is_argmax(case: Case) -> None:
    logits = sampling_logits(case)
    u = case.draw(st.floats(0, 1, exclude_max=True), "u")
    _, top_k, top_p = _options(case, len(logits))
    token = _sample(case, case.array("logits", logits), u, 0.0, top_k, top_p)
    expected = int(np.argmax(logits))
    case.require(
        token == expected,
        f"temperature 0 gave token {token}, expected the argmax {expected} (lowest index on ties) for logits {logits.tolist()}",
    )


@check("sampling.within_top_k", cover=COVER_TEMPERATURE)
def within_top_k(case: Case) -> None:
    logits = sampling_logits(case)
    V = len(logits)
    k = case.draw(st.integers(1, V), "top_k")
    temperature = case.draw(st.sampled_from(TEMPERATURES), "temperature")
    allowed = set(sorted(range(V), key=lambda i: (-logits[i], i))[:k])
    native = case.array("logits", logits)
    for j in range(GRID // 4):
        u = (j + 0.5) / (GRID // 4)
        token = _sample(case, native, u, temperature, k, None)
        case.require(
            token in allowed,
            f"top_k={k} sampled token {token} (u={u}), which is not among the {k} most probable {sorted(allowed)}",
        )


@check("sampling.within_top_p", cover=COVER)
def within_top_p(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, top_k, _ = _options(case, len(logits))
    top_p = _settle_top_p(case, logits, temperature, top_k, case.draw(st.sampled_from((0.1, 0.5, 0.8, 0.95)), "top_p"))
    allowed = set(np.flatnonzero(ref.sampling_distribution(logits, temperature, top_k, top_p)).tolist())
    native = case.array("logits", logits)
    for j in range(GRID // 4):
        u = (j + 0.5) / (GRID // 4)
        token = _sample(case, native, u, temperature, top_k, top_p)
        case.require(
            token in allowed,
            f"top_p={top_p} sampled token {token} (u={u}), outside the smallest prefix with mass >= top_p {sorted(allowed)}",
        )


@check("sampling.top_p_keeps_crossing_token", cover=COVER_TEMPERATURE)
def top_p_keeps_crossing_token(case: Case) -> None:
    logits = sampling_logits(case)
    temperature = case.draw(st.sampled_from(TEMPERATURES), "temperature")
    top_p = _settle_top_p(case, logits, temperature, None, case.draw(st.sampled_from((0.1, 0.5, 0.8, 0.95)), "top_p"))
    q = ref.sampling_distribution(logits, temperature, None, top_p)
    ranked = sorted(np.flatnonzero(q).tolist(), key=lambda i: (-q[i], i))
    crossing = ranked[-1]  # the least probable kept token: the one whose mass crossed top_p
    cumulative = np.cumsum(q)
    u = float(cumulative[crossing] - q[crossing] / 2)  # the middle of its interval in vocabulary order
    case.note("u", u)
    token = _sample(case, case.array("logits", logits), u, temperature, None, top_p)
    case.require(
        token == crossing,
        f"top_p={top_p}: u={u} should select token {crossing}, the token that crosses the threshold, but got {token}",
    )


@check("sampling.frequencies_match", cover=COVER)
def frequencies_match(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, top_k, top_p = _options(case, len(logits))
    top_p = _settle_top_p(case, logits, temperature, top_k, top_p)
    freq = _frequencies(case, logits, temperature, top_k, top_p)
    q = ref.sampling_distribution(logits, temperature, top_k, top_p)
    worst = int(np.argmax(np.abs(freq - q)))
    case.require(
        bool(np.all(np.abs(freq - q) <= _slack(case, len(logits)))),
        f"token {worst} came out with frequency {freq[worst]:.3f} over a grid of {GRID} u values, expected probability {q[worst]:.3f} "
        f"(temperature={temperature}, top_k={top_k}, top_p={top_p})",
    )


@check("sampling.temperature_scales", cover=cs.covering(V=(1, 5, 16), temperature=(0.25, 0.5, 2.0, 4.0)))
def temperature_scales(case: Case) -> None:
    logits = sampling_logits(case)
    temperature = case.draw(st.sampled_from((0.25, 0.5, 2.0, 4.0)), "temperature")
    freq = _frequencies(case, logits, temperature, None, None)
    q = ref.sampling_distribution(logits, temperature, None, None)
    worst = int(np.argmax(np.abs(freq - q)))
    case.require(
        bool(np.all(np.abs(freq - q) <= _slack(case, len(logits)))),
        f"at temperature {temperature} token {worst} came out with frequency {freq[worst]:.3f}, expected softmax(logits/T) = {q[worst]:.3f} "
        f"(softmax(logits) would give {ref.softmax(logits)[worst]:.3f})",
    )


@check("sampling.matches_reference", cover=COVER)
def matches_reference(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, top_k, top_p = _options(case, len(logits))
    top_p = _settle_top_p(case, logits, temperature, top_k, top_p)
    u = case.draw(st.floats(0, 1, exclude_max=True), "u")
    q = ref.sampling_distribution(logits, temperature, top_k, top_p)
    boundaries = np.cumsum(q)
    near = np.abs(boundaries - u) < 1e-2
    if near.any():  # too close to a boundary for rounding to decide: take the middle of the widest interval instead
        i = int(np.argmax(q))
        u = float(boundaries[i] - q[i] / 2)
        case.note("u", u)
    expected = ref.sample(logits, u, temperature, top_k, top_p)
    token = _sample(case, case.array("logits", logits), u, temperature, top_k, top_p)
    case.require(
        token == expected,
        f"sample gave token {token}, the reference gives {expected} (u={u}, temperature={temperature}, top_k={top_k}, top_p={top_p})",
    )


@check("sampling.errors", dtypes=ANY)
def errors(case: Case) -> None:
    logits = case.array("logits", np.array([0.0, 1.0, 2.0]))
    case.expect_error(ConfigError, "temperature", "sample", logits, 0.5, temperature=-1.0)
    case.expect_error(ConfigError, "top_k", "sample", logits, 0.5, top_k=0)
    case.expect_error(ConfigError, "top_p", "sample", logits, 0.5, top_p=0.0)
    case.expect_error(ConfigError, "top_p", "sample", logits, 0.5, top_p=1.5)
    case.expect_error(ConfigError, "u", "sample", logits, 1.0)
    case.expect_error(ConfigError, "u", "sample", logits, -0.1)
    case.expect_error(ShapeError, "'logits'", "sample", case.array("logits_2d", np.zeros((2, 3))), 0.5)
    case.expect_error(ShapeError, "'logits'", "sample", case.array("logits_empty", np.zeros((0,))), 0.5)
    case.expect_error(NotFiniteError, "'logits'", "sample", case.array("logits_nan", np.array([0.0, np.nan])), 0.5)
