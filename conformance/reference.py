"""The float64 reference: every primitive and composite, written independently of the NumPy backend.

Where the backend reads like the textbook equation, the reference takes
another route to the same number (log-sum-exp, complex rotations, explicit
loops over heads and positions), so that one mistake cannot hide in both.
Everything here computes in float64.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit, logsumexp

from transformer_spec.spec.config import ModelConfig


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x - logsumexp(x, axis=axis, keepdims=True)


def relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.0)


def gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def silu(x: np.ndarray) -> np.ndarray:
    return x * expit(x)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    y = np.einsum("...i,io->...o", x, w)
    return y if b is None else y + b


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    y = centred / np.sqrt(np.var(x, axis=-1, ddof=0, keepdims=True) + eps) * w
    return y if b is None else y + b


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x * w / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + eps)


def sinusoidal(length: int, dim: int, base: float = 10000.0, offset: int = 0) -> np.ndarray:
    table = np.zeros((length, dim))
    for row in range(length):
        p = row + offset
        for i in range(dim // 2):
            angle = p / base ** (2 * i / dim)
            table[row, 2 * i] = math.sin(angle)
            table[row, 2 * i + 1] = math.cos(angle)
    return table


def rotary(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Half-split rotary as a complex rotation: z_i = x_i + i·x_{i+d/2} turns by p·θ_i."""
    half = x.shape[-1] // 2
    theta = base ** (-2.0 * np.arange(half) / x.shape[-1])  # (Dh/2,)
    z = x[..., :half] + 1j * x[..., half:]  # (..., L, Dh/2)
    z = z * np.exp(1j * np.asarray(positions, dtype=np.float64)[:, None] * theta)
    return np.concatenate([z.real, z.imag], axis=-1)


def allowed_keys(L: int, S: int, mask: np.ndarray | None, causal: bool) -> np.ndarray:
    allowed = np.ones((L, S), dtype=bool) if mask is None else np.array(mask, dtype=bool)
    if causal:
        for i in range(L):
            for j in range(S):
                if j > i + S - L:
                    allowed[..., i, j] = False
    return allowed


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, causal: bool = False, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.einsum("...ld,...sd->...ls", q, k) * scale
    allowed = np.broadcast_to(allowed_keys(L, S, mask, causal), scores.shape)
    any_allowed = allowed.any(axis=-1)
    masked_scores = np.where(allowed, scores, -np.inf)
    safe = np.where(any_allowed[..., None], masked_scores, 0.0)
    weights = np.where(any_allowed[..., None], softmax(safe, axis=-1), 0.0)
    weights = np.where(allowed, weights, 0.0)
    return np.einsum("...ls,...sd->...ld", weights, v), weights


def norm(params: dict, config: ModelConfig, x: np.ndarray, prefix: str) -> np.ndarray:
    if config.norm == "rms":
        return rms_norm(x, params[prefix + "weight"], config.norm_eps)
    return layer_norm(x, params[prefix + "weight"], params.get(prefix + "bias"), config.norm_eps)


def multihead_attention(
    params: dict,
    config: ModelConfig,
    x: np.ndarray,
    prefix: str,
    start: int = 0,
    past: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One head at a time: query head h uses columns h*Dh .. (h+1)*Dh of Q; with Hkv key/value heads
    (grouped-query attention) it shares K and V head h // (H / Hkv)."""
    D, Dh, H = config.d_model, config.head_dim, config.n_heads
    Hkv = getattr(config, "n_kv_heads", None) or H
    qkv = linear(x, params[prefix + "qkv.weight"], params.get(prefix + "qkv.bias"))
    q_all, k_all, v_all = qkv[..., :D], qkv[..., D : D + Hkv * Dh], qkv[..., D + Hkv * Dh :]
    L = x.shape[-2]
    positions = np.arange(start, start + L)
    heads = []
    for h in range(H):
        g = h // (H // Hkv)  # the key/value head this query head reads
        q = q_all[..., h * Dh : (h + 1) * Dh]
        k, v = k_all[..., g * Dh : (g + 1) * Dh], v_all[..., g * Dh : (g + 1) * Dh]
        if config.positional == "rotary":
            q, k = rotary(q, positions, config.rope_base), rotary(k, positions, config.rope_base)
        heads.append(attention(q, k, v, causal=True)[0])
    return linear(np.concatenate(heads, axis=-1), params[prefix + "proj.weight"], params.get(prefix + "proj.bias"))


def feed_forward(params: dict, config: ModelConfig, x: np.ndarray, prefix: str) -> np.ndarray:
    up = linear(x, params[prefix + "fc.weight"], params.get(prefix + "fc.bias"))
    if config.activation == "swiglu":
        hidden = silu(linear(x, params[prefix + "gate.weight"], params.get(prefix + "gate.bias"))) * up
    elif config.activation == "relu":
        hidden = relu(up)
    else:
        hidden = gelu(up, approximate=config.activation == "gelu_tanh")
    return linear(hidden, params[prefix + "proj.weight"], params.get(prefix + "proj.bias"))


def block(params: dict, config: ModelConfig, x: np.ndarray, prefix: str) -> np.ndarray:
    h = x + multihead_attention(params, config, norm(params, config, x, prefix + "ln1."), prefix + "attn.")
    return h + feed_forward(params, config, norm(params, config, h, prefix + "ln2."), prefix + "mlp.")


def model_forward(params: dict, config: ModelConfig, ids: np.ndarray) -> np.ndarray:
    """Full forward pass from position 0: ids (B, L) -> logits (B, L, V)."""
    L = ids.shape[-1]
    x = params["wte"][ids]
    if config.positional == "learned":
        x = x + params["wpe"][:L]
    elif config.positional == "sinusoidal":
        x = x + sinusoidal(L, config.d_model, config.rope_base)
    for i in range(config.n_layers):
        x = block(params, config, x, f"blocks.{i}.")
    x = norm(params, config, x, "ln_f.")
    out = params["wte"].T if config.tie_embeddings else params["lm_head.weight"]
    return linear(x, out)


def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float:
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1)
    losses = [-log_softmax(row)[t] for row, t in zip(flat_logits, flat_targets) if t != ignore_index]
    return float(np.mean(losses)) if losses else 0.0


def sampling_distribution(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> np.ndarray:
    """The renormalised probabilities ``sample`` draws from (float64). temperature must be > 0."""
    p = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    ranked = sorted(range(len(p)), key=lambda i: (-p[i], i))  # most probable first, ties by lower index
    if top_k is not None:
        ranked = ranked[:top_k]
    if top_p is not None:
        total = sum(p[i] for i in ranked)
        kept, mass = [], 0.0
        for i in ranked:
            kept.append(i)
            mass += p[i] / total
            if mass >= top_p:
                break
        ranked = kept
    q = np.zeros_like(p)
    q[ranked] = p[ranked]
    return q / q.sum()


def sample(logits: np.ndarray, u: float, temperature: float, top_k: int | None, top_p: float | None) -> int:
    if temperature == 0:
        return int(np.argmax(logits))
    q = sampling_distribution(logits, temperature, top_k, top_p)
    cumulative = 0.0
    for i, qi in enumerate(q):
        cumulative += qi
        if cumulative > u:
            return i
    return int(np.flatnonzero(q).max())
