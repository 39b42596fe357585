"""The shipped model opened up: its forward pass written out with the reference primitives, keeping what the pages show.

The model's own code (``transformer_spec.backends``) computes logits and
nothing else. The pages need more: every layer's attention weights, and the
next-token distribution at every step of a generation. :func:`forward` is the
whole model in a few lines, calling the NumPy reference backend's public
primitives (``embedding``, ``layer_norm``, ``linear``, ``attention``, ...) in
float64, and keeping the attention weights. It is checked against the real
model on every build (:func:`check_against_the_model`), so the pages cannot
show a model that is not the shipped one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import examples as ex
from .default_model import load as load_default_model


@dataclass(frozen=True)
class Forward:
    ids: list[int]
    pieces: list[str]  # each token's text
    logits: np.ndarray  # (L, V): the scores for the token after each position
    attention: list[np.ndarray]  # per layer, (H, L, L): query position × key position


def _norm(backend, config, params, prefix: str, x):
    if config.norm == "rms":
        return backend.rms_norm(x, params[prefix + ".weight"], config.norm_eps)
    return backend.layer_norm(x, params[prefix + ".weight"], params.get(prefix + ".bias"), config.norm_eps)


def _activation(backend, name: str, x):
    if name == "relu":
        return backend.relu(x)
    if name == "silu":
        return backend.silu(x)
    return backend.gelu(x, approximate=name == "gelu_tanh")


def forward(model, ids: list[int]) -> Forward:
    """Logits and every layer's attention weights of ``ids``, with the reference primitives in float64."""
    backend = ex.numpy_backend()
    config = model.config
    params = {name: backend.asarray(value, "float64") for name, value in model.params.items()}
    L, H, Hkv, Dh = len(ids), config.n_heads, config.kv_heads, config.head_dim
    x = backend.embedding(params["wte"], backend.asarray(np.array(ids), "int64"))  # (L, D)
    if config.positional == "learned":
        x = x + params["wpe"][:L]
    elif config.positional == "sinusoidal":
        x = x + backend.sinusoidal_encoding(L, config.d_model, config.rope_base, dtype="float64")
    attention = []
    for layer in range(config.n_layers):
        p = f"blocks.{layer}."
        h = _norm(backend, config, params, p + "ln1", x)
        qkv = backend.to_numpy(backend.linear(h, params[p + "attn.qkv.weight"], params.get(p + "attn.qkv.bias")))
        q = qkv[:, : H * Dh].reshape(L, H, Dh).transpose(1, 0, 2)  # (H, L, Dh)
        k = qkv[:, H * Dh : (H + Hkv) * Dh].reshape(L, Hkv, Dh).transpose(1, 0, 2)  # (Hkv, L, Dh)
        v = qkv[:, (H + Hkv) * Dh :].reshape(L, Hkv, Dh).transpose(1, 0, 2)  # (Hkv, L, Dh)
        k, v = np.repeat(k, H // Hkv, axis=0), np.repeat(v, H // Hkv, axis=0)  # each KV head serves H / Hkv query heads
        q, k, v = (backend.asarray(a, "float64") for a in (q, k, v))
        if config.positional == "rotary":
            positions = backend.asarray(np.arange(L), "int64")
            q, k = backend.rotary(q, positions, config.rope_base), backend.rotary(k, positions, config.rope_base)
        out, weights = backend.attention(q, k, v, causal=True)  # (H, L, Dh), (H, L, L)
        attention.append(backend.to_numpy(weights))
        merged = backend.asarray(backend.to_numpy(out).transpose(1, 0, 2).reshape(L, H * Dh), "float64")  # (L, D)
        x = x + backend.linear(merged, params[p + "attn.proj.weight"], params.get(p + "attn.proj.bias"))
        h = _norm(backend, config, params, p + "ln2", x)
        if config.activation == "swiglu":
            gate = backend.silu(backend.linear(h, params[p + "mlp.gate.weight"], params.get(p + "mlp.gate.bias")))
            hidden = gate * backend.linear(h, params[p + "mlp.fc.weight"], params.get(p + "mlp.fc.bias"))
        else:
            hidden = _activation(
                backend, config.activation, backend.linear(h, params[p + "mlp.fc.weight"], params.get(p + "mlp.fc.bias"))
            )
        x = x + backend.linear(hidden, params[p + "mlp.proj.weight"], params.get(p + "mlp.proj.bias"))
    x = _norm(backend, config, params, "ln_f", x)
    head = params["wte"] if config.tie_embeddings else None
    logits = backend.to_numpy(x) @ (backend.to_numpy(head).T if head is not None else backend.to_numpy(params["lm_head.weight"]))
    pieces = [model.tokenizer.decode([i]) for i in ids]
    return Forward(list(ids), pieces, logits, attention)


@functools.lru_cache(maxsize=1)
def shipped():
    """The shipped model (``transformer_spec.api.load_model()``, NumPy backend), checked against :func:`forward`; None before it ships."""
    if load_default_model() is None:
        return None
    from transformer_spec.api import load_model

    model = load_model(backend="numpy", dtype="float64")
    check_against_the_model(model)
    return model


def check_against_the_model(model, text: str = "Once upon a time, the bear ate the honey.") -> None:
    """Stop the build if :func:`forward` and the model's own ``logits`` disagree: the pages would explain another model."""
    ids = model.tokenizer.encode(text)
    mine = forward(model, ids).logits
    theirs = np.asarray(model.logits(text), dtype=np.float64)
    worst = float(np.max(np.abs(mine - theirs)))
    if worst > 1e-6 * max(1.0, float(np.max(np.abs(theirs)))):
        raise RuntimeError(
            f"tools/docs/inspect_model.forward differs from the shipped model's logits by up to {worst:.3g} on {text!r}; "
            "the model's architecture changed: update forward() to match transformer_spec.backends"
        )
