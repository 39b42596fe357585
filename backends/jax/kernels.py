"""The JAX backend's kernels: pure functions of JAX arrays, and their ``jax.jit`` versions.

Each kernel is one jitted function shared by every backend instance, so a new
input shape costs one compilation of the kernel rather than one per
``jax.numpy`` operation inside it. Option values that only change numbers
(``eps``, ``scale``) are traced, not static; options that change the program
(``axis``, ``causal``, ``approximate``) are static.

Half precision: float16 / bfloat16 inputs are stored in their dtype but
reductions (softmax, norms, the loss) are computed in float32 and rounded once
at the end. Positions: sinusoidal tables and rotary angles are computed in NumPy
float64 on the host (like the reference) when the positions are concrete, and in
the widest float JAX has when they are traced (inside a compiled decoding step).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _x64_enabled() -> bool:
    return bool(jax.config.jax_enable_x64)


_HALF_DTYPES = (jnp.float16, jnp.bfloat16)
_INT32_RANGE = (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
# float32 matrix products at full float32 precision on every device (GPUs would
# otherwise use TF32, whose 10-bit mantissa breaks the float32 tolerances).
_PRECISION = lax.Precision.HIGHEST


def _jax_dtype(name: str) -> Any:
    """The JAX dtype for a contract dtype name (int64 is int32 in JAX's 32-bit mode)."""
    if name == "int64" and not _x64_enabled():
        return jnp.int32
    return {
        "float16": jnp.float16,
        "bfloat16": jnp.bfloat16,
        "float32": jnp.float32,
        "float64": jnp.float64,
        "int32": jnp.int32,
        "int64": jnp.int64,
        "bool": jnp.bool_,
    }[name]


def _compute_dtype(dtype: Any) -> Any:
    """The dtype reductions run in: float32 for half-precision inputs, else the input's own."""
    return jnp.float32 if dtype in _HALF_DTYPES else dtype


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


# How many times each compiled function has been traced (= compiled, unless the
# persistent cache supplied the executable). The increment is a Python side
# effect, so it runs only while JAX traces, never when a compiled call runs.
TRACE_COUNTS: collections.Counter[str] = collections.Counter()


def _counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps fn's signature visible to jax.jit, which needs it to
    # map static_argnames / donate_argnames to positions (without it, donation
    # of arguments passed by position is silently skipped).
    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        TRACE_COUNTS[name] += 1
        return fn(*args, **kwargs)

    return traced


# ---------------------------------------------------------------------- pure kernels
# Plain functions of JAX arrays. The backend calls them through jax.jit (shared
# by every instance, so compilations are reused) or directly (the eager path).


def _softmax_impl(x, axis):
    z = x.astype(_compute_dtype(x.dtype))
    e = jnp.exp(z - jnp.max(z, axis=axis, keepdims=True))  # every exponent <= 0: no overflow
    return (e / jnp.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


def _log_softmax_impl(x, axis):
    z = x.astype(_compute_dtype(x.dtype))
    z = z - jnp.max(z, axis=axis, keepdims=True)
    return (z - jnp.log(jnp.sum(jnp.exp(z), axis=axis, keepdims=True))).astype(x.dtype)


def _relu_impl(x):
    return jax.nn.relu(x)


def _gelu_impl(x, approximate):
    # The flag is always explicit: jax.nn.gelu defaults to the tanh form, torch to erf.
    return jax.nn.gelu(x.astype(_compute_dtype(x.dtype)), approximate=approximate).astype(x.dtype)


def _silu_impl(x):
    return jax.nn.silu(x.astype(_compute_dtype(x.dtype))).astype(x.dtype)


def _linear_impl(x, w, b):
    y = jnp.matmul(x, w, precision=_PRECISION)  # (..., Dout)
    return y if b is None else y + b


def _layer_norm_impl(x, w, b, eps):
    z = x.astype(_compute_dtype(x.dtype))
    mean = jnp.mean(z, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(z - mean), axis=-1, keepdims=True)  # biased: divide by D
    y = (z - mean) / jnp.sqrt(var + eps) * w.astype(z.dtype)
    if b is not None:
        y = y + b.astype(z.dtype)
    return y.astype(x.dtype)


def _rms_norm_impl(x, w, eps):
    z = x.astype(_compute_dtype(x.dtype))
    rms = jnp.sqrt(jnp.mean(z * z, axis=-1, keepdims=True) + eps)
    return (z / rms * w.astype(z.dtype)).astype(x.dtype)


def _embedding_impl(table, ids):
    return jnp.take(table, ids, axis=0)  # (..., D); ids were range-checked by the caller


def _apply_rotary(x, cos, sin):
    """Rotate the pairs (i, i + Dh/2) of ``x`` (..., L, Dh) by angles with cos/sin (L, Dh/2)."""
    z = x.astype(_compute_dtype(x.dtype))
    cos, sin = cos.astype(z.dtype), sin.astype(z.dtype)
    half = x.shape[-1] // 2
    x1, x2 = z[..., :half], z[..., half:]  # each (..., L, Dh/2)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)  # (..., L, Dh)


def _masked_softmax(scores, allowed):
    """Softmax over the last axis where ``allowed``; a row with nothing allowed gets zero weights."""
    if allowed is None:
        return _softmax_impl(scores, -1)
    scores = jnp.where(allowed, scores, -jnp.inf)
    # softmax is shift-invariant, so the shift needs no gradient (and an all -inf row has none to give)
    row_max = lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
    row_max = jnp.where(jnp.isfinite(row_max), row_max, 0)  # a fully masked row stays all -inf
    e = jnp.exp(scores - row_max)  # masked entries: exp(-inf) = 0
    total = jnp.sum(e, axis=-1, keepdims=True)
    return e / jnp.where(total > 0, total, 1)  # a fully masked row: zero weights, not 0/0


def _attention_impl(q, k, v, mask, causal, scale, need_weights):
    L, S = q.shape[-2], k.shape[-2]
    compute = _compute_dtype(q.dtype)
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2), precision=_PRECISION)  # (..., L, S)
    scores = scores.astype(compute) * jnp.asarray(scale, compute)
    allowed = mask
    if causal:  # query i sees key j iff j <= i + S - L: the queries are the last L positions
        below = jnp.arange(S)[None, :] <= jnp.arange(L)[:, None] + (S - L)  # (L, S)
        allowed = below if allowed is None else allowed & below
    weights = _masked_softmax(scores, allowed).astype(q.dtype)  # (..., L, S)
    out = jnp.matmul(weights, v, precision=_PRECISION)  # (..., L, Dv)
    return out, (weights if need_weights else None)


