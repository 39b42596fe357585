"""The ulp-based elementwise tolerance is calibrated on the real backends and keeps its stated margin."""

from __future__ import annotations

import pytest

from transformer_spec.conformance.calibration import ELEMENTWISE, measure
from transformer_spec.spec.tolerances import ELEMENTWISE_MARGIN, ELEMENTWISE_ULPS, EPSILON, TOLERANCES, tolerance

from .conftest import BACKENDS


def test_one_elementwise_row_per_dtype_in_ulps():
    for dtype, eps in EPSILON.items():
        row = tolerance(dtype, "elementwise")
        assert row.rtol == pytest.approx(ELEMENTWISE_ULPS * eps)
        assert row.atol < eps**4 or dtype == "float16"  # no absolute floor to hide a wrong constant behind
    assert sum(kind == "elementwise" for _, kind in TOLERANCES) == len(EPSILON)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_backends_stay_outside_the_margin(backend):
    """Fails when a real backend's worst elementwise error comes within ELEMENTWISE_MARGIN of the bound:
    then the bound was set too tight (or the backend got worse), and the table must be re-measured."""
    worst = measure([backend], list(EPSILON))
    assert len(worst) >= len(ELEMENTWISE) * 2  # at least two dtypes measured
    close = {key: ulps for key, ulps in worst.items() if ulps * ELEMENTWISE_MARGIN > ELEMENTWISE_ULPS}
    assert not close, f"within the margin of {ELEMENTWISE_MARGIN}x of {ELEMENTWISE_ULPS} ulps: {close}"
