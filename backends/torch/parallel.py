"""Data parallelism for the PyTorch backend: one process per rank, gradients all-reduced with ``torch.distributed``.

The processes are started by ``torchrun`` (or ``tspec train --nproc N``, which
sets the same environment): ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``. The process group uses gloo on CPU and NCCL on
CUDA, where rank ``r`` uses GPU ``LOCAL_RANK``. Joining waits up to
:data:`JOIN_TIMEOUT` seconds for every rank to start (ranks of several machines
rarely start together); every collective after that has the group's timeout
(``--peer-timeout``), so a rank that dies or hangs stops the others with
:class:`~transformer_spec.backends.parallel.PeerLostError` instead of a hang.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from transformer_spec.spec.errors import ConfigError

from ..parallel import DataParallel, PeerLostError

JOIN_TIMEOUT = 300.0  # seconds every rank may take to reach the group (at least the collectives' timeout)
ENVIRONMENT = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets (LOCAL_RANK too)


def _environment() -> tuple[int, int, int]:
    """(world size, rank, local rank) from the launcher's environment, checked."""
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"PyTorch data parallelism needs the launcher's environment, missing {', '.join(missing)}; "
            f"start the processes with torchrun --nproc-per-node N -m transformer_spec train ... or tspec train --nproc N"
        )
    try:
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ConfigError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']!r}, RANK={os.environ['RANK']!r}, LOCAL_RANK={os.environ.get('LOCAL_RANK')!r}: "
            f"expected integers (set by torchrun)"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"WORLD_SIZE={world}, RANK={rank}: expected WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")
    return world, rank, local


class TorchDataParallel(DataParallel):
    """This process's rank in a ``torch.distributed`` group; each rank computes its rows of every global batch."""

    reduces_in_compiler = False

    def __init__(self, backend, timeout: float) -> None:
        world, rank, local = _environment()
        device = backend.torch_device
        if device.type == "cuda":
            if device.index is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
                raise ConfigError(
                    f"--backend torch:{device}: with several processes per machine each uses GPU LOCAL_RANK; "
                    f"give --backend torch:cuda (no index) or set CUDA_VISIBLE_DEVICES per process"
                )
            if local >= torch.cuda.device_count():
                raise ConfigError(
                    f"rank {rank} has LOCAL_RANK {local}, but this machine has {torch.cuda.device_count()} CUDA device(s); "
                    f"expected at most one process per GPU (--nproc / --nproc-per-node <= {torch.cuda.device_count()})"
                )
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
            backend.torch_device, backend.device = device, str(device)  # this rank's GPU
            backend._table_device = device
        self.backend = backend
        self.device = device
        self.rank, self.processes, self.shards = rank, world, world
        self.timeout = float(timeout)
        self.engine = "nccl" if device.type == "cuda" else "gloo"
        self.description = f"{world} processes ({self.engine}, torch.distributed)"
        join = max(self.timeout, JOIN_TIMEOUT)
        try:
            if not dist.is_initialized():
                dist.init_process_group(self.engine, timeout=datetime.timedelta(seconds=join), rank=rank, world_size=world)
            # The collectives run in a group of their own, with the (shorter) timeout for a lost peer.
            self.group = dist.new_group(list(range(world)), timeout=datetime.timedelta(seconds=self.timeout))
        except (RuntimeError, ValueError) as error:
            raise PeerLostError(
                f"rank {rank} of {world}: could not join the process group at "
                f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} within {join:g} s "
                f"({_first_line(error)}); expected every rank to start and reach the same address"
            ) from None

    def describe_shards(self) -> str:
        return f"{self.processes} processes"

    def part(self, rows: int) -> slice:
        size = rows // self.shards
        return slice(self.rank * size, (self.rank + 1) * size)

    # ------------------------------------------------------------------ arrays
    def put_params(self, arrays: dict[str, np.ndarray], dtype: str) -> dict[str, Any]:
        return {n: self.backend.asarray(np.asarray(a), dtype) for n, a in arrays.items()}

    def put_batch(self, ids: np.ndarray, targets: np.ndarray, shard: bool = True) -> tuple[Any, Any]:
        if shard:
            self.check_rows(ids.shape[0])
            rows = self.part(ids.shape[0])
            ids, targets = ids[rows], targets[rows]  # (B / W, L) each: this rank's rows
        return self.backend.asarray(ids, "int64"), self.backend.asarray(targets, "int64")

    def combine(self, loss: Any, grads: dict[str, Any], weight: float) -> tuple[Any, dict[str, Any]]:
        """One all-reduce of ``weight`` x [loss, every gradient, flattened]: the global batch's loss and gradient."""
        names = list(grads)
        dtype = grads[names[0]].dtype
        flat = torch.cat([loss.reshape(1).to(dtype)] + [grads[n].reshape(-1) for n in names])  # (1 + P,)
        flat.mul_(weight)
        self._collective("the gradient all-reduce", lambda: dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group))
        combined, offset = {}, 1
        for n in names:
            size = grads[n].numel()
            combined[n] = flat[offset : offset + size].view(grads[n].shape)
            offset += size
        return flat[0].to(loss.dtype), combined

    # ------------------------------------------------------------------ agreement
    def any(self, flag: bool) -> bool:
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self._collective(
            "the check whether any rank asked to stop", lambda: dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.group)
        )
        return bool(value.item() > 0)

    def check_same(self, what: str, digest: bytes) -> None:
        mine = torch.tensor([int.from_bytes(hashlib.blake2b(digest, digest_size=7).digest(), "little")], device=self.device)
        gathered = [torch.zeros_like(mine) for _ in range(self.processes)]
        self._collective(f"comparing {what}", lambda: dist.all_gather(gathered, mine, group=self.group))
        values = [int(g.item()) for g in gathered]
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise ConfigError(
                f"{what} differ between ranks (rank 0 vs rank(s) {', '.join(map(str, differ))}); expected the same on "
                f"every process: give every rank the same options and data files (and the same run folder to resume)"
            )

    def barrier(self) -> None:
        self._collective("the barrier", lambda: dist.barrier(group=self.group))

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def _collective(self, what: str, call) -> None:
        try:
            with self.backend.full_precision():
                work = call()
            if work is not None:
                work.wait()
        except (RuntimeError, dist.DistError) as error:
            raise PeerLostError(
                f"rank {self.rank} of {self.processes}: lost the other processes during {what} "
                f"({_first_line(error)}); another rank died or did not answer within {self.timeout:g} s — "
                f"its own output says why"
            ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
