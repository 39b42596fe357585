"""Argument handling shared by ``tspec train`` and ``tspec finetune``."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformer_spec.spec.errors import ConfigError

from .config import TrainConfig

# Training options: (flag, dest, type, help). Defaults are None so that on --resume only the ones given change the run.
TRAINING_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--steps", "steps", int, "optimizer steps (the cosine schedule ends here)"),
    ("--batch-size", "batch_size", int, "sequences per step"),
    ("--context-length", "context_length", int, "positions per training sequence (<= the model's context)"),
    ("--lr", "lr", float, "peak learning rate (after warm-up)"),
    ("--warmup", "warmup_steps", int, "linear warm-up steps"),
    ("--min-lr-ratio", "min_lr_ratio", float, "cosine floor as a fraction of --lr"),
    ("--weight-decay", "weight_decay", float, "AdamW decoupled weight decay of matrices"),
    ("--grad-clip", "grad_clip", float, "clip the global gradient norm to this"),
    ("--seed", "seed", int, "initial weights and batch order"),
    ("--eval-every", "eval_every", int, "evaluate on held-out data every N steps (0: at the end only)"),
    ("--eval-batches", "eval_batches", int, "held-out batches per evaluation"),
    ("--checkpoint-every", "checkpoint_every", int, "save a resumable checkpoint every N steps (0: at the end only)"),
    ("--log-every", "log_every", int, "a progress line every N steps (when stderr is not a terminal)"),
)
# Changeable when resuming (the rest describe the run and would break "resume == uninterrupted").
RESUMABLE_CHANGES = ("steps", "lr", "eval_every", "eval_batches", "checkpoint_every", "log_every", "min_lr_ratio")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", default="torch", help="array backend with autodiff: torch (default) or jax")
    group.add_argument(
        "--engine",
        default="auto",
        choices=("auto", "plain", "torch", "jax"),
        help="how a step runs: auto = through the backend's hooks (compile, fused optimizer); plain = the reference "
        "path ('torch' and 'jax' are deprecated aliases of auto)",
    )
    group.add_argument(
        "--compile", action="store_true", help="use the backend's compiler where it is optional (torch: torch.compile)"
    )
    group.add_argument(
        "--threads", type=int, default=None, help="CPU threads for the backend (on a busy shared machine 1 is often fastest)"
    )


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    """Data-parallel training (see :mod:`transformer_spec.train.distributed`)."""
    from .distributed import DEFAULT_PEER_TIMEOUT

    group = parser.add_argument_group(
        "data parallel", "several processes or devices, each computing its part of every global batch (same result)"
    )
    group.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="start N processes on this machine (PyTorch: gloo on CPU, NCCL on CUDA)",
    )
    group.add_argument(
        "--devices",
        default=None,
        metavar="N",
        help="shard each batch over N local devices of one process, or 'all' of them (JAX)",
    )
    group.add_argument(
        "--peer-timeout",
        type=float,
        default=DEFAULT_PEER_TIMEOUT,
        metavar="SECONDS",
        help="stop with an error when another process has not answered for this long",
    )


def setup_parallel(args: argparse.Namespace, backend):
    """The run's data-parallel group (``--devices`` or a launcher's environment), or None."""
    from .distributed import parse_devices, setup_parallel

    asked = getattr(args, "devices", None) is not None
    devices = parse_devices(args.devices) if asked else None
    return setup_parallel(backend, devices, asked, getattr(args, "peer_timeout", 300.0))


def check_parallel_batch(args: argparse.Namespace, batch_size: int, replay_rows: int = 0, resuming: bool = False) -> None:
    """Before any work: the global batch (``batch_size`` sequences, plus fine-tuning's ``replay_rows``) must split
    evenly over the processes (x devices) asked for, where that is known now (``resuming``: the batch is fixed)."""
    from .distributed import launched_processes, parse_devices

    nproc = getattr(args, "nproc", None)
    if nproc is not None and nproc < 1:
        raise ConfigError(f"--nproc {nproc}, expected an integer >= 1")
    processes = nproc if nproc is not None else launched_processes()
    devices = parse_devices(args.devices) if getattr(args, "devices", None) is not None else 1
    shards = processes * (devices or 1)
    rows = batch_size + replay_rows
    if shards > 1 and rows % shards:
        if processes == 1:
            what = f"{devices} devices"
        else:
            what = f"{processes} processes" if devices in (1, None) else f"{processes} x {devices} devices"
        fits = max(shards, rows - rows % shards) - replay_rows
        if replay_rows:
            batch = f"{rows} rows ({batch_size} examples + {replay_rows} replay rows)"
        else:
            batch = f"{rows} sequences"
        if resuming:
            divisors = [n for n in range(1, rows + 1) if rows % n == 0]
            listed = ", ".join(map(str, divisors[:-1])) + f" or {divisors[-1]}" if len(divisors) > 1 else "1"
            advice = f"the run's batch is fixed: resume it on a number of processes that divides {rows} ({listed})"
        else:
            advice = f"expected a multiple of {shards}" + (
                f" (e.g. --batch-size {fits})" if fits >= 1 else " (change --batch-size or --replay-rows)"
            )
        raise ConfigError(f"the global batch of {batch} does not split evenly over {what}; {advice}")


def saved_global_batch(run_dir: str) -> int:
    """The global batch rows of the run saved in ``run_dir`` (its batch size, plus fine-tuning's replay rows)."""
    from .trainer import _read_state

    state = _read_state(Path(run_dir))
    replay = (state.get("data") or {}).get("replay") or {}
    return int(state["config"]["batch_size"]) + int(replay.get("rows", 0) or 0)


def add_training_options(parser: argparse.ArgumentParser, preset_help: str) -> None:
    group = parser.add_argument_group("training", f"defaults come from --preset ({preset_help})")
    for flag, dest, kind, text in TRAINING_OPTIONS:
        group.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    group.add_argument("--no-grad-clip", action="store_true", help="do not clip gradients")
    group.add_argument(
        "--overwrite", action="store_true", help="write into an --out folder that already holds files (or a run: start over)"
    )
    group.add_argument("--quiet", action="store_true", help="no progress output")


def training_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = {dest: getattr(args, dest) for _, dest, _, _ in TRAINING_OPTIONS if getattr(args, dest) is not None}
    if args.no_grad_clip:
        changes["grad_clip"] = None
    return changes


def apply_training_changes(base: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """``base`` with the given options; the warm-up defaults to 5% of a changed step count."""
    if "steps" in changes and "warmup_steps" not in changes:
        steps = changes["steps"]
        if isinstance(steps, int) and steps >= 1:
            changes = dict(changes, warmup_steps=max(1, steps // 20) if steps > 1 else 0)
    if "warmup_steps" in changes and isinstance(changes["warmup_steps"], int):
        steps = changes.get("steps", base.steps)
        if isinstance(steps, int) and changes["warmup_steps"] > steps:
            raise ConfigError(f"--warmup {changes['warmup_steps']} exceeds --steps {steps}; expected warm-up <= steps")
    return base.with_changes(**changes)


def resume_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = training_changes(args)
    fixed = sorted(k for k in changes if k not in RESUMABLE_CHANGES)
    if fixed:
        flags = ", ".join("--" + k.replace("_", "-").replace("warmup-steps", "warmup") for k in fixed)
        raise ConfigError(
            f"{flags} cannot change when resuming (the run continues with the settings it was started with); "
            f"changeable: {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES)}"
        )
    return changes


def setup_backend(args: argparse.Namespace):
    from transformer_spec.backends import load_backend

    from .distributed import join_hosts_if_asked
    from .steps import require_autodiff

    join_hosts_if_asked(args.backend, getattr(args, "peer_timeout", 300.0))  # JAX across hosts: before any device
    backend = load_backend(args.backend)
    require_autodiff(backend)
    if getattr(args, "compile", False):
        compiling = backend.compiling()
        if compiling is None:
            raise ConfigError(
                f"--compile: backend {backend.name!r} has no compiler (its compile hook runs functions as they are)"
            )
        backend = compiling
    if args.threads is not None:
        if isinstance(args.threads, bool) or args.threads < 1:
            raise ConfigError(f"--threads {args.threads}, expected an integer >= 1")
        backend.set_threads(args.threads)
    return backend


def report(result, what: str) -> None:
    """The closing lines of a run."""
    line = f"{what}: {result.step} steps, {result.seconds:.1f} s of steps this session, {result.tokens_per_second:,.0f} tokens/s"
    if result.losses:
        line += f"; last loss {result.losses[-1]:.4f}"
    if result.evals:
        line += f"; held-out loss {result.evals[-1]['loss']:.4f} (perplexity {result.evals[-1]['perplexity']:.2f})"
    print(line)
    if result.out_dir is not None:
        print(f"saved to {result.out_dir}")


def check_run_paths(args: argparse.Namespace) -> None:
    """``--out`` and ``--resume`` checked before any work starts (see :mod:`transformer_spec.outputs`).

    A new run's folder must be creatable and writable, and may not hold files already unless ``--overwrite``
    is given; a folder holding a run says how to resume it. A run to resume must be in a writable folder, or
    its first save would fail after the work.
    """
    from transformer_spec.outputs import check_output_folder

    from .trainer import TrainingError, existing_run_step

    if args.out:
        out = Path(args.out)
        step = existing_run_step(out) if out.is_dir() else None
        if step is not None and not args.overwrite:
            raise TrainingError(
                f"{out} already holds a training run (step {step}); resume it with --resume {out}, "
                f"or choose another --out (or pass --overwrite to start over)"
            )
        check_output_folder(out, "--out", overwrite=args.overwrite)
    if args.resume and Path(args.resume).is_dir():
        check_output_folder(args.resume, "--resume", overwrite=True)


@contextlib.contextmanager
def quiet_signals() -> Iterator[None]:
    """While active (the commands wrap ``trainer.run()`` and their closing lines in it): SIGINT or SIGTERM outside
    the trainer's own handling ends the process at once, with one line and status 128 + the signal's number.

    The trainer installs its save-then-stop handlers while it trains and restores these afterwards, so a second
    Ctrl-C landing between the end of training and the exit is quiet too, never a KeyboardInterrupt traceback.
    On leaving (an in-process caller, such as a test), the previous handlers come back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        try:
            sys.stdout.flush()
            sys.stderr.write(f"\n{signal.Signals(signum).name}: stopped at once\n")
            sys.stderr.flush()
        finally:
            os._exit(128 + signum)

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def interrupted(result, command: str, quiet: bool = False) -> int:
    """The closing line of a run stopped by a signal; the exit status a shell expects (130 for SIGINT, 143 for SIGTERM).

    ``quiet``: no line (the data-parallel ranks other than 0, whose rank 0 says it)."""
    from .trainer import SIGNAL_EXIT_STATUS

    where = result.out_dir
    what = "SIGTERM" if result.signal == "SIGTERM" else "interrupted"
    if not quiet:
        print(
            f"{what}: stopped after step {result.step}; saved to {where}; continue with: tspec {command} --resume {where}",
            file=sys.stderr,
        )
    status = SIGNAL_EXIT_STATUS.get(result.signal or "SIGINT", 130)
    if result.signal is not None:
        # A signal asked the process to end, and everything is saved (committed and fsynced). Leave now: the
        # interpreter's clean-up (library atexit hooks, after which Python restores the default handlers) takes a
        # while, and a second Ctrl-C landing there would kill the process by SIGINT or print a KeyboardInterrupt
        # traceback instead of exiting quietly with this status.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def run_to_the_end(trainer, parallel, command: str, what: str) -> int:
    """The closing of ``train`` and ``finetune``: train, report on rank 0, end quietly after an interrupt."""
    with quiet_signals():  # a second Ctrl-C after training, before the exit, ends quietly too
        result = trainer.run()
        if result.stopped == "interrupted":
            return interrupted(result, command, quiet=parallel is not None and parallel.rank > 0)
        if parallel is None or parallel.rank == 0:
            report(result, what)
    if parallel is not None:
        parallel.close()
    return 0


def resume_run(args: argparse.Namespace, command: str, what: str) -> int:
    """``--resume DIR`` of ``train`` and ``finetune``: checked before any work, then launched over ``--nproc``
    processes or run here to the end (any number of processes may resume a run)."""
    from .distributed import launch
    from .pipeline import resume

    changes = resume_changes(args)
    check_parallel_batch(args, saved_global_batch(args.resume), resuming=True)
    if args.nproc is not None:
        return launch(args.nproc, args.peer_timeout)
    backend = setup_backend(args)
    parallel = setup_parallel(args, backend)
    trainer = resume(
        backend,
        args.resume,
        engine=args.engine,
        compile=args.compile,
        changes=changes,
        progress=not args.quiet,
        parallel=parallel,
    )
    return run_to_the_end(trainer, parallel, command, what)
