"""Training throughput on 1 process vs N data-parallel processes (and JAX on 1 vs N devices), in one run.

    python -m benchmarks.bench_data_parallel [--nproc 2] [--steps 30] [--rounds 2] [--jax] [--out FILE]

Each configuration is the real command, ``tspec train`` (``--nproc N`` for
PyTorch's processes, ``--devices N`` for JAX with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on a CPU), on the same
model, global batch and seed; the configurations alternate round by round, so a
shared machine's load hits them alike. Reported per configuration (median of
the rounds): tokens/s of the training steps as ``tspec train`` prints it (global
batch tokens over the seconds spent in steps, including the gradient
all-reduce; the first steps include compilation) and the wall time of the whole
command (start-up, data, tokenizer, process group). Every process uses
``--threads 1``, so N processes use N cores. Prints a table and writes JSON
(``--out``, default benchmarks/results/data_parallel.json). Never asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import write_results

ROOT = Path(__file__).resolve().parent.parent
MODEL = [
    "--preset", "smoke", "--d-model", "128", "--n-layers", "4", "--n-heads", "4", "--d-ff", "512",
    "--model-context", "64", "--context-length", "64", "--batch-size", "16", "--threads", "1", "--quiet",
]  # fmt: skip
RATE = re.compile(r"([\d,]+) tokens/s")


def run(args: list[str], extra_env: dict[str, str]) -> tuple[float, float]:
    """(tokens/s of the steps, wall seconds) of one ``tspec train`` command."""
    with tempfile.TemporaryDirectory(prefix="tspec-bench-dp-") as work:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra_env}
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "transformer_spec", "train", *MODEL, *args, "--out", str(Path(work) / "run")],
            capture_output=True, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"tspec train {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    match = RATE.search(result.stdout)
    if match is None:
        raise SystemExit(f"no tokens/s in the output of tspec train {' '.join(args)}: {result.stdout!r}")
    return float(match.group(1).replace(",", "")), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="processes (devices) of the data-parallel runs")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jax", action="store_true", help="also JAX on 1 device vs --nproc devices")
    parser.add_argument("--backend", default="torch", help="the PyTorch backend spec (e.g. torch:cuda on a GPU machine)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    n, steps = args.nproc, ["--steps", str(args.steps)]
    configs = {
        f"{args.backend}, 1 process": (["--backend", args.backend, *steps], {}),
        f"{args.backend}, {n} processes": (["--backend", args.backend, *steps, "--nproc", str(n)], {}),
    }
    if args.jax:
        flags = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        configs["jax, 1 device"] = (["--backend", "jax", *steps], flags)
        configs[f"jax, {n} devices"] = (["--backend", "jax", *steps, "--devices", str(n)], flags)
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for round_index in range(args.rounds):
        for name, (cli, env) in configs.items():
            samples[name].append(run(cli, env))
            print(f"round {round_index + 1}: {name}: {samples[name][-1][0]:,.0f} tokens/s", file=sys.stderr, flush=True)
    rows = []
    print(f"{'configuration':<24} {'tokens/s (steps)':>17} {'wall s':>8}")
    for name, values in samples.items():
        rate = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        rows.append({"configuration": name, "tokens_per_second": rate, "wall_seconds": wall, "samples": values})
        print(f"{name:<24} {rate:>17,.0f} {wall:>8.1f}")
    path = write_results(
        "data_parallel",
        {
            "command": "tspec train " + " ".join(MODEL) + f" --steps {args.steps}",
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "note": (
                "tokens/s: global-batch tokens over the seconds spent in training steps (the all-reduce and, for JAX, "
                "the first steps' compilation included), median of the rounds; wall: the whole command. Every process "
                "uses one thread. On a machine with fewer free cores than processes, no speed-up is expected."
            ),
            "rows": rows,
        },
        args.out,
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
