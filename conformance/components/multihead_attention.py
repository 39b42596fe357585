"""Checks for :mod:`spec.multihead_attention`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec.config import ModelConfig
from spec.errors import ConfigError, ShapeError

from .. import reference as ref
from ..case import Case
from ..registry import ANY, check
from ._models import draw_model, draw_split, draw_stream, magnitude

PREFIX = "blocks.0.attn."


@check("multihead_attention.matches_reference", examples_factor=0.5)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    out, _ = case.call("multihead_attention", native, config, case.array("x", x), prefix=PREFIX)
    expected = ref.multihead_attention(params, config, case.rounded(x), PREFIX)
    case.assert_close(case.numpy(out), expected, f"multihead_attention ({config.n_heads} heads of width {config.head_dim}, {config.positional})", kind="composite", magnitude=magnitude(expected))


@check("multihead_attention.causal", examples_factor=0.5)
def causal(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    L = x.shape[1]
    if L == 1:
        return  # nothing comes after the only position
    i = case.draw(st.integers(0, L - 2), "position")
    x2 = x.copy()
    x2[:, i + 1:] = np.random.default_rng(case.draw(st.integers(0, 2**16), "change_seed")).standard_normal(x2[:, i + 1:].shape) * 3
    out1, _ = case.call("multihead_attention", native, config, case.array("x", x), prefix=PREFIX)
    out2, _ = case.call("multihead_attention", native, config, case.array("x_changed", x2), prefix=PREFIX)
    a, b = case.numpy(out1)[:, : i + 1], case.numpy(out2)[:, : i + 1]
    case.assert_close(b, a, f"multihead_attention outputs 0..{i} after changing positions {i + 1}..", kind="composite", magnitude=magnitude(a))


@check("multihead_attention.cached_equals_full", examples_factor=0.5)
def cached_equals_full(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    full, _ = case.call("multihead_attention", native, config, case.array("x", x), prefix=PREFIX)
    full = case.numpy(full)
    past, start, pieces = None, 0, []
    for size in draw_split(case, x.shape[1]):
        out, past = case.call("multihead_attention", native, config, case.array(f"x_{start}", x[:, start:start + size]), prefix=PREFIX, past=past)
        pieces.append(case.numpy(out))
        start += size
    chunked = np.concatenate(pieces, axis=1)
    case.assert_close(chunked, full, "multihead_attention in chunks with the KV cache vs one call", kind="composite", magnitude=magnitude(full))


@check("multihead_attention.errors", dtypes=ANY)
def errors(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    case.expect_error(ShapeError, "'x'", "multihead_attention", native, config, case.array("x_wide", np.zeros((1, 2, config.d_model + 1))), prefix=PREFIX)
    case.expect_error(ShapeError, "'x'", "multihead_attention", native, config, case.array("x_2d", np.zeros((2, config.d_model))), prefix=PREFIX)
    try:
        ModelConfig(d_model=10, n_heads=3)
    except ConfigError as error:
        case.require("n_heads" in str(error) and "d_model" in str(error), f"heads not dividing the width: the message does not name n_heads and d_model: {error}")
    else:
        case.fail("ModelConfig(d_model=10, n_heads=3) was accepted; expected a ConfigError (3 heads do not divide 10)")
