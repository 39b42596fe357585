"""Every repro runs as-is: each failure's snippet, run with nothing but NumPy and the backend, reproduces the
failure of the same invariant (the snippet ends by replaying the check on the shrunk inputs)."""

from __future__ import annotations

import json
import subprocess
import sys

from transformer_spec.conformance.runner import run
from transformer_spec.conformance.teeth import MUTANTS

from .conftest import ROOT

# Runs each repro in a fresh namespace of one interpreter and reports, per repro, how it ended.
RUNNER = r"""
import contextlib, io, json, sys, traceback
repros = json.load(sys.stdin)
out = []
for repro in repros:
    buffer = io.StringIO()
    ended = "ok"
    try:
        with contextlib.redirect_stdout(buffer):
            exec(compile(repro, "<repro>", "exec"), {"__name__": "__main__"})
    except SystemExit as stop:
        ended = f"exit {stop.code}"
    except Exception as error:
        ended = f"raised {type(error).__name__}"
    out.append({"ended": ended, "stdout": buffer.getvalue()[-2000:]})
print(json.dumps(out))
"""


def _failures() -> list:
    """One failing result per invariant id, from the NumPy mutants run through their components (seed 0)."""
    found = {}
    for mutant in MUTANTS:
        if hasattr(mutant, "suite_dtypes"):
            continue  # the gradient mutants need torch; their repros are the same machinery
        report = run(mutant, dtypes=("float32",), profile="dev", components=(mutant.breaks.split(".")[0],), seed=0)
        for result in report.results:
            if result.bad and result.id not in found:
                found[result.id] = result
    return list(found.values())


def test_every_repro_reproduces_the_same_invariant():
    failures = _failures()
    assert len(failures) >= 30, f"only {len(failures)} checks failed on some mutant"
    assert all(r.repro for r in failures)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([r.repro for r in failures]),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    wrong = []
    for result, outcome in zip(failures, outcomes):
        if result.status == "failed":
            ok = outcome["ended"] == "exit 1" and f"FAILED {result.id} [float32]" in outcome["stdout"]
        else:  # the backend raised: the repro raises the same exception class
            ok = outcome["ended"] == "raised " + result.message.split()[1].rstrip(":")
        if not ok:
            wrong.append(f"{result.id} ({result.status}: {result.message[:120]}) -> {outcome}\n{result.repro[-1500:]}")
    assert not wrong, f"{len(wrong)} of {len(failures)} repros did not reproduce:\n" + "\n\n".join(wrong[:3])


def test_cached_repro_runs_in_a_fresh_interpreter():
    """The repro that used to write a KV cache with repr() (NameError: KVCache) runs as a plain script."""
    from transformer_spec.conformance.teeth import KVCachePositionsRestartAtZero

    report = run(KVCachePositionsRestartAtZero, dtypes=("float32",), profile="dev", keyword="model.cached_equals_full", seed=0)
    (result,) = [r for r in report.results if r.bad]
    assert "cache=out" in result.repro and "KVCache(" not in result.repro
    done = subprocess.run([sys.executable, "-c", result.repro], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "FAILED model.cached_equals_full [float32]" in done.stdout
