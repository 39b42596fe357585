"""Data-parallel training computes what one process computes: PyTorch on 2 processes (gloo), JAX on 2 devices.

The promise (docs/guides/distributed.md): at the same global batch and seed, a
short run split over 2 processes (or devices) gives the same per-step losses and
final weights as one process, up to the ``("float32", "data_parallel")`` row of
the tolerance table (the order of float32 additions differs). A distributed run
interrupted and resumed on the same number of processes equals the uninterrupted
run exactly; resumed on another number, within the row. One rank dying or
hanging stops the others with a clear message in bounded time, and a world size
that does not divide the global batch is refused before any work.

Tiny model (d_model 16, one layer), batch 4, 6 steps: the whole module takes
well under a minute of a shared 2-core machine, most of it process start-up and
JAX compilation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from transformer_spec.spec.tolerances import tolerance

from .conftest import BACKENDS, ROOT, run_cli

TINY = [
    "train", "--preset", "smoke", "--documents", "60", "--d-model", "16", "--n-layers", "1", "--n-heads", "2",
    "--d-ff", "32", "--model-context", "64", "--context-length", "16", "--batch-size", "4", "--threads", "1",
]  # fmt: skip
STEPS = 6
ENV = {"OMP_NUM_THREADS": "1"}
needs_torch = pytest.mark.skipif("torch" not in BACKENDS, reason="PyTorch is not installed")
needs_jax = pytest.mark.skipif("jax" not in BACKENDS, reason="JAX is not installed")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def within_tolerance(got, expected) -> float:
    """The worst excess over the data-parallel row (<= 0 when every element is within it)."""
    tol = tolerance("float32", "data_parallel")
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected) - (tol.atol + tol.rtol * np.abs(expected)), initial=-1.0))


def run_state(folder: Path) -> tuple[list[float], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    state = json.loads((folder / "trainer_state.json").read_text())
    return state["losses"], {n: a.astype(np.float64) for n, a in load_file(str(folder / "model.safetensors")).items()}


def assert_same_run(a: Path, b: Path, exact: bool = False) -> None:
    losses_a, params_a = run_state(a)
    losses_b, params_b = run_state(b)
    assert len(losses_a) == len(losses_b) == STEPS
    assert sorted(params_a) == sorted(params_b)
    if exact:
        assert losses_a == losses_b
        for name in params_a:
            assert np.array_equal(params_a[name], params_b[name]), name
        return
    assert within_tolerance(losses_b, losses_a) <= 0, (losses_a, losses_b)
    for name in params_a:
        assert within_tolerance(params_b[name], params_a[name]) <= 0, (name, np.abs(params_a[name] - params_b[name]).max())


def tspec(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(*TINY, *args, env=ENV, timeout=timeout)


def tspec_resume(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("train", "--resume", str(folder), "--threads", "1", "--quiet", *args, env=ENV, timeout=120)


class Launched:
    """``tspec train --nproc 2 ...`` in the background, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT), **ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transformer_spec", *TINY, *args],
            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 90, poll: float = 0.02) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, f"exited ({self.process.returncode}) before {text!r}: {''.join(self.lines)}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s: {''.join(self.lines)}"
            time.sleep(poll)

    def rank_pid(self, rank: int, wait: float = 0) -> int:
        """The pid of the child with RANK=rank (the launcher's children, found through /proc)."""
        deadline = time.monotonic() + wait
        while True:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    environ = (entry / "environ").read_bytes().split(b"\0")
                except (OSError, IndexError, ValueError):
                    continue
                if parent == self.process.pid and f"RANK={rank}".encode() in environ:
                    return int(entry.name)
            assert time.monotonic() < deadline, f"no child with RANK={rank}"
            time.sleep(0.05)

    def finish(self, timeout: float) -> tuple[int, str, float]:
        started = time.monotonic()
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.reader.join(5)
        return self.process.returncode, "".join(self.lines), time.monotonic() - started


