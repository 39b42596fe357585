"""word2vec: words used in the same contexts end up closer than words that never share one.

The property is checked on random artificial languages (Hypothesis draws the
number of word groups, their sizes and the seed): every sentence puts one word
of a group between two context words that only that group uses. No word list
is picked by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.baselines.word2vec import Word2Vec, Word2VecConfig, log_sigmoid, skipgram_pairs
from transformer_spec.spec.errors import ConfigError
from transformer_spec.spec.tolerances import tolerance

torch = pytest.importorskip("torch")

from transformer_spec.backends import load_backend  # noqa: E402

FAST = Word2VecConfig(dim=16, window=1, negatives=4, min_count=1, subsample=None, steps=250, batch_size=128, lr=0.05)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def artificial_language(seed: int, groups: int, words_per_group: int, contexts_per_group: int = 3, sentences: int = 400):
    """Sentences "l w r": w from group g, l and r from g's own context words. Returns (sentences, groups of words)."""
    rng = np.random.default_rng(seed)
    words = [[f"w{g}x{i}" for i in range(words_per_group)] for g in range(groups)]
    contexts = [[f"c{g}x{i}" for i in range(contexts_per_group)] for g in range(groups)]
    text = []
    for _ in range(sentences):
        g = rng.integers(groups)
        text.append(f"{rng.choice(contexts[g])} {rng.choice(words[g])} {rng.choice(contexts[g])}")
    return text, words


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), groups=st.integers(2, 4), words_per_group=st.integers(2, 4))
def test_shared_contexts_make_words_closer(seed, groups, words_per_group):
    sentences, words = artificial_language(seed, groups, words_per_group)
    model = Word2Vec.train(sentences, "torch", FAST)
    for g, group in enumerate(words):
        for a in group:
            same = [model.similarity(a, b) for b in group if b != a]
            other = [model.similarity(a, c) for h, others in enumerate(words) if h != g for c in others]
            assert min(same) > max(other), (a, same, other)
    assert np.mean(model.losses[-20:]) < np.mean(model.losses[:20])


def test_jax_backend_learns_the_same_structure():
    pytest.importorskip("jax")
    sentences, words = artificial_language(1, 2, 3)
    model = Word2Vec.train(
        sentences,
        load_backend("jax"),
        Word2VecConfig(dim=8, window=1, negatives=3, min_count=1, subsample=None, steps=120, batch_size=128, lr=0.05),
    )
    a, b, c = words[0][0], words[0][1], words[1][0]
    assert model.similarity(a, b) > model.similarity(a, c)


def test_pairs_and_log_sigmoid():
    pairs = skipgram_pairs([[1, 2, 3]], window=1)
    assert sorted(map(tuple, pairs.tolist())) == [(1, 2), (2, 1), (2, 3), (3, 2)]
    backend = load_backend("torch")
    x = backend.asarray(np.array([-1e4, -2.0, 0.0, 3.0, 1e4]), "float32")
    got = backend.to_numpy(log_sigmoid(backend.ops, x)).astype(np.float64)
    expected = -np.logaddexp(0, -np.array([-1e4, -2.0, 0.0, 3.0, 1e4]))
    tol = tolerance("float32", "primitive")
    assert np.all(np.isfinite(got)) and np.allclose(got, expected, rtol=tol.rtol, atol=tol.atol)


def test_errors():
    with pytest.raises(ConfigError, match="autodiff"):
        Word2Vec.train(["a b c a b c"], "numpy", FAST)
    with pytest.raises(ConfigError, match="dim"):
        Word2VecConfig(dim=0)
    model = Word2Vec(["a", "b"], np.eye(2))
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        model.vector("zebra")
    assert model.most_similar("a", 1)[0][0] == "b"
