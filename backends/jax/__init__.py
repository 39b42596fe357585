"""The JAX backend: every kernel in ``jax.numpy``, composites compiled with ``jax.jit``.

How it differs from the NumPy reference, and why
------------------------------------------------
* **Compiled kernels.** Each kernel is one ``jax.jit`` function shared by every
  instance, so a new input shape costs one compilation of the whole kernel
  rather than one per ``jax.numpy`` operation inside it (see the pitfalls in
  ``DESIGN.md``). Option values that only change numbers (``eps``, ``scale``,
  ``temperature``, ``u``) are traced, not static, so drawing new values does not
  recompile; options that change the program (``axis``, ``causal``,
  ``approximate``, the model config) are static.
* **A static-shape KV cache.** :class:`StaticKVCache` preallocates keys and
  values for the whole context, ``(B·H, C, Dh)`` per layer, and each decoding step
  writes its new keys with ``lax.dynamic_update_slice`` at the traced position
  ``start``; keys beyond the current length are masked. Every step therefore
  has the same shapes and runs one already-compiled function. The step's input
  buffers are *donated* (updated in place) when the cache passed in is the
  newest one made from its buffers; an older cache stays valid (see
  :class:`StaticKVCache`). A decoding step is one call of one compiled
  function; a prompt (or chunk) of a new length L compiles the model once more,
  so L > 1 is padded at the end to a power of two (causal attention keeps the
  padding from touching the real positions) and nearby lengths share a program.
* **Half precision.** float16 / bfloat16 inputs are stored in their dtype but
  reductions (softmax, norms, the loss, the sampler's probabilities) are
  computed in float32 and rounded once at the end: closer to the float64
  reference than computing in half precision throughout.
* **Positions on the host in float64.** Sinusoidal tables and rotary angles are
  computed in NumPy float64 (like the reference) and rounded once to the
  compute dtype; the compiled model slices rows of those tables.
* **float64** needs JAX's 64-bit mode (``JAX_ENABLE_X64=1``). Without it the
  backend refuses float64 with a message saying so, instead of JAX's default of
  silently computing in float32. Integer data asked for as int64 is held as
  int32 in 32-bit mode (values are checked to fit).

Options
-------
``JaxBackend(device=None, jit=True, donate_cache=True)``: ``device`` is a JAX
platform ("cpu", "gpu", "tpu", optionally ":index"); ``jit=False`` runs the same
functions op by op (the eager path, for checking compiled == eager);
``donate_cache=False`` never updates cache buffers in place.

The environment variable ``TSPEC_JAX_CACHE_DIR`` turns on JAX's persistent
compilation cache in that folder, so a second run (of the conformance suite,
say) loads its compiled kernels instead of compiling them again.
"""

from __future__ import annotations

import collections
import functools
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, ShapeError
from transformer_spec.spec.validate import fmt_shape

from ..base import Backend, KVCache
from ..numpy import NumpyBackend

__all__ = ["JaxBackend", "StaticKVCache", "TRACE_COUNTS", "enable_persistent_cache"]

# ---------------------------------------------------------------------- set-up

CACHE_DIR_VARIABLE = "TSPEC_JAX_CACHE_DIR"


