"""The conformance suite as pytest items (collected by ``pytest --pyargs transformer_spec.conformance``)."""

from __future__ import annotations

import pytest

from .registry import load_all_checks
from .runner import render_failure, run_check


def test_invariant(conformance_target, conformance_backend, conformance_options) -> None:
    check_id, dtype = conformance_target
    spec_string, backend = conformance_backend
    result = run_check(
        load_all_checks()[check_id], backend, dtype, conformance_options["profile"], conformance_options["seed"], spec_string
    )
    if result.status == "skipped":
        pytest.skip(result.message)
    if check_id in conformance_options["xfails"]:
        if result.bad:
            pytest.xfail(result.message)
        pytest.fail(f"{check_id} is listed in --xfails but passed; remove it from the file", pytrace=False)
    if result.bad:
        pytest.fail(render_failure(result) + f"\n  seed: {conformance_options['seed']}", pytrace=False)
