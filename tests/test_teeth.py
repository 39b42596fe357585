"""The suite has teeth: every deliberately broken backend is rejected, by the invariant its bug breaks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transformer_spec import spec
from transformer_spec.conformance.runner import render_table, run
from transformer_spec.conformance.teeth import MUTANTS


def test_catalogue_is_large_and_names_real_invariants():
    assert len(MUTANTS) >= 15
    known = spec.all_invariants()
    for mutant in MUTANTS:
        assert mutant.breaks in known, f"{mutant.__name__} names unknown invariant {mutant.breaks!r}"
        assert mutant.__doc__, f"{mutant.__name__} must say what its bug is"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.__name__ for m in MUTANTS])
def test_mutant_is_caught_by_the_invariant_it_breaks(mutant):
    component = mutant.breaks.split(".")[0]
    dtypes = getattr(mutant, "suite_dtypes", ("float32",))  # gradient mutants are checked in float64
    report = run(mutant, dtypes=dtypes, profile="dev", components=(component,), seed=0)
    failed = report.failed_ids()
    assert mutant.breaks in failed, (
        f"{mutant.__name__} slipped through {mutant.breaks}; failed: {sorted(failed)}\n{render_table(report)}"
    )


def test_failure_report_has_counterexample_and_a_repro_that_reproduces():
    from transformer_spec.conformance.teeth import SoftmaxWithoutMaxSubtraction

    report = run(SoftmaxWithoutMaxSubtraction, dtypes=("float32",), profile="dev", keyword="softmax.matches_reference", seed=0)
    (result,) = [r for r in report.results if r.bad]
    assert result.comparison is not None and result.comparison["max_abs_error"] > 0
    assert "x" in result.inputs
    table = render_table(report)
    assert "FAILED softmax.matches_reference [float32]" in table and "repro:" in table and "--seed 0" in table
    # The snippet runs on its own and shows the broken output (NaN) the report describes.
    completed = subprocess.run([sys.executable, "-c", result.repro], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "nan" in completed.stdout.lower()
