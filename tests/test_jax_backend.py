"""The JAX backend against the NumPy reference, its compiled paths against its eager ones, and its autodiff.

Value checks compute the expectation with the NumPy backend in float64 on the
very inputs the JAX backend saw (rounded to the dtype under test) and compare
with the tolerance row of :mod:`transformer_spec.spec.tolerances`. Shapes come from a small
fixed set so every compiled kernel is compiled once and reused (JAX compiles
once per new shape; see the pitfalls in DESIGN.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from transformer_spec.backends import KVCache, load_backend, missing_kernels  # noqa: E402
from transformer_spec.backends.jax import JaxBackend, StaticKVCache  # noqa: E402
from transformer_spec.backends.numpy import NumpyBackend  # noqa: E402
from transformer_spec.spec.config import ModelConfig  # noqa: E402
from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, ShapeError, SpecError  # noqa: E402
from transformer_spec.spec.model import init_parameters  # noqa: E402
from transformer_spec.spec.tolerances import tolerance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
jb = JaxBackend()
eager = JaxBackend(jit=False)
nb = NumpyBackend()
X64 = bool(jax.config.jax_enable_x64)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def rounded(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` and returned as float64: the exact values the JAX backend computes on."""
    return np.asarray(jb.to_numpy(jb.asarray(array, dtype)), dtype=np.float64)


def assert_close(got, expected: np.ndarray, dtype: str = "float32", kind: str = "primitive") -> None:
    """``got`` (a JAX array) within the ``(dtype, kind)`` tolerance of the float64 ``expected``."""
    assert isinstance(got, jax.Array), f"expected a jax.Array, got {type(got).__name__}"
    assert jb.dtype_of(got) == dtype, f"result dtype {jb.dtype_of(got)}, expected {dtype}"
    tol = tolerance(dtype, kind)
    np.testing.assert_allclose(np.asarray(jb.to_numpy(got), dtype=np.float64), expected, rtol=tol.rtol, atol=tol.atol)


# ---------------------------------------------------------------------------- basics


def test_registry_loads_the_backend_with_every_kernel():
    backend = load_backend("jax")
    assert isinstance(backend, JaxBackend) and backend.name == "jax" and backend.supports_autodiff
    assert missing_kernels(backend) == []
    assert isinstance(load_backend("jax:cpu"), JaxBackend)


def test_float64_without_x64_says_how_to_enable_it():
    if X64:
        pytest.skip("JAX's 64-bit mode is on in this process")
    assert jb.dtypes == ("float16", "bfloat16", "float32")
    for attempt in (
        lambda: jb.asarray(np.ones(3), "float64"),
        lambda: jb.asarray(np.ones(3)),  # a float64 NumPy array is not silently rounded either
        lambda: jb.sinusoidal_encoding(4, 8, dtype="float64"),
    ):
        with pytest.raises(DTypeError) as info:
            attempt()
        message = str(info.value)
        assert "float64" in message and "JAX_ENABLE_X64=1" in message and 'jax.config.update("jax_enable_x64", True)' in message


def test_asarray_dtypes_and_int64_range():
    assert jb.dtype_of(jb.asarray(np.ones(2), "bfloat16")) == "bfloat16"
    assert jb.dtype_of(jb.asarray([True, False])) == "bool"
    ids = jb.asarray(np.array([1, 2]), "int64")
    assert jb.dtype_of(ids) in ("int32", "int64")
    if not X64:
        with pytest.raises(OutOfRangeError, match="int32"):
            jb.asarray(np.array([2**40]), "int64")
    with pytest.raises(DTypeError, match="native array"):
        jb.softmax(np.ones(3, np.float32))


def test_bad_constructor_options_are_spec_errors():
    with pytest.raises(ConfigError, match="platform"):
        JaxBackend(device="no-such-platform")
    with pytest.raises(ConfigError):
        JaxBackend(jit="yes")


