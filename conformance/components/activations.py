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


# The programs every activation check shares: no batch axis and the longest row, one batch axis of rows
# of one element, two batch axes of odd rows. Three shapes, times two for gelu's approximate.
SHAPES = ((8,), (2, 1), (3, 2, 3))


def _draw(case: Case) -> np.ndarray:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    # Every row is an independent example with its own regime: tiny rows next to wide ones in one call.
    return cs.draw_values(case, shape, REGIMES, "x", stacked_axes=len(shape) - 1)


COVER = cs.covering(shape=SHAPES, x_regime=REGIMES)
# Every activation with each of its options.
CALLS = (("relu", {}), ("gelu", {"approximate": True}), ("gelu", {"approximate": False}), ("silu", {}))


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
    # Shuffled within the same shape, so the second call compiles nothing new.
    shuffled = x.ravel()[permutation].reshape(x.shape)  # x.shape
    for method, kwargs in CALLS:
        y = case.numpy(case.call(method, case.array("x", x), **kwargs))
        case.require(y.shape == x.shape, f"{method} changed the shape {x.shape} to {y.shape}")
        y_shuffled = case.numpy(case.call(method, case.array("x_shuffled", shuffled), **kwargs)).ravel()  # (x.size,)
        expected = y.ravel()[permutation]  # (x.size,)
        case.assert_close(y_shuffled, expected, f"{method} of shuffled input vs shuffled output", magnitude=np.abs(expected))


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


@check("activations.errors", dtypes=ANY, cover=cs.covering(shape=SHAPES))
def errors(case: Case) -> None:
    shape = case.draw(st.sampled_from(SHAPES), "shape")
    ints = case.array("ids", np.zeros(shape, dtype=np.int64), "int64")
    for method, kwargs in CALLS:
        case.expect_error(DTypeError, "'x'", method, ints, **kwargs)
    x = case.array("x", np.zeros(shape))
    case.expect_error(ConfigError, "approximate", "gelu", x, approximate="tanh")
