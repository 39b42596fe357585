"""Checkpoints survive the worst moments: kill -9 during a save, SIGTERM, a second Ctrl-C.

* In process: a trainer's save is cut (a copy of the folder taken) before every
  rename, replace, unlink and rmdir; every copy must load and resume, from the
  step of the last save that reached its commit point.
* As a user meets it: a real training process that saves every step is killed
  with SIGKILL at random moments (half of them just as a save's scratch folder
  appears), repeatedly within a fixed time budget; every folder must load, hold
  weights and state of one step, and resume.
* SIGTERM saves and exits with 143; a second signal exits with 130 at once; no
  traceback either way.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from transformer_spec.checkpoint import COMMIT_DIR, SCRATCH_PREFIX, load_checkpoint
from transformer_spec.train.config import SMOKE, TrainConfig

torch = pytest.importorskip("torch")

from transformer_spec.backends import load_backend  # noqa: E402
from transformer_spec.train.pipeline import pretraining_documents, resume, start_pretraining, train_tokenizer  # noqa: E402
from transformer_spec.train.trainer import LEGACY_SCRATCH_FILES, OPTIMIZER_FILE, STATE_FILE  # noqa: E402

from .conftest import ROOT  # noqa: E402
from .test_bad_input import cli  # noqa: E402

CORPUS = {"kind": "corpus", "seed": 0, "documents": 40, "held_out_seed": 7, "held_out_documents": 4}
TRAIN_COMMAND = ["train", "--preset", "smoke", "--documents", "40", "--eval-batches", "1", "--threads", "1"]
KILL_BUDGET_SECONDS = 30.0  # the subprocess test stops starting new tries after this
KILL_TRIES = 12
MIN_KILL_TRIES = 4
STEP_LINE = re.compile(r"step (\d+)/\d+ ")  # a whole progress line (the kill may cut the last one short)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scratch_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(SCRATCH_PREFIX) or p.name == COMMIT_DIR)


def _state_step(folder: Path) -> int:
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["step"]


# ---------------------------------------------------------------------- every moment of one save, in process


def test_a_trainer_save_cut_anywhere_resumes_from_the_last_committed_step(tmp_path):
    backend = load_backend("torch")
    documents, _ = pretraining_documents(CORPUS)
    tokenizer = train_tokenizer(documents, 300)
    model = replace(SMOKE.model, vocab_size=tokenizer.vocab_size)
    config = TrainConfig.create(steps=6, batch_size=2, context_length=32, lr=1e-2, eval_batches=1, log_every=100)
    run = tmp_path / "run"
    trainer = start_pretraining(backend, model, tokenizer, config, CORPUS, out_dir=run, progress=False)
    trainer.on_step = lambda t, _: t.request_stop() if t.step == 2 else None
    assert trainer.run().step == 2  # a complete save of step 2
    trainer.on_step = None
    trainer._stop_requested = False
    # One more step by hand, then its save, with the folder copied before every change to it.
    ids, targets = trainer.source.next_batch(trainer.rng, config)
    trainer.engine.step(ids, targets, 3)
    trainer.step = 3
    cuts: list[Path] = []

    def snapshot() -> None:
        cut = tmp_path / f"cut{len(cuts):03d}"
        shutil.copytree(run, cut)
        cuts.append(cut)

    real = {name: getattr(os, name) for name in ("rename", "replace", "unlink", "rmdir")}
    patched = {name: (lambda *a, _real=fn, **k: (snapshot(), _real(*a, **k))[1]) for name, fn in real.items()}
    for name, fn in patched.items():
        setattr(os, name, fn)
    try:
        trainer.save()
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
    snapshot()
    assert len(cuts) >= 12
    committed = False  # once a copy shows step 3, every later copy must too: the commit point was passed
    for cut in cuts:
        step = load_checkpoint(cut).metadata["step"]
        assert step == _state_step(cut), cut.name  # weights and trainer state from one save
        assert step in (2, 3), cut.name
        committed = committed or step == 3
        assert step == (3 if committed else 2), cut.name
        resumed = resume(backend, cut, progress=False, changes={"steps": step + 1})
        assert resumed.run().step == step + 1, cut.name
        assert _scratch_names(cut) == [], cut.name  # scratch of the cut save is gone after the restart
    assert committed


def test_legacy_scratch_files_are_removed_on_resume(tmp_path):
    run = tmp_path / "run"
    code, _, stderr = cli(*TRAIN_COMMAND, "--out", str(run), "--steps", "2", "--quiet")
    assert code == 0, stderr
    for name in LEGACY_SCRATCH_FILES:
        (run / name).write_bytes(b"left by a killed save")
    (run / (SCRATCH_PREFIX + "dead")).mkdir()
    code, _, stderr = cli("train", "--resume", str(run), "--steps", "3", "--quiet", "--threads", "1")
    assert code == 0, stderr
    assert not any((run / name).exists() for name in LEGACY_SCRATCH_FILES)
    assert _scratch_names(run) == []
    assert _state_step(run) == 3 and (run / OPTIMIZER_FILE).is_file()


# ---------------------------------------------------------------------- the real thing: kill -9 at random moments


def _start_training(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "transformer_spec.cli", *TRAIN_COMMAND, "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _collect(stream, lines: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    thread.start()
    return thread


def _wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "training ended before the test could interrupt it"
        assert time.monotonic() < deadline, "training did not start in time"
        time.sleep(0.002)


@pytest.mark.slow
def test_kill_9_during_saves_always_leaves_a_resumable_run(tmp_path):
    rng = random.Random(1234)
    started = time.monotonic()
    tries, mid_save = 0, 0
    while tries < KILL_TRIES and (tries < MIN_KILL_TRIES or time.monotonic() - started < KILL_BUDGET_SECONDS):
        run = tmp_path / f"run{tries}"
        process = _start_training(run, "--steps", "100000", "--checkpoint-every", "1", "--log-every", "1")
        lines: list[str] = []
        reader = _collect(process.stderr, lines)
        _wait_for(lambda: (run / STATE_FILE).is_file(), process)  # the first save is complete
        if tries % 2 == 0:
            time.sleep(rng.uniform(0.0, 0.25))  # anywhere in the step/save cycle
        else:  # inside a save: as soon as its scratch folder (or its commit) shows, plus a random moment
            _wait_for(lambda: _scratch_names(run), process)
            time.sleep(rng.uniform(0.0, 0.003))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        reader.join(timeout=10)
        process.stdout.close()
        process.stderr.close()
        mid_save += bool(_scratch_names(run))
        printed = [int(match.group(1)) for match in map(STEP_LINE.match, lines) if match]
        checkpoint = load_checkpoint(run)  # completes a commit the kill cut short
        step = checkpoint.metadata["step"]
        assert step == _state_step(run), (tries, lines[-3:])
        if printed:  # a step is printed before its save: at most that one save can be lost
            assert step >= printed[-1] - 1, (tries, step, printed[-1])
        code, _, stderr = cli("train", "--resume", str(run), "--steps", str(step + 1), "--quiet", "--threads", "1")
        assert code == 0, (tries, stderr)
        assert _state_step(run) == step + 1 and _scratch_names(run) == []
        tries += 1
    elapsed = time.monotonic() - started
    print(f"\nkill -9 during saves: {tries} tries in {elapsed:.1f} s, {mid_save} landed inside a save, all {tries} resumed")
    assert tries >= MIN_KILL_TRIES
    assert mid_save >= 1  # the test did reach the moments it is about


# ---------------------------------------------------------------------- SIGTERM and a second signal


@pytest.mark.slow
def test_sigterm_saves_says_where_and_exits_143(tmp_path):
    run = tmp_path / "run"
    process = _start_training(run, "--steps", "100000", "--log-every", "1")
    for line in process.stderr:
        if line.startswith("step "):
            break
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert f"saved to {run}" in stderr and f"--resume {run}" in stderr
    step = _state_step(run)
    assert step >= 1 and load_checkpoint(run).metadata["step"] == step
    code, _, stderr = cli("train", "--resume", str(run), "--steps", str(step + 1), "--quiet", "--threads", "1")
    assert code == 0, stderr


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.0, 0.003, 0.02, 0.1])
def test_a_second_interrupt_exits_130_quietly_and_keeps_a_loadable_run(tmp_path, gap):
    run = tmp_path / "run"
    process = _start_training(run, "--steps", "100000", "--log-every", "1", "--checkpoint-every", "1")
    _wait_for(lambda: (run / STATE_FILE).is_file(), process)  # a first save is complete (stderr fills its pipe meanwhile)
    process.send_signal(signal.SIGINT)
    time.sleep(gap)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert load_checkpoint(run).metadata["step"] == _state_step(run)
