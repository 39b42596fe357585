r"""AdamW with linear warm-up, cosine decay and clipping by global norm — written once, for every backend.

Every function here uses only Python arithmetic operators (``+ - * / **``,
``abs``) and ``.sum()`` on the arrays it is given, which NumPy arrays, PyTorch
tensors and JAX arrays all share. So the same code updates native tensors
eagerly (PyTorch), runs inside ``jax.jit`` as part of a compiled train step
(JAX), and runs on NumPy arrays (the readable reference the tests compare
against). No ``if`` looks at an array value, so nothing forces a device sync
or breaks a trace.

Schedule
--------
With peak rate $\eta$, $W$ warm-up steps, $T$ total steps and floor ratio $r$
(step $t$ counts from 1):

$$\eta_t = \eta\,\frac{t}{W} \quad (t \le W), \qquad
  \eta_t = \eta\Bigl(r + (1-r)\,\tfrac12\bigl(1+\cos\pi\tfrac{t-W}{T-W}\bigr)\Bigr) \quad (W < t \le T)$$

and $\eta_t = r\eta$ after $T$.

Clipping
--------
$$g \leftarrow g \cdot \min\Bigl(1, \frac{c}{\lVert g\rVert_2 + 10^{-6}}\Bigr),
  \qquad \lVert g\rVert_2 = \sqrt{\textstyle\sum_{\text{params}}\sum g^2}$$

(``torch.nn.utils.clip_grad_norm_``'s rule). ``min(1, x)`` is written
``1 - (|1 - x| + (1 - x))/2`` so it is an operator expression, not a Python
``min`` on an array (and it is exactly 1, never above, when ``x >= 1``).

AdamW step (Loshchilov & Hutter; ``torch.optim.AdamW``'s form)
-----------------------------------------------------------------
$$m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2$$
$$\theta \leftarrow \theta(1 - \eta_t\lambda) - \eta_t\,\frac{m / (1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}$$

Weight decay $\lambda$ applies to matrices and embeddings (``ndim >= 2``),
not to biases and norm gains (the GPT-2 / nanoGPT convention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transformer_spec.spec.errors import ConfigError

CLIP_EPSILON = 1e-6  # added to the norm before dividing, like torch.nn.utils.clip_grad_norm_


@dataclass(frozen=True)
class AdamWConfig:
    """Hyper-parameters of AdamW and its schedule. Validated on construction."""

    lr: float = 3e-3  # peak learning rate, reached at the end of warm-up
    beta1: float = 0.9  # decay of the first-moment (mean) estimate
    beta2: float = 0.99  # decay of the second-moment estimate (0.99: small models, short runs)
    eps: float = 1e-8  # added to sqrt(v) so a zero gradient never divides by zero
    weight_decay: float = 0.1  # decoupled decay of matrices and embeddings (GPT-2 used 0.1)
    warmup_steps: int = 50  # linear warm-up from lr/W to lr
    total_steps: int = 1000  # cosine decay ends here
    min_lr_ratio: float = 0.1  # the floor of the cosine, as a fraction of lr
    grad_clip: float | None = 1.0  # clip the global gradient norm to this (None: no clipping)

    def __post_init__(self) -> None:
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate = {self.lr!r}, expected a finite number > 0 (e.g. 3e-3)")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"AdamW: {name} = {value!r}, expected a number in [0, 1)")
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)) or not self.eps > 0:
            raise ConfigError(f"AdamW: eps = {self.eps!r}, expected a number > 0")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise ConfigError(f"weight decay = {self.weight_decay!r}, expected a number >= 0")
        for name in ("warmup_steps", "total_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name.replace('_', ' ')} = {value!r}, expected an integer >= 0")
        if self.total_steps < 1:
            raise ConfigError(f"total steps = {self.total_steps!r}, expected at least 1")
        if self.warmup_steps > self.total_steps:
            raise ConfigError(
                f"warm-up steps = {self.warmup_steps} exceed total steps = {self.total_steps}; expected warm-up <= total"
            )
        if (
            isinstance(self.min_lr_ratio, bool)
            or not isinstance(self.min_lr_ratio, (int, float))
            or not 0 <= self.min_lr_ratio <= 1
        ):
            raise ConfigError(f"min_lr_ratio = {self.min_lr_ratio!r}, expected a number in [0, 1]")
        if self.grad_clip is not None and (
            isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float)) or not self.grad_clip > 0
        ):
            raise ConfigError(f"gradient clip = {self.grad_clip!r}, expected a number > 0 (or none to disable clipping)")


def learning_rate_at(step: int, config: AdamWConfig) -> float:
    """The learning rate of step ``step`` (1-based): linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
    if step < 1:
        raise ConfigError(f"learning_rate_at: step = {step!r}, expected an integer >= 1 (steps count from 1)")
    peak, warmup, total = config.lr, config.warmup_steps, config.total_steps
    if warmup and step <= warmup:
        return peak * step / warmup
    floor = config.min_lr_ratio * peak
    if step >= total:
        return floor
    progress = (step - warmup) / (total - warmup)  # in (0, 1)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def global_norm(grads: Mapping[str, Any]) -> Any:
    """The L2 norm of all gradients together, as a 0-d native array."""
    total = None
    for g in grads.values():
        square = (g * g).sum()
        total = square if total is None else total + square
    if total is None:
        raise ConfigError("global_norm: no gradients given; expected a dict from parameter name to array")
    return total**0.5


