"""Wall time and distinct call signatures of the whole conformance suite per backend and profile.

    python -m benchmarks.bench_conformance [--backends numpy,torch,jax] [--profiles dev,ci] [--out FILE]

Each run is a fresh ``tspec conformance`` process (so library imports and JAX's
compilation count, as they do for a user), float32, fixed seed. A backend that
compiles (it offers ``enable_persistent_cache``) is run twice per profile: *cold*,
with an empty compilation cache folder, then *warm*, reusing it (the suite's
default keeps that folder in the user's cache directory between runs). The
signature count is the runner's: distinct (method, shapes, dtypes, static
arguments) calls, what a compiler compiles.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from transformer_spec.backends import available_backends, load_backend
from transformer_spec.conformance.runner import persistent_cache_hook

from ._common import write_results

SIGNATURES = re.compile(r"over (\d+) distinct call signatures")


def _compiles(name: str) -> bool:
    """Whether the backend keeps compiled programs between runs (it offers a persistent compilation cache)."""
    return persistent_cache_hook(load_backend(name)) is not None


def _run(backend: str, profile: str, seed: int, cache_dir: str) -> tuple[float, str, int | None]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "transformer_spec.cli", "conformance", "--backend", backend, "--profile", profile]
        + ["--seed", str(seed), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "TSPEC_JAX_CACHE_DIR": cache_dir},
    )
    seconds = time.perf_counter() - start
    status = {0: "passed", 1: "FAILED"}.get(done.returncode, f"error {done.returncode}")
    found = SIGNATURES.search(done.stdout)
    return seconds, status, int(found.group(1)) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(b for b in available_backends() if b in ("numpy", "torch", "jax")))
    parser.add_argument("--profiles", default="dev,ci")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'backend':<10}{'profile':<10}{'cache':<8}{'seconds':>10}{'signatures':>12}{'status':>10}", flush=True)
    for profile in args.profiles.split(","):
        for backend in args.backends.split(","):
            with tempfile.TemporaryDirectory(prefix="tspec-bench-jax-cache-") as folder:
                phases = ("cold", "warm") if _compiles(backend) else ("-",)
                for phase in phases:
                    seconds, status, signatures = _run(backend, profile, args.seed, folder if phase != "-" else "")
                    rows.append(
                        {
                            "backend": backend,
                            "profile": profile,
                            "cache": phase,
                            "seconds": round(seconds, 2),
                            "signatures": signatures,
                            "status": status,
                        }
                    )
                    print(f"{backend:<10}{profile:<10}{phase:<8}{seconds:>10.1f}{signatures!s:>12}{status:>10}", flush=True)
    base = {r["profile"]: r["seconds"] for r in rows if r["backend"] == "numpy"}
    for r in rows:
        if r["profile"] in base and r["backend"] != "numpy":
            print(f"{r['backend']} {r['profile']} {r['cache']}: {r['seconds'] / base[r['profile']]:.1f}x NumPy")
    path = write_results("conformance", {"seed": args.seed, "dtype": "float32", "runs": rows}, args.out)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
