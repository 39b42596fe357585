"""The conformance suite itself: coverage of the spec, the NumPy backend passing, the CLI and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from transformer_spec import spec
from transformer_spec.backends import BackendError, load_backend
from transformer_spec.backends.base import Backend
from transformer_spec.conformance.registry import CHECKS, check, load_all_checks
from transformer_spec.conformance.runner import keyword_matcher, render_table, run

from .conftest import run_cli


def tspec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env)


def test_every_spec_invariant_has_a_check_and_every_check_a_spec_invariant():
    checks = load_all_checks()  # the tokenizer's checks included: tests/test_tokenizer_conformance.py runs them
    declared = set(spec.all_invariants())
    assert declared == set(checks), (
        f"without a check: {sorted(declared - set(checks))}; without a spec entry: {sorted(set(checks) - declared)}"
    )


def test_a_check_for_an_undeclared_invariant_is_refused():
    with pytest.raises(KeyError, match="not declared"):
        check("softmax.no_such_invariant")(lambda case: None)
    assert "softmax.no_such_invariant" not in CHECKS


@pytest.mark.parametrize("dtypes", [("float32", "float64", "float16")])
def test_numpy_backend_passes_every_invariant(dtypes):
    seed = int.from_bytes(os.urandom(4), "little")
    report = run("numpy", dtypes=dtypes, profile="dev", seed=seed)
    print(f"conformance seed {seed}")
    assert report.ok, render_table(report)
    assert {r.status for r in report.results if r.component != "gradients"} == {"passed"}
    # NumPy does not differentiate: its gradient checks are skipped, and the report says why.
    assert all(r.status == "skipped" and "supports_autodiff" in r.message for r in report.results if r.component == "gradients")
    assert len(report.results) > 100


def test_keyword_expressions():
    match = keyword_matcher("softmax and not log")
    assert match("softmax.sums_to_one") and not match("softmax.log_softmax_matches_reference")
    assert keyword_matcher("(attention or loss) and errors")("loss.errors")
    with pytest.raises(ValueError, match="not a valid expression"):
        keyword_matcher("softmax and (")


def test_cli_table_report_and_exit_status(tmp_path):
    report_path = tmp_path / "report.json"
    done = tspec("conformance", "--backend", "numpy", "-k", "softmax", "--report", str(report_path), "--seed", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "softmax" in done.stdout and "PASSED" in done.stdout and "seed 1" in done.stdout
    data = json.loads(report_path.read_text())
    assert data["backend"] == "numpy" and data["seed"] == 1
    assert all(r["id"].startswith("softmax.") and r["status"] == "passed" and r["seconds"] >= 0 for r in data["results"])


def test_cli_on_a_broken_backend_fails_with_counterexample_and_xfails_silence_it(tmp_path):
    broken = "transformer_spec.conformance.teeth:SoftmaxWithoutMaxSubtraction"
    done = tspec("conformance", "--backend", broken, "-k", "softmax", "--seed", "0")
    assert done.returncode == 1
    assert "FAILED softmax.finite_for_extreme_inputs [float32]" in done.stdout and "repro:" in done.stdout
    failed = sorted({line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")})
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("# known bugs of the mutant\n" + "\n".join(failed) + "\nsoftmax.not_an_invariant  # typo\n")
    done = tspec("conformance", "--backend", broken, "-k", "softmax", "--seed", "0", "--xfails", str(xfails))
    assert done.returncode == 0, done.stdout
    assert "softmax.not_an_invariant" in done.stdout and "match no invariant" in done.stdout


def test_python_m_conformance_and_pytest_pyargs():
    done = subprocess.run(
        [sys.executable, "-m", "transformer_spec.conformance", "--backend", "numpy", "-k", "loss", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "loss" in done.stdout
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "transformer_spec.conformance",
            "--backend=numpy",
            "-q",
            "-k",
            "embedding",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "passed" in done.stdout
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "transformer_spec.conformance",
            "--backend=transformer_spec.conformance.teeth:EmbeddingWrapsAround",
            "-q",
            "-k",
            "embedding",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "embedding.out_of_range_is_error" in done.stdout


def test_unknown_backend_is_one_clear_line():
    done = tspec("conformance", "--backend", "nosuch")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "available: numpy" in done.stderr


def test_missing_library_names_the_extra_to_install(monkeypatch):
    import importlib.util

    from transformer_spec import backends

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(BackendError, match=r"jax is not installed: pip install 'transformer-spec\[jax\]'"):
        backends.load_backend("jax")


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module_xyz:Backend", "cannot import module"),
        ("transformer_spec.conformance.teeth:NoSuchClass", "has no attribute"),
        ("os.path:join", "expected a subclass or instance"),
    ],
)
def test_bad_module_attribute_backends(target, message):
    with pytest.raises(BackendError, match=message):
        load_backend(target)


class HalfWrittenBackend(Backend):
    name = "half"

    def _softmax(self, x, axis):  # only one kernel so far
        return x


def test_missing_kernels_are_named_before_anything_runs():
    with pytest.raises(NotImplementedError) as error:
        run(HalfWrittenBackend, profile="dev")
    message = str(error.value)
    assert "_linear" in message and "_attention" in message and " _softmax," not in message
    done = tspec("conformance", "--backend", "tests.test_conformance:HalfWrittenBackend", env={"PYTHONPATH": os.getcwd()})
    assert done.returncode == 2 and "missing kernels" in done.stderr and "Traceback" not in done.stderr


def test_tspec_backend_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("TSPEC_BACKEND", "transformer_spec.conformance.teeth:TemperatureIgnored")
    assert type(load_backend()).__name__ == "TemperatureIgnored"
