"""Data-parallel training: joining the processes, and ``tspec train --nproc N``, a launcher for one machine.

The training step itself is the backend's business (its ``data_parallel`` hook,
:mod:`transformer_spec.backends.parallel`); this module decides *whether* a run
is data-parallel and starts the processes:

* ``--nproc N`` (this module's :func:`launch`): N copies of the same command on
  this machine, with the environment ``torchrun`` sets (``WORLD_SIZE``,
  ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
  ``MASTER_PORT``). ``torchrun --nproc-per-node N -m transformer_spec train ...``
  does the same, and also across machines (``--nnodes``, ``--node-rank``).
* ``--devices N`` (or ``all``): one process sharding each batch over N local devices
  (JAX; on a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).
* several hosts with JAX: one process per host with ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` set (``jax.distributed.initialize``).

Signals: the launcher's children run in their own session, so Ctrl-C reaches
the launcher alone, which passes each SIGINT / SIGTERM on to every child once;
the children agree to stop after the same step and rank 0 saves (a second
signal stops them at once, as in a single process). If a child exits with an
error, the launcher gives the others ``--peer-timeout`` seconds (they notice
the lost peer in their next collective and stop with a clear message), then
ends them, and exits with the first failure's status.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from transformer_spec.spec.errors import ConfigError

DEFAULT_PEER_TIMEOUT = 300.0  # seconds a collective waits for the other processes (a save, a slow first compile)
GRACE = 5.0  # seconds a process gets beyond --peer-timeout to report a lost peer and exit
LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
JAX_HOST_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def launched_processes() -> int:
    """How many processes the launcher says take part (``WORLD_SIZE``, or ``JAX_NUM_PROCESSES``); 1 when none."""
    for name in ("WORLD_SIZE", "JAX_NUM_PROCESSES"):
        value = os.environ.get(name)
        if value:
            try:
                count = int(value)
            except ValueError:
                raise ConfigError(f"{name}={value!r}: expected an integer (the number of processes)") from None
            if count < 1:
                raise ConfigError(f"{name}={value}: expected an integer >= 1")
            return count
    return 1


def parse_devices(value: str) -> int | None:
    """``--devices``: an integer >= 1, or ``all`` (None)."""
    if value == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"--devices {value}: expected an integer >= 1 or 'all'")
    return count


def join_hosts_if_asked(backend_spec: str, timeout: float = DEFAULT_PEER_TIMEOUT) -> None:
    """Before the backend is made: let its class join the other hosts of a multi-host run, if the environment asks.

    (JAX's ``jax.distributed.initialize`` must run before anything touches a device, which making the backend
    does, so this is a class-level hook: ``Backend.join_hosts``.) A multi-host environment that the chosen backend
    cannot join is one clear error.
    """
    from transformer_spec.backends import backend_class

    joined = backend_class(backend_spec).join_hosts(timeout)
    asked = [name for name in JAX_HOST_VARIABLES if os.environ.get(name)]
    if asked and not joined:
        raise ConfigError(
            f"{', '.join(asked)} set (a multi-host run) but backend {backend_spec!r} has no multi-host join; "
            f"use --backend jax, or unset them (PyTorch joins through torchrun's environment)"
        )


def setup_parallel(backend, devices: int | None, asked_devices: bool, timeout: float) -> Any:
    """The data-parallel group this run asked for (``--devices``, or a launcher's environment), or None."""
    launched = launched_processes()
    if not asked_devices and launched == 1:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"--peer-timeout {timeout!r}, expected a number of seconds > 0")
    group = backend.data_parallel(devices=devices, timeout=float(timeout))
    if group is None:
        raise ConfigError(
            f"backend {backend.name!r} has no data-parallel engine (its data_parallel hook returns None); "
            f"use --backend torch (several processes) or --backend jax (several devices)"
        )
    if group.processes != launched:
        raise ConfigError(
            f"the launcher started {launched} processes but backend {backend.name!r} joined {group.processes}; "
            f"PyTorch joins the processes torchrun (or --nproc) starts, JAX joins hosts through jax.distributed "
            f"({', '.join(JAX_HOST_VARIABLES)}) and shards one process's batch over --devices"
        )
    return group


# ---------------------------------------------------------------------- the launcher (--nproc N)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child before exec: a killed launcher takes its children along
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def command_without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what every child runs)."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = i + 1 < len(argv)
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


def launch(nproc: int, peer_timeout: float, argv: list[str] | None = None, stream=None) -> int:
    """Run ``python -m transformer_spec ARGV`` (default: this command line without ``--nproc``) as ``nproc``
    processes on this machine; their exit status (the first failure's, else 0)."""
    stream = stream or sys.stderr
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc {nproc!r}, expected an integer >= 1")
    if launched_processes() > 1:
        raise ConfigError("--nproc inside a process that a launcher started (WORLD_SIZE is set); give one or the other")
    if argv is None:
        argv = command_without_nproc(sys.argv[1:])
    port = _free_port()
    children: list[subprocess.Popen] = []
    for rank in range(nproc):
        env = {
            **os.environ,
            "WORLD_SIZE": str(nproc),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "transformer_spec", *argv], env=env, start_new_session=True, preexec_fn=_die_with_parent
            )
        )

    def forward(signum, frame) -> None:  # each signal once to every child, which decide together what it means
        for child in children:
            if child.poll() is None:
                try:
                    child.send_signal(signum)
                except ProcessLookupError:
                    pass

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _wait(children, peer_timeout, stream)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _wait(children: list[subprocess.Popen], peer_timeout: float, stream) -> int:
    failed: tuple[int, int] | None = None  # (rank, status) of the first child that failed
    deadline = None
    while True:
        statuses = [child.poll() for child in children]
        if failed is None:
            for rank, status in enumerate(statuses):
                if status not in (None, 0):
                    failed = (rank, status)
                    if status < 0:  # killed by a signal: it could not say so itself
                        print(f"tspec: rank {rank} was killed by {signal.Signals(-status).name}", file=stream, flush=True)
                    # The others notice in their next collective (a dead peer at once, a hung one after the timeout).
                    deadline = time.monotonic() + peer_timeout + GRACE
                    break
        if all(status is not None for status in statuses):
            break
        if deadline is not None and time.monotonic() > deadline:
            alive = [rank for rank, status in enumerate(statuses) if status is None]
            print(
                f"tspec: rank {failed[0]} exited with status {failed[1]}; rank(s) {', '.join(map(str, alive))} did not "
                f"stop within {peer_timeout:g} s + {GRACE:g} s: ended them",
                file=stream,
                flush=True,
            )
            for rank in alive:
                children[rank].kill()
            for rank in alive:
                children[rank].wait()
            break
        time.sleep(0.05)
    if failed is not None:
        return failed[1] if failed[1] > 0 else 128 - failed[1]  # killed by signal s: 128 + s, as a shell says
    statuses = [child.returncode for child in children]
    return next((s if s > 0 else 128 - s for s in statuses if s != 0), 0)
