"""Data parallelism as a backend hook: what :meth:`Backend.data_parallel` returns.

A data-parallel training step computes the same thing as a single-process step
on the whole *global* batch. Every process draws the same global batch (the
batch order is one seeded generator, identical everywhere); the group decides
which part of it each process computes, and how the parts' gradients become the
gradient of the whole batch. How is the framework's business:

PyTorch (:mod:`transformer_spec.backends.torch.parallel`)
    one process per rank (``torchrun`` or ``tspec train --nproc N``), each
    computing the loss of its rows; the gradients are all-reduced with
    ``torch.distributed`` (gloo on CPU, NCCL on CUDA) — :meth:`DataParallel.combine`.
JAX (:mod:`transformer_spec.backends.jax.parallel`)
    one process per host, a :class:`jax.sharding.Mesh` over the devices with
    the batch sharded along it and the parameters replicated; the compiled step
    over the sharded global batch *is* the global step (XLA inserts the
    all-reduce), so ``combine`` has nothing to do.

The loss is a mean over the scored (non-ignored) targets of the batch, so the
parts are weighted by their share of the scored targets, not by their share of
the rows: ``loss = Σ_r (n_r / N) · loss_r`` and the same for every gradient,
where ``n_r`` counts the scored targets of part ``r`` and ``N`` those of the
global batch. That is exactly the single-process loss and gradient of the global
batch, up to the order of float32 additions (the ``data_parallel`` row of
:mod:`transformer_spec.spec.tolerances`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transformer_spec.spec.errors import ConfigError, SpecError


class PeerLostError(SpecError):
    """Another process of the data-parallel group died or stopped answering; this one stops too."""


class DataParallel:
    """A data-parallel group as one process sees it. Subclasses implement the framework's part.

    Attributes: ``rank`` (this process's index; rank 0 writes checkpoints and progress), ``processes`` (how many
    processes take part), ``shards`` (how many parts each global batch is split into: processes x devices),
    ``reduces_in_compiler`` (True when the compiled step over :meth:`put_batch`'s arrays already yields the
    global loss and gradient; False when :meth:`combine` must all-reduce them), ``description`` (one line for
    the progress output).
    """

    rank: int = 0
    processes: int = 1
    shards: int = 1
    reduces_in_compiler: bool = False
    description: str = "1 process"

    # ------------------------------------------------------------------ checks
    def check_rows(self, rows: int, what: str = "the global batch") -> None:
        """A clear error unless ``rows`` splits evenly into :attr:`shards` parts."""
        if rows % self.shards:
            raise ConfigError(
                f"{what} has {rows} rows, which do not split evenly over {self.describe_shards()}; expected a batch "
                f"size that is a multiple of {self.shards} (e.g. --batch-size {max(self.shards, rows - rows % self.shards)})"
            )

    def describe_shards(self) -> str:
        return f"{self.shards} shards"

    def part(self, rows: int) -> slice:
        """The rows of a global batch this process computes (all of them when the compiler splits the batch)."""
        return slice(0, rows)

    def weight(self, targets: np.ndarray, ignore_index: int) -> float:
        """This process's part's share of the global batch's scored targets (``n_r / N``; 0 when none is scored)."""
        total = int((targets != ignore_index).sum())
        own = int((targets[self.part(targets.shape[0])] != ignore_index).sum())
        return own / total if total else 0.0

    # ------------------------------------------------------------------ arrays
    def put_params(self, arrays: dict[str, np.ndarray], dtype: str) -> dict[str, Any]:
        """Host arrays → native arrays, the same on every process (replicated). To implement."""
        raise NotImplementedError

    def put_batch(self, ids: np.ndarray, targets: np.ndarray, shard: bool = True) -> tuple[Any, Any]:
        """The global host batch → the native (ids, targets) this process computes: its part (``shard=True``),
        or the whole batch, replicated (``shard=False``: evaluation). To implement."""
        raise NotImplementedError

    def combine(self, loss: Any, grads: dict[str, Any], weight: float) -> tuple[Any, dict[str, Any]]:
        """(loss, gradients) of this process's part, weighted by ``weight`` (:meth:`weight`), summed over the group:
        the loss and gradient of the global batch. Default: nothing to do (the compiler did it)."""
        return loss, grads

    def to_numpy(self, x: Any) -> np.ndarray:
        """A replicated native array as a host array."""
        return np.asarray(x)

    # ------------------------------------------------------------------ agreement
    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process (every process calls this at the same point)."""
        return bool(flag)

    def check_same(self, what: str, digest: bytes) -> None:
        """A clear error on every process unless ``digest`` is the same on all of them (``what`` names it)."""

    def barrier(self) -> None:
        """Wait until every process gets here."""

    def close(self) -> None:
        """Leave the group (at the end of a run)."""
