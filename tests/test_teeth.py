"""The suite has teeth: every deliberately broken backend is rejected, by the invariant its bug breaks, on every seed."""

from __future__ import annotations

import collections

import pytest

from transformer_spec import spec
from transformer_spec.conformance.runner import render_table, run
from transformer_spec.conformance.teeth import BLIND_SPOTS, MUTANTS

# Ten different Hypothesis seeds: a kill must not depend on luck (the covering set runs on every seed).
SEEDS = tuple(range(1, 100_000, 9_973))[:10]


def test_catalogue_is_large_and_names_real_invariants():
    assert len(MUTANTS) >= 15
    known = spec.all_invariants()
    for mutant in MUTANTS:
        assert mutant.breaks in known, f"{mutant.__name__} names unknown invariant {mutant.breaks!r}"
        assert mutant.__doc__, f"{mutant.__name__} must say what its bug is"


def test_every_blind_spot_has_mutants():
    groups = collections.Counter(getattr(m, "group", "") for m in MUTANTS)
    for spot in BLIND_SPOTS:
        assert groups[spot] >= 2, f"blind spot {spot!r} has {groups[spot]} mutant(s), expected at least 2"
    assert set(groups) - {""} <= set(BLIND_SPOTS), f"unknown groups: {set(groups) - {''} - set(BLIND_SPOTS)}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.__name__ for m in MUTANTS])
def test_mutant_is_caught_on_every_seed(mutant):
    dtypes = getattr(mutant, "suite_dtypes", ("float32",))  # gradient mutants are checked in float64
    missed = []
    for seed in SEEDS:
        # Only the invariant the bug breaks (and ids containing it): the kill must come from that check.
        report = run(mutant, dtypes=dtypes, profile="dev", keyword=mutant.breaks, seed=seed)
        if mutant.breaks not in report.failed_ids():
            missed.append((seed, render_table(report)))
    assert not missed, f"{mutant.__name__} slipped through {mutant.breaks} on seeds {[s for s, _ in missed]}\n{missed[0][1]}"


def test_a_mutant_is_reported_with_its_whole_component():
    from transformer_spec.conformance.teeth import SoftmaxWithoutMaxSubtraction

    report = run(SoftmaxWithoutMaxSubtraction, dtypes=("float32",), profile="dev", components=("softmax",), seed=0)
    assert "softmax.finite_for_extreme_inputs" in report.failed_ids()
    (result,) = [r for r in report.results if r.id == "softmax.matches_reference"]
    assert result.comparison is not None and result.comparison["max_abs_error"] > 0
    assert "x" in result.inputs
    table = render_table(report)
    assert "FAILED softmax.matches_reference [float32]" in table and "repro:" in table and "--seed 0" in table