# ---------------------------------------------------------------------------- primitives
# One fixed shape per argument, so each kernel compiles once for the whole file.

X_SHAPE = (2, 3, 8)


def _primitive_cases(r: np.random.Generator, jx: JaxBackend = jb):
    """(name, call on the JAX backend ``jx``, numpy float64 call) for every primitive, on fixed shapes."""
    x = r.standard_normal(X_SHAPE).astype(np.float32)
    extreme = np.array([[1e30, -1e30, 0.0, 5.0], [-1e30, -1e30, -1e30, 1.0]], np.float32)
    w, b = r.standard_normal((8, 5)).astype(np.float32), r.standard_normal(5).astype(np.float32)
    g, beta = r.standard_normal(8).astype(np.float32), r.standard_normal(8).astype(np.float32)
    table, ids = r.standard_normal((11, 8)).astype(np.float32), r.integers(0, 11, (2, 3))
    logits, targets = r.standard_normal((2, 3, 7)).astype(np.float32), r.integers(0, 7, (2, 3))
    targets[0, 1] = -100
    positions = np.array([0, 5, 1000])
    x64, e64 = x.astype(np.float64), extreme.astype(np.float64)
    X, E = jx.asarray(x), jx.asarray(extreme)
    return [
        ("softmax", lambda: jx.softmax(X, -1), lambda: nb.softmax(x64, -1)),
        ("softmax_axis0", lambda: jx.softmax(X, 0), lambda: nb.softmax(x64, 0)),
        ("softmax_extreme", lambda: jx.softmax(E, -1), lambda: nb.softmax(e64, -1)),
        ("log_softmax", lambda: jx.log_softmax(X, 1), lambda: nb.log_softmax(x64, 1)),
        ("relu", lambda: jx.relu(X), lambda: nb.relu(x64)),
        ("gelu_tanh", lambda: jx.gelu(X, True), lambda: nb.gelu(x64, True)),
        ("gelu_erf", lambda: jx.gelu(X, False), lambda: nb.gelu(x64, False)),
        ("silu", lambda: jx.silu(X), lambda: nb.silu(x64)),
        ("linear", lambda: jx.linear(X, jx.asarray(w), jx.asarray(b)), lambda: nb.linear(x64, w.astype(float), b.astype(float))),
        ("linear_no_bias", lambda: jx.linear(X, jx.asarray(w)), lambda: nb.linear(x64, w.astype(float))),
        (
            "layer_norm",
            lambda: jx.layer_norm(X, jx.asarray(g), jx.asarray(beta), 1e-5),
            lambda: nb.layer_norm(x64, g.astype(float), beta.astype(float), 1e-5),
        ),
        (
            "layer_norm_no_bias",
            lambda: jx.layer_norm(X, jx.asarray(g), None, 1e-3),
            lambda: nb.layer_norm(x64, g.astype(float), None, 1e-3),
        ),
        ("rms_norm", lambda: jx.rms_norm(X, jx.asarray(g), 1e-6), lambda: nb.rms_norm(x64, g.astype(float), 1e-6)),
        (
            "embedding",
            lambda: jx.embedding(jx.asarray(table), jx.asarray(ids, "int64")),
            lambda: nb.embedding(table.astype(float), ids),
        ),
        (
            "sinusoidal",
            lambda: jx.sinusoidal_encoding(5, 8, 10000.0, 3),
            lambda: nb.sinusoidal_encoding(5, 8, 10000.0, 3, "float64"),
        ),
        ("rotary", lambda: jx.rotary(X, jx.asarray(positions, "int64"), 10000.0), lambda: nb.rotary(x64, positions, 10000.0)),
        (
            "cross_entropy",
            lambda: jx.cross_entropy(jx.asarray(logits), jx.asarray(targets, "int64")),
            lambda: nb.cross_entropy(logits.astype(float), targets),
        ),
    ]


PRIMITIVE_NAMES = [name for name, _, _ in _primitive_cases(rng())]