def _cross_entropy_impl(logits, targets, ignore_index):
    log_p = _log_softmax_impl(logits.astype(_compute_dtype(logits.dtype)), -1)  # (..., V)
    keep = jnp.ones(targets.shape, bool) if ignore_index is None else targets != ignore_index
    safe_targets = jnp.where(keep, targets, 0)  # ignored slots read class 0, then count for nothing
    picked = jnp.take_along_axis(log_p, safe_targets[..., None], axis=-1)[..., 0]  # (...)
    total = jnp.sum(jnp.where(keep, -picked, 0))
    count = jnp.sum(keep)
    return (total / jnp.maximum(count, 1)).astype(logits.dtype)  # all ignored: 0 (and a zero gradient)


def _argmax_impl(logits):
    return jnp.argmax(logits)  # the first maximum: lowest index on ties


def sinusoidal_table_host(length: int, dim: int, base: float, offset: int) -> np.ndarray:
    """The float64 sinusoidal table, the reference formula verbatim (computed on the host)."""
    positions = np.arange(offset, offset + length, dtype=np.float64)[:, None]  # (length, 1)
    frequencies = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (dim/2,)
    angles = positions * frequencies  # (length, dim/2)
    table = np.empty((length, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table


def _rotary_angles_host(positions: np.ndarray, head_dim: int, base: float) -> np.ndarray:
    """Angles (L, Dh/2) of the half-split rotary convention, in float64 on the host."""
    frequencies = base ** (-np.arange(head_dim // 2, dtype=np.float64) * 2 / head_dim)  # (Dh/2,)
    return positions[..., None].astype(np.float64) * frequencies  # (..., L, Dh/2): per-row positions (B, 1, L) too


def _rotary_cos_sin(positions: Any, head_dim: int, base: float, dtype: Any) -> tuple[Any, Any]:
    """cos and sin (L, Dh/2) for ``positions`` in ``dtype``: float64 on the host when the positions are concrete."""
    if _is_tracer(positions):  # inside someone's jit: compute in the widest float JAX has
        wide = jnp.float64 if _x64_enabled() else jnp.float32
        frequencies = base ** (-jnp.arange(head_dim // 2, dtype=wide) * 2 / head_dim)  # (Dh/2,)
        angles = positions[..., None].astype(wide) * frequencies  # (..., L, Dh/2)
        return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)
    angles = _rotary_angles_host(np.asarray(positions), head_dim, base)
    return jnp.asarray(np.cos(angles), dtype), jnp.asarray(np.sin(angles), dtype)


def sinusoidal_traced(length: int, dim: int, base: float, offset: Any, dtype: Any) -> Any:
    """The sinusoidal table for a traced ``offset`` (inside a compiled step), in the widest float JAX has."""
    wide = jnp.float64 if _x64_enabled() else jnp.float32
    positions = (offset + jnp.arange(length)).astype(wide)[:, None]  # (length, 1)
    frequencies = base ** (-jnp.arange(0, dim, 2, dtype=wide) / dim)  # (dim/2,)
    angles = positions * frequencies  # (length, dim/2)
    table = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # (length, dim/2, 2): sin, cos interleaved
    return table.reshape(length, dim).astype(dtype)  # (length, dim)


def _jit(name: str, fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    return jax.jit(_counted(name, fn), **options)


# Built once at import and shared by every JaxBackend instance, so compilations are reused.
COMPILED: dict[str, Callable[..., Any]] = {
    "softmax": _jit("softmax", _softmax_impl, static_argnames=("axis",)),
    "log_softmax": _jit("log_softmax", _log_softmax_impl, static_argnames=("axis",)),
    "relu": _jit("relu", _relu_impl),
    "gelu": _jit("gelu", _gelu_impl, static_argnames=("approximate",)),
    "silu": _jit("silu", _silu_impl),
    "linear": _jit("linear", _linear_impl),
    "layer_norm": _jit("layer_norm", _layer_norm_impl),
    "rms_norm": _jit("rms_norm", _rms_norm_impl),
    "embedding": _jit("embedding", _embedding_impl),
    "rotary": _jit("rotary", _apply_rotary),
    "attention": _jit("attention", _attention_impl, static_argnames=("causal", "need_weights")),
    "cross_entropy": _jit("cross_entropy", _cross_entropy_impl, static_argnames=("ignore_index",)),
    "argmax": _jit("argmax", _argmax_impl),
}

EAGER: dict[str, Callable[..., Any]] = {
    "softmax": _softmax_impl,
    "log_softmax": _log_softmax_impl,
    "relu": _relu_impl,
    "gelu": _gelu_impl,
    "silu": _silu_impl,
    "linear": _linear_impl,
    "layer_norm": _layer_norm_impl,
    "rms_norm": _rms_norm_impl,
    "embedding": _embedding_impl,
    "rotary": _apply_rotary,
    "attention": _attention_impl,
    "cross_entropy": _cross_entropy_impl,
    "argmax": _argmax_impl,
}
