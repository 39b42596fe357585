"""Train steps: the loss from the model written once, the gradient and the speed from the backend's hooks.

An engine holds the parameters and the optimizer's moments as native arrays
and runs one step at a time. What a step does is the same for every backend:

1. the loss and its gradient — :func:`transformer_spec.backends.model.loss`
   through the backend's ``value_and_grad`` hook — and the global gradient norm;
2. a step whose loss or gradient norm is not finite is reported and skipped
   (the parameters stay as they were);
3. clipping and AdamW (:mod:`transformer_spec.train.optim`).

How fast it runs is the backend's business, asked by capability, never by name:
both phases go through its ``compile`` hook (JAX: ``jax.jit``; PyTorch with
``compile=True``: ``torch.compile``; NumPy and plain PyTorch: as they are), and
the update uses the backend's fused ``adamw_update`` when it has one (PyTorch:
in-place ``torch._foreach_*``). Engine kinds:

``auto``
    the backend's hooks, as above.
``plain``
    no hooks: no compilation and the operator-by-operator AdamW. The reference
    the fast paths are tested against.

Data parallelism is one more hook: with ``parallel`` (what the backend's
``data_parallel`` hook returned, :class:`transformer_spec.backends.parallel.DataParallel`)
the engine is given the *global* batch, every process computes the part the
group assigns it, and the group turns the parts into the global batch's loss and
gradient — PyTorch by an all-reduce of the gradients weighted by each part's
share of the scored targets, JAX inside the compiled step (batch sharded,
parameters replicated). Everything after that (finiteness, clipping, AdamW) sees
the same global numbers on every process, so every process takes the same step.

(``torch`` and ``jax`` were engine kinds in 0.1; they still work, as ``auto``,
with a FutureWarning.)
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from transformer_spec.backends import model
from transformer_spec.backends.cache import NoCache
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError

from .data import IGNORE_INDEX
from .optim import (
    AdamWConfig,
    adamw_update,
    bias_corrections,
    clip_by_global_norm,
    decays,
    global_norm,
    init_moments,
    learning_rate_at,
)

ENGINES = ("auto", "plain")
DEPRECATED_ENGINES = ("torch", "jax")  # 0.1 names: the backend's fast path, now "auto"


@dataclass(frozen=True)
class StepResult:
    loss: float  # the batch loss before the update
    grad_norm: float  # global gradient norm before clipping
    lr: float  # the rate this step used
    applied: bool  # False when loss or gradient was not finite (parameters unchanged)


def require_autodiff(backend) -> None:
    if not getattr(backend, "supports_autodiff", False):
        raise ConfigError(
            f"backend {backend.name!r} has no automatic differentiation, so it cannot train; "
            f"use --backend torch or --backend jax (it can still evaluate and generate)"
        )


class Engine:
    """Parameters + moments as native arrays, and one ``step`` at a time, through the backend's hooks (``hooks=True``)."""

    def __init__(
        self,
        backend,
        model_config: ModelConfig,
        optimizer: AdamWConfig,
        params: dict[str, np.ndarray],
        moments: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
        hooks: bool = True,
        parallel: Any = None,
    ) -> None:
        require_autodiff(backend)
        self.backend = backend
        self.parallel = parallel  # a DataParallel group, or None (one process, one device)
        self.model_config = model_config
        self.optimizer = optimizer
        self.hooks = hooks
        self.name = "auto" if hooks else "plain"
        dtype = str(next(iter(params.values())).dtype)
        put = (
            (lambda arrays: {n: backend.asarray(np.asarray(a), dtype) for n, a in arrays.items()})
            if parallel is None
            else (lambda arrays: parallel.put_params(arrays, dtype))
        )
        if parallel is not None:  # every process must start from the same weights and moments
            parallel.check_same("the initial parameters and optimizer state", _digest(params, *(moments or ())))
        self.params = put(params)
        if moments is None:
            self.m, self.v = init_moments(self.params)
        else:
            self.m, self.v = put(moments[0]), put(moments[1])
        self._checked_batch = parallel is None
        self._decay = {n: decays(tuple(p.shape)) for n, p in self.params.items()}
        compile = backend.compile if hooks else (lambda fn, **_: fn)
        ops, config = backend.ops, model_config

        def loss(params, ids, targets):
            return model.loss(ops, params, config, ids, targets, NoCache(), IGNORE_INDEX)

        value_and_grad = backend.value_and_grad(loss)

        def gradients(params, ids, targets):
            value, grads = value_and_grad(params, ids, targets)
            return value, grads, global_norm(grads)

        self._loss = compile(loss)
        self._gradients = compile(gradients)
        if parallel is not None and not parallel.reduces_in_compiler:  # the group all-reduces between the two
            self._value_and_grad = compile(value_and_grad)
            self._norm = compile(global_norm)
        self._fused_update = backend.adamw_update if hooks else None
        self._update = compile(self._plain_update)

    def _plain_update(self, params, grads, m, v, norm, lr, bc1, bc2):
        if self.optimizer.grad_clip is not None:
            grads, _ = clip_by_global_norm(grads, self.optimizer.grad_clip, norm)
        return adamw_update(params, grads, m, v, lr=lr, bias_correction1=bc1, bias_correction2=bc2, config=self.optimizer)

    def _batch(self, ids: np.ndarray, targets: np.ndarray, shard: bool = False) -> tuple[Any, Any]:
        """The batch as native int64 arrays, checked on the host once, before any compiled code sees it.

        With a data-parallel group: this process's part of it (``shard``), or the whole of it on every device."""
        V = self.model_config.vocab_size
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ConfigError(f"training batch holds token ids outside [0, {V}); expected ids from the model's tokenizer")
        if self.parallel is not None:
            return self.parallel.put_batch(ids, targets, shard=shard)
        return self.backend.asarray(ids, "int64"), self.backend.asarray(targets, "int64")

    def _host(self, x: Any) -> np.ndarray:
        return self.backend.to_numpy(x) if self.parallel is None else self.parallel.to_numpy(x)

    def _parallel_gradients(self, ids: np.ndarray, targets: np.ndarray) -> tuple[Any, Any, Any]:
        """The global batch's (loss, gradients, norm) from this process's part and the group's reduction."""
        parallel = self.parallel
        parallel.check_rows(ids.shape[0])
        if not self._checked_batch:  # the same global batch everywhere, or the processes were given different data
            parallel.check_same("the first global batch (data files and settings)", _digest({"ids": ids, "targets": targets}))
            self._checked_batch = True
        batch = self._batch(ids, targets, shard=True)
        if parallel.reduces_in_compiler:
            return self._gradients(self.params, *batch)
        loss, grads = self._value_and_grad(self.params, *batch)
        loss, grads = parallel.combine(loss, grads, parallel.weight(targets, IGNORE_INDEX))
        return loss, grads, self._norm(grads)

    def step(self, ids: np.ndarray, targets: np.ndarray, step: int) -> StepResult:
        if self.parallel is None:
            loss, grads, norm = self._gradients(self.params, *self._batch(ids, targets))
        else:
            loss, grads, norm = self._parallel_gradients(ids, targets)
        loss_value, norm_value = float(self._host(loss)), float(self._host(norm))
        lr = learning_rate_at(step, self.optimizer)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            return StepResult(loss_value, norm_value, lr, False)
        bc1, bc2 = bias_corrections(step, self.optimizer)
        if self._fused_update is not None:
            if self.optimizer.grad_clip is not None:
                grads, _ = clip_by_global_norm(grads, self.optimizer.grad_clip, norm)
            opt = self.optimizer
            self.params, self.m, self.v = self._fused_update(
                self.params, grads, self.m, self.v, lr=lr, beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps,
                weight_decay=opt.weight_decay, bias_correction1=bc1, bias_correction2=bc2, decay=self._decay,
            )  # fmt: skip
        else:
            scalar = np.float32 if self.backend.compiles else float  # traced scalars: a new rate does not recompile
            self.params, self.m, self.v = self._update(
                self.params, grads, self.m, self.v, norm, scalar(lr), scalar(bc1), scalar(bc2)
            )
        return StepResult(loss_value, norm_value, lr, True)

    def loss(self, ids: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
        """(mean loss, number of scored targets) of one batch, without a gradient."""
        value = self._loss(self.params, *self._batch(ids, targets))
        return float(self._host(value)), int((targets != IGNORE_INDEX).sum())

    def params_numpy(self) -> dict[str, np.ndarray]:
        return {n: np.array(self._host(p)) for n, p in self.params.items()}

    def moments_numpy(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return (
            {n: np.array(self._host(a)) for n, a in self.m.items()},
            {n: np.array(self._host(a)) for n, a in self.v.items()},
        )


def _digest(*arrays: dict[str, np.ndarray]) -> bytes:
    """A fingerprint of dicts of host arrays (names, shapes, dtypes, bytes): equal on every process or not."""
    hasher = hashlib.blake2b(digest_size=16)
    for group in arrays:
        for name in sorted(group):
            a = np.ascontiguousarray(np.asarray(group[name]))
            hasher.update(f"{name}:{a.shape}:{a.dtype}".encode())
            hasher.update(a.tobytes())
    return hasher.digest()


def make_engine(
    kind: str, backend, model_config, optimizer, params, moments=None, compile: bool = False, parallel: Any = None
) -> Engine:
    """The engine ``kind`` for ``backend``: "auto" (its hooks) or "plain" (none).

    ``compile=True`` asks for a backend whose ``compile`` hook really compiles; a backend that cannot is refused
    with a clear error (PyTorch: ``load_backend("torch")`` made with ``compile=True``, see ``--compile``).
    ``parallel``: a data-parallel group from the backend's ``data_parallel`` hook (see the module docstring).
    """
    require_autodiff(backend)
    if kind in DEPRECATED_ENGINES:
        warnings.warn(
            f"engine {kind!r} is deprecated since 0.2: the backend's hooks choose the fast path; use engine 'auto'",
            FutureWarning,
            stacklevel=2,
        )
        kind = "auto"
    if kind not in ENGINES:
        raise ConfigError(f"engine = {kind!r}, expected one of {', '.join(ENGINES)}")
    if compile and not (kind == "auto" and backend.compiles):
        raise ConfigError(
            f"--compile needs engine 'auto' and a backend that compiles (got backend {backend.name!r} with "
            f"compiles={backend.compiles}, engine {kind!r}); e.g. --backend torch --compile, or --backend jax"
        )
    return Engine(backend, model_config, optimizer, params, moments, hooks=kind == "auto", parallel=parallel)
