r"""The decoder model, written once: pure functions of ``(ops, params, config, inputs, cache)``.

``ops`` is a backend's kernel namespace (:class:`~transformer_spec.backends.ops.Ops`:
``ops.linear``, ``ops.attention``, ``ops.rms_norm``, ...), ``params`` the flat
parameter dict of :func:`transformer_spec.spec.model.parameter_shapes`, ``config``
a :class:`~transformer_spec.spec.config.ModelConfig`. Arrays are the backend's
own; arithmetic between them (``x + y``, ``a * b``) uses the array's operators.

Nothing here checks arguments, reads an array's values on the host, or keeps
state: the public methods of :class:`~transformer_spec.backends.base.Backend`
check once at the entry, and then these functions can be traced and compiled
as they are (``jax.jit``, ``torch.compile``) through the backend's ``compile``
hook. The KV cache is the other hook: a cache object decides where keys and
values live (see :mod:`transformer_spec.backends.cache`).

A block is nanoGPT's two residual lines::

    x = x + attention(norm(x))
    x = x + feed_forward(norm(x))
"""

from __future__ import annotations

import math
from typing import Any

from transformer_spec.spec.config import ModelConfig

Params = dict[str, Any]

# The arguments of each function that a compiler must treat as compile-time constants (hashable options that
# change the program), for the backend's ``compile`` hook. Everything else is an array or a tree of arrays.
STATIC_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "attention": ("ops", "config", "prefix", "layer"),
    "feed_forward": ("ops", "config", "prefix"),
    "block": ("ops", "config", "prefix", "layer"),
    "model_forward": ("ops", "config"),
    "loss": ("ops", "config", "cache", "ignore_index"),
    "decode_step": ("ops", "config"),
}


def norm(ops: Any, params: Params, config: ModelConfig, x: Any, prefix: str) -> Any:
    """Layer norm (GPT-2) or RMS norm (Llama) over the last axis, with the weights under ``prefix``."""
    if config.norm == "rms":
        return ops.rms_norm(x, params[prefix + "weight"], config.norm_eps)
    return ops.layer_norm(x, params[prefix + "weight"], params.get(prefix + "bias"), config.norm_eps)


def split_heads(ops: Any, params: Params, config: ModelConfig, x: Any, prefix: str) -> tuple[Any, Any, Any]:
    """q (B, H, L, Dh) and k, v (B, Hkv, L, Dh) from the normalised stream x (B, L, D), by one fused projection."""
    B, L, _ = x.shape
    H, Hkv, Dh = config.n_heads, config.kv_heads, config.head_dim
    qkv = ops.linear(x, params[prefix + "qkv.weight"], params.get(prefix + "qkv.bias"))  # (B, L, (H + 2 Hkv) Dh)
    qkv = ops.reshape(qkv, (B, L, H + 2 * Hkv, Dh))  # (B, L, H + 2 Hkv, Dh)
    qkv = ops.transpose(qkv, (0, 2, 1, 3))  # (B, H + 2 Hkv, L, Dh)
    q = qkv[:, :H, ...]  # (B, H, L, Dh)
    k = qkv[:, H : H + Hkv, ...]  # (B, Hkv, L, Dh)
    v = qkv[:, H + Hkv :, ...]  # (B, Hkv, L, Dh)
    return q, k, v


def repeat_kv(ops: Any, config: ModelConfig, x: Any) -> Any:
    """Keys or values (B, Hkv, S, Dh) for all H query heads: head h reads KV group h // (H / Hkv)."""
    group = config.n_heads // config.kv_heads
    if group == 1:
        return x
    B, Hkv, S, Dh = x.shape
    x = ops.reshape(x, (B, Hkv, 1, S, Dh))  # (B, Hkv, 1, S, Dh)
    x = ops.concat([x] * group, 2)  # (B, Hkv, G, S, Dh)
    return ops.reshape(x, (B, Hkv * group, S, Dh))  # (B, H, S, Dh)


def rotate(ops: Any, x: Any, positions: Any, base: float) -> Any:
    """Rotary positions on x (B, heads, L, Dh): positions (L,) for every row, or (B, L), each row its own."""
    if len(positions.shape) == 1:
        return ops.rotary(x, positions, base)
    B, _, L, _ = x.shape
    if ops.rotary_per_row:  # the kernel broadcasts (B, 1, L) positions over the heads
        return ops.rotary(x, ops.reshape(positions, (B, 1, L)), base)
    # A kernel written for the (L,) positions of the 0.1 contract: one row at a time.
    return ops.concat([ops.rotary(x[b : b + 1, ...], positions[b, ...], base) for b in range(B)], 0)  # (B, heads, L, Dh)


