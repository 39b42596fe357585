r"""Evaluation: perplexity on held-out text, question/answer accuracy, and the n-gram baselines on the same text.

Perplexity, comparably
----------------------
The transformer predicts byte-level BPE tokens; the n-gram models predict
lower-cased words (:func:`transformer_spec.baselines.ngram.split_words`). Per-token
perplexities of the two are not comparable, so both are also reported **per
word**: the total negative log-likelihood of a held-out document (every BPE
token, and the end-of-text after it) divided by the number of n-gram
predictions on it (its words and its end, ``</s>``):

$$\text{PPL}_\text{word} = \exp\Bigl(\frac{\sum_\text{docs} -\log p(\text{doc})}{\sum_\text{docs} (|\text{words}| + 1)}\Bigr)$$

Both models pay for the whole document; the n-gram's task is easier, if
anything (no case, no spaces, unseen words collapse into ``<unk>``). Each
document is scored after an end-of-text token (how documents start in
training); one longer than the context is scored in windows that overlap by
half a context, each token once, with as much context as fits.

Question answering
------------------
Greedy decoding (temperature 0) through :func:`transformer_spec.generate.generate`, up to
``max_new_tokens`` or the end-of-text token. Two measures per example:

``exact``      the response equals the reference response (whitespace-trimmed);
``capital``    the response names the country's capital
               (:func:`transformer_spec.data.finetune.answer_names_capital`: its words, in order, as whole words).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transformer_spec.data import COUNTRIES, Example
from transformer_spec.data.finetune import answer_names_capital

from .data import IGNORE_INDEX, end_of_text_id, format_prompt

# ---------------------------------------------------------------------- perplexity


def _windows(sequence: Sequence[int], context: int) -> list[tuple[list[int], list[int]]]:
    """(inputs, targets) windows that score positions 1..n-1 of ``sequence`` once each (targets -100 elsewhere)."""
    n = len(sequence)
    if n <= context + 1:
        return [(list(sequence[:-1]), list(sequence[1:]))]
    stride = max(1, context // 2)
    windows, scored = [], 0  # scored: the last position already predicted
    start = 0
    while scored < n - 1:
        inputs = list(sequence[start : start + context])
        targets = list(sequence[start + 1 : start + 1 + context])
        inputs = inputs[: len(targets)]
        masked = [t if start + 1 + j > scored else IGNORE_INDEX for j, t in enumerate(targets)]
        windows.append((inputs, masked))
        scored = start + len(targets)
        start += stride
    return windows


def sequence_nll(
    backend, config, params, sequences: Sequence[Sequence[int]], batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Total negative log-likelihood (nats) and number of predicted tokens, per sequence (positions 1..n-1)."""
    items = []  # (sequence index, inputs, targets)
    for index, sequence in enumerate(sequences):
        for inputs, targets in _windows(sequence, config.context_length):
            items.append((index, inputs, targets))
    totals = np.zeros(len(sequences))
    counts = np.zeros(len(sequences), dtype=np.int64)
    items.sort(key=lambda item: len(item[1]))  # similar lengths together: less padding
    for b in range(0, len(items), batch_size):
        chunk = items[b : b + batch_size]
        length = max(len(item[1]) for item in chunk)
        ids = np.zeros((len(chunk), length), dtype=np.int64)  # (B, L); padding id 0 is never scored
        targets = np.full((len(chunk), length), IGNORE_INDEX, dtype=np.int64)  # (B, L)
        for row, (_, inputs, target) in enumerate(chunk):
            ids[row, : len(inputs)] = inputs
            targets[row, : len(target)] = target
        logits, _ = backend.model_forward(params, config, backend.asarray(ids, "int64"))  # (B, L, V)
        log_probs = backend.to_numpy(backend.log_softmax(logits, -1)).astype(np.float64)  # (B, L, V)
        keep = targets != IGNORE_INDEX
        picked = np.take_along_axis(log_probs, np.where(keep, targets, 0)[..., None], axis=-1)[..., 0]  # (B, L)
        for row, (index, _, _) in enumerate(chunk):
            totals[index] -= picked[row][keep[row]].sum()
            counts[index] += int(keep[row].sum())
    return totals, counts


