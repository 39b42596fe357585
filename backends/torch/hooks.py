"""The PyTorch backend's hooks: inference mode around the model, autodiff, a fused AdamW, threads, precision."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError


class TorchHooks:
    """Hooks for :class:`TorchBackend` (see :class:`transformer_spec.backends.base.Backend`)."""

    # ---------------------------------------------------------------- precision
    @contextlib.contextmanager
    def full_precision(self) -> Iterator[None]:
        """float32 matrix products at full float32 precision for the duration of one of this backend's calls.

        TF32 rounds float32 matmul inputs to 10 mantissa bits on Ampere+ GPUs, far outside the float32 tolerance row.
        The switch is process-wide in PyTorch, so it is set here and restored on the way out, only on CUDA devices:
        constructing or using the backend leaves every other torch user's setting as it was.
        """
        if self.torch_device.type != "cuda":
            yield
            return
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    # ---------------------------------------------------------------- composites
    def model_forward(self, params: dict[str, Any], config, ids: Any, cache: Any = None) -> tuple[Any, Any]:
        """The base forward (with its checks), under ``torch.inference_mode()`` unless a gradient is needed.

        Inference mode skips autograd's bookkeeping. The tensors it makes (logits, the cache) cannot be saved for
        a later backward pass: a training step must run its forward with parameters that require grad (then this
        never enters inference mode), or inside ``value_and_grad``.
        """
        needs_graph = torch.is_grad_enabled() and (self._differentiating > 0 or _any_requires_grad(params))
        self._forward_depth += 1
        try:
            with self.full_precision(), contextlib.nullcontext() if needs_graph else torch.inference_mode():
                return super().model_forward(params, config, ids, cache)
        finally:
            self._forward_depth -= 1
            if not self._forward_depth:
                self._rotary_tables = None  # tables are never reused across forwards (positions differ anyway)

    # ---------------------------------------------------------------- autodiff
    def value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """``value_and_grad(fn)(params, *args, **kwargs)`` → (fn's value, detached; {name: d value / d params[name]}).

        ``fn(params, *args, **kwargs)`` must return a scalar tensor. Gradients come from ``torch.autograd.grad`` on
        leaf copies of ``params`` (the caller's tensors are not modified and gain no ``.grad``); a parameter ``fn``
        does not use gets a zero gradient.
        """
        if not callable(fn):
            raise ConfigError(f"value_and_grad: fn = {fn!r}, expected a callable fn(params, *args) returning a scalar")

        def value_and_grad_fn(params: dict[str, Any], *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            if not isinstance(params, dict):
                raise ConfigError(f"value_and_grad: params is a {type(params).__name__}, expected a dict from name to tensor")
            leaves = {}
            for name, value in params.items():
                self._float("value_and_grad", f"params[{name!r}]", value)
                # detach() shares storage: no copy. A tensor made under inference_mode must be cloned to join a graph.
                leaf = value.clone() if value.is_inference() else value.detach()
                leaves[name] = leaf.requires_grad_(True)
            self._differentiating += 1
            try:
                with torch.enable_grad():
                    value = fn(leaves, *args, **kwargs)
            finally:
                self._differentiating -= 1
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                described = (
                    f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
                )
                raise ShapeError(f"value_and_grad: fn returned {described}, expected a scalar tensor (the loss)")
            if not value.dtype.is_floating_point:
                raise DTypeError(f"value_and_grad: fn returned a {value.dtype} tensor, expected a float scalar")
            names = list(leaves)
            if value.requires_grad:
                grads = torch.autograd.grad(value.reshape(()), [leaves[n] for n in names], allow_unused=True)
            else:  # fn does not depend on any parameter
                grads = (None,) * len(names)
            return value.detach().reshape(()), {
                name: torch.zeros_like(leaves[name]) if grad is None else grad for name, grad in zip(names, grads)
            }

        return value_and_grad_fn

    # ---------------------------------------------------------------- compilation, optimizer, threads
    def compile(self, fn: Callable[..., Any], static: tuple[str, ...] = (), donate: tuple[str, ...] = ()) -> Callable[..., Any]:
        """``torch.compile`` when the backend was made with ``compile=True`` (dynamic shapes off); else ``fn``."""
        if not self.compile_functions:
            return fn
        return torch.compile(fn, dynamic=False)

    def compiling(self):
        """The same device with ``torch.compile`` on."""
        return self if self.compile_functions else type(self)(device=self.device, compile=True)

    def adamw_update(
        self, params, grads, m, v, *, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, decay
    ):
        """AdamW with in-place ``torch._foreach_*`` kernels: no new tensors per step; the same math as the plain update."""
        names = list(params)
        p_list, g_list = [params[n] for n in names], [grads[n] for n in names]
        m_list, v_list = [m[n] for n in names], [v[n] for n in names]
        with torch.no_grad():
            torch._foreach_mul_(m_list, beta1)
            torch._foreach_add_(m_list, g_list, alpha=1.0 - beta1)
            torch._foreach_mul_(v_list, beta2)
            torch._foreach_addcmul_(v_list, g_list, g_list, value=1.0 - beta2)
            decayed = [params[n] for n in names if decay[n]]
            if weight_decay and decayed:
                torch._foreach_mul_(decayed, 1.0 - lr * weight_decay)
            denominator = torch._foreach_div(v_list, bias_correction2)
            torch._foreach_sqrt_(denominator)
            torch._foreach_add_(denominator, eps)
            numerator = torch._foreach_div(m_list, bias_correction1)
            torch._foreach_addcdiv_(p_list, numerator, denominator, value=-lr)
        return params, m, v

    def data_parallel(self, devices: int | None = None, timeout: float = 300.0):
        """This rank of the processes ``torchrun`` (or ``tspec train --nproc``) started, joined with
        ``torch.distributed``: gloo on CPU, NCCL on CUDA (rank r on GPU ``LOCAL_RANK``). One device per process."""
        from .parallel import TorchDataParallel

        if devices not in (None, 1):
            raise ConfigError(
                f"--devices {devices}: PyTorch trains with one device per process; start N processes instead "
                f"(tspec train --nproc N, or torchrun --nproc-per-node N -m transformer_spec train ...)"
            )
        return TorchDataParallel(self, timeout)

    def set_threads(self, count: int) -> None:
        """``torch.set_num_threads(count)``: on a shared 2-core machine one thread can be 10x faster than two."""
        torch.set_num_threads(count)


def _any_requires_grad(params: Any) -> bool:
    if not isinstance(params, dict):
        return False  # the base class's check reports the bad params
    return any(isinstance(p, torch.Tensor) and p.requires_grad for p in params.values())
