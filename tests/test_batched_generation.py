"""Batched generation: every prompt of a batch gets exactly the tokens it gets alone, on every backend.

Left padding + padding mask + per-row positions (backends/cache.py PaddedKVCache);
each row draws from its own PCG64(seed) and stops at its own end-of-text.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from transformer_spec import load_model
from transformer_spec.backends import load_backend
from transformer_spec.generate import GenerationError, generate_batch_tokens, generate_tokens, native_params
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.model import init_parameters

from .conftest import BACKENDS, run_cli

PROMPTS = [
    "What is the capital of Nigeria?",
    "Once upon a time",
    "The cat",
    "What is the capital of France? Paris is the capital of France. What is the capital of Japan?",
]
# Tiny random models of the three position schemes; the rotary one is Llama's block with grouped-query attention.
CONFIGS = {
    "llama": ModelConfig(
        vocab_size=61, context_length=32, d_model=16, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=24,
        positional="rotary", norm="rms", activation="swiglu", tie_embeddings=False, bias=False, rope_base=100.0,
    ),
    "gpt2": ModelConfig(vocab_size=61, context_length=32, d_model=16, n_heads=2, n_layers=2, d_ff=32),
    "sinusoidal": ModelConfig(vocab_size=61, context_length=32, d_model=16, n_heads=2, n_layers=1, d_ff=32, positional="sinusoidal"),
}  # fmt: skip
ID_PROMPTS = [[5, 9, 2, 33, 7, 1, 40], [3], [8, 8, 8, 12], [60, 0, 17, 4, 4, 22, 9, 11, 30, 2]]


@pytest.fixture(scope="module")
def default_models():
    return {name: load_model(backend=name) for name in BACKENDS}


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_batch_equals_one_by_one_on_the_default_model(backend_name, default_models) -> None:
    model = default_models[backend_name]
    reasons = set()
    for temperature, top_k in ((0.0, None), (1.0, 20)):
        batch = model.generate(PROMPTS, max_new_tokens=40, temperature=temperature, top_k=top_k, seed=3)
        for prompt, result in zip(PROMPTS, batch):
            alone = model.generate(prompt, max_new_tokens=40, temperature=temperature, top_k=top_k, seed=3)
            assert result.token_ids == alone.token_ids, (backend_name, temperature, prompt)
            assert (result.text, result.stop_reason) == (alone.text, alone.stop_reason)
            reasons.add(result.stop_reason)
    assert reasons == {"eos", "max_new_tokens"}  # rows stopped at their own end-of-text while others went on


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_batch_equals_one_by_one_for_every_position_scheme(kind, backend_name) -> None:
    config = CONFIGS[kind]
    backend = load_backend(backend_name)
    params = native_params(backend, {k: v * 5 for k, v in init_parameters(config, seed=1).items()}, "float32")
    options = {"max_new_tokens": 12, "temperature": 0.9}
    alone = [generate_tokens(backend, config, params, ids, seed=10 + i, **options) for i, ids in enumerate(ID_PROMPTS)]
    eos = alone[0].token_ids[4]  # row 0 stops at its fifth token; the others stop where they would alone
    alone = [
        generate_tokens(backend, config, params, ids, seed=10 + i, eos_id=eos, **options) for i, ids in enumerate(ID_PROMPTS)
    ]
    batch = generate_batch_tokens(backend, config, params, ID_PROMPTS, seeds=[10, 11, 12, 13], eos_id=eos, **options)
    assert [r.token_ids for r in batch] == [r.token_ids for r in alone]
    assert [r.stop_reason for r in batch] == [r.stop_reason for r in alone]
    assert batch[0].stop_reason == "eos" and len(batch[0].token_ids) <= 5


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_context_full_rows_stop_like_alone(backend_name) -> None:
    """The long row fills the context after 2 tokens; the short one is packed again and goes on alone."""
    config, backend = CONFIGS["gpt2"], load_backend(backend_name)
    params = native_params(backend, init_parameters(config, seed=2), "float32")
    prompts = [[1] * 30, [2] * 3]  # the first has 2 positions left in a context of 32
    batch = generate_batch_tokens(backend, config, params, prompts, seeds=[0, 0], max_new_tokens=10, temperature=0.0)
    alone = [generate_tokens(backend, config, params, ids, seed=0, max_new_tokens=10, temperature=0.0) for ids in prompts]
    assert [(r.token_ids, r.stop_reason) for r in batch] == [(r.token_ids, r.stop_reason) for r in alone]
    assert batch[0].stop_reason == "context_full" and batch[1].stop_reason == "max_new_tokens"


def test_bad_batches_are_errors(default_models) -> None:
    model = default_models["numpy"]
    with pytest.raises(GenerationError, match="2 seeds for 3 prompts"):
        model.generate(["a b", "c", "d"], seed=[1, 2])
    with pytest.raises(GenerationError, match="is empty"):
        model.generate(["Once", "  "])
    with pytest.raises(GenerationError, match="does not stream or slide"):
        model.generate(["Once"], overflow="slide")
    with pytest.raises(GenerationError, match="expected a non-empty list"):
        model.generate([])


def test_cli_prompts_file(tmp_path, default_models) -> None:
    lines = [json.dumps(PROMPTS[0]), json.dumps({"prompt": PROMPTS[1], "seed": 5, "id": "b"}), "", json.dumps(PROMPTS[2])]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli(
        "generate", "--prompts-file", str(path), "--batch-size", "2", "--max-new-tokens", "16", "--seed", "4",
        "--backend", "numpy", env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == PROMPTS[:3] and rows[1]["id"] == "b"
    model = default_models["numpy"]
    for row, seed in zip(rows, (4, 5, 4)):
        alone = model.generate(row["prompt"], max_new_tokens=16, seed=seed)
        assert (row["token_ids"], row["text"], row["stop_reason"]) == (list(alone.token_ids), alone.text, alone.stop_reason)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": 3}\n', encoding="utf-8")
    result = run_cli("generate", "--prompts-file", str(bad), "--backend", "numpy")
    assert result.returncode == 2 and "line 1: expected a JSON string" in result.stderr
    assert np.isscalar(len(result.stderr.splitlines())) and len(result.stderr.strip().splitlines()) == 1
