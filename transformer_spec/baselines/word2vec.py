r"""word2vec: skip-gram with negative sampling (Mikolov et al., 2013), trained with a backend's autodiff.

Before transformers, words got vectors from the company they keep: a word's
vector is trained to predict the words around it. Words used in the same
contexts ("apple", "mango" after "ate a ...") end up with similar vectors.

Model
-----
Two tables, ``in`` (the word vectors) and ``out`` (context vectors), each ``(V, D)``.
For a centre word $c$, a true context word $o$ within ``window`` positions, and
$K$ negative words $n_k$ drawn from the unigram distribution raised to 3/4:

$$\mathcal L = -\log\sigma(u_o^\top v_c) - \sum_{k=1}^K \log\sigma(-u_{n_k}^\top v_c)$$

averaged over a batch of (centre, context) pairs. $\log\sigma(x)$ is written
with the contract's ``log_softmax`` over the pair $(0, x)$ (its second entry),
which is finite for any finite $x$. The gradient comes from the backend's
``value_and_grad``; the update is the shared AdamW of :mod:`transformer_spec.train.optim`.

Words: :func:`transformer_spec.baselines.ngram.split_words` (lower-cased words and
punctuation marks), those seen at least ``min_count`` times. Frequent words
are subsampled (each occurrence kept with probability
$\min(1, \sqrt{t/f(w)})$), so "the" and "." do not dominate the pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from transformer_spec.spec.errors import ConfigError

from .ngram import split_words


@dataclass(frozen=True)
class Word2VecConfig:
    """Hyper-parameters of skip-gram with negative sampling. Validated on construction."""

    dim: int = 32  # D: vector width
    window: int = 2  # context words on each side of the centre
    negatives: int = 5  # K: negative words per (centre, context) pair
    min_count: int = 2  # words seen fewer times are dropped
    subsample: float | None = 1e-3  # t of the frequent-word subsampling (None: keep every occurrence)
    steps: int = 1500  # optimizer steps
    batch_size: int = 512  # (centre, context) pairs per step
    lr: float = 0.01  # AdamW peak rate (warm-up 5%, cosine to 10%)
    seed: int = 0  # initial vectors, subsampling, batches and negatives

    def __post_init__(self) -> None:
        for name in ("dim", "window", "negatives", "min_count", "steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Word2VecConfig: {name} = {value!r}, expected an integer >= 1")
        if self.subsample is not None and not (isinstance(self.subsample, (int, float)) and self.subsample > 0):
            raise ConfigError(f"Word2VecConfig: subsample = {self.subsample!r}, expected a number > 0 or None")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"Word2VecConfig: lr = {self.lr!r}, expected a finite number > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"Word2VecConfig: seed = {self.seed!r}, expected an integer >= 0")


def skipgram_pairs(documents: Sequence[Sequence[int]], window: int) -> np.ndarray:
    """Every (centre, context) pair within ``window`` positions inside each document → int64 (N, 2)."""
    pairs = []
    for ids in documents:
        ids = np.asarray(ids, dtype=np.int64)
        for offset in range(1, window + 1):
            if ids.size > offset:
                pairs.append(np.stack([ids[:-offset], ids[offset:]], axis=1))  # (n - offset, 2): context after
                pairs.append(np.stack([ids[offset:], ids[:-offset]], axis=1))  # context before
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(pairs)


def negative_sampling_loss(ops, params, centres, contexts, negatives):
    """The skip-gram negative-sampling loss of one batch on a kernel namespace (``backend.ops``): a native scalar.

    Kernels only, no host-side argument checks, so the backend's ``compile`` hook can compile it; the ids
    are in range by construction (drawn from the vocabulary).
    """
    v = ops.embedding(params["in"], centres)  # (B, D)
    u_true = ops.embedding(params["out"], contexts)  # (B, D)
    u_noise = ops.embedding(params["out"], negatives)  # (B, K, D)
    positive = (v * u_true).sum(-1)  # (B,)
    negative = (u_noise * v[:, None, :]).sum(-1)  # (B, K)
    return -(log_sigmoid(ops, positive).mean() + log_sigmoid(ops, -negative).sum(-1).mean())


def log_sigmoid(ops, x):
    """log σ(x) = log_softmax over (0, x), second entry: stable for any finite x."""
    pair = ops.concat([x[..., None] * 0.0, x[..., None]], -1)  # (..., 2)
    return ops.log_softmax(pair, -1)[..., 1]


def compiled_step(backend, optimizer):
    """(params, m, v, centres, contexts, negatives, lr, bc1, bc2) → (loss, params, m, v): the gradient and AdamW
    through the backend's hooks (``value_and_grad``, then ``compile`` over the whole step)."""
    from transformer_spec.train.optim import adamw_update

    ops = backend.ops
    value_and_grad = backend.value_and_grad(lambda p, c, o, n: negative_sampling_loss(ops, p, c, o, n))

    def step(params, m, v, centres, contexts, negatives, lr, bc1, bc2):
        loss, grads = value_and_grad(params, centres, contexts, negatives)
        params, m, v = adamw_update(params, grads, m, v, lr=lr, bias_correction1=bc1, bias_correction2=bc2, config=optimizer)
        return loss, params, m, v

    return backend.compile(step)