@pytest.mark.parametrize("name", PRIMITIVE_NAMES)
def test_primitive_matches_numpy(name):
    _, jax_call, numpy_call = next(case for case in _primitive_cases(rng(1)) if case[0] == name)
    assert_close(jax_call(), numpy_call(), "float32")


ATTENTION_CASES = {  # name: (L, S, mask?, causal)
    "plain": (4, 4, False, False),
    "causal": (4, 4, False, True),
    "causal_cached": (2, 5, False, True),  # queries are the last L positions
    "mask_and_causal": (4, 5, True, True),
}


@pytest.mark.parametrize("name", list(ATTENTION_CASES))
def test_attention_matches_numpy(name):
    L, S, with_mask, causal = ATTENTION_CASES[name]
    r = rng(2)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in ((2, 3, L, 8), (2, 3, S, 8), (2, 3, S, 8)))
    mask = r.random((L, S)) > 0.3 if with_mask else None
    out, weights = jb.attention(
        jb.asarray(q), jb.asarray(k), jb.asarray(v), None if mask is None else jb.asarray(mask), causal=causal, scale=0.3
    )
    ref_out, ref_weights = nb.attention(q.astype(float), k.astype(float), v.astype(float), mask, causal=causal, scale=0.3)
    assert_close(out, ref_out, "float32", "composite")
    assert_close(weights, ref_weights, "float32")


def test_attention_fully_masked_row_is_zero_not_nan():
    r = rng(3)
    q, k = r.standard_normal((2, 3, 4, 8)).astype(np.float32), r.standard_normal((2, 3, 4, 8)).astype(np.float32)
    mask = np.ones((4, 4), bool)
    mask[1] = False
    out, weights = jb.attention(jb.asarray(q), jb.asarray(k), jb.asarray(k), jb.asarray(mask))
    out, weights = jb.to_numpy(out), jb.to_numpy(weights)
    assert np.isfinite(out).all() and np.isfinite(weights).all()
    assert (weights[..., 1, :] == 0).all() and (out[..., 1, :] == 0).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_primitives(dtype):
    r = rng(4)
    x, g, beta = r.standard_normal(X_SHAPE), r.standard_normal(8), r.standard_normal(8)
    X, G, Beta = (jb.asarray(a.astype(np.float32), dtype) for a in (x, g, beta))
    x, g, beta = (rounded(a.astype(np.float32), dtype) for a in (x, g, beta))
    assert_close(jb.softmax(X, -1), nb.softmax(x, -1), dtype)
    assert_close(jb.layer_norm(X, G, Beta, 1e-5), nb.layer_norm(x, g, beta, 1e-5), dtype)
    assert_close(jb.gelu(X, False), nb.gelu(x, False), dtype)


def test_eager_primitives_equal_compiled():
    """jit=False runs the same functions op by op: the same answers within float32 rounding."""
    compiled_cases, eager_cases = _primitive_cases(rng(5)), _primitive_cases(rng(5), eager)
    for (name, compiled_call, _), (_, eager_call, _) in zip(compiled_cases, eager_cases):
        if name in ("softmax_axis0", "layer_norm_no_bias", "linear_no_bias", "sinusoidal"):
            continue  # the same kernels as their neighbours: eager op-by-op dispatch is slow to warm up
        assert_close(eager_call(), np.asarray(jb.to_numpy(compiled_call()), np.float64), "float32")


# ---------------------------------------------------------------------------- sampling


