"""Wall time of the whole conformance suite per backend and profile.

    python -m benchmarks.bench_conformance [--backends numpy,torch,jax] [--profiles dev,ci] [--out FILE]

Each run is a fresh ``tspec conformance`` process (so JAX's compilation and
library imports count, as they do for a user), float32, fixed seed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from transformer_spec.backends import available_backends

from ._common import write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(b for b in available_backends() if b in ("numpy", "torch", "jax")))
    parser.add_argument("--profiles", default="dev,ci")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'backend':<10}{'profile':<10}{'seconds':>10}{'status':>10}")
    for backend in args.backends.split(","):
        for profile in args.profiles.split(","):
            start = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "transformer_spec.cli",
                    "conformance",
                    "--backend",
                    backend,
                    "--profile",
                    profile,
                    "--seed",
                    str(args.seed),
                    "--quiet",
                ],
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
            status = {0: "passed", 1: "FAILED"}.get(done.returncode, f"error {done.returncode}")
            rows.append({"backend": backend, "profile": profile, "seconds": round(seconds, 2), "status": status})
            print(f"{backend:<10}{profile:<10}{seconds:>10.1f}{status:>10}", flush=True)
    path = write_results("conformance", {"seed": args.seed, "dtype": "float32", "runs": rows}, args.out)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