def clip_coefficient(norm: Any, max_norm: float) -> Any:
    """``min(1, max_norm / (norm + 1e-6))`` as an operator expression (works on traced arrays)."""
    ratio = max_norm / (norm + CLIP_EPSILON)
    excess = 1.0 - ratio  # min(1, r) = 1 - max(0, 1 - r); max(0, x) = (|x| + x) / 2, exactly 0 when x <= 0
    return 1.0 - (abs(excess) + excess) * 0.5


def clip_by_global_norm(grads: Mapping[str, Any], max_norm: float, norm: Any = None) -> tuple[dict[str, Any], Any]:
    """Scale every gradient by ``clip_coefficient``; returns (clipped grads, the norm before clipping).

    ``norm``: the global norm when the caller has computed it already.
    """
    if norm is None:
        norm = global_norm(grads)
    coefficient = clip_coefficient(norm, max_norm)
    return {name: g * coefficient for name, g in grads.items()}, norm


def decays(shape: tuple[int, ...]) -> bool:
    """Whether a parameter of this shape gets weight decay: matrices and embeddings yes, vectors no."""
    return len(shape) >= 2


def init_moments(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Zero first and second moments shaped like ``params`` (``p * 0`` keeps each array's kind and device)."""
    return {n: p * 0.0 for n, p in params.items()}, {n: p * 0.0 for n, p in params.items()}


def adamw_update(
    params: Mapping[str, Any],
    grads: Mapping[str, Any],
    m: Mapping[str, Any],
    v: Mapping[str, Any],
    *,
    lr: Any,
    bias_correction1: Any,
    bias_correction2: Any,
    config: AdamWConfig,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One AdamW step → (new params, new m, new v). Pure: nothing given is modified.

    ``lr`` is this step's rate (from :func:`learning_rate_at`); the bias
    corrections are ``1 - beta1**t`` and ``1 - beta2**t``. They are arguments,
    not computed from a step count here, so a compiled step can take them as
    traced scalars and never recompile.
    """
    b1, b2, eps, wd = config.beta1, config.beta2, config.eps, config.weight_decay
    new_params, new_m, new_v = {}, {}, {}
    for name, p in params.items():
        g = grads[name]
        m_t = b1 * m[name] + (1.0 - b1) * g
        v_t = b2 * v[name] + (1.0 - b2) * (g * g)
        step = (m_t / bias_correction1) / ((v_t / bias_correction2) ** 0.5 + eps)
        if wd and decays(tuple(p.shape)):
            p = p * (1.0 - lr * wd)
        new_params[name] = p - lr * step
        new_m[name] = m_t
        new_v[name] = v_t
    return new_params, new_m, new_v


def bias_corrections(step: int, config: AdamWConfig) -> tuple[float, float]:
    """``(1 - beta1**step, 1 - beta2**step)`` for the 1-based ``step``."""
    return 1.0 - config.beta1**step, 1.0 - config.beta2**step


def optimizer_step(params, grads, m, v, step: int, config: AdamWConfig, norm: Any = None):
    """Clip (if configured), then one AdamW step with the scheduled rate → (params, m, v, grad norm, lr).

    The plain path, on whatever arrays it is given. The grad norm is a 0-d native array (read it with float());
    pass ``norm`` when it is already known.
    """
    if norm is None:
        norm = global_norm(grads)
    if config.grad_clip is not None:
        grads, norm = clip_by_global_norm(grads, config.grad_clip, norm)
    lr = learning_rate_at(step, config)
    bc1, bc2 = bias_corrections(step, config)
    params, m, v = adamw_update(params, grads, m, v, lr=lr, bias_correction1=bc1, bias_correction2=bc2, config=config)
    return params, m, v, norm, lr
