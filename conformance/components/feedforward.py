"""Checks for :mod:`transformer_spec.spec.feedforward`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec import feedforward as feedforward_spec
from transformer_spec.spec.errors import ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check
from ._models import draw_model, draw_stream, magnitude

# The fields a feedforward reads vary; the others keep their smallest bucket.
COVER = cs.layer_cover(feedforward_spec.COMPONENT)
PREFIX = "blocks.0.mlp."


@check("feedforward.matches_reference", examples_factor=0.5, cover=COVER)
def matches_reference(case: Case) -> None:
    config, params, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    out = case.call("feed_forward", native, config, case.array("x", x), prefix=PREFIX)
    expected = ref.feed_forward(params, config, case.rounded(x), PREFIX)
    case.assert_close(
        case.numpy(out), expected, f"feed_forward ({config.activation})", kind="composite", magnitude=magnitude(expected)
    )


@check("feedforward.position_wise", examples_factor=0.5, cover=COVER)
def position_wise(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    x = draw_stream(case, config)
    perm = np.random.default_rng(case.draw(st.integers(0, 2**16), "perm_seed")).permutation(x.shape[1])
    out = case.numpy(case.call("feed_forward", native, config, case.array("x", x), prefix=PREFIX))
    out_perm = case.numpy(case.call("feed_forward", native, config, case.array("x_permuted", x[:, perm]), prefix=PREFIX))
    case.assert_close(
        out_perm,
        out[:, perm],
        "feed_forward of permuted positions vs permuted outputs",
        kind="composite",
        magnitude=magnitude(out[:, perm]),
    )
    # A permutation cannot see a symmetric mix (e.g. adding the mean over positions): also change one position alone.
    changed_position = case.draw(st.integers(0, x.shape[1] - 1), "changed_position")
    x_changed = x.copy()
    x_changed[:, changed_position] = x_changed[:, changed_position] * -2 + 1
    out_changed = case.numpy(case.call("feed_forward", native, config, case.array("x_changed", x_changed), prefix=PREFIX))
    others = [i for i in range(x.shape[1]) if i != changed_position]
    case.assert_close(
        out_changed[:, others],
        out[:, others],
        f"feed_forward at the other positions after changing position {changed_position}",
        kind="composite",
        magnitude=magnitude(out[:, others]),
    )


@check("feedforward.errors", dtypes=ANY)
def errors(case: Case) -> None:
    config, _, native = draw_model(case, max_layers=1)
    case.expect_error(
        ShapeError,
        "'x'",
        "feed_forward",
        native,
        config,
        case.array("x_wide", np.zeros((1, 2, config.d_model + 2))),
        prefix=PREFIX,
    )
