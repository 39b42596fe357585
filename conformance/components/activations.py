"""Checks for :mod:`transformer_spec.spec.activations`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, DTypeError

from .. import reference as ref
from .. import strategies as cs
from ..calibration import magnitude
from ..case import Case
from ..registry import ANY, check

REGIMES = ("normal", "wide", "ties", "tiny", "zeros")


def _draw(case: Case) -> np.ndarray:
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "n"),)
    return cs.draw_values(case, shape, REGIMES, "x")


COVER = cs.covering(batch=cs.BATCH_SHAPES, n=cs.COVER_LENGTHS, x_regime=REGIMES)


def _compare(case: Case, method: str, expected_fn, **kwargs) -> None:
    x = _draw(case)
    got = case.numpy(case.call(method, case.array("x", x), **kwargs))
    xr = case.rounded(x)
    # The derivative of each activation is at most ~1.13, so an input rounding of |x|·eps moves the output at most that much.
    case.assert_close(
        got,
        expected_fn(xr),
        f"{method}(x{''.join(f', {k}={v}' for k, v in kwargs.items())})",
        kind="elementwise",
        magnitude=magnitude(xr, expected_fn(xr)),
    )


@check("activations.elementwise", cover=COVER)
def elementwise(case: Case) -> None:
    x = _draw(case)
    permutation = np.random.default_rng(case.draw(st.integers(0, 2**16), "perm_seed")).permutation(x.size)
    flat = x.ravel()
    for method, kwargs in (("relu", {}), ("gelu", {"approximate": True}), ("gelu", {"approximate": False}), ("silu", {})):
        y = case.numpy(case.call(method, case.array("x", x), **kwargs))
        case.require(y.shape == x.shape, f"{method} changed the shape {x.shape} to {y.shape}")
        y_perm = case.numpy(case.call(method, case.array("x_permuted", flat[permutation]), **kwargs))
        case.assert_close(
            y_perm,
            y.ravel()[permutation],
            f"{method} of permuted input vs permuted output",
            magnitude=np.abs(y.ravel()[permutation]),
        )


@check("activations.relu_matches_reference", cover=COVER)
def relu_matches_reference(case: Case) -> None:
    _compare(case, "relu", ref.relu)


@check("activations.gelu_exact_matches_reference", cover=COVER)
def gelu_exact_matches_reference(case: Case) -> None:
    _compare(case, "gelu", lambda x: ref.gelu(x, approximate=False), approximate=False)


@check("activations.gelu_tanh_matches_reference", cover=COVER)
def gelu_tanh_matches_reference(case: Case) -> None:
    _compare(case, "gelu", lambda x: ref.gelu(x, approximate=True), approximate=True)


@check("activations.silu_matches_reference", cover=COVER)
def silu_matches_reference(case: Case) -> None:
    _compare(case, "silu", ref.silu)


@check("activations.errors", dtypes=ANY)
def errors(case: Case) -> None:
    ints = case.array("ids", np.zeros((2, 3), dtype=np.int64), "int64")
    for method, kwargs in (("relu", {}), ("gelu", {"approximate": True}), ("silu", {})):
        case.expect_error(DTypeError, "'x'", method, ints, **kwargs)
    x = case.array("x", np.zeros((2, 3)))
    case.expect_error(ConfigError, "approximate", "gelu", x, approximate="tanh")
