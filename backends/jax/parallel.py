"""Data parallelism for the JAX backend: a :class:`jax.sharding.Mesh`, the batch sharded along it, the params replicated.

One process per host. On one host the mesh spans the local devices asked for;
after :func:`join_hosts` (``jax.distributed.initialize``) it spans every device
of every host. The compiled training step is the single-device step: given the
global batch sharded over the ``"data"`` axis and the parameters replicated,
XLA partitions it and inserts the all-reduce of the gradients itself, so the
result is the global batch's loss and gradient (nothing for
:meth:`~transformer_spec.backends.parallel.DataParallel.combine` to do).

Every process draws the same global batch; :func:`jax.make_array_from_callback`
gives each device its rows, so the same code runs on one host and on many.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from transformer_spec.spec.errors import ConfigError

from ..parallel import DataParallel, PeerLostError
from .kernels import _jax_dtype

AXIS = "data"  # the mesh axis the batch is split along


HOST_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def join_hosts_from_environment(timeout: float = 300.0) -> bool:
    """Join the hosts that ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` describe.

    Returns False when ``JAX_COORDINATOR_ADDRESS`` is unset (nothing to join); a partial or malformed set is a
    ConfigError naming the variable.
    """
    coordinator = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not coordinator:
        return False
    values = {}
    for name in HOST_VARIABLES[1:]:
        try:
            values[name] = int(os.environ.get(name, ""))
        except ValueError:
            raise ConfigError(
                f"JAX_COORDINATOR_ADDRESS is set, so {name} must be too: {name}={os.environ.get(name)!r}, expected an "
                f"integer (how many processes join; this process's id, 0 on the coordinator's host)"
            ) from None
    processes, process_id = values["JAX_NUM_PROCESSES"], values["JAX_PROCESS_ID"]
    if processes < 1 or not 0 <= process_id < processes:
        raise ConfigError(
            f"JAX_NUM_PROCESSES={processes}, JAX_PROCESS_ID={process_id}: expected 0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES"
        )
    join_hosts(coordinator, processes, process_id, timeout)
    return True


def join_hosts(coordinator: str, processes: int, process_id: int, timeout: float = 300.0) -> None:
    """``jax.distributed.initialize``: join the other hosts' processes (before anything touches a JAX device).

    ``timeout``: seconds to wait for every process to join, and after which a silent host counts as lost.
    """
    try:
        jax.distributed.initialize(
            coordinator, processes, process_id, initialization_timeout=int(timeout), heartbeat_timeout_seconds=int(timeout)
        )
    except (RuntimeError, ValueError) as error:
        raise PeerLostError(
            f"process {process_id} of {processes}: jax.distributed.initialize with coordinator {coordinator} failed "
            f"({str(error).strip().splitlines()[0][:300]}); expected every host to start within {timeout:g} s and "
            f"reach the coordinator (process 0's HOST:PORT)"
        ) from None


class JaxDataParallel(DataParallel):
    """A one-axis mesh over ``devices`` local devices (all of them: ``None``), or over every host's devices."""

    reduces_in_compiler = True

    def __init__(self, backend, devices: int | None = None) -> None:
        platform = backend._device.platform
        local = jax.local_devices(backend=platform)
        if isinstance(devices, bool) or not (devices is None or (isinstance(devices, int) and devices >= 1)):
            raise ConfigError(f"devices = {devices!r}, expected an integer >= 1 or None (all local devices)")
        if devices is not None and devices > len(local):
            raise ConfigError(
                f"--devices {devices}: this host has {len(local)} {platform} device(s); expected at most {len(local)} "
                f"(on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N virtual devices)"
            )
        self.processes, self.rank = jax.process_count(), jax.process_index()
        if self.processes > 1:
            if devices is not None and devices != len(local):
                raise ConfigError(
                    f"--devices {devices} with {self.processes} hosts: every host shards over all of its {len(local)} "
                    f"devices; drop --devices or give --devices {len(local)}"
                )
            mesh_devices = jax.devices(platform)
        else:
            mesh_devices = local if devices is None else local[:devices]
        self.backend = backend
        self.mesh = Mesh(np.array(mesh_devices), (AXIS,))
        self.shards = len(mesh_devices)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.sharded = NamedSharding(self.mesh, PartitionSpec(AXIS))
        hosts = f" on {self.processes} hosts" if self.processes > 1 else ""
        self.description = f"{self.shards} {platform} devices{hosts} (jax.sharding mesh)"

    def describe_shards(self) -> str:
        return f"{self.shards} devices"

    def _global(self, host: np.ndarray, sharding) -> jax.Array:
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def put_params(self, arrays: dict[str, np.ndarray], dtype: str) -> dict[str, Any]:
        return {n: self._global(np.asarray(a).astype(_jax_dtype(dtype)), self.replicated) for n, a in arrays.items()}

    def put_batch(self, ids: np.ndarray, targets: np.ndarray, shard: bool = True) -> tuple[Any, Any]:
        if shard:
            self.check_rows(ids.shape[0])
        sharding = self.sharded if shard else self.replicated
        as_int = np.dtype(_jax_dtype("int64"))  # int32 unless JAX's 64-bit mode is on (ids were range-checked)
        return self._global(np.asarray(ids).astype(as_int), sharding), self._global(np.asarray(targets).astype(as_int), sharding)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))  # replicated: this host's copy is the value
        return np.asarray(x)

    def any(self, flag: bool) -> bool:
        if self.processes == 1:
            return bool(flag)
        return bool(self._allgather(np.array([1 if flag else 0], np.int32)).any())

    def check_same(self, what: str, digest: bytes) -> None:
        if self.processes == 1:
            return
        mine = np.frombuffer(hashlib.blake2b(digest, digest_size=4).digest(), np.int32)
        values = self._allgather(mine).reshape(self.processes)
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise ConfigError(
                f"{what} differ between hosts (process 0 vs {', '.join(map(str, differ))}); expected the same on every "
                f"host: give every host the same options and data files"
            )

    def barrier(self) -> None:
        if self.processes > 1:
            self._allgather(np.zeros(1, np.int32))

    def _allgather(self, value: np.ndarray) -> np.ndarray:
        from jax.experimental import multihost_utils

        try:
            return np.asarray(multihost_utils.process_allgather(value))
        except Exception as error:  # XLA reports a lost host as a generic runtime error
            raise PeerLostError(
                f"process {self.rank} of {self.processes}: lost the other hosts ({str(error).strip().splitlines()[0][:300]}); "
                f"another host died or stopped answering — its own output says why"
            ) from None
