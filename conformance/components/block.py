"""Checks for :mod:`spec.block`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .. import reference as ref
from ..case import Case
from ..registry import check
from ._models import draw_model, draw_split, draw_stream, magnitude

PREFIX = "blocks.0."


@check("block.matches_reference", examples_factor=0.5)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    out, _ = case.call("block", native, config, case.array("x", x), prefix=PREFIX)
    expected = ref.block(params, config, case.rounded(x), PREFIX)
    case.assert_close(case.numpy(out), expected, f"block ({config.norm} norm, {config.activation}, {config.positional})", kind="composite", magnitude=magnitude(expected))


@check("block.causal", examples_factor=0.5)
def causal(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    L = x.shape[1]
    if L == 1:
        return  # nothing comes after the only position
    i = case.draw(st.integers(0, L - 2), "position")
    x2 = x.copy()
    x2[:, i + 1:] = np.random.default_rng(case.draw(st.integers(0, 2**16), "change_seed")).standard_normal(x2[:, i + 1:].shape) * 3
    a = case.numpy(case.call("block", native, config, case.array("x", x), prefix=PREFIX)[0])[:, : i + 1]
    b = case.numpy(case.call("block", native, config, case.array("x_changed", x2), prefix=PREFIX)[0])[:, : i + 1]
    case.assert_close(b, a, f"block outputs 0..{i} after changing positions {i + 1}..", kind="composite", magnitude=magnitude(a))


@check("block.cached_equals_full", examples_factor=0.5)
def cached_equals_full(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    full = case.numpy(case.call("block", native, config, case.array("x", x), prefix=PREFIX)[0])
    past, start, pieces = None, 0, []
    for size in draw_split(case, x.shape[1]):
        out, past = case.call("block", native, config, case.array(f"x_{start}", x[:, start:start + size]), prefix=PREFIX, past=past)
        pieces.append(case.numpy(out))
        start += size
    case.assert_close(np.concatenate(pieces, axis=1), full, "block in chunks with the KV cache vs one call", kind="composite", magnitude=magnitude(full))
