"""Run the whole suite on one backend with many Hypothesis seeds; a real backend must never fail.

python -m benchmarks.seed_sweep --backend numpy --seeds 20 [--profile dev] [--dtype float32,float64,float16]
"""

from __future__ import annotations

import argparse
import sys
import time

from transformer_spec.conformance.runner import render_table, run

from ._common import write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--profile", default="dev")
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start = time.perf_counter()
        report = run(args.backend, dtypes=tuple(args.dtype.split(",")), profile=args.profile, seed=seed)
        seconds = time.perf_counter() - start
        failed = sorted(report.failed_ids())
        runs.append({"seed": seed, "checks": len(report.results), "failed": failed, "seconds": round(seconds, 1)})
        print(f"seed {seed}: {len(report.results)} checks, {len(failed)} failed, {seconds:.1f}s {' '.join(failed)}", flush=True)
        if failed:
            print(render_table(report))
    failures = sum(bool(r["failed"]) for r in runs)
    print(f"{args.seeds} seeds, {failures} with failures")
    write_results(f"seed_sweep_{args.backend}", {"profile": args.profile, "dtypes": args.dtype, "runs": runs}, args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
