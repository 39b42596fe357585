"""The two backends that differentiate, PyTorch and JAX, give the same gradients of the model loss.

The conformance suite checks one backend at a time against float64 finite
differences (``gradients.*``); this test puts the two autodiff backends side by
side in float32, on the same NumPy weights: every parameter's gradient agrees
within ``tolerance("float32", "composite")``, relative to that parameter's
largest gradient, and so does the loss.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from transformer_spec.conformance import strategies as cs
from transformer_spec.conformance.case import compare
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.model import init_parameters
from transformer_spec.spec.tolerances import tolerance

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("jax") is None,
    reason="needs both torch and jax",
)

# Together they cover every positional scheme, norm and activation, tied and untied heads, with and without biases,
# on GPT-2's initial weights (where training starts) and on the suite's scaled weights (where every weight matters).
CHOICES = [
    (("learned", "layer", "gelu_tanh", True, True), "gpt2_init"),
    (("rotary", "rms", "swiglu", False, False), "scaled"),
    (("sinusoidal", "layer", "relu", False, True), "scaled"),
    (("rotary", "rms", "gelu", True, False), "gpt2_init"),
]


def loss_and_gradients(name: str, config: ModelConfig, params: dict, ids: np.ndarray, targets: np.ndarray):
    from transformer_spec.backends import load_backend

    be = load_backend(name)
    native = {k: be.asarray(v, "float32") for k, v in params.items()}
    native_ids, native_targets = be.asarray(ids, "int64"), be.asarray(targets, "int64")
    value, grads = be.value_and_grad(lambda p: be.cross_entropy(be.model_forward(p, config, native_ids)[0], native_targets))(
        native
    )
    return float(be.to_numpy(value)), {k: np.asarray(be.to_numpy(g), dtype=np.float64) for k, g in grads.items()}


@pytest.mark.parametrize("choice, weights", CHOICES, ids=["-".join(map(str, c)) + "-" + w for c, w in CHOICES])
def test_torch_and_jax_gradients_of_the_model_loss_agree(choice, weights):
    positional, norm, activation, tie, bias = choice
    config = ModelConfig(
        vocab_size=64,
        context_length=16,
        d_model=32,
        n_heads=4,
        n_layers=2,
        d_ff=64,
        positional=positional,
        norm=norm,
        activation=activation,
        tie_embeddings=tie,
        bias=bias,
    )
    params = init_parameters(config, 0, dtype="float64") if weights == "gpt2_init" else cs.model_parameters(config, 0)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, config.vocab_size, size=(2, 8))
    targets = np.where(rng.random((2, 8)) < 0.2, -100, rng.integers(0, config.vocab_size, size=(2, 8)))  # some ignored

    torch_loss, torch_grads = loss_and_gradients("torch", config, params, ids, targets)
    jax_loss, jax_grads = loss_and_gradients("jax", config, params, ids, targets)

    tol = tolerance("float32", "composite")
    assert compare(np.array(jax_loss), np.array(torch_loss), tol.rtol, tol.atol) is None, (torch_loss, jax_loss)
    assert set(torch_grads) == set(jax_grads) == set(params)
    for name in params:
        expected = torch_grads[name]
        scale = np.full(expected.shape, np.abs(expected).max())  # relative to this parameter's largest gradient
        mismatch = compare(jax_grads[name], expected, tol.rtol, tol.atol, scale)
        assert mismatch is None, f"d loss / d {name}: jax vs torch: {mismatch.describe()}"
        assert np.abs(expected).max() > 0, f"d loss / d {name} is zero on both backends: the test would prove nothing"
