"""A one-layer perceptron that tells happy sentences from sad ones, as in the source material.

Every word has a score; a sentence's score is the sum of its words' scores
(a word counted once per occurrence); a positive sum means happy. Scores start
at zero and are learned with the perceptron rule: for each training sentence
the model gets wrong (or scores exactly zero), add ``learning_rate * label``
to the score of each word in it, once per occurrence — so the words of a misjudged happy sentence
move up and those of a misjudged sad one move down. There is no separate bias:
a sentence's score is only its words, which is what the source material shows.

If some set of scores separates the training sentences (true for
:func:`transformer_spec.data.sentiment.generate_sentiment_examples` by construction), the
perceptron convergence theorem guarantees the rule stops making mistakes after
finitely many updates; :meth:`Perceptron.train` reports whether it did.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from transformer_spec.spec.errors import ConfigError

from ..data.sentiment import HAPPY, SAD, SentimentExample
from .ngram import split_words


@dataclass(frozen=True)
class PerceptronTrainingReport:
    """What happened in :meth:`Perceptron.train`."""

    epochs_run: int  # passes over the training set (stops early after a pass without mistakes)
    mistakes_per_epoch: tuple[int, ...]  # sentences misjudged in each pass
    converged: bool  # the last pass made no mistakes: the training set is separated


class Perceptron:
    """Word scores whose sum over a sentence says happy (> 0) or sad (<= 0)."""

    def __init__(self, learning_rate: float = 1.0) -> None:
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
            raise ConfigError(f"Perceptron: learning_rate = {learning_rate!r}, expected a number > 0")
        self.learning_rate = float(learning_rate)
        self._scores: dict[str, float] = {}

    def score(self, text: str) -> float:
        """Yields the sentence score: the sum of its words' scores (unknown words score 0)."""
        return sum(self._scores.get(word, 0.0) for word in _content_words(text))

    def predict(self, text: str) -> int:
        """Yields ``HAPPY`` (+1) if the score is positive, else ``SAD`` (-1) — a zero score counts as sad."""
        return HAPPY if self.score(text) > 0 else SAD

    def word_scores(self) -> dict[str, float]:
        """Yields a copy of every word's learned score (words never updated are absent: their score is 0)."""
        return dict(self._scores)

    def train(self, examples: Sequence[SentimentExample], epochs: int = 20, seed: int = 0) -> PerceptronTrainingReport:
        """Runs the perceptron rule over ``examples`` (seeded order each epoch). Yields a training report.

        Stops after the first epoch with no mistakes. A sentence counts as a
        mistake when ``label * score <= 0``, so a zero score is always updated.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"Perceptron.train: epochs = {epochs!r}, expected an int >= 1")
        if not examples:
            raise ConfigError("Perceptron.train: examples is empty, expected at least one SentimentExample")
        for index, example in enumerate(examples):
            if example.label not in (HAPPY, SAD):
                raise ConfigError(f"Perceptron.train: examples[{index}].label = {example.label!r}, expected {HAPPY} or {SAD}")
        rng = random.Random(seed)
        order = list(range(len(examples)))
        word_counts = [Counter(_content_words(example.text)) for example in examples]
        mistakes_per_epoch = []
        for _ in range(epochs):
            rng.shuffle(order)
            mistakes = 0
            for index in order:
                label = examples[index].label
                if label * self.score(examples[index].text) <= 0:
                    mistakes += 1
                    for word, count in word_counts[index].items():
                        self._scores[word] = self._scores.get(word, 0.0) + self.learning_rate * label * count
            mistakes_per_epoch.append(mistakes)
            if mistakes == 0:
                break
        return PerceptronTrainingReport(len(mistakes_per_epoch), tuple(mistakes_per_epoch), mistakes_per_epoch[-1] == 0)


def _content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning: :func:`split_words` without punctuation."""
    return [word for word in split_words(text) if word[0].isalnum()]
