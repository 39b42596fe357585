"""Checks for :mod:`transformer_spec.spec.model`."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, ShapeError
from transformer_spec.spec.model import INIT_STD, init_parameters

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check
from ._models import draw_ids, draw_model, draw_other_params, draw_split, magnitude


@check("model.matches_reference", examples_factor=0.5, cover=cs.model_cover)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case)
    ids = draw_ids(case, config)
    logits, cache = case.call("model_forward", native, config, case.array("ids", ids, "int64"))
    expected = ref.model_forward(params, config, ids)
    case.assert_close(
        case.numpy(logits),
        expected,
        f"model logits ({config.positional}, {config.norm}, {config.activation}, tied={config.tie_embeddings}, bias={config.bias})",
        kind="composite",
        magnitude=magnitude(expected),
    )
    case.require(
        cache.length == ids.shape[1], f"the returned cache has length {cache.length}, expected {ids.shape[1]} (the tokens seen)"
    )
    # State across calls: the same instance, the same config, other parameters. A backend that keeps
    # anything of the first call (weights baked into a compiled program, a stale cache) fails here.
    other, other_native = draw_other_params(case, config)
    logits, _ = case.call("model_forward", other_native, config, case.array("ids", ids, "int64"))
    expected = ref.model_forward(other, config, ids)
    case.assert_close(
        case.numpy(logits),
        expected,
        "model logits with a second parameter set on the same backend instance and config",
        kind="composite",
        magnitude=magnitude(expected),
    )


@check("model.causal", examples_factor=0.5, cover=cs.model_cover)
def causal(case: Case) -> None:
    config, _, native = draw_model(case)
    ids = draw_ids(case, config)
    L = ids.shape[1]
    if L == 1:
        return  # nothing comes after the only position
    i = case.draw(st.integers(0, L - 2), "position")
    changed = ids.copy()
    changed[:, i + 1 :] = (changed[:, i + 1 :] + 1 + np.arange(L - i - 1)) % config.vocab_size
    a = case.numpy(case.call("model_forward", native, config, case.array("ids", ids, "int64"))[0])[:, : i + 1]
    b = case.numpy(case.call("model_forward", native, config, case.array("ids_changed", changed, "int64"))[0])[:, : i + 1]
    case.assert_close(b, a, f"logits 0..{i} after changing tokens {i + 1}..", kind="composite", magnitude=magnitude(a))


@check("model.cached_equals_full", examples_factor=0.5, cover=cs.model_cover)
def cached_equals_full(case: Case) -> None:
    config, _, native = draw_model(case)
    ids = draw_ids(case, config)
    ids_native = case.array("ids", ids, "int64")
    full = case.numpy(case.call("model_forward", native, config, ids_native)[0])
    # Uncached calls with other parameters interleave with the cached ones: the cache alone carries the state.
    _, other_native = draw_other_params(case, config)
    cache, start, pieces = None, 0, []
    for size in draw_split(case, ids.shape[1]):
        logits, cache = case.call(
            "model_forward", native, config, case.array(f"ids_{start}", ids[:, start : start + size], "int64"), cache=cache
        )
        pieces.append(case.numpy(logits))
        start += size
        if start < ids.shape[1]:  # the full sequence again: no new shape to compile, only new state to get wrong
            case.call("model_forward", other_native, config, ids_native)
    case.assert_close(
        np.concatenate(pieces, axis=1),
        full,
        f"token-by-token logits with the KV cache vs one full pass ({config.positional} positions)",
        kind="composite",
        magnitude=magnitude(full),
    )


@check("model.init_statistics", dtypes=ANY, examples_factor=0.25)
def init_statistics(case: Case) -> None:
    n_layers = case.draw(st.sampled_from((1, 2, 4)), "n_layers")
    config = ModelConfig(vocab_size=512, context_length=64, d_model=64, n_heads=4, n_layers=n_layers, d_ff=256)
    seed = case.draw(st.integers(0, 2**16), "seed")
    params = init_parameters(config, seed)
    again = init_parameters(config, seed)
    case.require(
        all(np.array_equal(params[k], again[k]) for k in params), "init_parameters with the same seed gave different weights"
    )
    other = init_parameters(config, seed + 1)
    case.require(not np.array_equal(params["wte"], other["wte"]), "init_parameters with another seed gave the same weights")
    for name, value in params.items():
        if name.endswith("bias"):
            case.require(bool(np.all(value == 0)), f"{name} is not initialised to zero")
        elif name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            case.require(bool(np.all(value == 1)), f"{name} is not initialised to one")
        else:
            expected = INIT_STD / math.sqrt(2 * n_layers) if name.endswith(("attn.proj.weight", "mlp.proj.weight")) else INIT_STD
            std = float(value.std())
            # The sample std of n normal draws has relative standard error 1/sqrt(2n): allow six of them.
            slack = 6 / math.sqrt(2 * value.size)
            case.require(
                abs(std / expected - 1) <= slack and abs(float(value.mean())) <= 6 * expected / math.sqrt(value.size),
                f"{name}: std {std:.5f} and mean {float(value.mean()):.2g}, expected std {expected:.5f} and mean 0",
            )


@check("model.errors", dtypes=ANY)
def errors(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    V, C = config.vocab_size, config.context_length
    case.expect_error(
        OutOfRangeError, "'ids'", "model_forward", native, config, case.array("ids_bad", np.array([[0, V]]), "int64")
    )
    case.expect_error(
        OutOfRangeError, "'ids'", "model_forward", native, config, case.array("ids_negative", np.array([[-1, 0]]), "int64")
    )
    case.expect_error(
        OutOfRangeError,
        "context",
        "model_forward",
        native,
        config,
        case.array("ids_long", np.zeros((1, C + 1), dtype=np.int64), "int64"),
    )
    case.expect_error(
        ShapeError, "'ids'", "model_forward", native, config, case.array("ids_1d", np.zeros((3,), dtype=np.int64), "int64")
    )
    case.expect_error(DTypeError, "'ids'", "model_forward", native, config, case.array("ids_float", np.zeros((1, 3))))
    ids = case.array("ids", np.zeros((1, 2), dtype=np.int64), "int64")
    wrong = dict(native)
    wrong["wte"] = case.array("wte_wrong", np.zeros((V + 1, config.d_model)))
    case.expect_error(ShapeError, "wte", "model_forward", wrong, config, ids)
    missing = {k: v for k, v in native.items() if k != "ln_f.weight"}
    case.expect_error(ConfigError, "ln_f.weight", "model_forward", missing, config, ids)
