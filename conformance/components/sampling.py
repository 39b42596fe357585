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


VOCABULARIES = (1, 2, 3, 5, 8, 16)  # what the thorough profile draws from; the table below uses 1, 5 and 16
# Which filters are on: neither, top_k alone, top_p alone, or both together.
FILTERS = ("neither", "top_k", "top_p", "both")
WITH_TOP_K, WITH_TOP_P, WITHOUT_FILTERS = ("top_k", "both"), ("top_p", "both"), ("neither",)
TOP_P = (0.1, 0.5, 0.8, 0.95, 1.0)
TOP_K_SIZES = ("one", "half", "all")  # top_k = 1 (greedy among the kept), about V/2, or V (keeps everything)


def top_k_of(size: str, V: int) -> int:
    return {"one": 1, "half": (V + 1) // 2, "all": V}[size]


# The programs of every sampling check: what a compiler specialises on is V, top_k's value (static) and
# whether top_p is given (temperature, top_p and u are traced floats). Every filter with every V (one
# token, odd, the largest), and among the rows that cut to the top k, every size with every V and with
# each of top_k and both; with V = 1 every size is k = 1, one program under three names. 14 programs.
# fmt: off
SAMPLING_TABLE = (
    # V  filters    top_k size
    (1,  "neither", None),
    (1,  "top_p",   None),
    (1,  "top_k",   "one"),
    (1,  "top_k",   "half"),
    (1,  "both",    "all"),
    (5,  "neither", None),
    (5,  "top_p",   None),
    (5,  "top_k",   "one"),
    (5,  "top_k",   "half"),
    (5,  "both",    "all"),
    (16, "neither", None),
    (16, "top_p",   None),
    (16, "top_k",   "all"),
    (16, "both",    "one"),
    (16, "both",    "half"),
)
# fmt: on
PROGRAMS = [{"V": V, "filters": f, **({"top_k_size": size} if size else {})} for V, f, size in SAMPLING_TABLE]


def _cover(filters: tuple[str, ...] = FILTERS, temperatures: tuple[float, ...] | None = TEMPERATURES):
    """The programs whose filters are among ``filters``, each temperature (a traced float: no program of
    its own) meeting every one of their options; ``temperatures=None`` for a check that fixes it."""
    programs = [p for p in PROGRAMS if p["filters"] in filters]
    if temperatures is None:
        return cs.table_cover(programs)
    return cs.table_cover(cs.spread(programs, temperature=temperatures), free=("temperature",))


def sampling_logits(case: Case) -> np.ndarray:
    """(V,) logits on a 0.25 grid: exact ties are common, distinct values are clearly apart in any dtype."""
    V = case.draw(st.sampled_from(VOCABULARIES), "V")
    rng = np.random.default_rng(case.draw(st.integers(0, 2**32 - 1), "logits_seed"))
    spread = case.draw(st.sampled_from((2, 8, 24)), "spread")
    return case.note("logits", rng.integers(-spread, spread + 1, size=V) * 0.25)


def _options(
    case: Case,
    V: int,
    temperature: float | None = None,
    top_p_values: tuple[float, ...] = TOP_P,
    filters: tuple[str, ...] = FILTERS,
):
    """(temperature, top_k, top_p) of the row's filters (one of ``filters``: what the check needs, where the
    thorough profile draws freely); top_p is a traced value, drawn from ``top_p_values``."""
    temperature = case.draw(st.sampled_from(TEMPERATURES), "temperature") if temperature is None else temperature
    filters = case.draw(st.sampled_from(filters), "filters")
    top_k = top_k_of(case.draw(st.sampled_from(TOP_K_SIZES), "top_k_size"), V) if filters in WITH_TOP_K else None
    top_p = case.draw(st.sampled_from(top_p_values), "top_p") if filters in WITH_TOP_P else None
    return temperature, top_k, top_p


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


@check("sampling.greedy_is_argmax", cover=_cover(temperatures=None))
def greedy_is_argmax(case: Case) -> None:
    logits = sampling_logits(case)
    u = case.draw(st.floats(0, 1, exclude_max=True), "u")
    _, top_k, top_p = _options(case, len(logits), temperature=0.0)
    token = _sample(case, case.array("logits", logits), u, 0.0, top_k, top_p)
    expected = int(np.argmax(logits))
    case.require(
        token == expected,
        f"temperature 0 gave token {token}, expected the argmax {expected} (lowest index on ties) for logits {logits.tolist()}",
    )


@check("sampling.within_top_k", cover=_cover(WITH_TOP_K))
def within_top_k(case: Case) -> None:
    logits = sampling_logits(case)
    V = len(logits)
    temperature, k, top_p = _options(case, V, filters=WITH_TOP_K)
    allowed = set(sorted(range(V), key=lambda i: (-logits[i], i))[:k])  # top_p can only cut further
    native = case.array("logits", logits)
    for j in range(GRID // 4):
        u = (j + 0.5) / (GRID // 4)
        token = _sample(case, native, u, temperature, k, top_p)
        case.require(
            token in allowed,
            f"top_k={k} (top_p={top_p}) sampled token {token} (u={u}), which is not among the {k} most probable {sorted(allowed)}",
        )


@check("sampling.within_top_p", cover=_cover(WITH_TOP_P))
def within_top_p(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, top_k, top_p = _options(case, len(logits), top_p_values=(0.1, 0.5, 0.8, 0.95), filters=WITH_TOP_P)
    top_p = _settle_top_p(case, logits, temperature, top_k, top_p)
    allowed = set(np.flatnonzero(ref.sampling_distribution(logits, temperature, top_k, top_p)).tolist())
    native = case.array("logits", logits)
    for j in range(GRID // 4):
        u = (j + 0.5) / (GRID // 4)
        token = _sample(case, native, u, temperature, top_k, top_p)
        case.require(
            token in allowed,
            f"top_p={top_p} (top_k={top_k}) sampled token {token} (u={u}), outside the smallest prefix with mass >= top_p {sorted(allowed)}",
        )


@check("sampling.top_p_keeps_crossing_token", cover=_cover(WITH_TOP_P))
def top_p_keeps_crossing_token(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, top_k, top_p = _options(case, len(logits), top_p_values=(0.1, 0.5, 0.8, 0.95), filters=WITH_TOP_P)
    top_p = _settle_top_p(case, logits, temperature, top_k, top_p)
    q = ref.sampling_distribution(logits, temperature, top_k, top_p)
    ranked = sorted(np.flatnonzero(q).tolist(), key=lambda i: (-q[i], i))
    crossing = ranked[-1]  # the least probable kept token: the one whose mass crossed top_p
    cumulative = np.cumsum(q)
    u = float(cumulative[crossing] - q[crossing] / 2)  # the middle of its interval in vocabulary order
    case.note("u", u)
    token = _sample(case, case.array("logits", logits), u, temperature, top_k, top_p)
    case.require(
        token == crossing,
        f"top_p={top_p} (top_k={top_k}): u={u} should select token {crossing}, the token that crosses the threshold, but got {token}",
    )


@check("sampling.frequencies_match", cover=_cover())
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


SCALED_TEMPERATURES = (0.25, 0.5, 2.0, 4.0)  # never 1, where ignoring the temperature goes unseen


@check("sampling.temperature_scales", cover=_cover(WITHOUT_FILTERS, SCALED_TEMPERATURES))
def temperature_scales(case: Case) -> None:
    logits = sampling_logits(case)
    temperature, _, _ = _options(
        case, len(logits), case.draw(st.sampled_from(SCALED_TEMPERATURES), "temperature"), filters=WITHOUT_FILTERS
    )
    freq = _frequencies(case, logits, temperature, None, None)
    q = ref.sampling_distribution(logits, temperature, None, None)
    worst = int(np.argmax(np.abs(freq - q)))
    case.require(
        bool(np.all(np.abs(freq - q) <= _slack(case, len(logits)))),
        f"at temperature {temperature} token {worst} came out with frequency {freq[worst]:.3f}, expected softmax(logits/T) = {q[worst]:.3f} "
        f"(softmax(logits) would give {ref.softmax(logits)[worst]:.3f})",
    )


@check("sampling.matches_reference", cover=_cover())
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


@check("sampling.errors", dtypes=ANY, cover=_cover())
def errors(case: Case) -> None:
    logits_values = sampling_logits(case)
    V = len(logits_values)
    temperature, top_k, top_p = _options(case, V)
    # Each bad argument comes with the row's valid options (V, temperature, top_k, top_p); each call
    # raises, so none compiles anything.
    logits = case.array("logits", logits_values)
    options = {"temperature": temperature, "top_k": top_k, "top_p": top_p}

    def bad(exception: type[Exception], mention: str, values=logits, u: float = 0.5, **changed) -> None:
        case.expect_error(exception, mention, "sample", values, u, **{**options, **changed})

    bad(ConfigError, "temperature", temperature=-1.0)
    bad(ConfigError, "top_k", top_k=0)
    bad(ConfigError, "top_p", top_p=0.0)
    bad(ConfigError, "top_p", top_p=1.5)
    bad(ConfigError, "u", u=1.0)
    bad(ConfigError, "u", u=-0.1)
    bad(ShapeError, "'logits'", case.array("logits_2d", logits_values.reshape(1, V)))  # (V,) -> (1, V)
    bad(ShapeError, "'logits'", case.array("logits_empty", np.zeros((0,))))
    with_nan = logits_values.copy()
    with_nan[case.draw(st.integers(0, V - 1), "nan_position")] = np.nan
    bad(NotFiniteError, "'logits'", case.array("logits_nan", with_nan))
