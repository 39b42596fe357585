"""Real conformance runs for the backend × invariant matrix on the Conformance page.

Each installed built-in backend is checked with the suite's runner
(:func:`transformer_spec.conformance.runner.run`, what ``python -m transformer_spec.conformance`` calls), dev
profile, float32, a fixed seed, in a subprocess per backend started when the
build starts; the page waits for them. JAX compiles a kernel for every new
shape, which makes its run by far the longest one, and compiling is
single-threaded: its components are split over two processes so that a
second core can share the work. Reports are cached by a hash of the code they
check (``cache.CONFORMANCE_INPUTS``), so an unchanged suite and backends do
not run them again, whatever else changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cache
from .blocks import environment
from .paths import ROOT, cache_dir

BACKENDS = ("numpy", "torch", "jax")  # the built-in backends, in the order of the matrix
REQUIRED = ("numpy",)  # the reference: the build fails if it cannot be checked
SHARDS = {"jax": 2}  # processes per backend (default 1)
PROFILE = "dev"
DTYPE = "float32"
SEED = 0
TIMEOUT_S = 900

# One shard: run the given components (all when none are given) and write the report as JSON.
SHARD_SCRIPT = f"""
import sys
from transformer_spec.conformance.runner import run
backend, out, components = sys.argv[1], sys.argv[2], tuple(sys.argv[3:]) or None
report = run(backend, dtypes=({DTYPE!r},), profile={PROFILE!r}, seed={SEED!r}, components=components)
open(out, "w").write(report.to_json())
"""


@dataclass
class Run:
    backend: str
    report_path: Path
    processes: list[tuple[subprocess.Popen, Path, Path]] = field(default_factory=list)  # (process, report, log)
    started: float = 0.0


_runs: dict[str, Run] = {}


def installed_backends() -> list[str]:
    from transformer_spec.backends import available_backends

    available = set(available_backends())
    return [name for name in BACKENDS if name in available]


def _component_shards(count: int) -> list[list[str]]:
    """The components the backend checks, dealt round-robin (in pipeline order) into ``count`` shards."""
    if count == 1:
        return [[]]  # no selection: every component
    from transformer_spec.conformance.registry import load_all_checks

    components = list(
        dict.fromkeys(
            check.component for check in load_all_checks().values() if getattr(check, "subject", "backend") == "backend"
        )
    )
    return [components[i::count] for i in range(count)]


def start() -> None:
    """Start the runs of every installed backend whose report is not cached."""
    for name in installed_backends():
        if name in _runs:
            continue
        report_path = cache.path_for("conformance", name, PROFILE, DTYPE, SEED, suffix=".json", inputs=cache.CONFORMANCE_INPUTS)
        run = Run(name, report_path, started=time.perf_counter())
        _runs[name] = run
        if report_path.exists():
            continue
        env = environment(ROOT)
        env.setdefault("TSPEC_JAX_CACHE_DIR", str(cache_dir("jax-compilation")))  # JAX compiles once per shape: keep them
        for index, components in enumerate(_component_shards(SHARDS.get(name, 1))):
            shard = report_path.with_suffix(f".shard{index}.json")
            log = shard.with_suffix(".log")
            with open(log, "w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-c", SHARD_SCRIPT, name, str(shard), *components],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            run.processes.append((process, shard, log))


def report(name: str) -> dict:
    """The finished report of one backend (waiting for its run); raises RuntimeError if the run could not report."""
    start()
    run = _runs[name]
    if run.processes:
        shards = []
        for process, shard, log in run.processes:
            try:
                code = process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                raise RuntimeError(f"the {name} conformance run did not finish in {TIMEOUT_S} s") from None
            if code != 0 or not shard.exists():
                raise RuntimeError(f"the {name} conformance run exited {code} without a report:\n{log.read_text()[-2000:]}")
            shards.append(json.loads(shard.read_text()))
        merged = dict(shards[0])
        merged["results"] = [result for shard in shards for result in shard["results"]]
        merged["warnings"] = [w for shard in shards for w in shard.get("warnings", [])]
        run.report_path.write_text(json.dumps(merged, indent=2))
        run.processes = []
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
        for process, _, _ in run.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
    _runs.clear()
