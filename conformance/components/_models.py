"""Shared drawing helpers for the composite checks (attention layers, blocks, the model)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.config import ModelConfig

from .. import strategies as cs
from ..case import Case


def draw_model(case: Case, max_layers: int = 2) -> tuple[ModelConfig, dict[str, np.ndarray], dict]:
    """A config, its float64 parameters (rounded to the case dtype) and the native parameter dict."""
    config = case.draw(cs.model_configs(max_layers=max_layers, free=case.free_configs), "config")
    seed = case.draw(st.integers(0, 2**16), "param_seed")
    params = cs.model_parameters(config, seed)
    native = case.params("params", params, cs.MODEL_PARAMETERS_RECIPE.format(config=config, seed=seed))
    rounded = {name: case.rounded(value) for name, value in params.items()}
    return config, rounded, native


def draw_other_params(case: Case, config: ModelConfig, name: str = "other_params") -> tuple[dict[str, np.ndarray], dict]:
    """A second parameter set for the same config (rounded float64, native): for checks that one backend
    instance keeps nothing of one parameter set when called with another."""
    seed = case.draw(st.integers(0, 2**16), f"{name}_seed")
    params = cs.model_parameters(config, seed + 2**16 + 1)  # never the seed of the first set
    native = case.params(name, params, cs.MODEL_PARAMETERS_RECIPE.format(config=config, seed=seed + 2**16 + 1))
    return {k: case.rounded(v) for k, v in params.items()}, native


def _draw_call_shape(case: Case, max_length: int) -> tuple[int, int]:
    """A batch size and a length (a covering row fixes both)."""
    B = case.draw(st.sampled_from(cs.MODEL_CALL_DIMENSIONS["B"]), "B")
    L = case.draw(st.sampled_from(tuple(n for n in cs.MODEL_LENGTHS if n <= max_length)), "L")
    return B, L


def draw_stream(case: Case, config: ModelConfig, max_length: int = 8) -> np.ndarray:
    """A residual-stream input (B, L, D)."""
    B, L = _draw_call_shape(case, max_length)
    return case.draw(cs.float_arrays((B, L, config.d_model), case.dtype, ("normal",)), "x")


def draw_ids(case: Case, config: ModelConfig) -> np.ndarray:
    """Token ids (B, L) with L <= context length."""
    B, L = _draw_call_shape(case, config.context_length)
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "ids_seed"))
    return rng.integers(0, config.vocab_size, size=(B, L))


def draw_split(case: Case, length: int, kinds: tuple[str, ...] = cs.SPLITS) -> list[int]:
    """Chunk sizes summing to ``length`` (the kind is the draw "split", which a covering row fixes): one token
    at a time, a prompt of ``cs.FIRST_CHUNK`` tokens then single tokens, a prompt then one token, or two
    chunks whose second one (fed with a non-empty cache) is longer than one token whenever ``length`` > 2."""
    if length == 1:
        return [1]
    kind = case.draw(st.sampled_from(kinds), "split")
    if kind == "one_by_one":
        return [1] * length
    if kind == "prompt_then_one":
        return [length - 1, 1]
    if kind == "prompt_then_tokens":
        first = min(cs.FIRST_CHUNK, length - 1)
        return [first] + [1] * (length - first)
    first = min(cs.FIRST_CHUNK, max(1, length - 2))
    return [first, length - first]


def magnitude(expected: np.ndarray) -> np.ndarray:
    """Per-row scale for composite comparisons: the row's largest |value|, at least 1."""
    return np.broadcast_to(np.maximum(np.abs(expected).max(axis=-1, keepdims=True), 1.0), expected.shape)


def check_causal(case: Case, method: str, prefix: str) -> None:
    """Outputs of a stream composite at positions 0..i do not change when inputs after i change."""
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    L = x.shape[1]
    if L == 1:
        return  # nothing comes after the only position
    i = case.draw(st.integers(0, L - 2), "position")
    x2 = x.copy()
    x2[:, i + 1 :] = (
        np.random.default_rng(case.draw(st.integers(0, 2**16), "change_seed")).standard_normal(x2[:, i + 1 :].shape) * 3
    )
    a = case.numpy(case.call(method, native, config, case.array("x", x), prefix=prefix)[0])[:, : i + 1]
    b = case.numpy(case.call(method, native, config, case.array("x_changed", x2), prefix=prefix)[0])[:, : i + 1]
    case.assert_close(
        b, a, f"{method} outputs 0..{i} after changing positions {i + 1}..", kind="composite", magnitude=magnitude(a)
    )


def check_cached_equals_full(case: Case, method: str, prefix: str) -> None:
    """Feeding a stream composite in chunks through its KV cache equals one full call."""
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    full = case.numpy(case.call(method, native, config, case.array("x", x), prefix=prefix)[0])
    past, start, pieces = None, 0, []
    for size in draw_split(case, x.shape[1], cs.LAYER_SPLITS):
        out, past = case.call(
            method, native, config, case.array(f"x_{start}", x[:, start : start + size]), prefix=prefix, past=past
        )
        pieces.append(case.numpy(out))
        start += size
    case.assert_close(
        np.concatenate(pieces, axis=1),
        full,
        f"{method} in chunks with the KV cache vs one call",
        kind="composite",
        magnitude=magnitude(full),
    )
