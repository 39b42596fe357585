"""The n-gram next-word suggester: the "model" the source material opens with.

Count which word followed each run of n-1 words in the training text, and
suggest the most frequent followers. A 1-gram ignores the context and always
suggests the commonest words; a 3-gram looks at the last two words; a 10-gram
looks at the last nine — and on new text it has almost never seen those nine
words together, which is the problem that motivates learned models.

Tokens
    :func:`split_words`: lower-cased words and single punctuation marks
    (``"Nigeria's capital." → nigeria ' s capital .``). Each text is one
    document: it is padded on the left with n-1 ``<s>`` and ends with ``</s>``,
    so the model also predicts where a text ends. Words never seen in training
    become ``<unk>``.

Smoothing: interpolated Witten–Bell over add-k unigrams
    With ``c(h, w)`` the number of times word ``w`` followed context ``h`` in
    training, ``c(h) = Σ_w c(h, w)``, ``T(h)`` the number of DISTINCT words
    that followed ``h``, and ``h'`` the context ``h`` without its oldest word:

    $$P_1(w) = \\frac{c(w) + k}{N + k\\,|V|}$$

    $$P_m(w \\mid h) = \\frac{c(h, w) + T(h)\\,P_{m-1}(w \\mid h')}{c(h) + T(h)}
      \\quad\\text{if } c(h) > 0, \\qquad P_m(w \\mid h) = P_{m-1}(w \\mid h') \\text{ otherwise}$$

    where ``V`` is every training word plus ``<unk>`` and ``</s>`` (``<s>`` is
    only ever context, never predicted) and ``N`` the number of predicted
    training tokens.

    Why it is a proper distribution: ``P_1`` sums to ``(N + k|V|)/(N + k|V|) = 1``
    and is positive for every word (``k > 0``). If ``P_{m-1}(·|h')`` sums to 1,
    then ``Σ_w P_m(w|h) = (c(h) + T(h)·1)/(c(h) + T(h)) = 1``, and stays
    positive. So every ``P_n(·|h)`` sums to one over ``V`` and gives every word
    (including ``<unk>``) a positive probability — perplexity is finite and
    comparable across n.

    Why Witten–Bell rather than stupid back-off: stupid back-off's scores do
    not sum to one, so its "perplexity" means nothing. Witten–Bell needs no
    tuned weights: a context followed by many different words (``T(h)``
    large) hands more mass to the shorter context, a formulaic one (always
    the same follower) keeps it.

Implementation
    Each distinct m-gram gets a dense integer id, built order by order: the id
    of ``(w_1 … w_m)`` is the position of the key ``id(w_1 … w_{m-1})·|V_all| + w_m``
    in a sorted array of every such key seen in training. Lookups are one
    ``searchsorted`` per order, vectorised over all positions of a text, and
    the keys are exact (no hashing), so counts are never confused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from transformer_spec.spec.errors import ConfigError

BOS = "<s>"  # left padding: the context before the first word of a text
EOS = "</s>"  # predicted after the last word of a text
UNK = "<unk>"  # any word not seen in training

_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def split_words(text: str) -> list[str]:
    """Yields the lower-cased word tokens of ``text``: runs of letters/digits, and each punctuation mark alone."""
    return _WORD_PATTERN.findall(text.lower())


@dataclass(frozen=True)
class NGramEvaluation:
    """How an n-gram model does on some texts, every word of every text plus each text's end predicted once."""

    perplexity: float  # exp of the mean negative log-probability of the actual next token
    next_word_accuracy: float  # fraction of predictions whose most probable token was the actual one
    unseen_context_rate: float  # fraction of predictions whose full (n-1)-token context never occurred in training
    n_predictions: int  # how many tokens were predicted


@dataclass(frozen=True)
class _OrderTable:
    """Counts of every m-gram of one order m >= 2, and per-context totals."""

    keys: np.ndarray  # (G,) int64, sorted: context_id * vocab_size_all + word_id
    counts: np.ndarray  # (G,) int64: occurrences of each m-gram in training
    context_total: np.ndarray  # (C,) float64: c(h), tokens that followed (m-1)-gram h (never counting <s>)
    context_types: np.ndarray  # (C,) float64: T(h), distinct tokens that followed h (never counting <s>)


