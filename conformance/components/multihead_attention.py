"""Checks for :mod:`transformer_spec.spec.multihead_attention`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec import multihead_attention as multihead_attention_spec
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check
from ..runner import SkipCheck
from ._models import check_cached_equals_full, check_causal, draw_model, draw_stream, magnitude

# The fields a multihead attention reads vary; the others keep their smallest bucket.
COVER = cs.layer_cover(multihead_attention_spec.COMPONENT)
PREFIX = "blocks.0.attn."


@check("multihead_attention.matches_reference", examples_factor=0.5, cover=COVER)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    out, _ = case.call("multihead_attention", native, config, case.array("x", x), prefix=PREFIX)
    expected = ref.multihead_attention(params, config, case.rounded(x), PREFIX)
    case.assert_close(
        case.numpy(out),
        expected,
        f"multihead_attention ({config.n_heads} heads of width {config.head_dim}, {config.positional})",
        kind="composite",
        magnitude=magnitude(expected),
    )


@check("multihead_attention.causal", examples_factor=0.5, cover=COVER)
def causal(case: Case) -> None:
    check_causal(case, "multihead_attention", PREFIX)


@check("multihead_attention.cached_equals_full", examples_factor=0.5, cover=COVER)
def cached_equals_full(case: Case) -> None:
    check_cached_equals_full(case, "multihead_attention", PREFIX)


def _expand_kv(params: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """The ungrouped parameters equivalent to grouped ones: each KV head's K and V columns repeated for its group."""
    D, Dh, H, Hkv = config.d_model, config.head_dim, config.n_heads, config.kv_heads
    group = H // Hkv
    out = dict(params)
    for name in (PREFIX + "qkv.weight", PREFIX + "qkv.bias"):
        if name not in params:
            continue
        w = params[name]
        q, k, v = w[..., :D], w[..., D : D + Hkv * Dh], w[..., D + Hkv * Dh :]
        heads = [h // group for h in range(H)]  # the KV head each query head reads
        k_full = np.concatenate([k[..., g * Dh : (g + 1) * Dh] for g in heads], axis=-1)  # (..., H*Dh)
        v_full = np.concatenate([v[..., g * Dh : (g + 1) * Dh] for g in heads], axis=-1)  # (..., H*Dh)
        out[name] = np.concatenate([q, k_full, v_full], axis=-1)  # (..., 3D)
    return out


def _grouped(config: ModelConfig) -> bool:
    return getattr(config, "n_kv_heads", None) is not None and config.kv_heads < config.n_heads


GROUPED_COVER = cs.filtered(COVER, lambda row: _grouped(row["config"]))  # the rows with grouped KV heads


@check("multihead_attention.grouped_heads_share_kv", examples_factor=0.5, cover=GROUPED_COVER)
def grouped_heads_share_kv(case: Case) -> None:
    grouped = [row["config"] for row in GROUPED_COVER()]
    if not grouped:
        raise SkipCheck("no configuration with grouped KV heads (ModelConfig has no n_kv_heads)")
    config = case.draw(st.sampled_from(grouped), "config")
    seed = case.draw(st.integers(0, 2**16), "param_seed")
    params = cs.model_parameters(config, seed)
    native = case.params("params", params, cs.MODEL_PARAMETERS_RECIPE.format(config=config, seed=seed))
    full_config = replace(config, n_kv_heads=None)
    expanded = _expand_kv(params, config)
    recipe = cs.MODEL_PARAMETERS_RECIPE.format(config=config, seed=seed)
    native_full = case.params(
        "params_full", expanded, f"transformer_spec.conformance.components.multihead_attention._expand_kv({recipe}, {config!r})"
    )
    x = draw_stream(case, config)
    xn = case.array("x", x)
    out, _ = case.call("multihead_attention", native, config, xn, prefix=PREFIX)
    expected, _ = case.call("multihead_attention", native_full, full_config, xn, prefix=PREFIX)
    expected = case.numpy(expected)
    case.assert_close(
        case.numpy(out),
        expected,
        f"grouped attention ({config.n_heads} query heads, {config.kv_heads} KV heads) vs ungrouped with K, V repeated",
        kind="composite",
        magnitude=magnitude(expected),
    )


@check("multihead_attention.errors", dtypes=ANY)
def errors(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    case.expect_error(
        ShapeError,
        "'x'",
        "multihead_attention",
        native,
        config,
        case.array("x_wide", np.zeros((1, 2, config.d_model + 1))),
        prefix=PREFIX,
    )
    case.expect_error(
        ShapeError, "'x'", "multihead_attention", native, config, case.array("x_2d", np.zeros((2, config.d_model))), prefix=PREFIX
    )
    try:
        ModelConfig(d_model=10, n_heads=3)
    except ConfigError as error:
        case.require(
            "n_heads" in str(error) and "d_model" in str(error),
            f"heads not dividing the width: the message does not name n_heads and d_model: {error}",
        )
    else:
        case.fail("ModelConfig(d_model=10, n_heads=3) was accepted; expected a ConfigError (3 heads do not divide 10)")
