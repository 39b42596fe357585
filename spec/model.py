r"""The decoder-only model: parameter layout, initialisation, and the forward pass.

Forward
-------
For token ids of shape ``(B, L)`` starting at position ``start`` (the cache length):

$$x_0 = \operatorname{embedding}(W_{te}, \text{ids}) + P_{\text{start}..\text{start}+L-1}$$
$$x_{n+1} = \operatorname{Block}_n(x_n),\qquad \text{logits} = \operatorname{Norm}_f(x_N)\, W_{out}$$

where $P$ is the learned table ``wpe``, the sinusoidal table, or zero (rotary
positions act inside attention). With tied embeddings $W_{out} = W_{te}^\top$
(GPT-2); otherwise ``lm_head.weight`` ``(D, V)``.

``model_forward(params, config, ids, cache=None)`` returns ``(logits, cache)``:
logits ``(B, L, V)``, and the cache extended by ``L`` positions. ``init_cache``
gives an empty cache; a cache of length ``S`` with ``S + L > C`` is an
``OutOfRangeError`` (the model has no position past its context).

Parameter layout
----------------
A flat ``dict`` from name to array (the names of :func:`parameter_shapes`), so
that checkpoints, optimizers and autodiff treat parameters uniformly.

Initialisation (GPT-2 scheme)
-----------------------------
Every matrix and embedding ~ N(0, 0.02²); the two projections that write into
the residual stream (``attn.proj.weight``, ``mlp.proj.weight``) ~ N(0, (0.02/√(2N))²),
so the stream's variance does not grow with depth; biases 0; norm weights 1.
Drawn in NumPy from ``Generator(PCG64(seed))`` in layout order, so every
backend starts from identical weights.

Errors
------
``OutOfRangeError`` for token ids outside ``[0, V)`` or positions past the
context; ``ShapeError`` for ids not ``(B, L)`` or a parameter of the wrong
shape (naming the parameter); ``ConfigError`` for missing or unexpected
parameters.
"""

from __future__ import annotations

import math

import numpy as np

from .component import Component, invariants
from .config import ModelConfig
from .errors import ConfigError, ShapeError
from .validate import fmt_shape

INIT_STD = 0.02  # GPT-2's initializer_range
RESIDUAL_PROJECTIONS = ("attn.proj.weight", "mlp.proj.weight")


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the canonical (initialisation) order."""
    D, F, V, C = config.d_model, config.d_ff, config.vocab_size, config.context_length
    shapes: dict[str, tuple[int, ...]] = {"wte": (V, D)}
    if config.positional == "learned":
        shapes["wpe"] = (C, D)
    norm_has_bias = config.norm == "layer" and config.bias
    for i in range(config.n_layers):
        p = f"blocks.{i}."
        shapes[p + "ln1.weight"] = (D,)
        if norm_has_bias:
            shapes[p + "ln1.bias"] = (D,)
        qkv = (config.n_heads + 2 * config.kv_heads) * config.head_dim  # q, then k and v of the Hkv KV heads
        shapes[p + "attn.qkv.weight"] = (D, qkv)
        if config.has_qkv_bias:
            shapes[p + "attn.qkv.bias"] = (qkv,)
        shapes[p + "attn.proj.weight"] = (D, D)
        if config.bias:
            shapes[p + "attn.proj.bias"] = (D,)
        shapes[p + "ln2.weight"] = (D,)
        if norm_has_bias:
            shapes[p + "ln2.bias"] = (D,)
        if config.activation == "swiglu":
            shapes[p + "mlp.gate.weight"] = (D, F)
            if config.bias:
                shapes[p + "mlp.gate.bias"] = (F,)
        shapes[p + "mlp.fc.weight"] = (D, F)
        if config.bias:
            shapes[p + "mlp.fc.bias"] = (F,)
        shapes[p + "mlp.proj.weight"] = (F, D)
        if config.bias:
            shapes[p + "mlp.proj.bias"] = (D,)
    shapes["ln_f.weight"] = (D,)
    if norm_has_bias:
        shapes["ln_f.bias"] = (D,)
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (D, V)
    return shapes


def init_parameters(config: ModelConfig, seed: int, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Draw GPT-2-style initial weights as NumPy arrays (identical for every backend)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    residual_std = INIT_STD / math.sqrt(2 * config.n_layers)
    params: dict[str, np.ndarray] = {}
    for name, shape in parameter_shapes(config).items():
        if name.endswith("bias"):
            value = np.zeros(shape)
        elif name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            value = np.ones(shape)
        elif name.endswith(RESIDUAL_PROJECTIONS):
            value = rng.standard_normal(shape) * residual_std
        else:
            value = rng.standard_normal(shape) * INIT_STD
        params[name] = value.astype(dtype)
    return params


def check_parameters(config: ModelConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """Raise a clear error unless ``shapes`` (name → shape) is exactly the layout of ``config``."""
    expected = parameter_shapes(config)
    missing = [n for n in expected if n not in shapes]
    unexpected = [n for n in shapes if n not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        raise ConfigError(f"parameters do not match the config: {'; '.join(parts)}")
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise ShapeError(
                f"parameter {name!r} has shape {fmt_shape(shapes[name])}, expected {fmt_shape(shape)} for this config"
            )


COMPONENT = Component(
    name="model",
    title="Decoder model",
    functions=("model_forward", "init_cache"),
    invariants=invariants(
        (
            "model.matches_reference",
            "Logits agree with the float64 reference forward for every positional scheme, norm and activation.",
        ),
        ("model.causal", "Logits at position i do not change when tokens after i change."),
        ("model.cached_equals_full", "Decoding token by token with the KV cache gives the logits of one full forward pass."),
        (
            "model.init_statistics",
            "init_parameters draws std 0.02, residual projections std 0.02/sqrt(2N), zero biases, unit norm weights, reproducibly from the seed.",
        ),
        (
            "model.errors",
            "Ids out of range, sequences past the context, and parameters of the wrong shape raise a SpecError naming what was wrong.",
        ),
    ),
)