def _sampling_cases():
    """(logits, u, temperature, top_k, top_p): ties, temperatures, every top-k / top-p combination."""
    r = rng(6)
    cases = []
    for V in (7, 64, 4096):  # 4096 takes the partial-sort (lax.top_k) path
        for i in range(40 if V < 4096 else 24):
            logits = r.standard_normal(V) * r.choice([0.5, 3.0])
            if i % 3 == 0:
                logits = np.round(logits)  # many exact ties
            if V == 4096 and i % 4 == 1:
                logits = logits * 0.01  # flat: top-p needs more than the candidate window, falls back to the sort
            cases.append(
                (
                    logits.astype(np.float32),
                    float(r.random()),
                    [0.0, 0.5, 1.0, 2.0][i % 4],
                    [None, 1, 3, V + 5][(i // 4) % 4],
                    [None, 0.3, 0.9, 1.0][(i // 2) % 4],
                )
            )
    huge = np.array([3e38, 2.9e38, -3e38, 3e38, 0.0, 1e38, 2.99e38], np.float32)  # logits / T would overflow
    cases += [(huge, u, 0.01, None, None) for u in (0.1, 0.6, 0.99)] + [(huge * 1e-36, 0.7, 0.5, 2, 0.5)]
    return cases


def test_sample_equals_numpy_reference():
    mismatches = []
    for logits, u, temperature, top_k, top_p in _sampling_cases():
        with np.errstate(over="ignore"):  # the reference's -3e38 - 3e38 = -inf is harmless (probability 0)
            expected = nb.sample(logits, u, temperature, top_k, top_p)
        got = jb.sample(jb.asarray(logits), u, temperature, top_k, top_p)
        assert isinstance(got, int)
        if got != expected:
            mismatches.append((logits.shape[0], u, temperature, top_k, top_p, got, expected))
    assert not mismatches, f"{len(mismatches)} samples differ from NumPy's: {mismatches[:5]}"


def test_sample_u_on_a_float32_boundary():
    """u and top_p compare exactly like the reference (float64 u against float32 cumulative sums)."""
    logits = np.log(np.array([0.25, 0.25, 0.5], np.float32))
    for u in (0.25, np.nextafter(0.25, 0), np.nextafter(0.5, 1), 0.5, 0.75 - 1e-12, 0.999999999):
        for top_p in (None, 0.5, np.nextafter(0.5, 1), 0.75):
            assert jb.sample(jb.asarray(logits), float(u), 1.0, None, top_p) == nb.sample(logits, float(u), 1.0, None, top_p)


def test_sample_rejects_bad_options_with_spec_errors():
    logits = jb.asarray(np.zeros(5, np.float32))
    for kwargs in ({"temperature": -1.0}, {"top_k": 0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            jb.sample(logits, 0.5, **kwargs)
    with pytest.raises(SpecError):
        jb.sample(jb.asarray(np.array([0.0, np.nan], np.float32)), 0.5)


# ---------------------------------------------------------------------------- the model

TINY = dict(vocab_size=48, context_length=16, d_model=16, n_heads=2, n_layers=2, d_ff=32)
CONFIGS = {  # together they cover every positional scheme, norm, activation, tying and bias setting
    "learned_layer_gelutanh_tied_bias": ModelConfig(**TINY),
    "sinusoidal_rms_gelu_untied_nobias": ModelConfig(
        **TINY, positional="sinusoidal", norm="rms", activation="gelu", tie_embeddings=False, bias=False
    ),
    "rotary_layer_swiglu_untied_bias": ModelConfig(**TINY, positional="rotary", activation="swiglu", tie_embeddings=False),
    "rotary_rms_relu_tied_nobias": ModelConfig(**TINY, positional="rotary", norm="rms", activation="relu", bias=False),
}
B, L = 2, 7  # every full forward in this file has this shape


def _model(name: str, seed: int = 0):
    config = CONFIGS[name]
    params = init_parameters(config, seed, "float32")
    for key in params:  # 10x GPT-2's init scale, so attention weights and logits are far from uniform
        if not any(part.startswith("ln") for part in key.split(".")):
            params[key] = params[key] * 10
    ids = rng(seed + 7).integers(0, config.vocab_size, (B, L))
    return config, params, {k: jb.asarray(v) for k, v in params.items()}, ids


@pytest.mark.parametrize("name", list(CONFIGS))
def test_model_forward_matches_numpy(name):
    config, params, jparams, ids = _model(name)
    logits, cache = jb.model_forward(jparams, config, jb.asarray(ids, "int64"))
    expected, _ = nb.model_forward({k: v.astype(np.float64) for k, v in params.items()}, config, ids)
    assert_close(logits, expected, "float32", "composite")
    assert isinstance(cache, StaticKVCache) and cache.length == L


def _decode_incrementally(backend, jparams, config, ids, prompt=3):
    """Logits of ``ids`` fed as a prompt of ``prompt`` tokens, then one token per step."""
    logits, cache = backend.model_forward(jparams, config, backend.asarray(ids[:, :prompt], "int64"))
    pieces = [backend.to_numpy(logits)]
    for t in range(prompt, ids.shape[1]):
        logits, cache = backend.model_forward(jparams, config, backend.asarray(ids[:, t : t + 1], "int64"), cache)
        pieces.append(backend.to_numpy(logits))
    return np.concatenate(pieces, axis=1), cache


@pytest.mark.parametrize("name", ["learned_layer_gelutanh_tied_bias", "rotary_layer_swiglu_untied_bias"])
def test_static_cache_decoding_equals_full_forward(name):
    config, _, jparams, ids = _model(name)
    full, _ = jb.model_forward(jparams, config, jb.asarray(ids, "int64"))
    incremental, cache = _decode_incrementally(jb, jparams, config, ids)
    assert_close(full, incremental.astype(np.float64), "float32", "composite")
    assert cache.length == L
    keys = cache.keys
    assert len(keys) == config.n_layers and keys[0].shape == (B, config.n_heads, L, config.head_dim)


def test_no_recompilation_for_same_shapes_and_across_decode_steps():
    config, _, jparams, ids = _model("learned_layer_gelutanh_tied_bias")
    _decode_incrementally(jb, jparams, config, ids)  # compiles the prompt and the step programs (if not yet)
    before = jb.trace_counts().get("model_forward", 0)
    jb.model_forward(jparams, config, jb.asarray(ids[:, :3], "int64"))  # same prompt shape again
    _decode_incrementally(jb, jparams, config, ids)  # four more decoding steps, at new positions
    assert jb.trace_counts().get("model_forward", 0) == before, "a call with seen shapes compiled again"
    for length in (5, 6, 8):  # padded to the bucket of L = 7 (8 positions): the same program
        logits, cache = jb.model_forward(jparams, config, jb.asarray(np.resize(ids, (B, length)), "int64"))
        assert logits.shape == (B, length, config.vocab_size) and cache.length == length
    assert jb.trace_counts().get("model_forward", 0) == before, "prompt lengths in one power-of-two bucket compiled again"
    other = ModelConfig(**{**TINY, "d_ff": 24})  # the counter does move when something new is compiled
    jb.model_forward({k: jb.asarray(v) for k, v in init_parameters(other, 0).items()}, other, jb.asarray(ids[:, :3], "int64"))
    assert jb.trace_counts().get("model_forward", 0) == before + 1


def test_branching_off_an_older_cache_leaves_both_valid():
    config, _, jparams, ids = _model("learned_layer_gelutanh_tied_bias")
    _, root = jb.model_forward(jparams, config, jb.asarray(ids[:, :3], "int64"))
    a, b = ids[:, 3:4], (ids[:, 3:4] + 1) % config.vocab_size
    logits_a, cache_a = jb.model_forward(jparams, config, jb.asarray(a, "int64"), root)  # in place: root's newest
    logits_b, cache_b = jb.model_forward(jparams, config, jb.asarray(b, "int64"), root)  # a branch: copies
    assert cache_a.is_newest() and cache_b.is_newest() and not root.is_newest()
    next_a, _ = jb.model_forward(jparams, config, jb.asarray(ids[:, 4:5], "int64"), cache_a)
    for prefix, logits in (
        (np.concatenate([ids[:, :3], a, ids[:, 4:5]], 1), next_a[:, -1]),
        (np.concatenate([ids[:, :3], b], 1), logits_b[:, -1]),
    ):
        full, _ = jb.model_forward(jparams, config, jb.asarray(np.pad(prefix, ((0, 0), (0, L - prefix.shape[1]))), "int64"))
        assert_close(logits, jb.to_numpy(full)[:, prefix.shape[1] - 1].astype(np.float64), "float32", "composite")


def test_a_base_kv_cache_is_accepted_and_a_wrong_cache_is_a_spec_error():
    config, _, jparams, ids = _model("learned_layer_gelutanh_tied_bias")
    full, _ = jb.model_forward(jparams, config, jb.asarray(ids, "int64"))
    _, cache = jb.model_forward(jparams, config, jb.asarray(ids[:, :3], "int64"))
    growing = cache.to_kv_cache()
    assert isinstance(growing, KVCache) and growing.length == 3
    logits, _ = jb.model_forward(jparams, config, jb.asarray(ids[:, 3:4], "int64"), growing)
    assert_close(logits[:, 0], jb.to_numpy(full)[:, 3].astype(np.float64), "float32", "composite")
    with pytest.raises(ShapeError, match="batch size"):
        jb.model_forward(jparams, config, jb.asarray(ids[:1, 3:4], "int64"), cache)
    other = CONFIGS["sinusoidal_rms_gelu_untied_nobias"]
    with pytest.raises(ConfigError, match="another ModelConfig"):
        jb.model_forward(
            {k: jb.asarray(v) for k, v in init_parameters(other, 0).items()}, other, jb.asarray(ids[:, :1], "int64"), cache
        )
    with pytest.raises(OutOfRangeError, match="context length"):
        jb.model_forward(jparams, config, jb.asarray(np.zeros((B, 14), np.int64), "int64"), cache)


def test_compiled_model_equals_eager():
    config, _, jparams, ids = _model("rotary_rms_relu_tied_nobias")
    compiled, _ = _decode_incrementally(jb, jparams, config, ids, prompt=L - 1)
    eager_logits, _ = _decode_incrementally(eager, jparams, config, ids, prompt=L - 1)
    tol = tolerance("float32", "composite")
    np.testing.assert_allclose(compiled, eager_logits, rtol=tol.rtol, atol=tol.atol)


def test_block_attention_and_feed_forward_composites_match_numpy():
    config, params, jparams, _ = _model("rotary_layer_swiglu_untied_bias")
    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    x = rng(8).standard_normal((B, L, config.d_model)).astype(np.float32)
    X, x64 = jb.asarray(x), x.astype(np.float64)
    out, (keys, values) = jb.block(jparams, config, X, "blocks.1.")
    ref_out, (ref_keys, _) = nb.block(params64, config, x64, "blocks.1.")
    assert_close(out, ref_out, "float32", "composite")
    assert_close(keys, ref_keys, "float32", "composite")
    # the block continued from its own keys/values equals the block on the whole sequence
    head, (k3, v3) = jb.block(jparams, config, X[:, :3], "blocks.1.")
    tail, _ = jb.block(jparams, config, X[:, 3:], "blocks.1.", past=(k3, v3))
    assert_close(tail, ref_out[:, 3:], "float32", "composite")
    assert_close(
        jb.feed_forward(jparams, config, X, "blocks.0.mlp."),
        nb.feed_forward(params64, config, x64, "blocks.0.mlp."),
        "float32",
        "composite",
    )
    attn, _ = jb.multihead_attention(jparams, config, X, "blocks.0.attn.")
    assert_close(attn, nb.multihead_attention(params64, config, x64, "blocks.0.attn.")[0], "float32", "composite")


# ---------------------------------------------------------------------------- autodiff and float64


def test_value_and_grad_float32_runs_and_rejects_non_scalars():
    config, _, jparams, ids = _model("learned_layer_gelutanh_tied_bias")

    def loss(params, ids):
        logits, _ = jb.model_forward(params, config, ids[:, :-1])
        return jb.cross_entropy(logits, ids[:, 1:])

    value, grads = jb.value_and_grad(loss)(jparams, jb.asarray(ids, "int64"))
    assert set(grads) == set(jparams) and all(grads[k].shape == jparams[k].shape for k in grads)
    assert np.isfinite(float(value)) and all(np.isfinite(jb.to_numpy(g)).all() for g in grads.values())
    with pytest.raises(ShapeError, match="scalar"):
        jb.value_and_grad(lambda p: p["wte"] * 2)(jparams)


X64_SCRIPT = textwrap.dedent(
    """
    import json, numpy as np
    from transformer_spec.backends.jax import JaxBackend, enable_persistent_cache
    from transformer_spec.backends.numpy import NumpyBackend
    from transformer_spec.spec.config import ModelConfig
    from transformer_spec.spec.model import init_parameters
    enable_persistent_cache()  # from $TSPEC_JAX_CACHE_DIR: an explicit call, never a side effect of importing
    jb, nb = JaxBackend(), NumpyBackend()
    config = ModelConfig(vocab_size=48, context_length=16, d_model=16, n_heads=2, n_layers=2, d_ff=32,
                         positional="rotary", norm="rms", activation="swiglu")
    params = init_parameters(config, 0, "float64")
    params = {k: (v * 10 if "ln" not in k else v) for k, v in params.items()}
    ids = np.random.default_rng(1).integers(0, 48, (2, 7))
    jparams = {k: jb.asarray(v, "float64") for k, v in params.items()}

    def loss(p):
        logits, _ = jb.model_forward(p, config, jb.asarray(ids[:, :-1], "int64"))
        return jb.cross_entropy(logits, jb.asarray(ids[:, 1:], "int64"))

    value, grads = jb.value_and_grad(loss)(jparams)
    direction = {k: np.random.default_rng(2).standard_normal(v.shape) for k, v in params.items()}
    def along(t):
        return float(loss({k: jb.asarray(params[k] + t * direction[k], "float64") for k in params}))
    h = 3e-5  # fourth-order central difference: truncation (~h^4) and rounding (~eps*|f|/h) both ~1e-11 here
    numeric = (-along(2 * h) + 8 * along(h) - 8 * along(-h) + along(-2 * h)) / (12 * h)
    analytic = float(sum(np.sum(np.asarray(grads[k]) * direction[k]) for k in params))
    logits, _ = jb.model_forward(jparams, config, jb.asarray(ids, "int64"))
    expected, _ = nb.model_forward(params, config, ids)
    print(json.dumps({"dtypes": list(jb.dtypes), "analytic": analytic, "numeric": numeric,
                      "logits_dtype": jb.dtype_of(logits), "max_logit_error": float(np.abs(np.asarray(logits) - expected).max()),
                      "max_logit": float(np.abs(expected).max())}))
    """
)


def test_float64_and_value_and_grad_against_central_differences_in_x64_subprocess(tmp_path):
    """Also checks that enable_persistent_cache() with TSPEC_JAX_CACHE_DIR writes the persistent compilation cache."""
    cache_dir = tmp_path / "jax-cache"
    environment = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu", "TSPEC_JAX_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", X64_SCRIPT], cwd=REPO, env=environment, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert cache_dir.is_dir() and any(cache_dir.iterdir()), "TSPEC_JAX_CACHE_DIR set, but no compiled program was written there"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "float64" in result["dtypes"] and result["logits_dtype"] == "float64"
    tol = tolerance("float64", "composite")
    assert result["max_logit_error"] <= tol.atol + tol.rtol * result["max_logit"]
    assert abs(result["analytic"] - result["numeric"]) <= tol.atol + tol.rtol * abs(result["numeric"]), result