# ---------------------------------------------------------------------- bad input: before any work


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--nproc", "3"], "does not split evenly over 3 processes"),
        (["--backend", "jax", "--devices", "3"], "does not split evenly over 3 devices"),
        (["--nproc", "0"], "--nproc 0, expected an integer >= 1"),
        (["--devices", "none"], "--devices none: expected an integer >= 1 or 'all'"),
    ],
)
def test_world_size_that_does_not_divide_the_batch_is_refused_before_any_work(tmp_path, args, expected):
    out = tmp_path / "run"
    started = time.monotonic()
    result = tspec("--steps", "2", "--out", str(out), *args, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not out.exists()  # nothing was written, no process was started, no corpus was generated
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------------- the weighting, exactly (float64, one process)


@needs_torch
@pytest.mark.parametrize("scored_rows", [(16, 16, 16, 16), (16, 9, 3, 1), (12, 5, 0, 0)])
def test_parts_weighted_by_scored_targets_give_the_whole_batch_gradient(monkeypatch, scored_rows):
    """What each rank computes, combined as the group combines it, is the single-process loss and gradient of the
    global batch — in float64, to the float64 composite row, also when the parts score very different numbers of
    targets (fine-tuning's masked prompts and padding), or one part scores none."""
    import socket

    import torch
    import torch.distributed as dist

    from transformer_spec.backends import load_backend
    from transformer_spec.backends import model as shared_model
    from transformer_spec.backends.cache import NoCache
    from transformer_spec.backends.torch.parallel import TorchDataParallel
    from transformer_spec.spec.config import ModelConfig
    from transformer_spec.spec.model import init_parameters
    from transformer_spec.train.data import IGNORE_INDEX

    backend = load_backend("torch")
    config = ModelConfig(vocab_size=32, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    params = {n: backend.asarray(p.astype(np.float64), "float64") for n, p in init_parameters(config, 3).items()}
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 32, size=(4, 16))
    targets = rng.integers(0, 32, size=(4, 16))
    for row, scored in enumerate(scored_rows):
        targets[row, : 16 - scored] = IGNORE_INDEX  # the prompt and padding of an example are not scored

    value_and_grad = backend.value_and_grad(
        lambda p, i, t: shared_model.loss(backend.ops, p, config, i, t, NoCache(), IGNORE_INDEX)
    )
    as_torch = lambda a: backend.asarray(a, "int64")  # noqa: E731
    whole_loss, whole_grads = value_and_grad(params, as_torch(ids), as_torch(targets))

    with socket.socket() as probe:  # a real gloo group of one process: combine's packing, all-reduce, unpacking
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    group = TorchDataParallel(backend, timeout=30)
    try:
        group.shards = group.processes = 2  # what ranks 0 and 1 of two would compute, one after the other
        loss, grads = 0.0, {n: 0.0 for n in params}
        for rank in (0, 1):
            group.rank = rank
            part = group.part(4)
            part_loss, part_grads = value_and_grad(params, as_torch(ids[part]), as_torch(targets[part]))
            part_loss, part_grads = group.combine(part_loss, part_grads, group.weight(targets, IGNORE_INDEX))
            loss = loss + part_loss  # the sum the all-reduce of two ranks takes
            grads = {n: grads[n] + part_grads[n] for n in params}
    finally:
        dist.destroy_process_group()
    tol = tolerance("float64", "composite")
    assert abs(float(loss) - float(whole_loss)) <= tol.atol + tol.rtol * abs(float(whole_loss))
    for name in params:
        got, expected = grads[name].numpy(), whole_grads[name].numpy()
        assert np.all(np.abs(got - expected) <= tol.atol + tol.rtol * np.abs(expected).max()), name
    assert isinstance(loss, torch.Tensor)


# ---------------------------------------------------------------------- PyTorch: 2 processes, gloo


def interrupt_after_first_step(folder: Path) -> int:
    """Ctrl-C to a 2-process run while rank 1 is frozen after step 1; the step it stopped and saved at."""
    run = Launched(
        "--steps", str(STEPS), "--log-every", "1", "--checkpoint-every", "1", "--out", str(folder), "--nproc", "2"
    )  # fmt: skip
    rank1 = run.rank_pid(1, wait=30)
    run.wait_for(f"step 1/{STEPS}", poll=0.002)
    os.kill(rank1, signal.SIGSTOP)
    try:
        time.sleep(0.2)
        run.process.send_signal(signal.SIGINT)
        time.sleep(0.2)
    finally:
        os.kill(rank1, signal.SIGCONT)
    status, stderr, _ = run.finish(60)
    state = json.loads((folder / "trainer_state.json").read_text())
    if state["step"] < STEPS:
        assert status == 130, stderr
        assert f"interrupted: stopped after step {state['step']}" in stderr, stderr
    return state["step"]


@pytest.mark.slow
@needs_torch
def test_torch_two_processes_equal_one_and_resume_with_any_number(tmp_path):
    """Pretraining and fine-tuning on 2 processes equal 1 process; an interrupted 2-process run, resumed on 2
    processes, equals the uninterrupted one exactly, and resumed on 1, within the row."""
    steps = ["--steps", str(STEPS), "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert tspec(*steps, "--out", str(one)).returncode == 0
    launched = tspec(*steps, "--out", str(two), "--nproc", "2")
    assert launched.returncode == 0, launched.stderr
    assert_same_run(one, two)

    # Fine-tuning: masked prompts and padding (each half of the batch scores a different number of targets) and
    # replay rows (the global batch is 4 examples + 2 pretraining windows, 3 rows per process).
    tuned = {}
    for name, extra in (("tuned_one", []), ("tuned_two", ["--nproc", "2"])):
        tuned[name] = tmp_path / name
        run = run_cli(
            "finetune", "--checkpoint", str(one), "--out", str(tuned[name]), "--preset", "smoke", "--steps", str(STEPS),
            "--threads", "1", "--quiet", *extra, env=ENV, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    assert_same_run(tuned["tuned_one"], tuned["tuned_two"])

    # Interrupt a 2-process run: rank 1 is frozen after step 1 (rank 0 is saving step 1's checkpoint, then waits in
    # step 2's all-reduce), Ctrl-C reaches the launcher, which passes it on; rank 1 goes on, and both agree to stop
    # after the same early step. A step takes milliseconds, so on a loaded machine the freeze can come too late:
    # then the run finishes, and the test tries again (three times at most).
    for attempt in range(3):
        interrupted = tmp_path / f"interrupted{attempt}"
        stopped_at = interrupt_after_first_step(interrupted)
        if stopped_at < STEPS:
            break
    assert 1 <= stopped_at < STEPS, "three tries, and the interruption never landed before the last step"
    copy = tmp_path / "copy"
    shutil.copytree(interrupted, copy)

    resumed = tspec_resume(interrupted, "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(two, interrupted, exact=True)  # same number of processes: the same additions, bit for bit

    resumed = tspec_resume(copy)  # a 2-process checkpoint, continued by one process
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(one, copy)
    assert_same_run(two, copy)


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("failure", ["killed", "hung"])
def test_torch_one_rank_fails_the_others_stop_in_bounded_time(tmp_path, failure):
    """kill -9 of rank 1 (its peer sees the connection drop at once), or SIGSTOP (rank 0's all-reduce times out)."""
    timeout = 3
    run = Launched(
        "--steps", "100000", "--log-every", "1", "--peer-timeout", str(timeout), "--out", str(tmp_path / "r"), "--nproc", "2"
    )
    run.wait_for("step 2/")
    rank1 = run.rank_pid(1)
    os.kill(rank1, signal.SIGKILL if failure == "killed" else signal.SIGSTOP)
    status, stderr, seconds = run.finish(60)
    assert status != 0, stderr
    assert "rank 0 of 2: lost the other processes during" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    if failure == "killed":
        assert seconds < timeout + 10, stderr
    else:  # rank 0 gives up after the timeout; the launcher ends the frozen rank a grace period later
        assert "did not stop within" in stderr, stderr
        assert seconds < timeout + 20, stderr


# ---------------------------------------------------------------------- JAX: 2 virtual devices, one process


@pytest.mark.slow
@needs_jax
def test_jax_two_devices_and_two_hosts_equal_one_and_resume_with_any_number(tmp_path):
    """One process with 2 virtual devices (one device, two devices, interrupted and resumed on two and on one), and
    at the same time two processes as two hosts (jax.distributed, gloo between them, one CPU device each)."""
    helper = [sys.executable, str(ROOT / "tests" / "_jax_data_parallel.py")]
    base = {**os.environ, "PYTHONPATH": str(ROOT), "TSPEC_TEST_STEPS": str(STEPS), **ENV}
    base.pop("XLA_FLAGS", None)
    port = free_port()
    processes = [
        subprocess.Popen(
            [*helper, "hosts", str(tmp_path / "hosts")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={
                **base, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(process_id), "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            },
        )
        for process_id in (0, 1)
    ]  # fmt: skip
    processes.append(
        subprocess.Popen(
            helper,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        )  # fmt: skip
    )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in processes] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    runs = json.loads(outputs[2][0].strip().splitlines()[-1])
    assert runs["shards"] == 2
    assert runs["interrupted"]["stopped"] == "interrupted" and len(runs["interrupted"]["losses"]) == 3
    hosts = json.loads(outputs[0][0].strip().splitlines()[-1])
    assert hosts["processes"] == 2 and hosts["shards"] == 2
    assert not [line for line in outputs[1][0].splitlines() if line.startswith("{")]  # process 0 reports, not 1
    runs["hosts"] = hosts["hosts"]

    def same(a: str, b: str, exact: bool = False) -> None:
        A, B = runs[a], runs[b]
        assert A["stopped"] == B["stopped"] == "finished"
        assert len(A["losses"]) == len(B["losses"]) == STEPS
        if exact:
            assert A["losses"] == B["losses"] and A["params"] == B["params"], (a, b)
            return
        assert within_tolerance(B["losses"], A["losses"]) <= 0, (a, b, A["losses"], B["losses"])
        for name in A["params"]:
            assert within_tolerance(B["params"][name], A["params"][name]) <= 0, (a, b, name)

    same("one", "two")
    same("two", "resumed_two", exact=True)
    same("one", "resumed_one")
    same("two", "resumed_one")
    same("one", "hosts")
    same("two", "hosts")
    assert (tmp_path / "hosts" / "model.safetensors").is_file()


@needs_jax
def test_jax_devices_beyond_the_host_are_refused():
    code = (
        "from transformer_spec.backends import load_backend\n"
        "from transformer_spec.spec.errors import ConfigError\n"
        "try:\n    load_backend('jax').data_parallel(devices=5)\nexcept ConfigError as e:\n    print(e)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": "--xla_force_host_platform_device_count=2", **ENV}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment)
    assert "--devices 5: this host has 2 cpu device(s); expected at most 2" in result.stdout, result.stdout + result.stderr
