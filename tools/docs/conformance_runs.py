"""Real conformance runs for the backend × invariant matrix on the Conformance page.

Each installed built-in backend is checked with the suite's own command line
(``python -m conformance --report FILE.json``), dev profile, float32, a fixed
seed. The runs start in the background when the build starts (one process per
backend) and the page waits for them; reports are cached by the code hash, so
an unchanged tree does not run them again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .blocks import environment
from .paths import ROOT, cache_dir

BACKENDS = ("numpy", "torch", "jax")  # the built-in backends, in the order of the matrix
REQUIRED = ("numpy",)  # the reference: the build fails if it cannot be checked
PROFILE = "dev"
DTYPE = "float32"
SEED = 0
TIMEOUT_S = 600


@dataclass
class Run:
    backend: str
    report_path: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    started: float = 0.0
    seconds: float | None = None


_runs: dict[str, Run] = {}


def installed_backends() -> list[str]:
    from backends import available_backends

    available = set(available_backends())
    return [name for name in BACKENDS if name in available]


def start() -> None:
    """Start a background run for every installed backend whose report is not cached."""
    for name in installed_backends():
        if name in _runs:
            continue
        report_path = cache.path_for("conformance", name, PROFILE, DTYPE, SEED, suffix=".json")
        run = Run(name, report_path)
        _runs[name] = run
        if report_path.exists():
            continue
        run.log_path = report_path.with_suffix(".log")
        partial = report_path.with_suffix(".partial.json")
        env = environment(ROOT)
        env.setdefault("TSPEC_JAX_CACHE_DIR", str(cache_dir("jax-compilation")))  # JAX compiles once per shape: keep them
        command = [sys.executable, "-m", "conformance", "--backend", name, "--dtype", DTYPE, "--profile", PROFILE,
                   "--seed", str(SEED), "--quiet", "--report", str(partial)]
        run.started = time.perf_counter()
        with open(run.log_path, "w") as log:
            run.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def report(name: str) -> dict:
    """The finished report of one backend (waiting for its run); raises RuntimeError if the run could not report."""
    start()
    run = _runs[name]
    if run.process is not None:
        try:
            code = run.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.process.kill()
            raise RuntimeError(f"`python -m conformance --backend {name}` did not finish in {TIMEOUT_S} s") from None
        run.seconds = time.perf_counter() - run.started
        partial = run.report_path.with_suffix(".partial.json")
        if code not in (0, 1) or not partial.exists():
            tail = run.log_path.read_text()[-2000:] if run.log_path else ""
            raise RuntimeError(f"`python -m conformance --backend {name}` exited {code} without a report:\n{tail}")
        partial.rename(run.report_path)
        run.process = None
    return json.loads(run.report_path.read_text())


def reports() -> dict[str, dict | str]:
    """Every installed backend's report, or the reason it has none (the reference backend must report)."""
    out: dict[str, dict | str] = {}
    for name in installed_backends():
        try:
            out[name] = report(name)
        except RuntimeError as error:
            if name in REQUIRED:
                raise
            out[name] = str(error)
    return out


def stop() -> None:
    """End runs that no page waited for (their reports would be stale next time anyway)."""
    for run in _runs.values():
        if run.process is not None and run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                run.process.kill()
        run.process = None
    _runs.clear()