def attention(
    ops: Any, params: Params, config: ModelConfig, x: Any, prefix: str, positions: Any, cache: Any, layer: int
) -> tuple[Any, Any]:
    """Causal multi-head self-attention of x (B, L, D) → (out (B, L, D), the cache with this layer's keys appended)."""
    B, L, D = x.shape
    q, k, v = split_heads(ops, params, config, x, prefix)  # (B, H, L, Dh), (B, Hkv, L, Dh) × 2
    if config.positional == "rotary":
        q, k = rotate(ops, q, positions, config.rope_base), rotate(ops, k, positions, config.rope_base)
    cache, keys, values, mask, causal = cache.attend(ops, layer, k, v)  # keys, values (B, Hkv, S, Dh)
    scale = 1.0 / math.sqrt(config.head_dim)
    group = config.n_heads // config.kv_heads
    if group > 1 and L == 1:
        # One decoding step with grouped KV heads: the G query heads of a group read the same keys, so they are
        # stacked as G queries of one head instead of copying the cache G times. A single query at the newest
        # position sees every key the cache shows it, so causal alignment is not needed (and would be wrong for
        # G stacked queries); a mask for the one query, (1, S), is repeated for the G of them.
        q = ops.reshape(q, (B, config.kv_heads, group, config.head_dim))  # (B, Hkv, G, Dh)
        if mask is not None and len(mask.shape) == 2:
            mask = ops.concat([mask] * group, 0)  # (G, S)
        out, _ = ops.attention(q, keys, values, mask, False, scale, False)  # (B, Hkv, G, Dh)
        out = ops.reshape(out, (B, config.n_heads, 1, config.head_dim))  # (B, H, 1, Dh): head h = kv·G + g
    else:
        keys, values = repeat_kv(ops, config, keys), repeat_kv(ops, config, values)  # (B, H, S, Dh)
        out, _ = ops.attention(q, keys, values, mask, causal, scale, False)  # (B, H, L, Dh)
    out = ops.transpose(out, (0, 2, 1, 3))  # (B, L, H, Dh)
    out = ops.reshape(out, (B, L, D))  # (B, L, D)
    return ops.linear(out, params[prefix + "proj.weight"], params.get(prefix + "proj.bias")), cache


def feed_forward(ops: Any, params: Params, config: ModelConfig, x: Any, prefix: str) -> Any:
    """The position-wise MLP: (B, L, D) → (B, L, D), GELU / ReLU or SwiGLU in between."""
    hidden = ops.linear(x, params[prefix + "fc.weight"], params.get(prefix + "fc.bias"))  # (B, L, F)
    if config.activation == "swiglu":
        gate = ops.linear(x, params[prefix + "gate.weight"], params.get(prefix + "gate.bias"))  # (B, L, F)
        hidden = ops.silu(gate) * hidden
    elif config.activation == "relu":
        hidden = ops.relu(hidden)
    else:
        hidden = ops.gelu(hidden, config.activation == "gelu_tanh")
    return ops.linear(hidden, params[prefix + "proj.weight"], params.get(prefix + "proj.bias"))  # (B, L, D)


def block(
    ops: Any, params: Params, config: ModelConfig, x: Any, prefix: str, positions: Any, cache: Any, layer: int
) -> tuple[Any, Any]:
    """One pre-norm residual block: (B, L, D) → (B, L, D), and the cache with this layer appended."""
    attended, cache = attention(
        ops, params, config, norm(ops, params, config, x, prefix + "ln1."), prefix + "attn.", positions, cache, layer
    )
    x = x + attended
    x = x + feed_forward(ops, params, config, norm(ops, params, config, x, prefix + "ln2."), prefix + "mlp.")
    return x, cache


def embed(ops: Any, params: Params, config: ModelConfig, ids: Any, positions: Any, start: Any) -> Any:
    """Token embeddings plus absolute positions (learned or sinusoidal): (B, L) ids → (B, L, D).

    ``positions`` is (L,) — every row at start .. start + L - 1 — or (B, L), each row its own (a left-padded batch).
    """
    x = ops.embedding(params["wte"], ids)  # (B, L, D)
    if config.positional == "learned":
        x = x + ops.embedding(params["wpe"], positions)  # (L, D) or (B, L, D): the rows of wpe at those positions
    elif config.positional == "sinusoidal" and len(positions.shape) == 2:
        table = ops.sinusoidal_encoding(config.context_length, config.d_model, config.rope_base, 0, ops.dtype_of(x))  # (C, D)
        x = x + ops.embedding(table, positions)  # (B, L, D)
    elif config.positional == "sinusoidal":
        x = x + ops.sinusoidal_encoding(ids.shape[1], config.d_model, config.rope_base, start, ops.dtype_of(x))  # (L, D)
    return x


def unembed(ops: Any, params: Params, config: ModelConfig, x: Any) -> Any:
    """The final norm and the output projection: (B, L, D) → logits (B, L, V)."""
    x = norm(ops, params, config, x, "ln_f.")
    if config.tie_embeddings:
        return ops.linear(x, ops.transpose(params["wte"], (1, 0)), None)  # (B, L, V)
    return ops.linear(x, params["lm_head.weight"], None)  # (B, L, V)


def model_forward(ops: Any, params: Params, config: ModelConfig, ids: Any, cache: Any) -> tuple[Any, Any]:
    """Token ids (B, L) after the cache's positions → (logits (B, L, V), the cache extended by L)."""
    L = ids.shape[1]
    positions = cache.positions(ops, L)  # (L,): start .. start + L - 1
    x = embed(ops, params, config, ids, positions, cache.length)  # (B, L, D)
    for layer in range(config.n_layers):
        x, cache = block(ops, params, config, x, f"blocks.{layer}.", positions, cache, layer)
    return unembed(ops, params, config, x), cache.advance(L)


def loss(ops: Any, params: Params, config: ModelConfig, ids: Any, targets: Any, cache: Any, ignore_index: int) -> Any:
    """The mean next-token cross-entropy of a batch: the training objective, a scalar."""
    logits, _ = model_forward(ops, params, config, ids, cache)  # (B, L, V)
    return ops.cross_entropy(logits, targets, ignore_index)


def decode_step(ops: Any, params: Params, config: ModelConfig, tokens: Any, cache: Any) -> tuple[Any, Any]:
    """One generation step: the last tokens (B, 1) → (next-token logits (B, V), the cache extended by one)."""
    logits, cache = model_forward(ops, params, config, tokens, cache)  # (B, 1, V)
    return logits[:, -1, ...], cache  # (B, V)
