"""Checks for :mod:`transformer_spec.spec.block`."""

from __future__ import annotations

from transformer_spec.spec import block as block_spec

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import check
from ._models import check_cached_equals_full, check_causal, draw_model, draw_stream, magnitude

# The fields a block reads vary; the others keep their smallest bucket.
COVER = cs.layer_cover(block_spec.COMPONENT)
PREFIX = "blocks.0."


@check("block.matches_reference", examples_factor=0.5, cover=COVER)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    out, _ = case.call("block", native, config, case.array("x", x), prefix=PREFIX)
    expected = ref.block(params, config, case.rounded(x), PREFIX)
    case.assert_close(
        case.numpy(out),
        expected,
        f"block ({config.norm} norm, {config.activation}, {config.positional})",
        kind="composite",
        magnitude=magnitude(expected),
    )


@check("block.causal", examples_factor=0.5, cover=COVER)
def causal(case: Case) -> None:
    check_causal(case, "block", PREFIX)


@check("block.cached_equals_full", examples_factor=0.5, cover=COVER)
def cached_equals_full(case: Case) -> None:
    check_cached_equals_full(case, "block", PREFIX)
