"""Cross-backend agreement: NumPy, PyTorch and JAX give the same intermediates; a broken backend is named where its bug starts."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from transformer_spec.conformance import teeth
from transformer_spec.conformance.crosscheck import compare_backends, random_model, trace_forward
from transformer_spec.spec.config import ModelConfig

from .conftest import BACKENDS, run_cli

# Together they cover every positional scheme, norm and activation, tied and untied heads, with and without biases.
CHOICES = [
    ("learned", "layer", "gelu_tanh", True, True),
    ("learned", "rms", "swiglu", False, False),
    ("sinusoidal", "layer", "relu", False, True),
    ("sinusoidal", "rms", "gelu", True, False),
    ("rotary", "layer", "swiglu", True, False),
    ("rotary", "rms", "gelu_tanh", False, True),
]


def small_config(positional: str, norm: str, activation: str, tie: bool, bias: bool) -> ModelConfig:
    return ModelConfig(
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


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs torch or jax besides numpy")
@pytest.mark.parametrize("choice", CHOICES, ids=["-".join(map(str, c)) for c in CHOICES])
def test_backends_agree_on_every_intermediate(choice):
    config, params, ids = random_model(small_config(*choice), seed=sum(map(len, map(str, choice))), batch=2, length=8)
    agreement = compare_backends(BACKENDS, config, params, ids)
    assert agreement.agree, agreement.table()
    expected_names = {"embedding", "input", "blocks.0.attn", "blocks.1.mlp", "blocks.1.block", "ln_f", "logits", "model_forward"}
    assert expected_names <= set(agreement.names)
    assert ("positions" in agreement.names) == (config.positional != "rotary")


def test_trace_is_in_computation_order_and_ends_in_the_logits():
    config, params, ids = random_model(small_config("learned", "layer", "gelu_tanh", True, True), seed=0, batch=1, length=5)
    trace = trace_forward("numpy", config, params, ids)
    names = [name for name, _ in trace]
    assert names[:3] == ["embedding", "positions", "input"]
    assert names.index("blocks.0.attn") < names.index("blocks.0.mlp") < names.index("blocks.1.ln1") < names.index("ln_f")
    values = dict(trace)
    assert values["logits"].shape == (1, 5, config.vocab_size)
    np.testing.assert_allclose(values["blocks.0.out"], values["blocks.0.block"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values["logits"], values["model_forward"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "mutant, where",
    [
        (teeth.BlockPostNorm, "blocks.0.block"),  # the steps are right; the block composite adds and norms in the wrong order
        (teeth.HeadsSplitWithoutTranspose, "blocks.0.attn"),
        (teeth.FeedForwardMixesPositions, "blocks.0.mlp"),
        (teeth.SinusoidalIgnoresPosition, "positions"),
        (teeth.UntiedHeadIgnored, "model_forward"),
    ],
)
def test_a_broken_backend_is_named_at_the_intermediate_where_it_starts(mutant, where):
    choice = ("sinusoidal", "layer", "gelu", False, True)
    config, params, ids = random_model(small_config(*choice), seed=3, batch=2, length=8)
    agreement = compare_backends(["numpy", mutant], config, params, ids)
    assert not agreement.agree
    first = agreement.first_difference
    assert first.name == where, agreement.table()
    assert first.backend == mutant.__name__ and first.reference == "numpy"
    assert first.max_abs_error > 0 and len(first.index) >= 2
    assert where in agreement.describe() and "max abs error" in agreement.describe()


def test_a_mutant_that_only_breaks_the_cache_agrees_without_one():
    config, params, ids = random_model(small_config("rotary", "rms", "relu", True, False), seed=1, batch=1, length=6)
    assert compare_backends(["numpy", teeth.KVCachePositionsRestartAtZero], config, params, ids).agree


def tspec(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args)


def test_cli_agrees_then_names_a_mutant():
    done = tspec(
        "crosscheck", "--backends", ",".join(BACKENDS[:2]) if len(BACKENDS) > 1 else "numpy,numpy", "--length", "6", "--seed", "2"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AGREE" in done.stdout and "blocks.1.block" in done.stdout
    done = tspec("crosscheck", "--backends", "numpy,transformer_spec.conformance.teeth:BlockPostNorm", "--length", "6")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIFFER: first difference at blocks.0.block" in done.stdout
    done = tspec("crosscheck", "--backends", "numpy")
    assert done.returncode == 2 and "at least two" in done.stderr
