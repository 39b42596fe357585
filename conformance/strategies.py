"""Hypothesis strategies that build valid inputs by construction.

Every axis length is drawn from a small fixed set (``LENGTHS``, ``WIDTHS``) so
that backends which compile per shape (JAX) hit their compile cache. Values
come in *regimes* chosen on purpose — huge and tiny magnitudes, exact ties,
mixed scales — and each array is built from a drawn seed, so an example is
cheap to draw and shrinks toward small shapes and the plain regime.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.model import init_parameters

LENGTHS = (1, 2, 3, 5, 8)  # sequence lengths L, S and small batch axes
WIDTHS = (2, 4, 8, 16)  # even feature widths (head width Dh, model width D)
BATCH_AXIS = (1, 2, 3)

# Largest magnitude per dtype that still leaves head-room (float16 overflows at 65504).
HUGE = {"float16": 3e4, "bfloat16": 1e30, "float32": 1e30, "float64": 1e30}
TINY = {"float16": 1e-3, "bfloat16": 1e-30, "float32": 1e-30, "float64": 1e-30}

WIDE_DECADES = {"float16": (-2.0, 1.5), "bfloat16": (-3.0, 3.0), "float32": (-3.0, 3.0), "float64": (-3.0, 3.0)}

REGIMES = ("normal", "ties", "wide", "huge", "tiny", "zeros")


@st.composite
def batch_shapes(draw: st.DrawFn, max_axes: int = 2) -> tuple[int, ...]:
    """Yields 0 to ``max_axes`` leading batch axes, each of length 1, 2 or 3."""
    n = draw(st.integers(0, max_axes))
    return tuple(draw(st.sampled_from(BATCH_AXIS)) for _ in range(n))


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


@st.composite
def model_configs(draw: st.DrawFn, max_layers: int = 2) -> ModelConfig:
    """Yields a small valid ModelConfig covering every positional scheme, norm and activation."""
    n_heads = draw(st.sampled_from((1, 2, 4)))
    head_dim = draw(st.sampled_from((2, 4, 8)))
    return ModelConfig(
        vocab_size=draw(st.sampled_from((7, 16, 33))),
        context_length=16,
        d_model=n_heads * head_dim,
        n_heads=n_heads,
        n_layers=draw(st.integers(1, max_layers)),
        d_ff=draw(st.sampled_from((8, 16))),
        positional=draw(st.sampled_from(("learned", "sinusoidal", "rotary"))),
        norm=draw(st.sampled_from(("layer", "rms"))),
        activation=draw(st.sampled_from(("gelu_tanh", "gelu", "relu", "swiglu"))),
        tie_embeddings=draw(st.booleans()),
        bias=draw(st.booleans()),
    )


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
