"""Hypothesis strategies that build valid inputs by construction.

Every axis length is drawn from a small fixed set (``LENGTHS``, ``WIDTHS``) so
that backends which compile per shape (JAX) hit their compile cache. Values
come in *regimes* chosen on purpose — huge and tiny magnitudes, exact ties,
mixed scales — and each array is built from a drawn seed, so an example is
cheap to draw and shrinks toward small shapes and the plain regime.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from itertools import product
from typing import Any

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec import config as spec_config
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.model import init_parameters

LENGTHS = (1, 3, 8)  # sequence lengths L, S: one, odd, the longest (few shapes: a compiler meets each once)
WIDTHS = (2, 8)  # even feature widths (head width Dh, model width D)
# Sequence lengths of the model checks (one token, an odd prompt, the longest) and the length of the
# first chunk when a cached sequence is split (an odd prompt): few shapes for a compiler, every case of the cache.
MODEL_LENGTHS = (1, 5, 8)
FIRST_CHUNK = 3

# Largest magnitude per dtype that still leaves head-room (float16 overflows at 65504).
HUGE = {"float16": 3e4, "bfloat16": 1e30, "float32": 1e30, "float64": 1e30}
TINY = {"float16": 1e-3, "bfloat16": 1e-30, "float32": 1e-30, "float64": 1e-30}

WIDE_DECADES = {"float16": (-2.0, 1.5), "bfloat16": (-3.0, 3.0), "float32": (-3.0, 3.0), "float64": (-3.0, 3.0)}

REGIMES = ("normal", "ties", "wide", "huge", "tiny", "zeros")


# The leading batch axes an array may have: a fixed set, so a compiled backend meets few shapes.
BATCH_SHAPES = ((), (2,), (3, 2))


def batch_shapes(max_axes: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    """Yields leading batch axes from ``BATCH_SHAPES`` (none, one axis of 2, two axes (3, 2)), at most ``max_axes`` of them."""
    return st.sampled_from(tuple(shape for shape in BATCH_SHAPES if len(shape) <= max_axes))


def lengths() -> st.SearchStrategy[int]:
    """Yields a sequence length from ``LENGTHS``."""
    return st.sampled_from(LENGTHS)


def widths() -> st.SearchStrategy[int]:
    """Yields an even width from ``WIDTHS``."""
    return st.sampled_from(WIDTHS)


def make_values(shape: tuple[int, ...], seed: int, regime: str, dtype: str) -> np.ndarray:
    """Deterministic float64 values of ``shape`` in ``regime`` (see REGIMES), representable in ``dtype``'s range."""
    rng = np.random.default_rng(seed)
    if regime == "normal":
        x = rng.standard_normal(shape)
    elif regime == "ties":  # few distinct values, so equal entries are common
        x = rng.integers(-2, 3, size=shape).astype(np.float64)
    elif regime == "wide":  # magnitudes spread over six decades (three and a half in float16, whose range ends at 65504)
        low, high = WIDE_DECADES[dtype]
        x = rng.standard_normal(shape) * 10.0 ** rng.uniform(low, high, size=shape)
    elif regime == "huge":
        x = rng.choice([-1.0, 1.0], size=shape) * HUGE[dtype] * rng.uniform(0.5, 1.0, size=shape)
    elif regime == "tiny":
        x = rng.standard_normal(shape) * TINY[dtype]
    elif regime == "zeros":
        x = np.zeros(shape)
    else:
        raise ValueError(f"unknown regime {regime!r}; expected one of {REGIMES}")
    return x


@st.composite
def float_arrays(
    draw: st.DrawFn, shape: tuple[int, ...], dtype: str, regimes: tuple[str, ...] = ("normal", "ties", "wide")
) -> np.ndarray:
    """Yields a float64 array of ``shape`` with values from one of ``regimes`` (the first is the shrink target)."""
    regime = draw(st.sampled_from(regimes))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_values(shape, seed, regime, dtype)


