"""Evaluation: windows score every token once, perplexities are computed (not typed), QA summaries count right,
and the shipped default model matches its measured results."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.backends import load_backend
from transformer_spec.data import COUNTRY_BY_NAME, Example, capital_qa_examples
from transformer_spec.spec.model import init_parameters
from transformer_spec.spec.tolerances import tolerance
from transformer_spec.train.config import SMOKE
from transformer_spec.train.data import IGNORE_INDEX
from transformer_spec.train.evaluate import (
    Answer,
    _windows,
    answer_examples,
    country_in,
    ngram_baselines,
    qa_summary,
    sequence_nll,
    transformer_perplexity,
)
from transformer_spec.train.pipeline import train_tokenizer

from .conftest import ROOT

RESULTS = ROOT / "docs" / "results" / "default_model.json"
DOCUMENTS = [
    "Once upon a time, there was a cat named Mia. The end.",
    "Abuja is the capital of Nigeria.",
    "What is the capital of Kenya? she asked. " * 12,
]


@pytest.fixture(scope="module")
def smoke_model():
    from transformer_spec.data import generate_corpus

    tokenizer = train_tokenizer(generate_corpus(0, 60), 300)
    config = replace(SMOKE.model, vocab_size=tokenizer.vocab_size)
    return config, init_parameters(config, 0), tokenizer


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 200), context=st.integers(1, 40))
def test_windows_score_each_position_once_with_its_own_context(n, context):
    sequence = list(range(1000, 1000 + n))  # distinct ids: a token's value is its position + 1000
    scored = []
    for inputs, targets in _windows(sequence, context):
        assert 1 <= len(inputs) == len(targets) <= context
        start = inputs[0] - 1000
        assert inputs == sequence[start : start + len(inputs)]  # a contiguous slice: the context is real
        for j, target in enumerate(targets):
            if target != IGNORE_INDEX:
                assert target == sequence[start + j + 1]
                scored.append(start + j + 1)
    assert sorted(scored) == list(range(1, n))  # every position after the first, exactly once


def test_sequence_nll_equals_the_direct_sum(smoke_model):
    config, params, tokenizer = smoke_model
    backend = load_backend("numpy")
    native = {k: backend.asarray(v, "float32") for k, v in params.items()}
    sequences = [[tokenizer.eos_id] + tokenizer.encode(d) + [tokenizer.eos_id] for d in DOCUMENTS[:2]]
    totals, counts = sequence_nll(backend, config, native, sequences, batch_size=2)
    for sequence, total, count in zip(sequences, totals, counts):
        logits, _ = backend.model_forward(native, config, backend.asarray(np.array([sequence[:-1]]), "int64"))
        log_probs = backend.to_numpy(backend.log_softmax(logits, -1))[0].astype(np.float64)
        direct = -sum(log_probs[i, t] for i, t in enumerate(sequence[1:]))
        assert count == len(sequence) - 1
        tol = tolerance("float32", "composite")
        assert abs(total - direct) <= tol.atol * count + tol.rtol * abs(direct)


def test_perplexities_are_computed_per_token_and_per_word(smoke_model):
    from transformer_spec.baselines.ngram import split_words

    config, params, tokenizer = smoke_model
    result = transformer_perplexity(load_backend("numpy"), config, params, tokenizer, DOCUMENTS)
    assert result.documents == 3
    assert result.tokens == sum(len(tokenizer.encode(d)) + 1 for d in DOCUMENTS)  # every token and each end
    assert result.words == sum(len(split_words(d)) + 1 for d in DOCUMENTS)
    assert result.token_perplexity == pytest.approx(math.exp(result.nll / result.tokens))
    assert result.word_perplexity == pytest.approx(math.exp(result.nll / result.words))
    # An untrained model is close to uniform over its vocabulary: per-token perplexity near V.
    assert 0.5 * config.vocab_size < result.token_perplexity < 2 * config.vocab_size
    rows = ngram_baselines(DOCUMENTS, DOCUMENTS[:2], (1, 2))
    assert [r["n"] for r in rows] == [1, 2]
    assert rows[1]["word_perplexity"] < rows[0]["word_perplexity"]  # seen text: the bigram knows it better


def test_country_of_a_question():
    assert country_in("What is the capital of Nigeria?").name == "Nigeria"
    assert country_in("What is the capital of Niger?").name == "Niger"
    assert country_in("What is the capital of Equatorial Guinea?").name == "Equatorial Guinea"
    assert country_in("What is the capital of the Dominican Republic?").name == "Dominican Republic"
    assert country_in("Hello!") is None


def test_qa_summary_counts():
    def answer(kind, exact, names):
        return Answer("q", "a", "r", kind, exact, names)

    summary = qa_summary(
        [answer("qa", True, True), answer("qa", False, True), answer("qa_short", False, False), answer("chat", False, None)]
    )
    assert summary["all"]["examples"] == 4
    assert summary["all"]["exact_match"] == pytest.approx(0.25)
    assert summary["all"]["names_capital"] == pytest.approx(2 / 3)  # the chat answer names no country: not judged
    assert summary["qa"]["names_capital"] == 1.0 and summary["qa_short"]["names_capital"] == 0.0


def test_answers_are_generated_and_judged(smoke_model):
    examples = capital_qa_examples([COUNTRY_BY_NAME["Kenya"]])[:1] + [Example("Hi!", "Hello!", "chat")]
    answers = answer_examples(load_backend("numpy"), smoke_model, examples, max_new_tokens=4)
    assert [a.kind for a in answers] == ["qa", "chat"]
    assert answers[0].names_capital in (True, False) and answers[1].names_capital is None
    assert all(isinstance(a.response, str) for a in answers)


# ---------------------------------------------------------------------- the shipped model


def test_shipped_model_matches_its_measured_results():
    """The results file was written by the build of the model that ships; greedy answers reproduce its samples."""
    from transformer_spec.checkpoint import load_default_checkpoint
    from transformer_spec.train.evaluate import answer

    if not RESULTS.exists():
        pytest.skip("docs/results/default_model.json not built yet (python scripts/build_default_model.py)")
    results = json.loads(RESULTS.read_text())
    checkpoint = load_default_checkpoint()
    assert checkpoint.metadata.get("stage") == "finetuned"
    assert checkpoint.parameter_count == results["model"]["parameters"]
    assert results["criteria"]["finetuned_at_least_80_percent"]
    assert results["criteria"]["transformer_beats_best_ngram"]
    samples = results["samples"]["fine-tuned, prompt format"][:3]
    model = (checkpoint.config, checkpoint.params, checkpoint.tokenizer)
    responses = answer(load_backend("numpy"), model, [s["prompt"] for s in samples])
    assert responses == [s["response"] for s in samples]