class NGramModel:
    """A word n-gram model with interpolated Witten–Bell smoothing over add-k unigrams (see the module docs)."""

    def __init__(self, n: int, unigram_add_k: float = 0.1) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"NGramModel: n = {n!r}, expected an int >= 1 (1 = unigram, 3 = trigram, ...)")
        if isinstance(unigram_add_k, bool) or not isinstance(unigram_add_k, (int, float)) or not unigram_add_k > 0:
            raise ConfigError(
                f"NGramModel: unigram_add_k = {unigram_add_k!r}, expected a number > 0 "
                f"(it gives unseen words, and <unk>, their probability)"
            )
        self.n = n
        self.unigram_add_k = float(unigram_add_k)
        self._trained = False

    # -- training --------------------------------------------------------------

    def train(self, texts: Iterable[str]) -> NGramModel:
        """Counts every 1..n-gram of ``texts`` (each a document). Yields the model itself, now trained."""
        tokenised = [split_words(text) for text in texts]
        if not tokenised:
            raise ConfigError("NGramModel.train: texts is empty, expected at least one text")
        words = sorted({word for tokens in tokenised for word in tokens})
        # Ids: the training words alphabetically, then <unk>, </s>, and last <s>, so
        # that ids [0, bos_id) are exactly the predictable outcomes.
        self.vocabulary: tuple[str, ...] = tuple(words) + (UNK, EOS)
        """The tokens a prediction is a distribution over, in id order (<s> excluded: it is never predicted)."""
        self._id_of = {word: index for index, word in enumerate(self.vocabulary)}
        self._bos_id = len(self.vocabulary)
        self._size_all = self._bos_id + 1  # ids including <s>; the radix of the m-gram keys

        token_ids = self._encode(tokenised)
        targets = token_ids[token_ids != self._bos_id]
        unigram_counts = np.bincount(targets, minlength=self._size_all).astype(np.float64)
        denominator = len(targets) + self.unigram_add_k * len(self.vocabulary)
        self._unigram = (unigram_counts + self.unigram_add_k) / denominator  # (V_all,)
        self._unigram[self._bos_id] = 0.0

        self._tables: list[_OrderTable] = []  # self._tables[m - 2] holds order m
        gram_ids = token_ids  # ids of the 1-grams ending at each position are the token ids
        n_previous_grams = self._size_all
        for order in range(2, self.n + 1):
            keys = gram_ids[:-1] * self._size_all + token_ids[1:]
            valid = gram_ids[:-1] >= 0  # positions too close to the start have no (order-1)-gram
            unique_keys, inverse, counts = np.unique(keys[valid], return_inverse=True, return_counts=True)
            contexts, followers = np.divmod(unique_keys, self._size_all)
            predicted = followers != self._bos_id  # "followed by <s>" only happens across documents
            self._tables.append(
                _OrderTable(
                    keys=unique_keys,
                    counts=counts,
                    context_total=np.bincount(contexts[predicted], weights=counts[predicted], minlength=n_previous_grams),
                    context_types=np.bincount(contexts[predicted], minlength=n_previous_grams).astype(np.float64),
                )
            )
            if order < self.n:  # the ids of the longest m-grams are never a context
                next_gram_ids = np.full_like(gram_ids, -1)
                next_gram_ids[1:][valid] = inverse.reshape(-1)
                gram_ids, n_previous_grams = next_gram_ids, len(unique_keys)
        self._trained = True
        return self

    def _encode(self, tokenised: Sequence[Sequence[str]]) -> np.ndarray:
        """Yields one int64 id array: per text, n-1 <s>, its words (unknown → <unk>), then </s>."""
        unk_id, eos_id = self._id_of[UNK], self._id_of[EOS]
        padding = [self._bos_id] * (self.n - 1)
        ids: list[int] = []
        for tokens in tokenised:
            ids += padding
            ids += [self._id_of.get(word, unk_id) for word in tokens]
            ids.append(eos_id)
        return np.asarray(ids, dtype=np.int64)

    def _require_trained(self, caller: str) -> None:
        if not self._trained:
            raise ConfigError(f"NGramModel.{caller}: the model is not trained; call train(texts) first")

    # -- lookups -----------------------------------------------------------------

    def _lookup(self, order: int, keys: np.ndarray) -> np.ndarray:
        """Yields, per key, the index of that order-``order`` m-gram in its table, or -1 if never seen."""
        table_keys = self._tables[order - 2].keys
        positions = np.searchsorted(table_keys, keys)
        inside = positions < len(table_keys)
        found = inside.copy()
        found[inside] = table_keys[positions[inside]] == keys[inside]
        return np.where(found, positions, -1)

    def _gram_ids_by_order(self, token_ids: np.ndarray) -> list[np.ndarray]:
        """Yields ``ids[m - 1][i]``: the id of the m-gram ending at position i (-1: not in training), m = 1..n-1."""
        by_order = [token_ids]
        for order in range(2, self.n):
            previous = by_order[-1]
            current = np.full_like(previous, -1)
            known = previous[:-1] >= 0
            keys = previous[:-1][known] * self._size_all + token_ids[1:][known]
            current[1:][known] = self._lookup(order, keys)
            by_order.append(current)
        return by_order

    def _seen_contexts_at_targets(self, token_ids: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Yields (target positions, per order m = 2..n the id of the context before each target, or -1).

        A target is every position not holding ``<s>``. A context id is -1 when
        that (m-1)-token context was never followed by a token in training,
        which is exactly when order m has nothing to add to order m-1.
        """
        targets = np.flatnonzero(token_ids != self._bos_id)
        gram_ids = self._gram_ids_by_order(token_ids)
        seen_contexts = []
        for order in range(2, self.n + 1):
            contexts = gram_ids[order - 2][targets - 1]  # the (order-1)-gram just before each target
            total = np.zeros(len(targets))
            total[contexts >= 0] = self._tables[order - 2].context_total[contexts[contexts >= 0]]
            seen_contexts.append(np.where(total > 0, contexts, -1))
        return targets, seen_contexts

    def _target_probabilities(self, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Yields (P(actual token | context), whether the full context was unseen) at every target position."""
        targets, seen_contexts = self._seen_contexts_at_targets(token_ids)
        words = token_ids[targets]
        probability = self._unigram[words]
        for order, contexts in enumerate(seen_contexts, start=2):
            table = self._tables[order - 2]
            seen = contexts >= 0
            total = table.context_total[contexts[seen]]
            types = table.context_types[contexts[seen]]
            pair_index = self._lookup(order, contexts[seen] * self._size_all + words[seen])
            pair_counts = np.where(pair_index >= 0, table.counts[np.maximum(pair_index, 0)], 0)
            probability[seen] = (pair_counts + types * probability[seen]) / (total + types)
        unseen = seen_contexts[-1] < 0 if self.n > 1 else np.zeros(len(targets), dtype=bool)
        return probability, unseen

    def _context_ids(self, context_ids: Sequence[int]) -> list[int]:
        """Yields, for m = 2..n, the id of the (m-1)-gram made of the last m-1 context tokens (-1: unseen/absent)."""
        ids = []
        for length in range(1, self.n):
            if length > len(context_ids):
                ids.append(-1)
                continue
            gram_id = context_ids[-length]
            for order, token in enumerate(context_ids[len(context_ids) - length + 1 :], start=2):
                gram_id = int(self._lookup(order, np.array([gram_id * self._size_all + token]))[0])
                if gram_id < 0:
                    break
            ids.append(gram_id)
        return ids

    def _distributions(self, context_rows: np.ndarray) -> np.ndarray:
        """Yields P(· | context) over ids [0, V_all) per row (P(<s>) = 0); shape (R, V_all).

        ``context_rows`` is (R, n-1): per row, the context id for each order
        m = 2..n (-1 where that context is absent or was never followed).
        """
        rows = len(context_rows)
        probability = np.tile(self._unigram, (rows, 1))  # (R, V_all)
        for order in range(2, self.n + 1):
            table = self._tables[order - 2]
            contexts = context_rows[:, order - 2]
            live = np.flatnonzero(contexts >= 0)
            live = live[table.context_total[contexts[live]] > 0]
            if not len(live):
                continue
            ids = contexts[live]
            low = np.searchsorted(table.keys, ids * self._size_all)
            high = np.searchsorted(table.keys, (ids + 1) * self._size_all)
            # <s> is the largest id, so "followed by <s>" is the last key of a range; it is never predicted.
            ends_with_bos = (high > low) & (table.keys[np.maximum(high - 1, 0)] % self._size_all == self._bos_id)
            high = high - ends_with_bos
            total, types = table.context_total[ids], table.context_types[ids]
            # Witten-Bell: P = (c(h, w) + T(h) P_lower) / (c(h) + T(h)), scaled in place, then the counts added.
            probability[live] *= (types / (total + types))[:, None]
            lengths = high - low
            row_of_pair = np.repeat(np.arange(len(live)), lengths)  # one entry per (context, follower) pair
            key_index = np.repeat(low - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            probability[live[row_of_pair], table.keys[key_index] % self._size_all] += (
                table.counts[key_index] / (total + types)[row_of_pair]
            )
        return probability

    def _ids_of_context(self, context_words: Sequence[str] | str) -> list[int]:
        words = split_words(context_words) if isinstance(context_words, str) else [w.lower() for w in context_words]
        unk_id = self._id_of[UNK]
        special = {BOS: self._bos_id, EOS: self._id_of[EOS], UNK: unk_id}
        ids = [special.get(word, self._id_of.get(word, unk_id)) for word in words]
        return ids[-(self.n - 1) :] if self.n > 1 else []  # only the last n-1 tokens can matter

    # -- the public questions ------------------------------------------------------

    def next_word_distribution(self, context_words: Sequence[str] | str) -> np.ndarray:
        """Yields P(w | context) for every w in :attr:`vocabulary`, in that order; it sums to 1.

        ``context_words`` is a word list or a string (split with
        :func:`split_words`); only its last n-1 tokens matter. A context shorter
        than n-1 tokens uses the longest orders it has, without padding — to
        ask about the start of a text, put ``"<s>"`` tokens in front yourself.
        """
        self._require_trained("next_word_distribution")
        context_rows = np.array([self._context_ids(self._ids_of_context(context_words))], dtype=np.int64).reshape(1, -1)
        return self._distributions(context_rows)[0, : self._bos_id]

    def prob(self, word: str, context_words: Sequence[str] | str) -> float:
        """Yields P(word | context); a word never seen in training is scored as ``<unk>``."""
        self._require_trained("prob")
        word = word.lower()
        index = self._id_of.get(word, self._id_of[UNK])
        return float(self.next_word_distribution(context_words)[index])

    def suggest(self, context_words: Sequence[str] | str, k: int = 3) -> list[tuple[str, float]]:
        """Yields the ``k`` most probable next words with their probabilities, best first.

        ``<unk>`` and ``</s>`` are never suggested; ties go to the
        alphabetically first word.
        """
        self._require_trained("suggest")
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ConfigError(f"NGramModel.suggest: k = {k!r}, expected an int >= 0")
        distribution = self.next_word_distribution(context_words)
        n_words = len(self.vocabulary) - 2  # the real words come first in id order
        order = np.argsort(-distribution[:n_words], kind="stable")[:k]
        return [(self.vocabulary[index], float(distribution[index])) for index in order]

    def evaluate(self, texts: Iterable[str]) -> NGramEvaluation:
        """Yields perplexity, next-word accuracy and unseen-context rate on ``texts`` (each a document)."""
        self._require_trained("evaluate")
        tokenised = [split_words(text) for text in texts]
        if not tokenised:
            raise ConfigError("NGramModel.evaluate: texts is empty, expected at least one text")
        token_ids = self._encode(tokenised)
        probability, unseen = self._target_probabilities(token_ids)
        return NGramEvaluation(
            perplexity=float(math.exp(-np.mean(np.log(probability)))),
            next_word_accuracy=self._accuracy(token_ids),
            unseen_context_rate=float(np.mean(unseen)),
            n_predictions=len(probability),
        )

    def perplexity(self, texts: Iterable[str]) -> float:
        """Yields exp(mean over predictions of -log P(actual token | context)) on ``texts``."""
        self._require_trained("perplexity")
        tokenised = [split_words(text) for text in texts]
        if not tokenised:
            raise ConfigError("NGramModel.perplexity: texts is empty, expected at least one text")
        probability, _ = self._target_probabilities(self._encode(tokenised))
        return float(math.exp(-np.mean(np.log(probability))))

    def unseen_context_rate(self, texts: Iterable[str]) -> float:
        """Yields the fraction of predictions on ``texts`` whose full (n-1)-token context never occurred in training."""
        return self.evaluate(texts).unseen_context_rate

    def next_word_accuracy(self, texts: Iterable[str]) -> float:
        """Yields the fraction of predictions on ``texts`` where the most probable token was the actual one."""
        return self.evaluate(texts).next_word_accuracy

    def _accuracy(self, token_ids: np.ndarray) -> float:
        targets, seen_contexts = self._seen_contexts_at_targets(token_ids)
        if self.n == 1:
            return float(np.mean(token_ids[targets] == np.argmax(self._unigram)))
        # The distribution depends only on the longest seen context (every shorter
        # one is its suffix, hence seen too), so compute one argmax per distinct
        # (longest seen order, its context id) — templated text repeats them a lot.
        contexts = np.stack(seen_contexts)  # (n-1, targets)
        deepest = np.where(contexts >= 0, np.arange(1, self.n)[:, None], 0).max(axis=0)  # (targets,) 0 = none seen
        deepest_id = np.where(deepest > 0, contexts[np.maximum(deepest - 1, 0), np.arange(len(targets))], -1)
        keys = deepest * (int(deepest_id.max()) + 2) + deepest_id + 1
        unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        chunk = 1024  # rows of dense distributions at a time, to bound memory
        context_rows = contexts[:, first].T  # (unique contexts, n-1)
        best = np.concatenate(
            [np.argmax(self._distributions(context_rows[i : i + chunk]), axis=1) for i in range(0, len(first), chunk)]
        )
        return float(np.mean(best[inverse.reshape(-1)] == token_ids[targets]))
