"""Checks for :mod:`transformer_spec.spec.multihead_attention`."""

from __future__ import annotations

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, ShapeError

from .. import reference as ref
from ..case import Case
from ..registry import ANY, check
from ._models import check_cached_equals_full, check_causal, draw_model, draw_stream, magnitude

PREFIX = "blocks.0.attn."


@check("multihead_attention.matches_reference", examples_factor=0.5)
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


@check("multihead_attention.causal", examples_factor=0.5)
def causal(case: Case) -> None:
    check_causal(case, "multihead_attention", PREFIX)


@check("multihead_attention.cached_equals_full", examples_factor=0.5)
def cached_equals_full(case: Case) -> None:
    check_cached_equals_full(case, "multihead_attention", PREFIX)


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