@st.composite
def masks(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Yields a boolean mask of ``shape``: all True, random, or random with some rows fully False."""
    kind = draw(st.sampled_from(("all", "random", "empty_rows")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "all":
        return np.ones(shape, dtype=bool)
    mask = rng.random(shape) < 0.6
    if kind == "empty_rows":
        mask[..., rng.integers(0, shape[-2]), :] = False
    return mask


# ---------------------------------------------------------------------- configurations
#
# Every ModelConfig field gets a few values (its *dimension*). Enumerated fields read their
# choices from spec/config.py (``FIELD_CHOICES``), boolean fields take both values; numeric
# fields take the small values below, which name a size bucket rather than copy a rule of the
# spec. ``tests/test_strategies_meta.py`` fails when a field of ModelConfig has no dimension,
# so a new field cannot go unvaried.

SAME_AS_WIDTH = "d_model"  # vocab_size == d_model: a shape coincidence that hides a transposed weight
SAME_AS_HEADS = "n_heads"  # n_kv_heads == n_heads, given explicitly
HALF_THE_HEADS = "n_heads/2"  # n_kv_heads == n_heads // 2 (at least 1): groups of two; one shared head when n_heads is 2
NUMERIC_CONFIG_VALUES: dict[str, tuple[Any, ...]] = {
    "vocab_size": (7, 33, SAME_AS_WIDTH),
    "context_length": (8, 16),  # 8 = the longest drawn sequence: the model runs at its very limit
    "d_model": (4, 8),  # the HEAD width Dh; d_model = n_heads * Dh (so heads always divide it; never 2, whose
    # two-value layer norm flips sign on one rounding in float16)
    "n_heads": (1, 2, 4),
    "n_kv_heads": (None, HALF_THE_HEADS, SAME_AS_HEADS),  # grouped-query attention: None, groups of two, one per head
    "n_layers": (1, 2),
    "d_ff": (8, 16),
    "norm_eps": (1e-5, 0.1),  # 0.1 is large enough that a norm which ignores eps is visibly wrong
    "rope_base": (10000.0, 100.0),  # 100 turns angles fast enough that ignoring the base shows at 8 positions
}


def config_dimensions(config_cls: type = ModelConfig) -> dict[str, tuple[Any, ...]]:
    """The values the suite gives each ModelConfig field, in field order (read from spec/ where it says)."""
    dims: dict[str, tuple[Any, ...]] = {}
    choices = getattr(spec_config, "FIELD_CHOICES", {})  # without the declaration, the meta-tests name the fields left out
    for f in fields(config_cls):
        if f.name in choices:
            dims[f.name] = tuple(choices[f.name])
        elif f.type in (bool, "bool"):
            dims[f.name] = (False, True)
        elif f.name in NUMERIC_CONFIG_VALUES:
            dims[f.name] = NUMERIC_CONFIG_VALUES[f.name]
    return dims


def build_config(choice: dict[str, Any]) -> ModelConfig:
    """The ModelConfig a row of field choices describes (see NUMERIC_CONFIG_VALUES for the size encodings)."""
    values = dict(choice)
    n_heads = values.get("n_heads", 1)
    if "d_model" in values:
        values["d_model"] = n_heads * values["d_model"]
    if values.get("vocab_size") == SAME_AS_WIDTH:
        values["vocab_size"] = values.get("d_model", ModelConfig().d_model)
    if values.get("n_kv_heads") == SAME_AS_HEADS:
        values["n_kv_heads"] = n_heads
    elif values.get("n_kv_heads") == HALF_THE_HEADS:
        values["n_kv_heads"] = max(1, n_heads // 2)
    return ModelConfig(**values)


def pairwise(dimensions: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """A covering array of strength two: rows in which every value of every dimension meets every value of
    every other dimension at least once. Greedy (AETG-like) and deterministic, so the rows never depend on a seed.

    Each new row starts from the first pair not yet covered, then gives each other dimension the value that
    covers the most new pairs with the values already chosen (the lowest index on ties).
    """
    names = list(dimensions)
    sizes = [len(dimensions[n]) for n in names]
    if any(size == 0 for size in sizes):
        raise ValueError(f"pairwise: dimension(s) without values: {[n for n, s in zip(names, sizes) if not s]}")
    n = len(names)
    uncovered = {(i, a, j, b) for i in range(n) for j in range(i + 1, n) for a in range(sizes[i]) for b in range(sizes[j])}
    rows: list[list[int]] = [[a] for a in range(sizes[0])] if n == 1 else []
    order = sorted(range(n), key=lambda d: (-sizes[d], d))  # the largest dimensions first (AETG)

    def build(i: int, a: int, j: int, b: int) -> tuple[int, list[int]]:
        row: list[int | None] = [None] * n
        row[i], row[j] = a, b
        for d in order:
            if row[d] is not None:
                continue
            best, best_gain = 0, -1
            for v in range(sizes[d]):
                gain = sum(
                    (min(d, e), v if d < e else row[e], max(d, e), row[e] if d < e else v) in uncovered
                    for e in range(n)
                    if row[e] is not None
                )
                if gain > best_gain:
                    best, best_gain = v, gain
            row[d] = best
        full = [int(v) for v in row]
        return sum((d, full[d], e, full[e]) in uncovered for d in range(n) for e in range(d + 1, n)), full

    while uncovered:
        # Try a few starting pairs (the first uncovered ones, in a fixed order) and keep the row covering most.
        starts = sorted(uncovered)[:: max(1, len(uncovered) // 8)][:8]
        _, full = max((build(*start) for start in starts), key=lambda t: t[0])
        uncovered -= {(d, full[d], e, full[e]) for d in range(n) for e in range(d + 1, n)}
        rows.append(full)
    return [{name: dimensions[name][v] for name, v in zip(names, row)} for row in rows]


# How a sequence is fed through the KV cache: one token at a time, a prompt then single tokens,
# or two chunks whose second (cached) chunk is longer than one token.
SPLITS = ("one_by_one", "prompt_then_tokens", "two_chunks")
# A layer's own cache (``past``) grows with every call, so each chunk is a new shape to compile: the layer
# checks split in two (a prompt and a cached chunk of several tokens, or of one).
LAYER_SPLITS = ("two_chunks", "prompt_then_one")
# What the model checks vary besides the config: batch 1 and > 1; one token, an odd length, the longest.
MODEL_CALL_DIMENSIONS: dict[str, tuple[Any, ...]] = {"B": (1, 2), "L": MODEL_LENGTHS, "split": SPLITS}


@functools.cache
def _config_choices(fields: tuple[str, ...], splits: tuple[str, ...]) -> tuple[tuple[tuple[str, Any], ...], ...]:
    dims = config_dimensions()
    varied = {name: values for name, values in dims.items() if not fields or name in fields}
    fixed = {name: values[0] for name, values in dims.items() if name not in varied}  # the smallest bucket
    calls = {**MODEL_CALL_DIMENSIONS, "split": splits}
    return tuple(tuple({**fixed, **row}.items()) for row in pairwise({**varied, **calls}))


def model_cover_choices(fields: tuple[str, ...] = (), splits: tuple[str, ...] = SPLITS) -> list[dict[str, Any]]:
    """The rows of a config covering set (see :func:`config_covering`) before the config fields are built into a ModelConfig."""
    return [dict(row) for row in _config_choices(tuple(fields), tuple(splits))]


@functools.cache
def config_covering(fields: tuple[str, ...] = (), splits: tuple[str, ...] = SPLITS):
    """The covering set of checks that take a model config: every pair of (value of a config field in
    ``fields``, batch size, length, cache split) meets in at least one row, and the fields a function
    does not read (``fields`` from its spec component's ``config_fields``; empty: all of them vary) keep
    their smallest bucket, so a layer meets fewer configurations, each one a program to compile.
    Each row fixes the draws "config", "B", "L" and "split"."""
    config_names = set(config_dimensions())

    @functools.cache
    def rows() -> tuple[tuple[tuple[str, Any], ...], ...]:
        built = []
        for row in model_cover_choices(fields, splits):
            config = build_config({k: v for k, v in row.items() if k in config_names})
            built.append((("config", config),) + tuple((k, v) for k, v in row.items() if k not in config_names))
        return tuple(built)

    def cover() -> list[dict[str, Any]]:
        return [dict(row) for row in rows()]

    cover.pinned = ("config", "B", "L", "split")  # type: ignore[attr-defined]  (every draw of a row sets the program)
    cover.fields, cover.splits = fields, splits  # type: ignore[attr-defined]  (read by the meta-tests)
    return cover


model_cover = config_covering()  # the model checks: every field varies


def filtered(cover: Any, keep: Any):
    """The rows of ``cover`` for which ``keep(row)`` holds, pinned the same way."""
    kept = functools.cache(lambda: tuple(tuple(row.items()) for row in cover() if keep(row)))

    def subset() -> list[dict[str, Any]]:
        return [dict(row) for row in kept()]

    subset.pinned = cover.pinned  # type: ignore[attr-defined]
    return subset


def layer_cover(component: Any):
    """The config covering set of a layer's checks: the fields its spec ``component`` reads vary, and the
    sequence is split in two for its cached calls."""
    return config_covering(tuple(component.config_fields), LAYER_SPLITS)


@functools.cache
def config_pool() -> tuple[ModelConfig, ...]:
    """The configurations of the model covering set (every pair of field values in at least one).

    The dev and ci profiles draw configs from this pool only, so a compiled backend meets a bounded
    number of distinct configurations (and shapes); the thorough profile also draws free combinations.
    """
    return tuple(dict.fromkeys(row["config"] for row in model_cover()))


def config_coverage_gaps(config_cls: type = ModelConfig, pool: tuple | list | None = None) -> list[str]:
    """What the strategies never draw: fields of ``config_cls`` without a dimension, and allowed values
    (spec/config.py's FIELD_CHOICES, both booleans, the numeric buckets) that no config of ``pool``
    (default: the covering pool) takes. Empty when every field and value is drawn."""
    pool = config_pool() if pool is None else pool
    dims = config_dimensions(config_cls)
    choices = getattr(spec_config, "FIELD_CHOICES", {})
    gaps = []
    for f in fields(config_cls):
        if f.name not in dims:
            gaps.append(f"ModelConfig.{f.name} has no dimension: add its values to conformance/strategies.py")
            continue
        wanted = set(choices.get(f.name, ())) | (set(dims.get(f.name, ())) if f.name in choices else set())
        if f.type in (bool, "bool"):
            wanted = {False, True}
        seen = {getattr(c, f.name, None) for c in pool}
        for value in sorted(wanted - seen, key=repr):
            gaps.append(f"ModelConfig.{f.name} = {value!r} is allowed but never drawn")
    # Numeric buckets: every encoded value must show up (d_model is the head width, vocab_size may be the width).
    for name, values in dims.items():
        if name in choices or name not in NUMERIC_CONFIG_VALUES:
            continue
        for value in values:
            if not any(_takes(c, name, value) for c in pool):
                gaps.append(f"ModelConfig.{name}: the bucket {value!r} is never drawn")
    return gaps


def _takes(config: ModelConfig, name: str, value: Any) -> bool:
    if name == "d_model":
        return config.head_dim == value
    if value == SAME_AS_WIDTH:
        return config.vocab_size == config.d_model
    if value == SAME_AS_HEADS:
        return getattr(config, name) == config.n_heads
    if value == HALF_THE_HEADS:
        return getattr(config, name) == max(1, config.n_heads // 2)
    return getattr(config, name) == value


def covering(*, free: tuple[str, ...] = (), **dimensions: tuple[Any, ...]):
    """A check's ``cover``: the pairwise covering array over ``dimensions`` (draw name -> values), computed once.

    The draws of a row that choose the program a compiler builds (shapes, flags, static arguments) are
    its *pinned* draws: in the dev and ci profiles Hypothesis explores values only on a row's pinned
    draws, so it meets no program the covering set did not (see :func:`programs`). Every dimension is
    pinned except value regimes (``*_regime``) and those named in ``free`` (traced floats, fractions)."""

    @functools.cache
    def rows() -> tuple[tuple[tuple[str, Any], ...], ...]:
        return tuple(tuple(row.items()) for row in pairwise(dimensions))

    def cover() -> list[dict[str, Any]]:
        return [dict(row) for row in rows()]

    cover.dimensions = dimensions  # type: ignore[attr-defined]  (read by the meta-tests)
    cover.pinned = _pinned(dimensions, free)  # type: ignore[attr-defined]
    return cover


def _pinned(names: Any, free: tuple[str, ...]) -> tuple[str, ...]:
    """The draws among ``names`` that choose a program: all but value regimes (``*_regime``) and ``free`` ones."""
    return tuple(n for n in names if n not in free and not n.endswith("_regime"))


def programs(cover: Any) -> list[dict[str, Any]]:
    """The distinct pinned parts of ``cover``'s rows (its ``pinned`` draws; a cover without them pins nothing):
    what the explorative phase of the dev and ci profiles draws from, so it compiles nothing new."""
    pinned = getattr(cover, "pinned", ())
    if not pinned:
        return []
    seen = dict.fromkeys(tuple((n, row[n]) for n in pinned if n in row) for row in cover())
    return [dict(part) for part in seen]


def draw_values(case: Any, shape: tuple[int, ...], regimes: tuple[str, ...], name: str, stacked_axes: int = 0) -> np.ndarray:
    """Float64 values of ``shape`` for input ``name``: its regime and seed are separate draws
    (``name_regime``, ``name_seed``), so a covering set can fix the regime.

    ``stacked_axes``: the leading axes stack independent examples, for an invariant that holds per
    row — one call then checks many examples. The first row takes ``name_regime``; each other row
    its own (one draw, ``name_stacked``, which shrinks toward the first regime), so one batch mixes,
    say, huge rows with tiny ones: a kernel that shares anything across rows (one max for the whole
    batch, a norm over the wrong axis) meets inputs where that shows."""
    regime = case.draw(st.sampled_from(regimes), f"{name}_regime")
    seed = case.draw(st.integers(0, 2**32 - 1), f"{name}_seed")
    rows = int(np.prod(shape[:stacked_axes], dtype=np.int64))
    if rows <= 1:
        return case.note(name, make_values(shape, seed, regime, case.dtype))
    others = case.draw(st.lists(st.sampled_from(regimes), min_size=rows - 1, max_size=rows - 1), f"{name}_stacked")
    row_shape = shape[stacked_axes:]
    stack = [make_values(row_shape, seed + i, r, case.dtype) for i, r in enumerate([regime, *others])]
    return case.note(name, np.stack(stack).reshape(shape))  # (rows, *row_shape) -> shape


@st.composite
def model_configs(draw: st.DrawFn, max_layers: int = 2, free: bool = False) -> ModelConfig:
    """Yields a valid ModelConfig: one of ``config_pool()``, or with ``free=True`` any combination of the
    field values of ``config_dimensions()`` (with at most ``max_layers`` blocks)."""
    if not free:  # the whole pool, whatever max_layers: a block check reads block 0 of a deeper model just as well
        return draw(st.sampled_from(config_pool()))
    choice = {name: draw(st.sampled_from(values)) for name, values in config_dimensions().items()}
    if "n_layers" in choice:
        choice["n_layers"] = min(choice["n_layers"], max_layers)
    return build_config(choice)


# Initial weights are tiny (std 0.02), which makes attention nearly uniform and hides bugs;
# the checks scale them up so every weight matters.
WEIGHT_SCALE = 25.0


def model_parameters(config: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Float64 parameters: GPT-2 initialisation times WEIGHT_SCALE, with random (non-zero) biases and norm weights."""
    params = init_parameters(config, seed, dtype="float64")
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name, value in params.items():
        if name.endswith("bias") or name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            out[name] = value + 0.3 * rng.standard_normal(value.shape)
        else:
            out[name] = value * WEIGHT_SCALE
    return out


MODEL_PARAMETERS_RECIPE = "transformer_spec.conformance.strategies.model_parameters({config!r}, {seed})"


# ---------------------------------------------------------------------- program tables shared by checks
# The checks of one method take their rows from one table of programs (shapes, flags, static arguments),
# so a compiler meets each program once for all of them; a check that needs a flag takes the rows that
# have it (attention, loss, sampling and embedding build their covers this way).


def table_cover(rows: list[dict[str, Any]], *, pairwise_over: tuple[str, ...] | None = None, free: tuple[str, ...] = ()):
    """A check's ``cover`` from explicit ``rows`` (a shared table of programs, or the rows of one a check can use).

    ``pairwise_over`` names the dimensions whose every pair of values the rows hold (what the meta-tests
    check; default: every name all rows have), each taking the values it takes in the rows. Pinned draws
    are chosen as in :func:`covering`."""
    frozen = tuple(tuple(row.items()) for row in rows)
    names = tuple(dict.fromkeys(name for row in rows for name in row))
    shared = tuple(n for n in names if all(n in row for row in rows))

    def cover() -> list[dict[str, Any]]:
        return [dict(row) for row in frozen]

    cover.dimensions = {n: tuple(dict.fromkeys(row[n] for row in rows)) for n in (pairwise_over or shared)}  # type: ignore[attr-defined]
    cover.pinned = _pinned(names, free)  # type: ignore[attr-defined]
    return cover


def spread(programs: list[dict[str, Any]], **free: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows that run every one of ``programs`` (dicts of pinned draws) and give each ``free`` dimension (a draw
    that chooses no program: a float, a fraction, a regime) values such that every value of it meets every
    value of every other dimension. Greedy and deterministic; adds no program to compile."""
    names = tuple(dict.fromkeys(n for p in programs for n in p))
    wanted = {("program", i) for i in range(len(programs))}
    for f, values in free.items():
        for other in names + tuple(g for g in free if g > f):
            seen = tuple(dict.fromkeys(p[other] for p in programs if other in p)) if other in names else free[other]
            wanted |= {(f, repr(v), other, repr(w)) for v in values for w in seen}

    def covers(i: int, choice: dict[str, Any]) -> set:
        row = {**programs[i], **choice}
        return {("program", i)} | {(f, repr(row[f]), other, repr(row[other])) for f in free for other in row if other != f}

    choices = [dict(zip(free, combo)) for combo in product(*free.values())]
    rows = []
    while wanted:  # each row: the (program, free values) covering most of what is still wanted (the first on ties)
        i, choice = max(((i, c) for i in range(len(programs)) for c in choices), key=lambda ic: len(covers(*ic) & wanted))
        wanted -= covers(i, choice)
        rows.append({**programs[i], **choice})
    return rows