@dataclass(frozen=True)
class Perplexity:
    documents: int
    tokens: int  # BPE targets scored (each document's tokens and its closing end-of-text)
    words: int  # n-gram predictions on the same documents (words + one end per document)
    nll: float  # total negative log-likelihood, nats
    token_perplexity: float  # exp(nll / tokens)
    word_perplexity: float  # exp(nll / words): comparable with the n-gram baselines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transformer_perplexity(backend, config, params, tokenizer, documents: Sequence[str], batch_size: int = 16) -> Perplexity:
    """Per-token and per-word perplexity of the model on ``documents`` (see the module docstring)."""
    from transformer_spec.baselines.ngram import split_words

    eos = end_of_text_id(tokenizer)
    sequences = [[eos] + tokenizer.encode(doc) + [eos] for doc in documents]
    native = {n: backend.asarray(np.asarray(p, np.float32), "float32") for n, p in params.items()}
    totals, counts = sequence_nll(backend, config, native, sequences, batch_size)
    nll, tokens = float(totals.sum()), int(counts.sum())
    words = sum(len(split_words(doc)) + 1 for doc in documents)
    return Perplexity(len(documents), tokens, words, nll, math.exp(nll / tokens), math.exp(nll / words))


def ngram_baselines(
    train_documents: Sequence[str], held_out: Sequence[str], orders: Sequence[int] = (1, 2, 3, 4, 5)
) -> list[dict[str, Any]]:
    """Witten–Bell n-gram models trained on ``train_documents``, evaluated (per word) on ``held_out``."""
    from transformer_spec.baselines.ngram import NGramModel

    rows = []
    for n in orders:
        result = NGramModel(n).train(train_documents).evaluate(held_out)
        rows.append(
            {
                "n": n,
                "word_perplexity": result.perplexity,
                "next_word_accuracy": result.next_word_accuracy,
                "unseen_context_rate": result.unseen_context_rate,
                "predictions": result.n_predictions,
            }
        )
    return rows


# ---------------------------------------------------------------------- question answering


def country_in(prompt: str):
    """The country a question is about: the longest country name (as written mid-sentence) in ``prompt``, or None."""
    found = [c for c in COUNTRIES if re.search(r"\b" + re.escape(c.name) + r"\b", prompt)]
    return max(found, key=lambda c: len(c.name), default=None)  # "Equatorial Guinea" over "Guinea"


@dataclass(frozen=True)
class Answer:
    prompt: str
    expected: str
    response: str
    kind: str
    exact: bool
    names_capital: bool | None  # None when the prompt names no known country


def answer(backend, model, prompts: Sequence[str], *, template: bool = True, max_new_tokens: int = 32) -> list[str]:
    """Greedy responses to ``prompts`` (wrapped in the fine-tuning template when ``template``)."""
    from transformer_spec.generate import generate, native_params

    config, params, tokenizer = model
    native = native_params(backend, params, "float32")  # weights stored in float16 are computed in float32
    responses = []
    for prompt in prompts:
        text = format_prompt(prompt) if template else prompt
        result = generate(
            backend, (config, native, tokenizer), text, max_new_tokens=max_new_tokens, temperature=0.0, overflow="slide"
        )
        responses.append(result.text.strip())
    return responses


def answer_examples(
    backend, model, examples: Sequence[Example], *, template: bool = True, max_new_tokens: int = 32
) -> list[Answer]:
    responses = answer(backend, model, [e.prompt for e in examples], template=template, max_new_tokens=max_new_tokens)
    answers = []
    for example, response in zip(examples, responses):
        country = country_in(example.prompt)
        names = None if country is None else answer_names_capital(response, country)
        answers.append(
            Answer(example.prompt, example.response, response, example.kind, response.strip() == example.response.strip(), names)
        )
    return answers


def qa_summary(answers: Sequence[Answer]) -> dict[str, Any]:
    """Accuracy overall and per kind: exact match and names-the-capital (over examples about a known country)."""

    def rates(group: Sequence[Answer]) -> dict[str, Any]:
        judged = [a for a in group if a.names_capital is not None]
        return {
            "examples": len(group),
            "exact_match": sum(a.exact for a in group) / len(group) if group else float("nan"),
            "names_capital": sum(bool(a.names_capital) for a in judged) / len(judged) if judged else float("nan"),
        }

    summary = {"all": rates(answers)}
    for kind in sorted({a.kind for a in answers}):
        summary[kind] = rates([a for a in answers if a.kind == kind])
    return summary
