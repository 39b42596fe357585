"""The PyTorch backend against the NumPy reference, its fused paths against its plain ones, and its autodiff.

Every value check computes the expectation with the NumPy backend in float64 on
the very inputs the torch backend saw (rounded to the dtype under test), and
compares with the tolerance row of :mod:`transformer_spec.spec.tolerances` for that dtype.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from transformer_spec.backends import load_backend, missing_kernels  # noqa: E402
from transformer_spec.backends.numpy import NumpyBackend  # noqa: E402
from transformer_spec.backends.torch import DeviceUnavailableError, TorchBackend  # noqa: E402
from transformer_spec.spec.config import ModelConfig  # noqa: E402
from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, SpecError  # noqa: E402
from transformer_spec.spec.model import init_parameters  # noqa: E402
from transformer_spec.spec.tolerances import tolerance  # noqa: E402

FLOAT_DTYPES = ("float32", "float64")  # the dtypes whose values are checked against the reference
LOW_PRECISION = ("float16", "bfloat16")

tb = TorchBackend()
nb = NumpyBackend()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: these inputs are tiny, and on a busy shared machine OpenMP's spinning
    threads make a 1 ms forward take 100 ms. Restored afterwards for other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def as_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` and returned as float64: the exact values the torch backend computes on."""
    return tb.to_numpy(tb.asarray(array, dtype)).astype(np.float64)


def assert_close(got, expected: np.ndarray, dtype: str, kind: str = "primitive") -> None:
    """``got`` (a torch tensor) within the ``(dtype, kind)`` tolerance of the float64 ``expected``."""
    assert isinstance(got, torch.Tensor), f"expected a torch.Tensor, got {type(got).__name__}"
    assert tb.dtype_of(got) == dtype, f"result dtype {tb.dtype_of(got)}, expected {dtype}"
    tol = tolerance(dtype, kind)
    np.testing.assert_allclose(tb.to_numpy(got).astype(np.float64), expected, rtol=tol.rtol, atol=tol.atol)


# ---------------------------------------------------------------------------- backend basics


def test_registry_and_kernels():
    backend = load_backend("torch")
    assert isinstance(backend, TorchBackend) and backend.name == "torch" and backend.device == "cpu"
    assert missing_kernels(backend) == []
    assert backend.supports_autodiff and backend.array_type is torch.Tensor


