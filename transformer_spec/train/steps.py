"""Train steps: the gradient from the backend's ``value_and_grad``, the update from :mod:`transformer_spec.train.optim`.

An engine holds the parameters and the optimizer's moments as native arrays
and runs one step at a time. Engines differ only in *how* a step runs:

``plain``
    Any backend with autodiff. The loss is the contract's own functions
    (``backend.model_forward`` + ``backend.cross_entropy``, with their argument
    checks); the update is :func:`~transformer_spec.train.optim.optimizer_step` on native
    arrays with arithmetic operators. The reference the fast paths are tested
    against.
``torch``
    The same loss, optionally through ``torch.compile`` (of the forward kernels
    and the loss: no per-call Python argument checks inside the graph), and the
    in-place ``torch._foreach_*`` optimizer
    (:func:`~transformer_spec.train.optim.torch_optimizer_step_inplace`).
``jax``
    The whole step — forward, gradient (through ``backend.value_and_grad``),
    clipping and AdamW — is one ``jax.jit`` function of
    (params, moments, batch, rate, bias corrections), compiled once per batch
    shape. The update is the same :func:`~transformer_spec.train.optim.optimizer_step`
    code, traced.

Every engine refuses to apply a step whose loss or gradient norm is not
finite: it reports it and keeps the parameters as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError

from .data import IGNORE_INDEX
from .optim import (
    AdamWConfig,
    adamw_update,
    bias_corrections,
    clip_by_global_norm,
    global_norm,
    init_moments,
    learning_rate_at,
    optimizer_step,
    torch_optimizer_step_inplace,
)

ENGINES = ("auto", "plain", "torch", "jax")


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
    """Parameters + moments as native arrays, and one ``step`` at a time. Subclasses choose how a step runs."""

    name = "plain"

    def __init__(
        self,
        backend,
        model_config: ModelConfig,
        optimizer: AdamWConfig,
        params: dict[str, np.ndarray],
        moments: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
    ) -> None:
        require_autodiff(backend)
        self.backend = backend
        self.model_config = model_config
        self.optimizer = optimizer
        dtype = str(next(iter(params.values())).dtype)
        self.params = {n: backend.asarray(np.asarray(p), dtype) for n, p in params.items()}
        if moments is None:
            self.m, self.v = init_moments(self.params)
        else:
            self.m = {n: backend.asarray(np.asarray(a), dtype) for n, a in moments[0].items()}
            self.v = {n: backend.asarray(np.asarray(a), dtype) for n, a in moments[1].items()}
        self._value_and_grad = backend.value_and_grad(self._loss)

    # The loss through the contract's checked functions.
    def _loss(self, params, ids, targets):
        logits, _ = self.backend.model_forward(params, self.model_config, ids)  # (B, L, V)
        return self.backend.cross_entropy(logits, targets, IGNORE_INDEX)

    def _batch(self, ids: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
        return self.backend.asarray(ids, "int64"), self.backend.asarray(targets, "int64")

    def step(self, ids: np.ndarray, targets: np.ndarray, step: int) -> StepResult:
        loss, grads = self._value_and_grad(self.params, *self._batch(ids, targets))
        norm = global_norm(grads)
        loss_value, norm_value = float(loss), float(norm)
        lr = learning_rate_at(step, self.optimizer)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            return StepResult(loss_value, norm_value, lr, False)
        self._update(grads, step, norm)
        return StepResult(loss_value, norm_value, lr, True)

    def _update(self, grads, step: int, norm) -> None:
        self.params, self.m, self.v, _, _ = optimizer_step(self.params, grads, self.m, self.v, step, self.optimizer, norm)

    def loss(self, ids: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
        """(mean loss, number of scored targets) of one batch, without a gradient."""
        logits, _ = self.backend.model_forward(self.params, self.model_config, self.backend.asarray(ids, "int64"))
        value = self.backend.cross_entropy(logits, self.backend.asarray(targets, "int64"), IGNORE_INDEX)
        return float(self.backend.to_numpy(value)), int((targets != IGNORE_INDEX).sum())

    def params_numpy(self) -> dict[str, np.ndarray]:
        return {n: np.array(self.backend.to_numpy(p)) for n, p in self.params.items()}

    def moments_numpy(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return (
            {n: np.array(self.backend.to_numpy(a)) for n, a in self.m.items()},
            {n: np.array(self.backend.to_numpy(a)) for n, a in self.v.items()},
        )


class TorchEngine(Engine):
    """PyTorch: optional ``torch.compile`` of the loss, in-place ``_foreach`` AdamW."""

    name = "torch"

    def __init__(self, backend, model_config, optimizer, params, moments=None, compile: bool = False) -> None:
        super().__init__(backend, model_config, optimizer, params, moments)
        self.compiled = compile
        if compile:
            import torch

            config = model_config

            def kernel_loss(params, ids, targets):
                # The kernels without the per-call argument checks (they read ids on the host, which would
                # break the graph); the batch was checked when it was built.
                logits, _ = backend._model_forward(params, config, ids, backend.init_cache(config, ids.shape[0]))  # (B, L, V)
                return backend._cross_entropy(logits, targets, IGNORE_INDEX)

            self._compiled_loss = torch.compile(kernel_loss, dynamic=False)
            self._value_and_grad = backend.value_and_grad(self._compiled_loss)

    def _update(self, grads, step, norm) -> None:
        torch_optimizer_step_inplace(self.params, grads, self.m, self.v, step, self.optimizer, norm)


class JaxEngine(Engine):
    """JAX: forward, gradient, clipping and AdamW compiled together with ``jax.jit``."""

    name = "jax"

    def __init__(self, backend, model_config, optimizer, params, moments=None) -> None:
        super().__init__(backend, model_config, optimizer, params, moments)
        import jax

        config, opt = model_config, optimizer

        def kernel_loss(params, ids, targets):
            # Inside jit the batch is traced: the contract's checks (which read ids on the host) ran when it was built.
            logits, _ = backend._model_forward(params, config, ids, backend.init_cache(config, ids.shape[0]))  # (B, L, V)
            return backend._cross_entropy(logits, targets, IGNORE_INDEX)

        value_and_grad = backend.value_and_grad(kernel_loss)

        def train_step(params, m, v, ids, targets, lr, bc1, bc2):
            loss, grads = value_and_grad(params, ids, targets)
            norm = global_norm(grads)
            if opt.grad_clip is not None:
                grads, _ = clip_by_global_norm(grads, opt.grad_clip, norm)
            new_params, new_m, new_v = adamw_update(
                params, grads, m, v, lr=lr, bias_correction1=bc1, bias_correction2=bc2, config=opt
            )
            return loss, norm, new_params, new_m, new_v

        def eval_loss(params, ids, targets):
            return kernel_loss(params, ids, targets)

        self._train_step = jax.jit(train_step)
        self._eval_loss = jax.jit(eval_loss)

    def step(self, ids, targets, step) -> StepResult:
        lr = learning_rate_at(step, self.optimizer)
        bc1, bc2 = bias_corrections(step, self.optimizer)
        dtype = np.float32
        loss, norm, params, m, v = self._train_step(
            self.params, self.m, self.v, *self._batch(ids, targets), dtype(lr), dtype(bc1), dtype(bc2)
        )
        loss_value, norm_value = float(loss), float(norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            return StepResult(loss_value, norm_value, lr, False)
        self.params, self.m, self.v = params, m, v
        return StepResult(loss_value, norm_value, lr, True)

    def loss(self, ids, targets):
        value = self._eval_loss(self.params, *self._batch(ids, targets))
        return float(value), int((targets != IGNORE_INDEX).sum())


def make_engine(kind: str, backend, model_config, optimizer, params, moments=None, compile: bool = False) -> Engine:
    """The engine ``kind`` ("auto": the backend's fast one) for ``backend``."""
    require_autodiff(backend)
    if kind not in ENGINES:
        raise ConfigError(f"engine = {kind!r}, expected one of {', '.join(ENGINES)}")
    if kind == "auto":
        kind = backend.name if backend.name in ("torch", "jax") else "plain"
    if kind == "torch":
        if backend.name != "torch":
            raise ConfigError(f"engine 'torch' needs the torch backend, got {backend.name!r}")
        return TorchEngine(backend, model_config, optimizer, params, moments, compile=compile)
    if compile:
        raise ConfigError(
            f"--compile needs the torch backend and engine (got backend {backend.name!r}, engine {kind!r}); "
            f"JAX's engine is always compiled with jax.jit"
        )
    if kind == "jax":
        if backend.name != "jax":
            raise ConfigError(f"engine 'jax' needs the jax backend, got {backend.name!r}")
        return JaxEngine(backend, model_config, optimizer, params, moments)
    return Engine(backend, model_config, optimizer, params, moments)
