"""Tests of the pre-transformer baselines: the n-gram suggester and the perceptron."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.baselines import NGramModel, Perceptron, split_words
from transformer_spec.baselines.ngram import BOS, EOS, UNK
from transformer_spec.data import HAPPY, SAD, SentimentExample, generate_corpus, generate_sentiment_examples
from transformer_spec.data.sentiment import HAPPY_WORDS, SAD_WORDS
from transformer_spec.spec.errors import ConfigError

# Sums of a few thousand float64 probabilities; rounding error is ~1e-15 per term.
PROBABILITY_SUM_TOLERANCE = 1e-9
# prob() and perplexity() reach the same number by two code paths (dense vs per-position).
TWO_PATH_RELATIVE_TOLERANCE = 1e-9

TRAINING_DOCUMENTS = 3000
HELD_OUT_DOCUMENTS = 200
ORDERS = (1, 3, 10)


@pytest.fixture(scope="module")
def training_texts() -> list[str]:
    return generate_corpus(seed=0, n_documents=TRAINING_DOCUMENTS)


@pytest.fixture(scope="module")
def held_out_texts() -> list[str]:
    return generate_corpus(seed=1, n_documents=HELD_OUT_DOCUMENTS)  # another seed: new combinations


@pytest.fixture(scope="module")
def models(training_texts) -> dict[int, NGramModel]:
    return {n: NGramModel(n).train(training_texts) for n in ORDERS}


@pytest.fixture(scope="module")
def held_out_evaluations(models, held_out_texts):
    return {n: model.evaluate(held_out_texts) for n, model in models.items()}


# ---------------------------------------------------------------------------
# Word splitting
# ---------------------------------------------------------------------------


def test_split_words_separates_punctuation_and_lower_cases():
    assert split_words("Nigeria's capital, Abuja!") == ["nigeria", "'", "s", "capital", ",", "abuja", "!"]
    assert split_words("  \n") == []


@given(st.text(max_size=60))
def test_split_words_tokens_are_lower_case_and_whitespace_free(text):
    tokens = split_words(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)
    assert tokens == split_words(" ".join(tokens))  # splitting is idempotent


# ---------------------------------------------------------------------------
# Proper distributions
# ---------------------------------------------------------------------------


def contexts(models_vocabulary: tuple[str, ...], min_size: int = 0):
    """Yields word lists of length min_size..12 from the vocabulary, <s>, and words never seen in training."""
    words = st.sampled_from(list(models_vocabulary) + [BOS, "zyzzyva", "quux"])
    return st.lists(words, min_size=min_size, max_size=max(min_size, 12))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.sampled_from(ORDERS))
def test_next_word_probabilities_sum_to_one_over_the_vocabulary(models, data, n):
    model = models[n]
    context = data.draw(contexts(model.vocabulary))
    distribution = model.next_word_distribution(context)
    assert distribution.shape == (len(model.vocabulary),)
    assert np.all(distribution > 0)  # every word, <unk> included, keeps some mass
    assert abs(distribution.sum() - 1.0) <= PROBABILITY_SUM_TOLERANCE


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.sampled_from(ORDERS))
def test_only_the_last_n_minus_1_words_matter(models, data, n):
    model = models[n]
    context = data.draw(contexts(model.vocabulary, min_size=n - 1))
    prefix = data.draw(contexts(model.vocabulary))
    last = context[-(n - 1) :] if n > 1 else []
    np.testing.assert_array_equal(model.next_word_distribution(prefix + last), model.next_word_distribution(last))


@settings(max_examples=10, deadline=None)
@given(data=st.data(), n=st.sampled_from(ORDERS))
def test_perplexity_agrees_with_word_by_word_probabilities(models, held_out_texts, data, n):
    model = models[n]
    text = data.draw(st.sampled_from(held_out_texts[:50]))
    tokens = split_words(text)
    history = [BOS] * (n - 1)
    log_probability = 0.0
    for token in tokens + [EOS]:
        log_probability += math.log(model.prob(token, history))
        history.append(token)
    expected = math.exp(-log_probability / (len(tokens) + 1))
    assert model.perplexity([text]) == pytest.approx(expected, rel=TWO_PATH_RELATIVE_TOLERANCE)


def test_unknown_words_get_the_unk_probability(models):
    model = models[3]
    assert model.prob("zyzzyva", ["the"]) == model.prob(UNK, ["the"]) > 0


# ---------------------------------------------------------------------------
# What the orders can and cannot do
# ---------------------------------------------------------------------------


def test_trigram_beats_unigram_on_held_out_perplexity(held_out_evaluations):
    assert held_out_evaluations[3].perplexity < held_out_evaluations[1].perplexity / 5
    assert held_out_evaluations[3].next_word_accuracy > held_out_evaluations[1].next_word_accuracy


def test_ten_gram_rarely_has_seen_the_full_context_of_new_text(held_out_evaluations):
    assert held_out_evaluations[1].unseen_context_rate == 0.0  # the empty context is always seen
    assert held_out_evaluations[10].unseen_context_rate > 0.3
    assert held_out_evaluations[10].unseen_context_rate > 10 * held_out_evaluations[3].unseen_context_rate


def test_every_context_of_the_training_text_was_seen(models, training_texts):
    for n, model in models.items():
        evaluation = model.evaluate(training_texts[:300])
        assert evaluation.unseen_context_rate == 0.0, n


def test_longer_contexts_fit_the_training_text_better(models, training_texts):
    perplexities = [models[n].perplexity(training_texts[:300]) for n in ORDERS]
    assert perplexities == sorted(perplexities, reverse=True)


def test_evaluation_counts_every_word_and_each_end(models, held_out_texts):
    texts = held_out_texts[:20]
    expected = sum(len(split_words(text)) + 1 for text in texts)
    assert all(models[n].evaluate(texts).n_predictions == expected for n in ORDERS)


# ---------------------------------------------------------------------------
# Suggestions
# ---------------------------------------------------------------------------


def test_suggestions_use_the_context(models):
    assert models[10].suggest("Abuja is the capital of", 1)[0][0] == "nigeria"
    assert models[3].suggest("Once upon a", 1)[0][0] == "time"
    unigram = models[1]
    assert unigram.suggest("Abuja is the capital of", 5) == unigram.suggest("once upon a", 5)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.sampled_from(ORDERS), k=st.integers(0, 8))
def test_suggestions_are_the_k_most_probable_real_words(models, data, n, k):
    model = models[n]
    context = data.draw(contexts(model.vocabulary))
    suggestions = model.suggest(context, k)
    assert len(suggestions) == k
    probabilities = [p for _, p in suggestions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(word not in (UNK, EOS, BOS) for word, _ in suggestions)
    assert all(model.prob(word, context) == p for word, p in suggestions)
    if suggestions:
        distribution = model.next_word_distribution(context)
        real_words = [i for i, w in enumerate(model.vocabulary) if w not in (UNK, EOS)]
        assert probabilities[-1] >= np.sort(distribution[real_words])[-k]


def test_ngram_errors():
    for bad_n in (0, -1, 2.0, True):
        with pytest.raises(ConfigError, match="n = "):
            NGramModel(bad_n)
    with pytest.raises(ConfigError, match="unigram_add_k"):
        NGramModel(3, unigram_add_k=0)
    with pytest.raises(ConfigError, match="not trained"):
        NGramModel(3).suggest("the", 3)
    with pytest.raises(ConfigError, match="texts is empty"):
        NGramModel(3).train([])


# ---------------------------------------------------------------------------
# The perceptron
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentiment_training_set() -> list[SentimentExample]:
    return generate_sentiment_examples(seed=0, n_examples=300)


@pytest.fixture(scope="module")
def trained_perceptron(sentiment_training_set):
    perceptron = Perceptron()
    report = perceptron.train(sentiment_training_set, epochs=50, seed=0)
    return perceptron, report


def test_perceptron_separates_its_training_set(trained_perceptron, sentiment_training_set):
    perceptron, report = trained_perceptron
    assert report.converged and report.mistakes_per_epoch[-1] == 0
    assert all(perceptron.predict(e.text) == e.label for e in sentiment_training_set)
    assert all(e.label * perceptron.score(e.text) > 0 for e in sentiment_training_set)


def test_happy_words_score_positive_and_sad_words_negative(trained_perceptron, sentiment_training_set):
    perceptron, _ = trained_perceptron
    scores = perceptron.word_scores()
    seen = {word for e in sentiment_training_set for word in split_words(e.text)}
    assert all(scores[word] > 0 for word in HAPPY_WORDS if word in seen)
    assert all(scores[word] < 0 for word in SAD_WORDS if word in seen)
    assert len(seen & set(HAPPY_WORDS)) >= len(HAPPY_WORDS) - 1


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(1, 10_000))
def test_perceptron_generalises_to_new_sentences(trained_perceptron, seed):
    perceptron, _ = trained_perceptron
    new = generate_sentiment_examples(seed=seed, n_examples=200)
    accuracy = np.mean([perceptron.predict(e.text) == e.label for e in new])
    assert accuracy >= 0.95


def test_perceptron_is_deterministic_and_scores_are_sums(sentiment_training_set):
    first, second = Perceptron(), Perceptron()
    assert first.train(sentiment_training_set, seed=3) == second.train(sentiment_training_set, seed=3)
    assert first.word_scores() == second.word_scores()
    scores = first.word_scores()
    sentence = "Mia felt happy happy today."
    assert first.score(sentence) == sum(scores.get(w, 0.0) for w in ["mia", "felt", "happy", "happy", "today"])
    assert Perceptron().predict("anything at all") == SAD  # a zero score counts as sad


def test_perceptron_errors(sentiment_training_set):
    with pytest.raises(ConfigError, match="learning_rate"):
        Perceptron(learning_rate=0)
    with pytest.raises(ConfigError, match="epochs"):
        Perceptron().train(sentiment_training_set, epochs=0)
    with pytest.raises(ConfigError, match="empty"):
        Perceptron().train([])
    with pytest.raises(ConfigError, match=r"examples\[0\]\.label"):
        Perceptron().train([SentimentExample("so happy", 2)])
    assert HAPPY == 1 and SAD == -1
