"""The training loop: batches → steps → periodic evaluation and checkpoints; resume; NaN and Ctrl-C handling.

A run folder is a loadable checkpoint (:func:`transformer_spec.checkpoint.save_checkpoint`:
``model.safetensors``, ``config.json``, the tokenizer) plus the state needed to
continue exactly where it stopped:

``optimizer.safetensors``  AdamW's first and second moments (``m.<name>``, ``v.<name>``)
``trainer_state.json``     step, the batch generator's state, the data order, the
                           training config, how the data was made, and the loss history

Resuming restores all of it, so a run interrupted at step k and resumed gives
the same losses, step for step, as a run that was never interrupted (on the
same backend and engine).

Guarantees
----------
* A step whose loss or gradient norm is not finite is never applied and never
  saved: training stops with :class:`TrainingDivergedError` naming the step,
  and the last checkpoint in the folder (the last good one) is left as it was.
* Ctrl-C (SIGINT) or SIGTERM (what ``timeout`` and job schedulers send)
  finishes the current step, saves a checkpoint, and returns with
  ``stopped = "interrupted"`` and the signal's name; a second signal ends the
  process at once (exit status 130), leaving the last complete checkpoint.
* Saves are atomic (:func:`transformer_spec.checkpoint.commit_folder`): the
  weights, the optimizer state and the trainer state of one step are committed
  together, so after ``kill -9`` at any moment the folder loads and resumes from
  the last complete save. Scratch left by a killed save is removed when a run
  starts or resumes in the folder.
* A run never overwrites a different run's folder silently: starting a new
  run in a folder that holds one is an error unless ``overwrite`` is set.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, SpecError

from .config import TrainConfig
from .data import ExampleBatches, TokenStream, check_batch_shape
from .steps import Engine, make_engine, require_autodiff

OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
STATE_VERSION = 1
# Scratch files of saves before saves were atomic; removed when a run starts or resumes in the folder.
LEGACY_SCRATCH_FILES = (OPTIMIZER_FILE + ".tmp", STATE_FILE + ".tmp")
# Exit statuses of a run stopped by a signal: 128 + the signal's number, as a shell reports it.
SIGNAL_EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}


class TrainingError(SpecError):
    """Training cannot start or continue; the message says why and what to do."""


class TrainingDivergedError(TrainingError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


# ---------------------------------------------------------------------- batch sources


class StreamSource:
    """Pretraining batches: random windows of a token stream; evaluation on fixed windows of another."""

    kind = "stream"

    def __init__(self, train: TokenStream, held_out: TokenStream | None) -> None:
        self.train = train
        self.held_out = held_out

    def check(self, config: TrainConfig) -> None:
        self.train.check_fits(config.context_length)
        if self.held_out is not None:
            self.held_out.check_fits(config.context_length)

    def next_batch(self, rng: np.random.Generator, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
        return self.train.sample_batch(rng, config.batch_size, config.context_length)

    def eval_batches(self, config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.held_out is None:
            return []
        return self.held_out.fixed_batches(config.batch_size, config.context_length, config.eval_batches)

    def state(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        pass


class ExampleSource:
    """Fine-tuning batches: shuffled epochs of (prompt, response) examples, loss on the responses only.

    With ``replay`` (a stream of pretraining text) and ``replay_rows > 0``, every batch also gets that many
    windows of pretraining text, scored on every token, after its examples (the same length as the padded
    examples). Rehearsing the pretraining text keeps what the model learned there — in particular the
    capitals of countries no fine-tuning example mentions, whose tokens the fine-tuning loss alone would
    push down — while it learns the answering format.
    """

    kind = "examples"

    def __init__(
        self, train: ExampleBatches, held_out: ExampleBatches | None, replay: TokenStream | None = None, replay_rows: int = 0
    ) -> None:
        if isinstance(replay_rows, bool) or not isinstance(replay_rows, int) or replay_rows < 0:
            raise ConfigError(f"replay rows = {replay_rows!r}, expected an integer >= 0")
        if replay_rows and replay is None:
            raise ConfigError("replay rows > 0 need a replay text (pretraining data)")
        self.train = train
        self.held_out = held_out
        self.replay = replay
        self.replay_rows = replay_rows

    def check(self, config: TrainConfig) -> None:
        if self.replay_rows:
            self.replay.check_fits(config.context_length)

    def next_batch(self, rng: np.random.Generator, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
        ids, targets = self.train.next_batch(rng, config.batch_size)  # (B, L) each
        if not self.replay_rows:
            return ids, targets
        replay_ids, replay_targets = self.replay.sample_batch(rng, self.replay_rows, ids.shape[1])  # (R, L) each
        return np.concatenate([ids, replay_ids]), np.concatenate([targets, replay_targets])  # (B + R, L)

    def eval_batches(self, config: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.held_out is None:
            return []
        return self.held_out.fixed_batches(config.batch_size, config.eval_batches)

    def state(self) -> Any:
        return self.train.state()

    def restore(self, state: Any) -> None:
        self.train.restore(state or [])


# ---------------------------------------------------------------------- progress


class Progress:
    """A tqdm bar on a terminal (when tqdm is installed); otherwise a plain line every ``log_every`` steps."""

    def __init__(self, total: int, start: int, log_every: int, enabled: bool = True, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.log_every, self.enabled = total, log_every, enabled
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=start, file=self.stream, unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float, lr: float, tokens_per_second: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}  lr {lr:.2e}  {tokens_per_second:,.0f} tok/s", refresh=False)
            self.bar.update(1)
        elif step % self.log_every == 0 or step == self.total:
            print(
                f"step {step}/{self.total}  loss {loss:.4f}  lr {lr:.2e}  {tokens_per_second:,.0f} tok/s",
                file=self.stream,
                flush=True,
            )

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------- the result


@dataclass
class TrainResult:
    step: int  # the last completed step
    stopped: str  # "finished" or "interrupted"
    losses: list[float]  # training loss of every step of this and earlier sessions of the run
    evals: list[dict[str, float]]  # {"step", "loss", "perplexity"} per evaluation
    seconds: float  # wall time of this session's steps
    tokens: int  # positions processed in this session (batch size x sequence length per step)
    out_dir: Path | None
    signal: str | None = None  # "SIGINT" or "SIGTERM" when a signal stopped the run

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------- the trainer


@dataclass
class Trainer:
    """One training run (pretraining or fine-tuning): ``run()`` trains to ``config.steps``.

    Build one with :meth:`start` (new run) or :meth:`resume` (from a run folder).
    """

    backend: Any
    model_config: ModelConfig
    tokenizer: Any
    config: TrainConfig
    source: Any  # StreamSource or ExampleSource
    engine: Engine
    rng: np.random.Generator
    out_dir: Path | None = None
    step: int = 0
    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # written into config.json (stage, data description, ...)
    data_spec: dict[str, Any] = field(default_factory=dict)  # how the command rebuilds the data on resume
    progress: bool = True
    last_saved_step: int | None = None
    on_step: Callable[[Trainer, Any], None] | None = None  # called after every applied step (tests, benchmarks)
    parallel: Any = None  # a data-parallel group (backend's data_parallel hook): rank 0 writes, all stop together
    _stop_requested: bool = False
    _stop_signal: str | None = None  # the signal that asked for the stop, if one did

    # ------------------------------------------------------------------ construction
    @classmethod
    def start(
        cls,
        backend,
        model_config: ModelConfig,
        tokenizer,
        params: dict[str, np.ndarray],
        config: TrainConfig,
        source,
        *,
        out_dir: str | Path | None = None,
        engine: str = "auto",
        compile: bool = False,
        metadata: dict[str, Any] | None = None,
        data_spec: dict[str, Any] | None = None,
        overwrite: bool = False,
        progress: bool = True,
        parallel: Any = None,
    ) -> Trainer:
        require_autodiff(backend)
        check_batch_shape(config.batch_size, config.context_length, model_config.context_length)
        _check_parallel_rows(parallel, source, config)
        if tokenizer.vocab_size > model_config.vocab_size:
            raise TrainingError(
                f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is {model_config.vocab_size}; "
                f"expected vocab_size >= the tokenizer's"
            )
        source.check(config)
        out = None if out_dir is None else Path(out_dir)
        if out is not None and _writes(parallel):
            recover_run_folder(out)  # a save cut short earlier is completed (or its scratch removed) before we look
        if out is not None and (out / STATE_FILE).exists() and not overwrite:
            step = _read_state(out).get("step", "?")
            raise TrainingError(
                f"{out} already holds a training run (step {step}); resume it with --resume {out}, "
                f"or choose another --out (or pass --overwrite to start over)"
            )
        eng = make_engine(engine, backend, model_config, config.optimizer, params, compile=compile, parallel=parallel)
        if out is not None and overwrite and _writes(parallel):  # starting over: the old state must not be resumable
            for name in (STATE_FILE, OPTIMIZER_FILE):
                if (out / name).exists():
                    (out / name).unlink()
        rng = np.random.Generator(np.random.PCG64(config.seed))
        return cls(
            backend,
            model_config,
            tokenizer,
            config,
            source,
            eng,
            rng,
            out,
            metadata=dict(metadata or {}),
            data_spec=dict(data_spec or {}),
            progress=progress,
            parallel=parallel,
        )

    @classmethod
    def resume(
        cls,
        backend,
        run_dir: str | Path,
        source_factory: Callable[[dict[str, Any], Any, TrainConfig], Any],
        *,
        engine: str = "auto",
        compile: bool = False,
        changes: dict[str, Any] | None = None,
        progress: bool = True,
        parallel: Any = None,
    ) -> Trainer:
        """Continue the run in ``run_dir`` (with any number of processes: the batch order is global).
        ``source_factory(data_spec, tokenizer, config)`` rebuilds its data;
        ``changes`` (e.g. ``{"steps": 2000, "lr": 1e-3}``) adjusts the training config."""
        from transformer_spec.checkpoint import load_checkpoint

        require_autodiff(backend)
        run_dir = Path(run_dir)
        if _writes(parallel):
            recover_run_folder(run_dir)
        if parallel is not None:
            parallel.barrier()  # the other ranks read the folder after rank 0 has completed any save cut short
        state = _read_state(run_dir)
        checkpoint = load_checkpoint(run_dir)
        if checkpoint.metadata.get("step") != state["step"]:
            raise TrainingError(
                f"{run_dir}: the weights are from step {checkpoint.metadata.get('step')} but {STATE_FILE} says step "
                f"{state['step']}; the folder was changed by hand or a save was cut short — expected both from one save"
            )
        config = TrainConfig.from_dict(state["config"])
        if changes:
            config = config.with_changes(**changes)
        if state["step"] >= config.steps:
            raise TrainingError(
                f"{run_dir}: the run has already done {state['step']} of {config.steps} steps; "
                f"pass --steps N with N > {state['step']} to train further"
            )
        source = source_factory(state.get("data", {}), checkpoint.tokenizer, config)
        source.check(config)
        source.restore(state.get("source"))
        _check_parallel_rows(parallel, source, config)
        moments = _read_moments(run_dir / OPTIMIZER_FILE, checkpoint.params)
        eng = make_engine(
            engine,
            backend,
            checkpoint.config,
            config.optimizer,
            dict(checkpoint.params),
            moments,
            compile=compile,
            parallel=parallel,
        )
        rng = np.random.Generator(np.random.PCG64(config.seed))
        rng.bit_generator.state = state["rng"]
        metadata = {k: v for k, v in checkpoint.metadata.items() if k not in ("step",)}
        trainer = cls(
            backend,
            checkpoint.config,
            checkpoint.tokenizer,
            config,
            source,
            eng,
            rng,
            run_dir,
            step=state["step"],
            losses=list(state.get("losses", [])),
            evals=list(state.get("evals", [])),
            metadata=metadata,
            data_spec=dict(state.get("data", {})),
            progress=progress,
            last_saved_step=state["step"],
            parallel=parallel,
        )
        return trainer

    # ------------------------------------------------------------------ running
    def request_stop(self, signal_name: str | None = None) -> None:
        """Finish the current step, save, and return (what Ctrl-C and SIGTERM do)."""
        self._stop_requested = True
        self._stop_signal = signal_name

    def _stop_agreed(self) -> bool:
        """Whether to stop before the next step: asked here, or (data-parallel) on any process — every process
        answers the same at the same step, so none is left waiting in a collective for the others."""
        if self.parallel is None:
            return self._stop_requested
        if self.parallel.any(self._stop_requested):
            self._stop_requested = True
            return True
        return False

    def evaluate(self) -> dict[str, float] | None:
        batches = self.source.eval_batches(self.config)
        if not batches:
            return None
        total, count = 0.0, 0
        for ids, targets in batches:
            loss, n = self.engine.loss(ids, targets)
            total += loss * n
            count += n
        loss = total / max(count, 1)
        return {"step": self.step, "loss": loss, "perplexity": math.exp(min(loss, 700.0))}

    def run(self) -> TrainResult:
        config = self.config
        progress = Progress(config.steps, self.step, config.log_every, self.progress and _writes(self.parallel))
        tokens = 0
        seconds = 0.0
        stopped = "finished"
        with _signals_request_stop(self):
            try:
                while self.step < config.steps:
                    if self._stop_agreed():
                        stopped = "interrupted"
                        break
                    ids, targets = self.source.next_batch(self.rng, config)
                    started = time.perf_counter()
                    result = self.engine.step(ids, targets, self.step + 1)
                    elapsed = time.perf_counter() - started
                    if not result.applied:
                        self._diverged(result)
                    self.step += 1
                    seconds += elapsed
                    tokens += ids.size
                    self.losses.append(result.loss)
                    progress.update(self.step, result.loss, result.lr, tokens / seconds if seconds > 0 else 0.0)
                    if self.on_step is not None:
                        self.on_step(self, result)
                    if config.eval_every and self.step % config.eval_every == 0 and self.step < config.steps:
                        self._evaluate_and_report(progress)
                    if config.checkpoint_every and self.step % config.checkpoint_every == 0 and self.step < config.steps:
                        self.save()
                if stopped == "finished":
                    self._evaluate_and_report(progress)
                self.save()
                if stopped == "interrupted":
                    where = f"; saved to {self.out_dir}" if self.out_dir is not None else ""
                    progress.message(f"interrupted after step {self.step}{where}")
            finally:
                progress.close()
        signal_name = self._stop_signal if stopped == "interrupted" else None
        return TrainResult(self.step, stopped, list(self.losses), list(self.evals), seconds, tokens, self.out_dir, signal_name)

    def _evaluate_and_report(self, progress: Progress) -> None:
        evaluation = self.evaluate()
        if evaluation is not None:
            self.evals.append(evaluation)
            progress.message(
                f"eval at step {self.step}: held-out loss {evaluation['loss']:.4f} (perplexity {evaluation['perplexity']:.2f})"
            )

    def _diverged(self, result) -> None:
        what = "loss" if not math.isfinite(result.loss) else "gradient norm"
        value = result.loss if what == "loss" else result.grad_norm
        if self.out_dir is not None and self.last_saved_step is not None:
            kept = (
                f"the last good checkpoint (step {self.last_saved_step}) is kept in {self.out_dir}; "
                f"resume from it with a lower learning rate: --resume {self.out_dir} --lr {result.lr / 10:.1e}"
            )
        else:
            kept = "no checkpoint had been saved yet (nothing was written); start again with a lower --lr"
        raise TrainingDivergedError(
            f"the {what} became {value} at step {self.step + 1} (learning rate {result.lr:.2e}); training stopped "
            f"without applying that step: {kept}"
        )

    # ------------------------------------------------------------------ saving
    def save(self) -> Path | None:
        """Write the model (loadable checkpoint) and the optimizer and trainer state into ``out_dir``."""
        if self.out_dir is None:
            return None
        if not _writes(self.parallel):  # data-parallel: rank 0 writes; the weights are the same on every rank
            self.last_saved_step = self.step
            return self.out_dir
        from safetensors.numpy import save

        from transformer_spec.checkpoint import save_checkpoint

        out = self.out_dir
        params = self.engine.params_numpy()
        m, v = self.engine.moments_numpy()
        metadata = dict(self.metadata)
        metadata.update({"trained": True, "step": self.step, "train_config": self.config.to_dict()})
        if self.evals:
            metadata["last_eval"] = self.evals[-1]
        moments = {f"m.{n}": a for n, a in m.items()} | {f"v.{n}": a for n, a in v.items()}
        state = {
            "version": STATE_VERSION,
            "step": self.step,
            "rng": self.rng.bit_generator.state,
            "source": self.source.state(),
            "config": self.config.to_dict(),
            "data": self.data_spec,
            "losses": self.losses,
            "evals": self.evals,
            "backend": self.backend.name,
            "engine": self.engine.name,
        }
        # One commit: weights, optimizer moments and the state naming the step are never from two different steps.
        extra = {
            OPTIMIZER_FILE: save({k: np.ascontiguousarray(a) for k, a in moments.items()}),
            STATE_FILE: (json.dumps(state, indent=1) + "\n").encode("utf-8"),
        }
        save_checkpoint(out, self.model_config, params, self.tokenizer, metadata, extra_files=extra)
        self.last_saved_step = self.step
        return out


def _writes(parallel) -> bool:
    """Whether this process writes checkpoints and progress: always alone, rank 0 of a data-parallel group."""
    return parallel is None or parallel.rank == 0


def _check_parallel_rows(parallel, source, config: TrainConfig) -> None:
    """Before any work: the global batch (fine-tuning: plus its replay rows) must split evenly over the group."""
    if parallel is not None:
        parallel.check_rows(config.batch_size + int(getattr(source, "replay_rows", 0)), "the global batch (--batch-size)")


def recover_run_folder(run_dir: Path) -> list[str]:
    """Complete a save cut short in ``run_dir`` and remove scratch of killed saves; the names removed."""
    from transformer_spec.checkpoint import recover_folder

    removed = recover_folder(run_dir)
    for name in LEGACY_SCRATCH_FILES:
        if (run_dir / name).is_file():
            (run_dir / name).unlink()
            removed.append(name)
    return removed


def existing_run_step(run_dir: Path) -> int | str | None:
    """The step of the training run saved in ``run_dir`` ("?" if its state is unreadable), or None if there is none."""
    from transformer_spec.checkpoint import COMMIT_DIR

    for folder in (run_dir / COMMIT_DIR, run_dir):  # a save cut short while being moved into place is the newer one
        if (folder / STATE_FILE).is_file():
            try:
                return _read_state(folder)["step"]
            except TrainingError:
                return "?"  # a run is there even if its state cannot be read
    return None


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_FILE
    if not path.is_file():
        raise TrainingError(
            f"{run_dir}: no {STATE_FILE}; expected a folder written by tspec train / tspec finetune "
            f"(a plain checkpoint holds no optimizer state to resume from — use it with --init instead)"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TrainingError(f"{path}: malformed ({error}); expected the JSON written by the trainer") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "step" not in state or "rng" not in state:
        raise TrainingError(f"{path}: not a version-{STATE_VERSION} trainer state (missing step / rng)")
    return state


def _read_moments(path: Path, params) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        raise TrainingError(f"{path}: missing; expected the optimizer state saved with the run")
    try:
        arrays = load_file(str(path))
    except SafetensorError as error:
        raise TrainingError(f"{path}: unreadable ({error}); expected the optimizer state saved with the run") from None
    m, v = {}, {}
    for name, p in params.items():
        for prefix, target in (("m.", m), ("v.", v)):
            key = prefix + name
            if key not in arrays or arrays[key].shape != p.shape:
                raise TrainingError(f"{path}: {key!r} is missing or has the wrong shape; expected moments for every parameter")
            target[name] = arrays[key].astype(p.dtype)
    return m, v


class _signals_request_stop:
    """While active (main thread only), SIGINT or SIGTERM asks the trainer to stop after its step and save.

    A second signal ends the process at once with exit status 130 and one line: no traceback from whatever
    library code it lands in (or from interpreter clean-up at exit). The atomic saves make this safe: the folder
    keeps its last complete checkpoint even if the save in progress is abandoned.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.trainer._stop_requested:
            trainer = self.trainer
            kept = ""
            if trainer.out_dir is not None:
                kept = (
                    f"; the last complete checkpoint (step {trainer.last_saved_step}) in {trainer.out_dir} is kept"
                    if trainer.last_saved_step is not None
                    else "; no checkpoint had been saved yet"
                )
            try:
                sys.stdout.flush()
                sys.stderr.write(f"\n{name} again: stopped at once, without saving{kept}\n")
                sys.stderr.flush()
            finally:
                os._exit(SIGNAL_EXIT_STATUS["SIGINT"])
        self.trainer.request_stop(name)
        what = "Ctrl-C" if name == "SIGINT" else name
        if _writes(self.trainer.parallel):  # data-parallel: rank 0 speaks for all
            print(
                f"\n{what}: finishing this step and saving a checkpoint (send it again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for number, previous in self.previous.items():
            signal.signal(number, previous)