class Word2Vec:
    """Trained word vectors: ``vector(word)``, ``similarity(a, b)``, ``most_similar(word)``."""

    def __init__(self, vocabulary: Sequence[str], vectors: np.ndarray, losses: Sequence[float] = ()) -> None:
        self.vocabulary = tuple(vocabulary)
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
        self.vectors = np.asarray(vectors, dtype=np.float32)  # (V, D): the "in" table
        self.losses = list(losses)
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self._unit = self.vectors / np.maximum(norms, 1e-12)  # (V, D)

    @classmethod
    def train(cls, texts: Iterable[str], backend="torch", config: Word2VecConfig | None = None) -> Word2Vec:
        """Train on ``texts`` (each a document) with ``backend`` (a name or a Backend with autodiff)."""
        from transformer_spec.backends import load_backend
        from transformer_spec.train.optim import AdamWConfig, bias_corrections, init_moments, learning_rate_at

        config = config or Word2VecConfig()
        backend = load_backend(backend)
        if not backend.supports_autodiff:
            raise ConfigError(f"word2vec trains with autodiff; backend {backend.name!r} has none: use torch or jax")
        tokenised = [split_words(text) for text in texts]
        counts = Counter(word for words in tokenised for word in words)
        vocabulary = sorted((w for w, c in counts.items() if c >= config.min_count), key=lambda w: (-counts[w], w))
        if len(vocabulary) < 2:
            raise ConfigError(
                f"word2vec: only {len(vocabulary)} word(s) occur at least min_count = {config.min_count} times; expected more text"
            )
        index = {w: i for i, w in enumerate(vocabulary)}
        rng = np.random.Generator(np.random.PCG64(config.seed))
        frequency = np.array([counts[w] for w in vocabulary], dtype=np.float64)
        frequency /= frequency.sum()
        keep = np.ones_like(frequency) if config.subsample is None else np.minimum(1.0, np.sqrt(config.subsample / frequency))
        documents = []
        for words in tokenised:
            ids = np.array([index[w] for w in words if w in index], dtype=np.int64)
            documents.append(ids[rng.random(ids.size) < keep[ids]] if ids.size else ids)
        pairs = skipgram_pairs(documents, config.window)
        if len(pairs) == 0:
            raise ConfigError("word2vec: the texts give no (centre, context) pairs; expected documents of two words or more")
        noise = frequency**0.75
        noise /= noise.sum()

        V, D = len(vocabulary), config.dim
        params = {
            "in": backend.asarray((rng.random((V, D)) - 0.5) / D, "float32"),  # the classic init: small uniform
            "out": backend.asarray(np.zeros((V, D)), "float32"),
        }
        optimizer = AdamWConfig(
            lr=config.lr, warmup_steps=max(1, config.steps // 20), total_steps=config.steps, weight_decay=0.0, grad_clip=None
        )
        m, v = init_moments(params)
        step_fn = compiled_step(backend, optimizer)
        scalar = np.float32 if backend.compiles else float  # traced scalars: a new rate does not recompile
        losses = []
        for step in range(1, config.steps + 1):
            chosen = pairs[rng.integers(0, len(pairs), size=config.batch_size)]  # (B, 2)
            negatives = rng.choice(V, size=(config.batch_size, config.negatives), p=noise)  # (B, K)
            batch = (
                backend.asarray(chosen[:, 0], "int64"),
                backend.asarray(chosen[:, 1], "int64"),
                backend.asarray(negatives, "int64"),
            )
            bc1, bc2 = bias_corrections(step, optimizer)
            lr = learning_rate_at(step, optimizer)
            loss, params, m, v = step_fn(params, m, v, *batch, scalar(lr), scalar(bc1), scalar(bc2))
            losses.append(float(backend.to_numpy(loss)))
        return cls(vocabulary, backend.to_numpy(params["in"]), losses)

    def _id(self, word: str) -> int:
        try:
            return self.index[word.lower()]
        except KeyError:
            raise ConfigError(
                f"word2vec: {word!r} is not in the vocabulary ({len(self.vocabulary)} words seen at least min_count times)"
            ) from None

    def vector(self, word: str) -> np.ndarray:
        return self.vectors[self._id(word)]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words' vectors."""
        return float(self._unit[self._id(a)] @ self._unit[self._id(b)])

    def most_similar(self, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` words with the most similar vectors (the word itself excluded)."""
        scores = self._unit @ self._unit[self._id(word)]  # (V,)
        order = [i for i in np.argsort(-scores, kind="stable") if i != self._id(word)][:k]
        return [(self.vocabulary[i], float(scores[i])) for i in order]


# ---------------------------------------------------------------------- measured results on the corpus


def corpus_report(documents: int = 4000, backend: str = "torch", config: Word2VecConfig | None = None) -> dict:
    """Train on the generated corpus and measure: within-pool vs across-pool similarity of the corpus's own word
    pools (fruits, animals, royals, ...), and nearest neighbours of the first word of each pool."""
    import time

    from transformer_spec.data import corpus as pools
    from transformer_spec.data import generate_corpus

    config = config or Word2VecConfig()
    started = time.perf_counter()
    model = Word2Vec.train(generate_corpus(0, documents), backend, config)
    seconds = time.perf_counter() - started
    groups = {
        "animals": pools.ANIMALS,
        "fruits": pools.FRUITS,
        "royals": pools.ROYALS,
        "royal things": pools.ROYAL_THINGS,
        "colours": pools.COLOURS,
        "toys": pools.TOYS,
    }
    groups = {name: [w for w in words if w in model.index] for name, words in groups.items()}
    rows = []
    for name, words in groups.items():
        others = [w for other, ws in groups.items() if other != name for w in ws]
        within = [model.similarity(a, b) for i, a in enumerate(words) for b in words[i + 1 :]]
        across = [model.similarity(a, b) for a in words for b in others]
        rows.append(
            {
                "pool": name,
                "words": len(words),
                "mean_within": float(np.mean(within)),
                "mean_across": float(np.mean(across)),
                "nearest": {words[0]: model.most_similar(words[0], 5)},
            }
        )
    return {
        "documents": documents,
        "backend": backend,
        "config": config.__dict__,
        "vocabulary": len(model.vocabulary),
        "seconds": seconds,
        "first_loss": float(np.mean(model.losses[:20])),
        "last_loss": float(np.mean(model.losses[-20:])),
        "pools": rows,
    }


def _render(report: dict, command: str) -> str:
    lines = [
        "# word2vec on the generated corpus",
        "",
        f"Measured by `{command}`: skip-gram with negative sampling, {report['documents']} documents, "
        f"{report['vocabulary']} words, {report['config']['steps']} steps on {report['backend']} in {report['seconds']:.0f} s "
        f"(loss {report['first_loss']:.3f} → {report['last_loss']:.3f}).",
        "",
        "Mean cosine similarity between words of the same pool (the corpus draws each story's nouns from one pool) "
        "and between words of different pools:",
        "",
        "| pool | words | within | across | nearest neighbours of its first word |",
        "|---|---:|---:|---:|---|",
    ]
    for row in report["pools"]:
        ((word, neighbours),) = row["nearest"].items()
        near = ", ".join(f"{w} ({s:.2f})" for w, s in neighbours)
        lines.append(
            f"| {row['pool']} | {row['words']} | {row['mean_within']:.3f} | {row['mean_across']:.3f} | **{word}**: {near} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m transformer_spec.baselines.word2vec [--documents N] [--backend torch] [--out docs/results/word2vec]``."""
    import argparse
    import json
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Train word2vec on the generated corpus and write the measured results.")
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--steps", type=int, default=Word2VecConfig.steps)
    parser.add_argument("--out", default="docs/results/word2vec", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    report = corpus_report(args.documents, args.backend, Word2VecConfig(steps=args.steps))
    command = "python -m transformer_spec.baselines.word2vec " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    Path(str(out) + ".md").write_text(_render(report, command.strip()), encoding="utf-8")
    print(_render(report, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