def test_bad_device_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="not a torch device name"):
        TorchBackend(device="no-such-device")
    if torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA device"):
            TorchBackend(device=f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(DeviceUnavailableError, match=r"torch\.cuda\.is_available\(\) is False") as raised:
            TorchBackend(device="cuda")
        assert isinstance(raised.value, SpecError)
        with pytest.raises(DeviceUnavailableError, match="cuda"):
            load_backend("torch:cuda")


def test_conversion_and_dtype_names():
    for dtype in ("float16", "bfloat16", "float32", "float64", "int32", "int64", "bool"):
        x = tb.asarray(np.array([[1, 0], [0, 1]]), dtype)
        assert isinstance(x, torch.Tensor) and tb.dtype_of(x) == dtype
        back = tb.to_numpy(x)
        assert isinstance(back, np.ndarray) and back.shape == (2, 2)
    assert tb.to_numpy(tb.asarray([1.5], "bfloat16")).dtype == np.float32  # NumPy has no bfloat16
    assert tb.dtype_of(tb.asarray(1.5)) == "float64"  # Python floats take NumPy's default, like the reference
    leaf = torch.ones(3, requires_grad=True)
    assert tb.to_numpy(leaf * 2).tolist() == [2.0, 2.0, 2.0]  # tensors in a graph are detached
    read_only = np.arange(4.0)
    read_only.setflags(write=False)
    assert tb.to_numpy(tb.asarray(read_only, "float32")).tolist() == [0, 1, 2, 3]
    with pytest.raises(DTypeError, match="NumPy dtype"):
        tb.asarray(np.array(["a", "b"]))
    with pytest.raises(DTypeError, match="unknown dtype"):
        tb.asarray([1.0], "float8")


def test_structural_kernels():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = tb.asarray(x, "float64")
    assert np.array_equal(tb.to_numpy(tb.reshape(t, (6, 4))), x.reshape(6, 4))
    assert np.array_equal(tb.to_numpy(tb.transpose(t, (2, 0, 1))), x.transpose(2, 0, 1))
    assert np.array_equal(tb.to_numpy(tb.concat([t, t], 1)), np.concatenate([x, x], 1))


# ---------------------------------------------------------------------------- primitives vs the reference


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_softmax_and_log_softmax(dtype):
    x = as_dtype(rng(1).standard_normal((3, 4, 7)) * 5, dtype)
    for axis in (-1, 0, 1):
        assert_close(tb.softmax(tb.asarray(x, dtype), axis), nb.softmax(x, axis), dtype)
        assert_close(tb.log_softmax(tb.asarray(x, dtype), axis), nb.log_softmax(x, axis), dtype)
    extreme = as_dtype(np.array([[1e30, -1e30, 0.0], [-1e30, -1e30, -1e30]]), dtype)
    assert_close(tb.softmax(tb.asarray(extreme, dtype)), nb.softmax(extreme), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_activations(dtype):
    x = as_dtype(rng(2).standard_normal((5, 9)) * 4, dtype)
    native = tb.asarray(x, dtype)
    assert_close(tb.relu(native), nb.relu(x), dtype)
    assert_close(tb.gelu(native, approximate=True), nb.gelu(x, approximate=True), dtype)
    assert_close(tb.gelu(native, approximate=False), nb.gelu(x, approximate=False), dtype)
    assert_close(tb.silu(native), nb.silu(x), dtype)
    # the two GELU forms differ by more than the tolerance: a swapped flag would be caught
    assert np.abs(nb.gelu(x, approximate=True) - nb.gelu(x, approximate=False)).max() > 1e-4


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_linear(dtype):
    g = rng(3)
    x, w, b = (as_dtype(a, dtype) for a in (g.standard_normal((2, 3, 8)), g.standard_normal((8, 5)), g.standard_normal(5)))
    assert_close(tb.linear(tb.asarray(x, dtype), tb.asarray(w, dtype), tb.asarray(b, dtype)), nb.linear(x, w, b), dtype)
    assert_close(tb.linear(tb.asarray(x, dtype), tb.asarray(w, dtype)), nb.linear(x, w), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_norms(dtype):
    g = rng(4)
    x, w, b = (as_dtype(a, dtype) for a in (g.standard_normal((3, 5, 16)) * 3 + 1, g.standard_normal(16), g.standard_normal(16)))
    x_, w_, b_ = (tb.asarray(a, dtype) for a in (x, w, b))
    assert_close(tb.layer_norm(x_, w_, b_, 1e-5), nb.layer_norm(x, w, b, 1e-5), dtype)
    assert_close(tb.layer_norm(x_, w_, None, 1e-5), nb.layer_norm(x, w, None, 1e-5), dtype)
    assert_close(tb.rms_norm(x_, w_, 1e-6), nb.rms_norm(x, w, 1e-6), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_embedding_and_positions(dtype):
    g = rng(5)
    table = as_dtype(g.standard_normal((11, 6)), dtype)
    ids = g.integers(0, 11, (2, 4))
    got = tb.embedding(tb.asarray(table, dtype), tb.asarray(ids, "int64"))
    assert np.array_equal(tb.to_numpy(got), table[ids])  # row selection is exact
    assert np.array_equal(tb.to_numpy(tb.embedding(tb.asarray(table, dtype), tb.asarray(ids, "int32"))), table[ids])
    with pytest.raises(OutOfRangeError):
        tb.embedding(tb.asarray(table, dtype), tb.asarray([[-1]], "int64"))
    assert np.array_equal(tb.to_numpy(tb.learned_positions(tb.asarray(table, dtype), 3, 2)), table[2:5])
    for offset in (0, 7):
        assert_close(
            tb.sinusoidal_encoding(5, 8, 10000.0, offset, dtype), nb.sinusoidal_encoding(5, 8, 10000.0, offset, "float64"), dtype
        )
    x = as_dtype(g.standard_normal((2, 3, 5, 8)), dtype)
    positions = np.array([0, 3, 4, 9, 1000])
    assert_close(tb.rotary(tb.asarray(x, dtype), tb.asarray(positions, "int64"), 500.0), nb.rotary(x, positions, 500.0), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_cross_entropy(dtype):
    g = rng(6)
    logits = as_dtype(g.standard_normal((2, 5, 7)) * 3, dtype)
    targets = g.integers(0, 7, (2, 5))
    targets[0, 1] = targets[1, 3] = -100
    assert_close(
        tb.cross_entropy(tb.asarray(logits, dtype), tb.asarray(targets, "int64")), nb.cross_entropy(logits, targets), dtype
    )
    assert_close(
        tb.cross_entropy(tb.asarray(logits, dtype), tb.asarray(targets, "int32"), -100), nb.cross_entropy(logits, targets), dtype
    )
    ignored = tb.asarray(np.full((2, 5), 3), "int64")  # ignore_index inside [0, V)
    assert_close(tb.cross_entropy(tb.asarray(logits, dtype), ignored, 3), np.zeros(()), dtype)  # all ignored: 0, not NaN


# ---------------------------------------------------------------------------- attention


def attention_inputs(dtype: str, batch: tuple[int, ...], L: int, S: int, seed: int = 7, value_dim: int = 8):
    g = rng(seed)
    q, k = (as_dtype(g.standard_normal(batch + (n, 8)), dtype) for n in (L, S))
    v = as_dtype(g.standard_normal(batch + (S, value_dim)), dtype)
    return q, k, v


def attention_cases():
    """(name, batch axes, L, S, mask or None, causal, Dv): masks of both shapes, causal with L < S, fully masked rows."""
    g = rng(8)
    batch = (2, 3)
    random_mask = g.random(batch + (4, 6)) < 0.6
    random_mask[0, 1, 2, :] = False  # one query with no allowed key
    rows_blocked = np.ones((4, 6), dtype=bool)
    rows_blocked[[0, 3]] = False
    causal_blocked = np.ones((4, 6), dtype=bool)
    causal_blocked[0, :3] = False  # query 0 sees only keys 0..2 when causal: with this mask it sees nothing
    return [
        ("plain", batch, 4, 6, None, False, 8),
        ("causal L=S", batch, 5, 5, None, True, 8),
        ("causal L<S", batch, 3, 7, None, True, 8),
        ("causal L=1", batch, 1, 7, None, True, 8),
        ("batch mask", batch, 4, 6, random_mask, False, 8),
        ("batch mask causal", batch, 4, 6, random_mask, True, 8),
        ("(L, S) mask, empty rows", batch, 4, 6, rows_blocked, False, 8),
        ("causal empties a row", batch, 4, 6, causal_blocked, True, 8),
        ("no batch axes", (), 4, 6, rows_blocked, True, 8),
        ("three batch axes", (2, 1, 2), 3, 5, None, True, 8),
        ("Dv != Dh, causal L<S", batch, 3, 6, None, True, 5),
        ("Dv != Dh, masked", batch, 4, 6, rows_blocked, True, 5),
    ]


def reference_attention(q, k, v, mask, causal, scale=None):
    return nb.attention(q, k, v, mask, causal, scale)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", attention_cases(), ids=lambda c: c[0])
def test_attention_matches_reference(dtype, case):
    _, batch, L, S, mask, causal, value_dim = case
    q, k, v = attention_inputs(dtype, batch, L, S, value_dim=value_dim)
    mask_ = None if mask is None else tb.asarray(mask, "bool")
    out, weights = tb.attention(tb.asarray(q, dtype), tb.asarray(k, dtype), tb.asarray(v, dtype), mask_, causal)
    expected_out, expected_weights = reference_attention(q, k, v, mask, causal)
    assert_close(out, expected_out, dtype, "composite")
    assert_close(weights, expected_weights, dtype, "composite")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", attention_cases(), ids=lambda c: c[0])
def test_fused_attention_matches_plain(dtype, case):
    _, batch, L, S, mask, causal, value_dim = case
    q, k, v = (tb.asarray(a, dtype) for a in attention_inputs(dtype, batch, L, S, value_dim=value_dim))
    mask_ = None if mask is None else tb.asarray(mask, "bool")
    scale = 0.3
    fused, no_weights = tb._attention(q, k, v, mask_, causal, scale, False)
    plain, weights = tb._attention_plain(q, k, v, mask_, causal, scale)
    assert no_weights is None
    assert_close(fused, tb.to_numpy(plain).astype(np.float64), dtype, "composite")
    if mask is not None or causal:  # a query with no allowed key: zero weights and zero output on both paths
        allowed = np.broadcast_to(np.ones((L, S), bool) if mask is None else mask, tuple(weights.shape))
        if causal:
            allowed = allowed & np.tril(np.ones((L, S), dtype=bool), k=S - L)
        empty = ~allowed.any(axis=-1)
        assert np.all(tb.to_numpy(fused)[empty] == 0) and np.all(tb.to_numpy(weights)[empty] == 0)
        assert np.all(tb.to_numpy(weights)[~allowed] == 0)


def test_fused_attention_survives_kernels_that_give_nan_on_empty_rows(monkeypatch):
    """Some SDPA kernels (CUDA's, in several torch versions) return NaN for a query with no allowed key;
    this CPU build returns 0. Emulate the NaN kernels to check that the backend never relies on either."""
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def nan_on_empty_rows(q, k, v, attn_mask=None, **kwargs):
        out = real_sdpa(q, k, v, attn_mask=attn_mask, **kwargs)
        if attn_mask is not None:
            out = out.masked_fill(~attn_mask.any(dim=-1, keepdim=True), float("nan"))
        return out

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", nan_on_empty_rows)
    for _, batch, L, S, mask, causal, value_dim in attention_cases():
        if mask is None:
            continue
        q, k, v = attention_inputs("float64", batch, L, S, value_dim=value_dim)
        fused, _ = tb._attention(*(tb.asarray(a, "float64") for a in (q, k, v)), tb.asarray(mask, "bool"), causal, 0.5, False)
        assert_close(fused, reference_attention(q, k, v, mask, causal, 0.5)[0], "float64", "composite")


def test_fused_attention_gradient_is_finite_with_empty_rows():
    q, k, v = (tb.asarray(a, "float64").requires_grad_(True) for a in attention_inputs("float64", (2,), 4, 6))
    mask = np.ones((4, 6), dtype=bool)
    mask[1] = False
    out, _ = tb._attention(q, k, v, tb.asarray(mask, "bool"), True, 0.5, False)
    out.sum().backward()
    for tensor in (q, k, v):
        assert torch.isfinite(tensor.grad).all()
    assert torch.all(q.grad[:, 1] == 0)  # the empty row's output is constant zero


# ---------------------------------------------------------------------------- model forward

SMALL = dict(vocab_size=37, context_length=16, d_model=16, n_heads=2, n_layers=2, d_ff=24)


def torch_params(config: ModelConfig, dtype: str, seed: int = 0) -> tuple[dict, dict]:
    """(NumPy float64 params holding the dtype's values, the same params as torch tensors of ``dtype``)."""
    params = init_parameters(config, seed, "float64")
    g = rng(seed + 100)
    for name in params:  # init sets biases to 0 and norm weights to 1: perturb them so they are tested too
        if name.endswith("bias") or ".ln" in name or name.startswith("ln_f"):
            params[name] = params[name] + 0.1 * g.standard_normal(params[name].shape)
    rounded = {name: as_dtype(value, dtype) for name, value in params.items()}
    return rounded, {name: tb.asarray(value, dtype) for name, value in rounded.items()}


MODEL_VARIANTS = list(
    itertools.product(("learned", "sinusoidal", "rotary"), ("layer", "rms"), ("gelu_tanh", "gelu", "relu", "swiglu"))
)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("positional,norm,activation", MODEL_VARIANTS)
def test_model_forward_matches_reference(dtype, positional, norm, activation):
    ids = rng(9).integers(0, SMALL["vocab_size"], (2, 6))
    for tie_embeddings, bias in itertools.product((True, False), (True, False)):
        config = ModelConfig(
            **SMALL, positional=positional, norm=norm, activation=activation, tie_embeddings=tie_embeddings, bias=bias
        )
        reference, params = torch_params(config, dtype)
        logits, cache = tb.model_forward(params, config, tb.asarray(ids, "int64"))
        expected, expected_cache = nb.model_forward(reference, config, ids)
        assert_close(logits, expected, dtype, "composite")
        assert cache.length == expected_cache.length == 6
        assert_close(cache.keys[1], expected_cache.keys[1], dtype, "composite")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("positional", ("learned", "sinusoidal", "rotary"))
def test_cached_decoding_equals_full_forward(dtype, positional):
    config = ModelConfig(**SMALL, positional=positional, activation="swiglu" if positional == "rotary" else "gelu_tanh")
    _, params = torch_params(config, dtype)
    ids = rng(10).integers(0, config.vocab_size, (2, 9))
    full, _ = tb.model_forward(params, config, tb.asarray(ids, "int64"))
    # a prompt of 4, then a chunk of 2, then one token at a time: every causal alignment L < S
    pieces, cache, start = [], None, 0
    for length in (4, 2, 1, 1, 1):
        logits, cache = tb.model_forward(params, config, tb.asarray(ids[:, start : start + length], "int64"), cache)
        pieces.append(tb.to_numpy(logits).astype(np.float64))
        start += length
    assert cache.length == 9
    assert_close(full, np.concatenate(pieces, axis=1), dtype, "composite")


def test_model_forward_inference_mode_only_without_gradients():
    config = ModelConfig(**SMALL)
    _, params = torch_params(config, "float32")
    ids = tb.asarray([[1, 2, 3]], "int64")
    logits, cache = tb.model_forward(params, config, ids)
    assert logits.is_inference() and not logits.requires_grad
    trainable = {name: p.clone().requires_grad_(True) for name, p in params.items()}
    logits, _ = tb.model_forward(trainable, config, ids)
    assert not logits.is_inference() and logits.requires_grad
    with pytest.raises(OutOfRangeError, match="context length"):  # the base class's checks still run
        tb.model_forward(params, config, tb.asarray(np.zeros((1, 17)), "int64"))


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_runs_and_is_close(dtype):
    config = ModelConfig(**SMALL, positional="rotary", norm="rms", activation="swiglu")
    reference, params = torch_params(config, dtype)
    ids = rng(11).integers(0, config.vocab_size, (2, 5))
    logits, cache = tb.model_forward(params, config, tb.asarray(ids, "int64"))
    assert tb.dtype_of(logits) == dtype and tb.dtype_of(cache.keys[0]) == dtype
    assert_close(logits, nb.model_forward(reference, config, ids)[0], dtype, "composite")
    step, _ = tb.model_forward(params, config, tb.asarray(ids[:, :1], "int64"), None)
    assert_close(step, tb.to_numpy(logits[:, :1]).astype(np.float64), dtype, "composite")
    x = as_dtype(rng(12).standard_normal((3, 16)), dtype)
    assert_close(tb.softmax(tb.asarray(x, dtype)), nb.softmax(x), dtype)
    assert_close(tb.gelu(tb.asarray(x, dtype), True), nb.gelu(x, True), dtype)
    assert_close(
        tb.layer_norm(tb.asarray(x, dtype), tb.asarray(np.ones(16), dtype), None), nb.layer_norm(x, np.ones(16), None), dtype
    )
    assert isinstance(tb.sample(logits[0, -1], 0.5, 0.7, 5, 0.9), int)
    assert np.isfinite(tb.to_numpy(tb.cross_entropy(logits, tb.asarray(ids, "int64"))))


# ---------------------------------------------------------------------------- sampling


def test_sample_matches_reference():
    g = rng(13)
    options = [
        (1.0, None, None),
        (0.7, None, None),
        (1.3, 5, None),
        (1.0, None, 0.9),
        (0.8, 10, 0.5),
        (2.0, 1, None),
        (1.0, 3, 1.0),
        (1.0, None, 0.05),
    ]
    compared = 0
    for trial in range(40):
        V = int(g.integers(2, 40))
        logits = g.standard_normal(V) * g.choice([0.5, 2.0, 6.0])
        if trial % 3 == 0:  # ties: the top-k and top-p orders must break them toward the lower index
            logits = np.round(logits)
        native = tb.asarray(logits, "float64")
        for temperature, top_k, top_p in options:
            for u in g.random(5):
                expected = nb.sample(logits, float(u), temperature, top_k, top_p)
                assert tb.sample(native, float(u), temperature, top_k, top_p) == expected, (logits, u, temperature, top_k, top_p)
                compared += 1
        tied_max = np.where(logits == logits.max())[0][0]
        assert tb.sample(native, 0.99, 0.0) == nb.sample(logits, 0.99, 0.0) == tied_max
    assert compared == 40 * len(options) * 5


@pytest.mark.parametrize("vocabulary", [300, 3000])
def test_sample_matches_reference_on_large_vocabularies(vocabulary):
    """Top-k and top-p rank only the most probable tokens (not a full sort): flat and tied distributions make
    the top-p prefix longer than the first guess, so the ranking has to grow."""
    g = rng(17)
    for scale, rounded in ((0.3, False), (3.0, False), (1.0, True), (0.0, False)):
        logits = g.standard_normal(vocabulary) * scale
        if rounded:
            logits = np.round(logits * 2) / 2  # many ties, also at the top-k boundary
        native = tb.asarray(logits, "float64")
        for temperature, top_k, top_p in (
            (1.0, None, 0.5),
            (1.0, None, 0.97),
            (0.5, None, 1.0),
            (1.0, 100, None),
            (2.0, 257, 0.9),
            (1.0, 1, 0.3),
        ):
            for u in g.random(4):
                expected = nb.sample(logits, float(u), temperature, top_k, top_p)
                assert tb.sample(native, float(u), temperature, top_k, top_p) == expected, (
                    scale,
                    rounded,
                    u,
                    temperature,
                    top_k,
                    top_p,
                )


def test_sample_edges():
    ties = tb.asarray([1.0, 3.0, 3.0, 3.0, -2.0], "float32")
    assert tb.sample(ties, 0.999, 1.0, top_k=2) == 2  # top-2 of three tied maxima is indices 1 and 2
    assert tb.sample(ties, 0.0, 1.0, top_k=2) == 1
    assert tb.sample(tb.asarray([0.0, 0.0, 50.0], "float32"), 0.999999, 1e-6) == 2  # a tiny temperature must not overflow
    with pytest.raises(ConfigError, match="u ="):
        tb.sample(ties, 1.0)


# ---------------------------------------------------------------------------- autodiff


def finite_difference(loss, params: dict, name: str, index: tuple[int, ...], step: float) -> float:
    """d loss / d params[name][index] by the five-point central difference (error O(step⁴))."""

    def at(offset: float) -> float:
        shifted = dict(params)
        shifted[name] = params[name].clone()
        shifted[name][index] += offset
        return float(loss(shifted))

    return (-at(2 * step) + 8 * at(step) - 8 * at(-step) + at(-2 * step)) / (12 * step)


@pytest.mark.parametrize("positional,norm,activation", [("learned", "layer", "gelu_tanh"), ("rotary", "rms", "swiglu")])
def test_value_and_grad_matches_central_differences(positional, norm, activation):
    config = ModelConfig(
        vocab_size=11,
        context_length=8,
        d_model=8,
        n_heads=2,
        n_layers=1,
        d_ff=12,
        positional=positional,
        norm=norm,
        activation=activation,
        tie_embeddings=positional == "learned",
    )
    _, params = torch_params(config, "float64", seed=3)
    for name in params:  # weights of order one, so that every parameter moves the loss measurably
        params[name] = params[name] * (10.0 if params[name].ndim == 2 else 1.0)
    ids = tb.asarray(rng(14).integers(0, 11, (2, 6)), "int64")
    targets = tb.asarray(np.where(np.arange(6) % 4 == 3, -100, rng(15).integers(0, 11, (2, 6))), "int64")

    def loss(p):
        logits, _ = tb.model_forward(p, config, ids)
        return tb.cross_entropy(logits, targets)

    value, grads = tb.value_and_grad(loss)(params)
    assert not value.requires_grad and value.shape == ()
    assert abs(float(value) - float(loss(params))) <= tolerance("float64", "composite").atol
    assert set(grads) == set(params)
    assert all(p.grad is None and not p.requires_grad for p in params.values())  # the caller's tensors are untouched
    g = rng(16)
    tol = tolerance("float64", "composite")
    for name, param in params.items():
        assert grads[name].shape == param.shape and tb.dtype_of(grads[name]) == "float64"
        for _ in range(2):
            index = tuple(int(g.integers(0, n)) for n in param.shape)
            numeric = finite_difference(loss, params, name, index, step=1e-3)
            analytic = float(grads[name][index])
            assert abs(analytic - numeric) <= tol.atol + tol.rtol * abs(numeric), (name, index, analytic, numeric)


def test_value_and_grad_edge_cases():
    params = {"a": tb.asarray([1.0, 2.0], "float64"), "unused": tb.asarray([3.0], "float64")}
    value, grads = tb.value_and_grad(lambda p, scale: (p["a"] ** 2).sum() * scale)(params, 3.0)
    assert float(value) == 15.0
    assert tb.to_numpy(grads["a"]).tolist() == [6.0, 12.0] and tb.to_numpy(grads["unused"]).tolist() == [0.0]
    logits = tb.asarray(np.zeros((2, 4)), "float64")
    all_ignored = tb.asarray([-100, -100], "int64")
    value, grads = tb.value_and_grad(lambda p: tb.cross_entropy(logits * p["a"][0], all_ignored))(params)
    assert float(value) == 0.0 and tb.to_numpy(grads["a"]).tolist() == [0.0, 0.0]  # all ignored: zero, not NaN
    with pytest.raises(SpecError, match="expected a scalar"):
        tb.value_and_grad(lambda p: p["a"] * 2)(params)
    with pytest.raises(ConfigError, match="expected a dict"):
        tb.value_and_grad(lambda p: p)([1.0])
