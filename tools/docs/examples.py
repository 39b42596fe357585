"""The worked examples of the pages: the inputs live here, every number shown is computed from them.

Pages show these through generators (:mod:`tools.docs.generators`) and figures
(:mod:`tools.docs.figures`), so a number in the prose, in a table and in a
figure is the same number, computed by the NumPy reference backend.
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Softmax: a model's scores (logits) for the word after "Once upon a".
SOFTMAX_CONTEXT = "Once upon a"
SOFTMAX_WORDS = ("time", "hill", "day", "banana")
SOFTMAX_SCORES = (3.0, 1.0, 0.5, -1.0)
SOFTMAX_TEMPERATURES = (0.5, 1.0, 2.0)

# Sampling: the real next-word distribution of a 3-gram model trained on the corpus.
NGRAM_TRAINING = dict(seed=0, n_documents=3000)
NGRAM_HELD_OUT = dict(seed=1, n_documents=200)
NGRAM_ORDERS = (1, 3, 10)
SAMPLING_CONTEXT = "the cat ate the"
SAMPLING_TOP_K = 5
SAMPLING_TOP_P = 0.5
SAMPLING_GRID = 1000  # values of u on an even grid of [0, 1): each kept word here has p > 1/1000


def numpy_backend():
    from transformer_spec.backends import load_backend

    return load_backend("numpy")


def softmax_table() -> list[dict]:
    """Each word's score, e^score, and probability — computed with the reference softmax."""
    backend = numpy_backend()
    scores = np.asarray(SOFTMAX_SCORES, dtype=np.float64)
    probabilities = backend.to_numpy(backend.softmax(backend.asarray(scores, "float64")))
    exps = np.exp(scores)
    return [
        dict(word=w, score=s, exp=e, total=float(exps.sum()), p=p)
        for w, s, e, p in zip(SOFTMAX_WORDS, scores, exps, probabilities)
    ]


def softmax_at(temperature: float) -> np.ndarray:
    backend = numpy_backend()
    scores = backend.asarray(np.asarray(SOFTMAX_SCORES) / temperature, "float64")
    return backend.to_numpy(backend.softmax(scores))


@functools.lru_cache(maxsize=1)
def corpus():
    from transformer_spec.data import generate_corpus

    return generate_corpus(**NGRAM_TRAINING), generate_corpus(**NGRAM_HELD_OUT)


@functools.cache
def ngram_model(n: int):
    from transformer_spec.baselines import NGramModel

    training, _ = corpus()
    return NGramModel(n).train(training)


@functools.lru_cache(maxsize=1)
def sampling_distribution() -> tuple[list[str], np.ndarray]:
    """The 3-gram model's next-word probabilities after SAMPLING_CONTEXT, over its whole vocabulary."""
    model = ngram_model(3)
    return list(model.vocabulary), np.asarray(model.next_word_distribution(SAMPLING_CONTEXT), dtype=np.float64)


@functools.cache
def tokens_ever_sampled(top_k: int | None = None, top_p: float | None = None) -> dict[int, float]:
    """Run the reference ``sample`` on the sampling distribution for an even grid of u: each token it returns, with its frequency."""
    backend = numpy_backend()
    _, probabilities = sampling_distribution()
    options = {k: v for k, v in (("top_k", top_k), ("top_p", top_p)) if v is not None}
    logits = backend.asarray(np.log(np.maximum(probabilities, 1e-300)), "float64")
    counts: dict[int, int] = {}
    for i in range(SAMPLING_GRID):
        token = backend.sample(logits, (i + 0.5) / SAMPLING_GRID, temperature=1.0, **options)
        counts[token] = counts.get(token, 0) + 1
    return {token: count / SAMPLING_GRID for token, count in counts.items()}


def uniform_loss(vocab_size: int) -> tuple[float, float]:
    """cross_entropy of equal logits (computed) and log V (the formula)."""
    backend = numpy_backend()
    logits = backend.asarray(np.zeros((1, vocab_size)), "float64")
    targets = backend.asarray(np.array([0]), "int64")
    return float(backend.to_numpy(backend.cross_entropy(logits, targets))), math.log(vocab_size)


# Word embeddings before transformers: count which words appear near which,
# weight the counts by positive pointwise mutual information, and keep the top
# singular directions (Levy & Goldberg 2014 show word2vec's skip-gram with
# negative sampling factorises a shifted version of this same matrix).
WORD_VECTOR_WINDOW = 3  # words on each side that count as "near"
WORD_VECTOR_MIN_COUNT = 5  # rarer words get no vector
WORD_VECTOR_DIM = 50
NEIGHBOUR_QUERIES = ("apple", "king", "cat", "happy", "castle", "nigeria")
PCA_WORDS = (
    "apple",
    "orange",
    "pear",
    "mango",
    "lemon",
    "king",
    "queen",
    "prince",
    "princess",
    "castle",
    "palace",
    "cat",
    "dog",
    "bear",
    "duck",
    "owl",
    "happy",
    "sad",
    "glad",
    "angry",
    "kite",
    "ball",
    "bike",
)