def enable_persistent_cache(directory: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``directory`` (default ``$TSPEC_JAX_CACHE_DIR``).

    Returns the folder used, or None when neither is given (the cache stays off).
    Every compilation is cached, however short: the suite compiles hundreds of
    small kernels, each well under JAX's default one-second threshold.
    """
    directory = directory or os.environ.get(CACHE_DIR_VARIABLE)
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


enable_persistent_cache()


# The float64 sampler used when JAX runs without 64-bit mode (see JaxBackend._sample).
_HOST_SAMPLER = NumpyBackend()


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


def _inverse_cdf(kept, u_floor):
    """Smallest index whose cumulative kept probability (vocabulary order) exceeds u; else the last kept index."""
    cumulative = jnp.cumsum(kept / jnp.sum(kept))
    exceeds = cumulative > u_floor
    last_kept = jnp.max(jnp.where(kept > 0, jnp.arange(kept.shape[0]), -1))  # rounding left the total <= u
    return jnp.where(jnp.any(exceeds), jnp.argmax(exceeds), last_kept)


def _first_reaching(mass, threshold, count):
    """Length of the smallest prefix whose mass reaches ``threshold`` (``count`` when none does)."""
    reached = mass >= threshold
    return jnp.where(jnp.any(reached), jnp.argmax(reached) + 1, count)


def _sample_probabilities(logits, temperature):
    z = logits.astype(_compute_dtype(logits.dtype))
    z = (z - jnp.max(z)) / temperature  # shift first: logits / T can overflow, shifted scores are <= 0 and cannot
    e = jnp.exp(z - jnp.max(z))
    return e / jnp.sum(e)  # (V,)


def _sample_plain_impl(logits, u_floor, temperature):
    """No top-k and no top-p: every token is kept."""
    return _inverse_cdf(_sample_probabilities(logits, temperature), u_floor)


def _sample_sorted_impl(logits, u_floor, temperature, top_k, top_p_ceil):
    """Top-k then top-p with a full stable sort; ``top_k`` and ``top_p`` are traced (no recompiles)."""
    p = _sample_probabilities(logits, temperature)  # (V,)
    V = p.shape[0]
    order = jnp.argsort(-p, stable=True)  # most probable first, ties by lower index
    sorted_p = p[order]  # (V,)
    rank = jnp.arange(V)
    in_top_k = rank < top_k
    top_k_p = jnp.where(in_top_k, sorted_p, 0)
    mass = jnp.cumsum(top_k_p) / jnp.sum(top_k_p)  # (V,) normalised over the top-k set
    cut = jnp.minimum(_first_reaching(jnp.where(in_top_k, mass, -jnp.inf), top_p_ceil, top_k), top_k)
    kept = jnp.zeros_like(p).at[order].set(jnp.where(rank < cut, sorted_p, 0))  # back in vocabulary order
    return _inverse_cdf(kept, u_floor)


def _sample_candidates_impl(logits, u_floor, temperature, top_p_ceil, k, normalize_over_candidates):
    """Top-p among the ``k`` most probable tokens from ``lax.top_k`` (a partial sort), ``k`` static.

    With ``normalize_over_candidates`` the ``k`` candidates are the top-k set and
    top-p's mass is normalised over them; without, ``k`` is only a search window
    for top-p over the whole vocabulary, and the caller checks ``complete``.
    Returns (token, complete): complete is False when top-p's threshold was not
    reached inside the window, so the answer needs the full sort.
    """
    p = _sample_probabilities(logits, temperature)  # (V,)
    values, indices = lax.top_k(p, k)  # (k,) most probable first, ties by lower index
    total = jnp.sum(values) if normalize_over_candidates else jnp.sum(p)
    mass = jnp.cumsum(values) / total  # (k,)
    complete = jnp.any(mass >= top_p_ceil) | normalize_over_candidates
    cut = _first_reaching(mass, top_p_ceil, k)
    kept = jnp.where(jnp.arange(k) < cut, values, 0)  # (k,)
    by_index = jnp.argsort(indices)  # the candidates in vocabulary order
    token = indices[by_index][_inverse_cdf(kept[by_index], u_floor)]
    return token, complete


def _sinusoidal_table_host(length: int, dim: int, base: float, offset: int) -> np.ndarray:
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
    return positions[:, None].astype(np.float64) * frequencies  # (L, Dh/2)


def _rotary_cos_sin(positions: Any, head_dim: int, base: float, dtype: Any) -> tuple[Any, Any]:
    """cos and sin (L, Dh/2) for ``positions`` in ``dtype``: float64 on the host when the positions are concrete."""
    if _is_tracer(positions):  # inside someone's jit: compute in the widest float JAX has
        wide = jnp.float64 if _x64_enabled() else jnp.float32
        frequencies = base ** (-jnp.arange(head_dim // 2, dtype=wide) * 2 / head_dim)  # (Dh/2,)
        angles = positions[:, None].astype(wide) * frequencies  # (L, Dh/2)
        return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)
    angles = _rotary_angles_host(np.asarray(positions), head_dim, base)
    return jnp.asarray(np.cos(angles), dtype), jnp.asarray(np.sin(angles), dtype)


# ---------------------------------------------------------------------- pure composites
# ``params`` is a flat dict; ``prefix`` selects one block or sub-layer.


def _norm_impl(params, config: ModelConfig, x, prefix: str):
    if config.norm == "rms":
        return _rms_norm_impl(x, params[prefix + "weight"], config.norm_eps)
    return _layer_norm_impl(x, params[prefix + "weight"], params.get(prefix + "bias"), config.norm_eps)


def _split_heads(params, config: ModelConfig, x, prefix: str):
    """q, k, v, each (B, H, L, Dh), from the normalised stream x (B, L, D)."""
    B, L, _ = x.shape
    qkv = _linear_impl(x, params[prefix + "qkv.weight"], params.get(prefix + "qkv.bias"))  # (B, L, 3D)
    qkv = qkv.reshape(B, L, 3, config.n_heads, config.head_dim)  # (B, L, 3, H, Dh)
    qkv = jnp.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, H, L, Dh)
    return qkv[0], qkv[1], qkv[2]


def _merge_heads(params, x, prefix: str):
    """Attention output (B, H, L, Dh) → the projected stream (B, L, D)."""
    B, H, L, Dh = x.shape
    x = jnp.transpose(x, (0, 2, 1, 3))  # (B, L, H, Dh)
    x = x.reshape(B, L, H * Dh)  # (B, L, D)
    return _linear_impl(x, params[prefix + "proj.weight"], params.get(prefix + "proj.bias"))  # (B, L, D)


def _multihead_attention_impl(params, x, past_keys, past_values, cos, sin, *, config: ModelConfig, prefix: str = ""):
    """Causal self-attention appending to past keys/values (B, H, S_past, Dh) or None."""
    q, k, v = _split_heads(params, config, x, prefix)  # each (B, H, L, Dh)
    if cos is not None:
        q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
    if past_keys is not None:
        k = jnp.concatenate([past_keys, k], axis=2)  # (B, H, S, Dh)
        v = jnp.concatenate([past_values, v], axis=2)  # (B, H, S, Dh)
    out, _ = _attention_impl(q, k, v, None, True, 1.0 / math.sqrt(config.head_dim), False)  # (B, H, L, Dh)
    return _merge_heads(params, out, prefix), (k, v)


def _feed_forward_impl(params, x, *, config: ModelConfig, prefix: str = ""):
    hidden = _linear_impl(x, params[prefix + "fc.weight"], params.get(prefix + "fc.bias"))  # (B, L, F)
    if config.activation == "swiglu":
        gate = _linear_impl(x, params[prefix + "gate.weight"], params.get(prefix + "gate.bias"))  # (B, L, F)
        hidden = _silu_impl(gate) * hidden
    elif config.activation == "relu":
        hidden = _relu_impl(hidden)
    else:
        hidden = _gelu_impl(hidden, config.activation == "gelu_tanh")
    return _linear_impl(hidden, params[prefix + "proj.weight"], params.get(prefix + "proj.bias"))  # (B, L, D)


def _block_impl(params, x, past_keys, past_values, cos, sin, *, config: ModelConfig, prefix: str = ""):
    attn_out, kv = _multihead_attention_impl(
        params,
        _norm_impl(params, config, x, prefix + "ln1."),
        past_keys,
        past_values,
        cos,
        sin,
        config=config,
        prefix=prefix + "attn.",
    )
    h = x + attn_out
    return h + _feed_forward_impl(
        params, _norm_impl(params, config, h, prefix + "ln2."), config=config, prefix=prefix + "mlp."
    ), kv


def _model_forward_impl(params, ids, keys, values, start, tables, *, config: ModelConfig, fresh: bool):
    """Logits (B, L, V) and the updated cache buffers, N × (B·H, C, Dh), for ids (B, L) at positions start..start+L-1.

    ``fresh``: the cache is empty, so attention looks only at this chunk's L keys
    (cost L×L, not L×C) and the buffers are created here. Otherwise ``start`` is a
    traced int32 and every query looks at all C slots of the buffers, with slots
    past its own position masked: the same program serves every decoding step.

    The buffers merge batch and heads into one leading axis, (B·H, C, Dh): with
    B = 1 a unit axis made XLA's CPU compiler copy every buffer (3 MB per layer
    for GPT-2) around the in-place update, 15x slower than the update itself.
    """
    B, L = ids.shape
    N, H, C, Dh = config.n_layers, config.n_heads, config.context_length, config.head_dim
    x = jnp.take(params["wte"], ids, axis=0)  # (B, L, D)
    dtype = x.dtype
    if config.positional == "learned":
        x = x + lax.dynamic_slice_in_dim(params["wpe"], start, L, axis=0)  # (L, D) rows start..start+L-1
    elif config.positional == "sinusoidal":
        x = x + lax.dynamic_slice_in_dim(tables["sinusoidal"], start, L, axis=0)  # (L, D)
    cos = sin = None
    if config.positional == "rotary":
        cos = lax.dynamic_slice_in_dim(tables["cos"], start, L, axis=0)  # (L, Dh/2)
        sin = lax.dynamic_slice_in_dim(tables["sin"], start, L, axis=0)  # (L, Dh/2)
    if fresh:
        keys = [jnp.zeros((B * H, C, Dh), dtype)] * N
        values = [jnp.zeros((B * H, C, Dh), dtype)] * N
        allowed = None  # plain causal attention within the chunk
    else:
        # query i sits at position start + i and sees every filled slot up to it
        allowed = jnp.arange(C)[None, :] <= start + jnp.arange(L)[:, None]  # (L, C)
    keys, values = list(keys), list(values)
    zero = jnp.zeros((), start.dtype)  # update indices must share one dtype (a Python 0 is int64 in x64 mode)
    scale = 1.0 / math.sqrt(Dh)
    for i in range(N):
        prefix = f"blocks.{i}."
        h = _norm_impl(params, config, x, prefix + "ln1.")
        q, k, v = _split_heads(params, config, h, prefix + "attn.")  # each (B, H, L, Dh)
        if cos is not None:
            q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
        # One buffer per layer, written once and then only read: XLA updates it in place.
        # (Slices of one stacked (N, ...) buffer read between its updates made XLA copy it per layer.)
        keys[i] = lax.dynamic_update_slice(keys[i], k.reshape(B * H, L, Dh), (zero, start, zero))  # (B·H, C, Dh)
        values[i] = lax.dynamic_update_slice(values[i], v.reshape(B * H, L, Dh), (zero, start, zero))  # (B·H, C, Dh)
        if fresh:
            out, _ = _attention_impl(q, k, v, None, True, scale, False)  # (B, H, L, Dh)
        else:
            out, _ = _attention_impl(q.reshape(B * H, L, Dh), keys[i], values[i], allowed, False, scale, False)  # (B·H, L, Dh)
            out = out.reshape(B, H, L, Dh)  # (B, H, L, Dh)
        x = x + _merge_heads(params, out, prefix + "attn.")
        x = x + _feed_forward_impl(params, _norm_impl(params, config, x, prefix + "ln2."), config=config, prefix=prefix + "mlp.")
    x = _norm_impl(params, config, x, "ln_f.")
    if config.tie_embeddings:
        logits = jnp.einsum("bld,vd->blv", x, params["wte"], precision=_PRECISION)  # (B, L, V)
    else:
        logits = _linear_impl(x, params["lm_head.weight"], None)  # (B, L, V)
    return logits.astype(dtype), tuple(keys), tuple(values)


# ---------------------------------------------------------------------- compiled versions


def _jit(name: str, fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    return jax.jit(_counted(name, fn), **options)


# Built once at import and shared by every JaxBackend instance, so compilations are reused.
_COMPILED: dict[str, Callable[..., Any]] = {
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
    "sample_plain": _jit("sample_plain", _sample_plain_impl),
    "sample_sorted": _jit("sample_sorted", _sample_sorted_impl),
    "sample_candidates": _jit("sample_candidates", _sample_candidates_impl, static_argnames=("k", "normalize_over_candidates")),
    "multihead_attention": _jit("multihead_attention", _multihead_attention_impl, static_argnames=("config",)),
    "feed_forward": _jit("feed_forward", _feed_forward_impl, static_argnames=("config",)),
    "block": _jit("block", _block_impl, static_argnames=("config",)),
    # The cache buffers are donated: XLA updates them in place instead of copying
    # N × (B·H, C, Dh) twice per decoding step (75 MB for GPT-2 small).
    "model_forward": _jit(
        "model_forward", _model_forward_impl, static_argnames=("config", "fresh"), donate_argnames=("keys", "values")
    ),
}

_EAGER: dict[str, Callable[..., Any]] = {
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
    "sample_plain": _sample_plain_impl,
    "sample_sorted": _sample_sorted_impl,
    "sample_candidates": _sample_candidates_impl,
    "multihead_attention": _multihead_attention_impl,
    "feed_forward": _feed_forward_impl,
    "block": _block_impl,
    "model_forward": _model_forward_impl,
}

# Vocabularies at least this large use lax.top_k (a partial sort) for top-k / top-p:
# a full stable sort of 50k probabilities costs ~20 ms on a CPU, top_k(50) ~0.2 ms.
# Smaller vocabularies sort fully, with top_k traced, so new k values do not recompile.
PARTIAL_SORT_MIN_VOCAB = 4096
# Without top_k, top-p first looks for its threshold among this many candidates;
# only a flat distribution that needs more falls back to the full sort.
TOP_P_WINDOW = 1024


# ---------------------------------------------------------------------- the static cache


class _CacheStorage:
    """The buffers one line of decoding writes into, and the epoch of the newest cache using them."""

    __slots__ = ("keys", "values", "epoch")

    def __init__(self, keys: tuple[Any, ...], values: tuple[Any, ...]) -> None:
        self.keys = keys  # N × (B·H, C, Dh)
        self.values = values  # N × (B·H, C, Dh)
        self.epoch = 0


class StaticKVCache:
    """A KV cache with a fixed shape: the JAX backend's cache (``JaxBackend.init_cache`` returns one).

    Keys and values of each layer live in preallocated buffers ``(B·H, C, Dh)``
    (C = ``config.context_length``), one pair per layer; slot ``s`` holds
    position ``s``, and slots ``>= length`` are masked out of attention. The
    buffers are created by the first ``model_forward`` (which fixes the batch
    size B and the dtype) and written in place by later ones, so every decoding
    step has the same shapes and reuses one compiled program.

    A cache is a value, like :class:`transformer_spec.backends.base.KVCache`: ``model_forward``
    returns a new cache and the old one stays usable. Feeding the *newest*
    cache of a line of decoding updates the buffers in place (positions below
    its ``length`` are never written again, so older caches still read their
    own prefix); feeding an older one — branching — copies the buffers first.

    Attributes: ``length`` (S, the position the next token gets), ``config``,
    ``batch_size``; ``keys`` / ``values`` give per-layer views ``(B, H, S, Dh)``
    like ``KVCache``; ``buffers`` gives the raw buffers, two tuples of N
    ``(B·H, C, Dh)`` arrays (the next in-place step invalidates them).
    """

    __slots__ = ("config", "batch_size", "length", "_storage", "_epoch")

    def __init__(
        self, config: ModelConfig, batch_size: int, length: int = 0, storage: _CacheStorage | None = None, epoch: int = 0
    ) -> None:
        self.config = config
        self.batch_size = batch_size
        self.length = length
        self._storage = storage
        self._epoch = epoch

    @property
    def capacity(self) -> int:
        return self.config.context_length

    @property
    def buffers(self) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """The raw (keys, values) buffers, N × (B·H, C, Dh) each, or None before the first call."""
        return None if self._storage is None else (self._storage.keys, self._storage.values)

    @property
    def keys(self) -> list[Any]:
        """Per layer, the keys of positions 0..length-1, (B, H, S, Dh); None before the first call."""
        if self._storage is None:
            return [None] * self.config.n_layers
        return [self._layer_view(k) for k in self._storage.keys]  # N × (B, H, S, Dh)

    @property
    def values(self) -> list[Any]:
        """Per layer, the values of positions 0..length-1, (B, H, S, Dh); None before the first call."""
        if self._storage is None:
            return [None] * self.config.n_layers
        return [self._layer_view(v) for v in self._storage.values]  # N × (B, H, S, Dh)

    def _layer_view(self, buffer: Any) -> Any:
        B, H, Dh = self.batch_size, self.config.n_heads, self.config.head_dim
        return buffer[:, : self.length].reshape(B, H, self.length, Dh)  # (B, H, S, Dh)

    def is_newest(self) -> bool:
        """Whether the next model_forward on this cache may update its buffers in place."""
        return self._storage is not None and self._storage.epoch == self._epoch

    def copy(self) -> StaticKVCache:
        """An independent cache with the same contents (its own buffers)."""
        if self._storage is None:
            return StaticKVCache(self.config, self.batch_size)
        storage = _CacheStorage(*_copy_buffers(self._storage))
        return StaticKVCache(self.config, self.batch_size, self.length, storage, storage.epoch)

    def to_kv_cache(self) -> KVCache:
        """The same contents as a growing :class:`transformer_spec.backends.base.KVCache`."""
        return KVCache(keys=self.keys, values=self.values, length=self.length)

    def __repr__(self) -> str:
        state = "empty" if self._storage is None else ("newest" if self.is_newest() else "branch point")
        return f"StaticKVCache(length={self.length}, capacity={self.capacity}, batch_size={self.batch_size}, {state})"


# ---------------------------------------------------------------------- the backend


class JaxBackend(Backend):
    """Kernels in ``jax.numpy``; block, attention, feed-forward and model forward compiled with ``jax.jit``."""

    name = "jax"
    array_type = jax.Array
    supports_autodiff = True

    def __init__(self, device: str | None = None, jit: bool = True, donate_cache: bool = True) -> None:
        if not isinstance(jit, bool) or not isinstance(donate_cache, bool):
            raise ConfigError(f"JaxBackend: jit = {jit!r}, donate_cache = {donate_cache!r}; expected True or False")
        self._device = self._find_device(device)
        self.device = self._device.platform if device is None else device
        self.jit = jit
        self.donate_cache = donate_cache
        self._fn = _COMPILED if jit else _EAGER
        self._tables: dict[tuple[Any, ...], dict[str, Any]] = {}

    @staticmethod
    def _find_device(device: str | None) -> Any:
        if device is None:
            return jax.devices()[0]
        if not isinstance(device, str):
            raise ConfigError(f"JaxBackend: device = {device!r}, expected a JAX platform name such as 'cpu', 'gpu' or 'gpu:1'")
        platform, _, index = device.partition(":")
        try:
            devices = jax.devices(platform)
        except RuntimeError as error:
            raise ConfigError(
                f"JaxBackend: no JAX device of platform {platform!r} ({error}); "
                f"available: {sorted({d.platform for d in jax.devices()})}"
            ) from error
        if index and (not index.isdigit() or int(index) >= len(devices)):
            raise ConfigError(f"JaxBackend: device = {device!r}, expected an index in [0, {len(devices)}) after ':'")
        return devices[int(index) if index else 0]

    @property
    def dtypes(self) -> tuple[str, ...]:  # type: ignore[override]
        """Float dtypes available now: float64 only when JAX's 64-bit mode is on (read at call time)."""
        return ("float16", "bfloat16", "float32") + (("float64",) if _x64_enabled() else ())

    def dtype_hint(self, dtype: str) -> str | None:
        if dtype == "float64" and not _x64_enabled():
            return (
                ". JAX computes in 64 bits only in its 64-bit mode, which is off, and would otherwise silently use "
                "float32: set the environment variable JAX_ENABLE_X64=1 before starting Python, or call "
                'jax.config.update("jax_enable_x64", True) before creating any array'
            )
        return None

    def trace_counts(self) -> dict[str, int]:
        """How often each compiled function has been traced (each trace is a compilation), by name."""
        return dict(TRACE_COUNTS)

    # ---------------------------------------------------------------- conversion
    def _asarray(self, x, dtype):
        if isinstance(x, jax.Array):
            return x if dtype is None else x.astype(_jax_dtype(dtype))
        host = np.asarray(x)
        if dtype is None:
            dtype = "bool" if host.dtype == np.bool_ else str(host.dtype)
            if dtype == "float64" and not _x64_enabled():
                # JAX would silently round to float32: refuse instead, like an explicit request
                self.check_dtype_supported("float64")
        if dtype in ("int64", "int32") and not (_x64_enabled() and dtype == "int64") and host.size:
            if host.min() < _INT32_RANGE[0] or host.max() > _INT32_RANGE[1]:
                raise OutOfRangeError(
                    f"asarray: values in [{host.min()}, {host.max()}] do not fit int32, which is how JAX holds {dtype} "
                    f"without 64-bit mode; expected values in [{_INT32_RANGE[0]}, {_INT32_RANGE[1]}] (or set JAX_ENABLE_X64=1)"
                )
        target = (
            _jax_dtype(dtype) if dtype in ("float16", "bfloat16", "float32", "float64", "int32", "int64", "bool") else host.dtype
        )
        return jax.device_put(host.astype(target, copy=False), self._device)

    def _to_numpy(self, x):
        if _is_tracer(x):
            raise DTypeError(
                "to_numpy: the argument is a traced JAX value (inside jax.jit, grad or vmap), which has no data yet; "
                "expected a concrete array — pass integer inputs (ids, positions, targets) as arguments that are not traced"
            )
        return np.asarray(x)

    def _dtype_of(self, x):
        return str(x.dtype)

    def _reshape(self, x, shape):
        return jnp.reshape(x, shape)

    def _transpose(self, x, axes):
        return jnp.transpose(x, axes)

    def _concat(self, xs, axis):
        return jnp.concatenate(xs, axis=axis)

    # ---------------------------------------------------------------- primitives
    def _softmax(self, x, axis):
        return self._fn["softmax"](x, axis=axis)

    def _log_softmax(self, x, axis):
        return self._fn["log_softmax"](x, axis=axis)

    def _relu(self, x):
        return self._fn["relu"](x)

    def _gelu(self, x, approximate):
        return self._fn["gelu"](x, approximate=approximate)

    def _silu(self, x):
        return self._fn["silu"](x)

    def _linear(self, x, w, b):
        return self._fn["linear"](x, w, b)

    def _layer_norm(self, x, w, b, eps):
        return self._fn["layer_norm"](x, w, b, eps)

    def _rms_norm(self, x, w, eps):
        return self._fn["rms_norm"](x, w, eps)

    def _embedding(self, table, ids):
        return self._fn["embedding"](table, ids)

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        table = _sinusoidal_table_host(length, dim, base, offset)  # float64, like the reference
        return jax.device_put(table.astype(_jax_dtype(dtype)), self._device)

    def _rotary(self, x, positions, base):
        cos, sin = _rotary_cos_sin(positions, x.shape[-1], base, _compute_dtype(x.dtype))  # each (L, Dh/2)
        return self._fn["rotary"](x, cos, sin)

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        return self._fn["attention"](q, k, v, mask, scale=scale, causal=causal, need_weights=need_weights)

    def _cross_entropy(self, logits, targets, ignore_index):
        info = np.iinfo(np.dtype(str(targets.dtype)))
        # an ignore_index no target can hold ignores nothing (and must not overflow the comparison)
        ignore = ignore_index if info.min <= ignore_index <= info.max else None
        return self._fn["cross_entropy"](logits, targets, ignore_index=ignore)

    def _sample(self, logits, u, temperature, top_k, top_p):
        """spec/sampling.py, step for step like the NumPy reference, in float64.

        In 64-bit mode on the device; the comparison runs in the probabilities'
        dtype, so u is rounded *down* and top_p *up* to it first, which gives
        exactly the reference's answers. Without 64-bit mode, on the host.
        """
        if temperature == 0:
            return int(self._fn["argmax"](logits))
        if not _x64_enabled():
            # The spec decides sampling in float64, which JAX computes only in 64-bit mode: one row of V
            # logits is cheap to copy, so the host takes it with the NumPy reference's exact steps.
            return _HOST_SAMPLER._sample(np.asarray(logits), u, temperature, top_k, top_p)
        V = logits.shape[0]
        compute = np.dtype(_compute_dtype(logits.dtype))
        u_floor = _round_toward(u, compute, -np.inf)
        temperature_c = compute.type(temperature)  # round to nearest, like np.asarray(T, dtype)
        if top_k is None and top_p is None:
            return int(self._fn["sample_plain"](logits, u_floor, temperature_c))
        top_p_ceil = compute.type(np.inf) if top_p is None else _round_toward(top_p, compute, np.inf)
        k = V if top_k is None else min(top_k, V)
        if V >= PARTIAL_SORT_MIN_VOCAB and (k < V or top_p is not None):
            window = k if k < V else min(TOP_P_WINDOW, V)
            token, complete = self._fn["sample_candidates"](
                logits, u_floor, temperature_c, top_p_ceil, k=window, normalize_over_candidates=k < V
            )
            if bool(complete):
                return int(token)
        return int(self._fn["sample_sorted"](logits, u_floor, temperature_c, np.int32(k), top_p_ceil))

    # ---------------------------------------------------------------- composites (compiled)
    def _sub_params(self, params: dict[str, Any], prefix: str) -> dict[str, Any]:
        """The parameters under ``prefix``, renamed without it (the compiled function sees only what it uses)."""
        return {name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)}

    def _positions_cos_sin(self, config: ModelConfig, positions: Any, dtype: Any) -> tuple[Any, Any]:
        if config.positional != "rotary":
            return None, None
        return _rotary_cos_sin(positions, config.head_dim, config.rope_base, _compute_dtype(dtype))

    def _multihead_attention(self, params, config, x, prefix, past, positions):
        cos, sin = self._positions_cos_sin(config, positions, x.dtype)
        past_keys, past_values = (None, None) if past is None else past
        return self._fn["multihead_attention"](
            self._sub_params(params, prefix), x, past_keys, past_values, cos, sin, config=config
        )

    def _feed_forward(self, params, config, x, prefix):
        return self._fn["feed_forward"](self._sub_params(params, prefix), x, config=config)

    def _block(self, params, config, x, prefix, past, positions):
        cos, sin = self._positions_cos_sin(config, positions, x.dtype)
        past_keys, past_values = (None, None) if past is None else past
        return self._fn["block"](self._sub_params(params, prefix), x, past_keys, past_values, cos, sin, config=config)

    def init_cache(self, config: ModelConfig, batch_size: int = 1) -> StaticKVCache:
        """An empty :class:`StaticKVCache`; its buffers are allocated by the first ``model_forward``."""
        if not isinstance(config, ModelConfig):
            raise ConfigError(
                f"init_cache: config is a {type(config).__name__}, expected a transformer_spec.spec.config.ModelConfig"
            )
        super().init_cache(config, batch_size)  # validates batch_size
        return StaticKVCache(config, batch_size)

    def _position_tables(self, config: ModelConfig, dtype: Any) -> dict[str, Any]:
        """Sinusoidal / rotary tables for all C positions, computed once per (config, dtype) in float64 and rounded."""
        key = (config.positional, config.context_length, config.d_model, config.head_dim, config.rope_base, str(dtype))
        tables = self._tables.get(key)
        if tables is None:
            C = config.context_length
            tables = {}
            if config.positional == "sinusoidal":
                tables["sinusoidal"] = self._sinusoidal_encoding(C, config.d_model, config.rope_base, 0, str(dtype))  # (C, D)
            elif config.positional == "rotary":
                angles = _rotary_angles_host(np.arange(C), config.head_dim, config.rope_base)  # (C, Dh/2)
                compute = _compute_dtype(dtype)
                tables["cos"] = jax.device_put(np.cos(angles).astype(compute), self._device)
                tables["sin"] = jax.device_put(np.sin(angles).astype(compute), self._device)
            self._tables[key] = tables
        return tables

    def _as_static_cache(self, config: ModelConfig, cache: Any, batch_size: int, dtype: Any) -> StaticKVCache:
        """``cache`` as a StaticKVCache, checked against the call (a base KVCache is copied into buffers)."""
        if isinstance(cache, KVCache):
            if cache.length == 0 or all(k is None for k in cache.keys):
                return StaticKVCache(config, batch_size)
            expected = (batch_size, config.n_heads, cache.length, config.head_dim)
            layers = []
            for name, arrays in (("keys", cache.keys), ("values", cache.values)):
                if len(arrays) != config.n_layers:
                    raise ShapeError(
                        f"model_forward: cache.{name} has {len(arrays)} layers, expected n_layers = {config.n_layers}"
                    )
                for i, a in enumerate(arrays):
                    if not isinstance(a, jax.Array) or tuple(a.shape) != expected:
                        got = type(a).__name__ if not isinstance(a, jax.Array) else fmt_shape(a.shape)
                        raise ShapeError(
                            f"model_forward: cache.{name}[{i}] is {got}, expected a JAX array (B, H, S, Dh) = {fmt_shape(expected)}"
                        )
                B_H = batch_size * config.n_heads
                empty = jnp.zeros((B_H, config.context_length, config.head_dim), dtype)  # (B·H, C, Dh)
                layers.append(
                    tuple(
                        lax.dynamic_update_slice(
                            empty, a.astype(dtype).reshape(B_H, cache.length, config.head_dim), (0, 0, 0)
                        )  # (B·H, C, Dh)
                        for a in arrays
                    )
                )
            storage = _CacheStorage(*layers)
            return StaticKVCache(config, batch_size, cache.length, storage, storage.epoch)
        if not isinstance(cache, StaticKVCache):
            raise ConfigError(
                f"model_forward: cache is a {type(cache).__name__}, expected the StaticKVCache from init_cache (or a KVCache)"
            )
        if cache.config != config:
            raise ConfigError(
                "model_forward: the cache was made for another ModelConfig; expected a cache from init_cache(config) with this config"
            )
        if cache._storage is not None:
            buffer = cache._storage.keys[0]
            expected = (batch_size * config.n_heads, config.context_length, config.head_dim)
            if tuple(buffer.shape) != expected:
                raise ShapeError(
                    f"model_forward: the cache holds buffers {fmt_shape(buffer.shape)} (B·H, C, Dh) for batch size {cache.batch_size} but ids have "
                    f"batch size {batch_size}; expected {fmt_shape(expected)} — the batch size is fixed by the first call"
                )
            if buffer.dtype != dtype:
                raise DTypeError(
                    f"model_forward: the cache holds {buffer.dtype} but the parameters are {dtype}; "
                    "expected one dtype (start a new cache with init_cache)"
                )
        return cache

    def _model_forward(self, params, config, ids, cache):
        B, L = ids.shape
        dtype = params["wte"].dtype
        cache = self._as_static_cache(config, cache, B, dtype)
        tables = self._position_tables(config, dtype)
        start = np.int32(cache.length)
        storage = cache._storage
        traced = any(_is_tracer(p) for p in params.values())
        padded = L if traced or not self.jit else _bucket_length(L, cache.length, config.context_length)
        if padded != L:
            # Every new L compiles the whole model again (seconds for GPT-2), so prompts and
            # chunks are padded at the END to a power of two: causal attention keeps the
            # padding from touching the real positions, and its keys land in slots past the
            # new length, which stay masked until later tokens overwrite them.
            ids = jax.device_put(np.pad(np.asarray(ids), ((0, 0), (0, padded - L))), self._device)  # (B, padded)
        if storage is None:
            logits, keys, values = self._fn["model_forward"](params, ids, None, None, start, tables, config=config, fresh=True)
            storage = _CacheStorage(keys, values)
        else:
            if not (cache.is_newest() and self.donate_cache and not traced):
                # A branch off an older cache (or donation is off, or under autodiff): the
                # shared buffers must stay intact, so the step writes into a copy of them.
                storage = _CacheStorage(*_copy_buffers(storage))
            # Donated: XLA writes the new keys into the same memory. Positions below
            # cache.length are never written again, so older caches keep their prefix.
            logits, storage.keys, storage.values = self._fn["model_forward"](
                params, ids, storage.keys, storage.values, start, tables, config=config, fresh=False
            )
            storage.epoch += 1
        if padded != L:
            logits = logits[:, :L]  # (B, L, V)
        return logits, StaticKVCache(config, B, cache.length + L, storage, storage.epoch)

    # ---------------------------------------------------------------- autodiff
    def value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """``value_and_grad(fn)(params, *args)`` → (fn's scalar value, gradients with the keys of params)."""
        if not callable(fn):
            raise ConfigError(f"value_and_grad: fn is a {type(fn).__name__}, expected a function (params, *args) -> scalar")
        differentiate = jax.value_and_grad(fn)

        def value_and_gradient(params: dict[str, Any], *args: Any) -> tuple[Any, dict[str, Any]]:
            if not isinstance(params, dict):
                raise ConfigError(
                    f"value_and_grad: params is a {type(params).__name__}, expected a dict from name to float array"
                )
            for name, p in params.items():
                if not isinstance(p, jax.Array):
                    raise DTypeError(
                        f"value_and_grad: params[{name!r}] is a {type(p).__name__}, expected a JAX array (convert with asarray)"
                    )
                if not jnp.issubdtype(p.dtype, jnp.floating):
                    raise DTypeError(
                        f"value_and_grad: params[{name!r}] has dtype {p.dtype}, expected a float dtype (gradients need floats)"
                    )
            try:
                return differentiate(params, *args)
            except TypeError as error:
                if "scalar" in str(error):
                    raise ShapeError(
                        f"value_and_grad: fn must return a scalar (0-d array), e.g. a mean loss; JAX says: {error}"
                    ) from error
                raise

        return value_and_gradient


def _bucket_length(length: int, start: int, context_length: int) -> int:
    """``length`` rounded up to a power of two when the padded chunk still fits the context, else ``length``."""
    padded = 1 << (length - 1).bit_length()
    return padded if start + padded <= context_length else length


def _copy_buffers(storage: _CacheStorage) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return tuple(jnp.copy(k) for k in storage.keys), tuple(jnp.copy(v) for v in storage.values)


def _round_toward(value: float, dtype: np.dtype, direction: float) -> Any:
    """``value`` rounded to ``dtype`` toward ``direction`` (-inf: largest not above; +inf: smallest not below)."""
    rounded = dtype.type(value)
    if (direction < 0 and float(rounded) > value) or (direction > 0 and float(rounded) < value):
        rounded = np.nextafter(rounded, dtype.type(direction))
    return rounded