@functools.lru_cache(maxsize=1)
def word_vectors() -> tuple[list[str], np.ndarray]:
    """(vocabulary, unit-length vectors) from PPMI + SVD on the training corpus's co-occurrence counts."""
    from transformer_spec.baselines import split_words

    training, _ = corpus()
    documents = [[w for w in split_words(text) if w[0].isalnum()] for text in training]
    counts: dict[str, int] = {}
    for words in documents:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    vocabulary = sorted(w for w, c in counts.items() if c >= WORD_VECTOR_MIN_COUNT)
    index = {w: i for i, w in enumerate(vocabulary)}
    # one flat id stream, documents separated by WORD_VECTOR_WINDOW gaps (-1) so no pair spans two documents
    gap = [-1] * WORD_VECTOR_WINDOW
    ids = np.array([i for words in documents for i in [index.get(w, -1) for w in words] + gap])
    V = len(vocabulary)
    cooccurrence = np.zeros((V, V))
    for offset in range(1, WORD_VECTOR_WINDOW + 1):
        left, right = ids[:-offset], ids[offset:]
        both = (left >= 0) & (right >= 0)
        cooccurrence += np.bincount(left[both] * V + right[both], minlength=V * V).reshape(V, V)
    cooccurrence += cooccurrence.T  # a neighbour on either side
    total = cooccurrence.sum()
    p_word = cooccurrence.sum(axis=1, keepdims=True) / total
    p_context = cooccurrence.sum(axis=0, keepdims=True) ** 0.75  # word2vec's smoothing of context counts
    p_context /= p_context.sum()
    with np.errstate(divide="ignore"):
        pmi = np.log(cooccurrence / total / (p_word * p_context))
    ppmi = np.where(np.isfinite(pmi), np.maximum(pmi, 0), 0)
    u, s, _ = np.linalg.svd(ppmi, full_matrices=False)
    vectors = u[:, :WORD_VECTOR_DIM] * np.sqrt(s[:WORD_VECTOR_DIM])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vocabulary, vectors


def nearest(vocabulary: list[str], vectors: np.ndarray, word: str, k: int = 5) -> list[tuple[str, float]]:
    """The k words whose vectors have the largest cosine similarity with ``word``'s (unit vectors: a dot product)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit[vocabulary.index(word)]
    order = [i for i in np.argsort(-similarity, kind="stable") if vocabulary[i] != word][:k]
    return [(vocabulary[i], float(similarity[i])) for i in order]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their two main directions of variation."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


# Attention toy: two-dimensional keys with made-up features (animal, food), so the
# weights can be read off. The queries say what each word is looking for.
ATTENTION_SENTENCES = {
    "hungry": "the bear ate the honey because it was hungry",
    "delicious": "the bear ate the honey because it was delicious",
}
ATTENTION_KEYS = {"bear": (1.0, 0.0), "honey": (0.0, 1.0)}  # every other word: (0, 0), nothing to offer
ATTENTION_QUERIES = {"hungry": (6.0, 0.0), "delicious": (0.0, 6.0), "it": (3.0, 3.0)}  # others: (0, 0)


def attention_toy(which: str) -> tuple[list[str], np.ndarray]:
    """(words, causal attention weights (L, L)) of one toy sentence, from the reference attention."""
    backend = numpy_backend()
    words = ATTENTION_SENTENCES[which].split()
    keys = np.array([ATTENTION_KEYS.get(w, (0.0, 0.0)) for w in words])
    queries = np.array([ATTENTION_QUERIES.get(w, (0.0, 0.0)) for w in words])
    q, k = backend.asarray(queries, "float64"), backend.asarray(keys, "float64")
    _, weights = backend.attention(q, k, k, causal=True)
    return words, backend.to_numpy(weights)


DEFAULT_MODEL_SENTENCE = (
    "What is the capital of Nigeria? The capital of Nigeria is Abuja."  # every word one token of the default model
)


# GPT-2 small (Radford et al. 2019): the configuration, as a ModelConfig.
GPT2_SMALL = dict(vocab_size=50257, context_length=1024, d_model=768, n_heads=12, n_layers=12, d_ff=3072)


def gpt2_parameter_groups() -> dict[str, int]:
    """GPT-2 small's parameter count by group, from the spec's parameter layout."""
    from transformer_spec.spec.config import ModelConfig
    from transformer_spec.spec.model import parameter_shapes

    groups = {"token embeddings (wte)": 0, "position embeddings (wpe)": 0, "attention": 0, "feed-forward": 0, "norms": 0}
    for name, shape in parameter_shapes(ModelConfig(**GPT2_SMALL)).items():
        size = math.prod(shape)
        if name == "wte":
            groups["token embeddings (wte)"] += size
        elif name == "wpe":
            groups["position embeddings (wpe)"] += size
        elif ".attn." in name:
            groups["attention"] += size
        elif ".mlp." in name:
            groups["feed-forward"] += size
        else:
            groups["norms"] += size
    return groups


# The perceptron of the source material, on the generated sentiment set.
PERCEPTRON_TRAINING = dict(seed=0, n_examples=400)
PERCEPTRON_HELD_OUT = dict(seed=1, n_examples=200)
PERCEPTRON_EXAMPLES = ("What a delicious mango!", "The day at the beach was gloomy.", "Mia said the trip was wonderful.")


@functools.lru_cache(maxsize=1)
def perceptron() -> dict:
    from transformer_spec.baselines import Perceptron
    from transformer_spec.data import generate_sentiment_examples

    training = generate_sentiment_examples(**PERCEPTRON_TRAINING)
    held_out = generate_sentiment_examples(**PERCEPTRON_HELD_OUT)
    model = Perceptron()
    report = model.train(training, epochs=50, seed=0)
    accuracy = sum(model.predict(e.text) == e.label for e in held_out) / len(held_out)
    return dict(model=model, report=report, accuracy=accuracy, n_training=len(training), n_held_out=len(held_out))
