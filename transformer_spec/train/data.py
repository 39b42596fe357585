"""Training data as token ids: a stream of documents for pretraining, masked prompt/response pairs for fine-tuning.

Pretraining
-----------
Documents are encoded one by one, each followed by the end-of-text token, and
concatenated into one stream of ids (GPT-2's layout). A batch is ``B`` windows
of ``L + 1`` consecutive ids at positions drawn from a seeded NumPy generator;
inputs are the first ``L``, targets the last ``L`` (the next token everywhere).

Fine-tuning
-----------
Each :class:`~transformer_spec.data.Example` becomes
``PROMPT_TEMPLATE.format(prompt=...)`` + ``RESPONSE_TEMPLATE.format(response=...)``
+ end-of-text. The targets of the prompt tokens are ``IGNORE_INDEX`` (-100), so
the loss — and the gradient — comes from the answer tokens (and the closing
end-of-text, which teaches the model to stop) only. Batches are padded on the
right to a multiple of :data:`PAD_MULTIPLE` (few distinct shapes, so compiled
steps are reused) with targets ``IGNORE_INDEX`` on the padding.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transformer_spec.data import END_OF_TEXT, DatasetError, Example
from transformer_spec.spec.errors import ConfigError

IGNORE_INDEX = -100  # targets with this value add nothing to the loss (PyTorch's convention; spec/loss.py)
PROMPT_TEMPLATE = "User: {prompt}\nAssistant:"  # what the fine-tuned model is shown; answer mode uses it too
RESPONSE_TEMPLATE = " {response}"  # what it learns to write after the prompt, then the end-of-text token
PAD_MULTIPLE = 16  # fine-tuning batches are padded to a multiple of this many positions


def format_prompt(prompt: str) -> str:
    """The text the fine-tuned model sees for a user's ``prompt`` (it continues with its answer)."""
    return PROMPT_TEMPLATE.format(prompt=prompt)


def end_of_text_id(tokenizer) -> int:
    """The id of the end-of-text token of ``tokenizer`` (its eos id), or a clear error when it has none."""
    eos = tokenizer.eos_id
    if eos is None:
        raise ConfigError(
            f"the tokenizer has no end-of-text token; expected one (train the BPE with special token {END_OF_TEXT!r})"
        )
    return int(eos)


# ---------------------------------------------------------------------- reading text files


def read_text_file(path: str | os.PathLike[str]) -> list[str]:
    """The documents of a UTF-8 text file: split at ``<|endoftext|>`` when present, else the whole file is one.

    Errors name the file (and, for bad UTF-8, the 1-based line): a missing
    file, a folder, bytes that are not UTF-8, and a file with no text at all.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file; expected a UTF-8 text file to train on") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory; expected a UTF-8 text file to train on") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DatasetError(f"{path}, line {line}: not valid UTF-8 (byte {column} of the line); expected UTF-8 text") from None
    documents = [d.strip() for d in text.split(END_OF_TEXT)]
    documents = [d for d in documents if d]
    if not documents:
        raise DatasetError(
            f"{path}: the file is empty (no text); expected UTF-8 text, documents optionally separated by {END_OF_TEXT}"
        )
    return documents


# ---------------------------------------------------------------------- pretraining stream


def encode_documents(tokenizer, documents: Iterable[str]) -> np.ndarray:
    """Every document's ids followed by the end-of-text id, concatenated → int32 array (N,)."""
    eos = end_of_text_id(tokenizer)
    pieces: list[int] = []
    for document in documents:
        pieces.extend(tokenizer.encode(document))
        pieces.append(eos)
    return np.asarray(pieces, dtype=np.int32)


def check_batch_shape(batch_size: int, context_length: int, model_context: int) -> None:
    """Errors for a batch size or sequence length that cannot work with a model of context ``model_context``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size = {batch_size!r}, expected an integer >= 1")
    if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length < 1:
        raise ConfigError(f"context length = {context_length!r}, expected an integer >= 1")
    if context_length > model_context:
        raise ConfigError(
            f"context length = {context_length} exceeds the model's context of {model_context} positions; "
            f"expected --context-length <= {model_context} (or a model with a longer context)"
        )


@dataclass
class TokenStream:
    """One long array of token ids and seeded random windows into it."""

    ids: np.ndarray  # (N,) int32
    name: str = "training text"  # named in error messages

    def check_fits(self, context_length: int) -> None:
        if self.ids.size < context_length + 1:
            raise DatasetError(
                f"the {self.name} has {self.ids.size} tokens, too few for one window of context length {context_length} "
                f"plus its next token; expected at least {context_length + 1} tokens (more text, or a shorter --context-length)"
            )

    def sample_batch(self, rng: np.random.Generator, batch_size: int, context_length: int) -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` windows at random starts → (inputs (B, L), next-token targets (B, L)), int64."""
        starts = rng.integers(0, self.ids.size - context_length, size=batch_size)  # each window needs L + 1 ids
        windows = np.stack([self.ids[s : s + context_length + 1] for s in starts]).astype(np.int64)  # (B, L + 1)
        return windows[:, :-1], windows[:, 1:]

    def fixed_batches(self, batch_size: int, context_length: int, max_batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Non-overlapping windows from the start, in order: the same evaluation batches every time."""
        window = context_length + 1
        count = max(1, min((self.ids.size - 1) // context_length, max_batches * batch_size))
        rows = [self.ids[i * context_length : i * context_length + window] for i in range(count)]
        rows = [r for r in rows if r.size == window]
        if not rows:
            self.check_fits(context_length)
        batches = []
        for i in range(0, len(rows), batch_size):
            block = np.stack(rows[i : i + batch_size]).astype(np.int64)  # (b, L + 1)
            batches.append((block[:, :-1], block[:, 1:]))
        return batches[:max_batches]


# ---------------------------------------------------------------------- fine-tuning examples


@dataclass(frozen=True)
class EncodedExample:
    """One example as ids, with the loss restricted to the response."""

    ids: np.ndarray  # (n,) int64: prompt, response, end-of-text
    targets: np.ndarray  # (n,) int64: ids shifted left by one; IGNORE_INDEX where the next token is part of the prompt
    truncated: bool  # the example was longer than the context and lost the end of its response


def encode_example(tokenizer, example: Example, context_length: int) -> EncodedExample:
    """``example`` → ids and targets, where only the response tokens (and the final end-of-text) are scored.

    The sequence is prompt ids + response ids + end-of-text; input position i
    predicts token i + 1, so the targets are the sequence shifted by one, with
    the prompt's part replaced by ``IGNORE_INDEX``. Longer than
    ``context_length + 1`` tokens: the response is cut (``truncated``). A
    prompt that leaves no room for any response token is an error.
    """
    eos = end_of_text_id(tokenizer)
    prompt_ids = tokenizer.encode(format_prompt(example.prompt))
    response_ids = tokenizer.encode(RESPONSE_TEMPLATE.format(response=example.response)) + [eos]
    sequence = prompt_ids + response_ids
    truncated = len(sequence) > context_length + 1
    if len(prompt_ids) >= context_length + 1:
        raise DatasetError(
            f"an example's prompt is {len(prompt_ids)} tokens, leaving no room for its response in a context of "
            f"{context_length}; expected prompts shorter than the context (prompt starts {example.prompt[:40]!r})"
        )
    sequence = sequence[: context_length + 1]
    ids = np.asarray(sequence[:-1], dtype=np.int64)
    targets = np.asarray(sequence[1:], dtype=np.int64)
    targets[: len(prompt_ids) - 1] = IGNORE_INDEX  # position i predicts token i+1: prompt tokens 1..P-1 are not scored
    return EncodedExample(ids, targets, truncated)


def encode_examples(tokenizer, examples: Sequence[Example], context_length: int) -> list[EncodedExample]:
    if not examples:
        raise DatasetError("no fine-tuning examples; expected at least one (prompt, response) pair")
    return [encode_example(tokenizer, e, context_length) for e in examples]


def pad_batch(encoded: Sequence[EncodedExample], pad_id: int, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to a multiple of PAD_MULTIPLE (at most the context) → (ids (B, L), targets (B, L))."""
    longest = max(e.ids.size for e in encoded)
    length = min(context_length, PAD_MULTIPLE * math.ceil(longest / PAD_MULTIPLE))
    ids = np.full((len(encoded), length), pad_id, dtype=np.int64)  # (B, L)
    targets = np.full((len(encoded), length), IGNORE_INDEX, dtype=np.int64)  # (B, L)
    for row, e in enumerate(encoded):
        ids[row, : e.ids.size] = e.ids
        targets[row, : e.targets.size] = e.targets
    return ids, targets


class ExampleBatches:
    """Seeded epochs over encoded examples: shuffle, then consecutive batches; an epoch's remainder starts the next batch."""

    def __init__(self, encoded: Sequence[EncodedExample], pad_id: int, context_length: int) -> None:
        self.encoded = list(encoded)
        self.pad_id = pad_id
        self.context_length = context_length
        self.order: list[int] = []  # the rest of the current epoch

    def next_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        while len(self.order) < batch_size:  # a new epoch (several, when the set is smaller than a batch)
            self.order += [int(i) for i in rng.permutation(len(self.encoded))]
        chosen, self.order = self.order[:batch_size], self.order[batch_size:]
        return pad_batch([self.encoded[i] for i in chosen], self.pad_id, self.context_length)

    def state(self) -> list[int]:
        return list(self.order)

    def restore(self, order: Sequence[int]) -> None:
        self.order = [int(i) for i in order]

    def fixed_batches(self, batch_size: int, max_batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first examples in order, batched: the same evaluation batches every time."""
        chosen = self.encoded[: batch_size * max_batches]
        return [
            pad_batch(chosen[i : i + batch_size], self.pad_id, self.context_length) for i in range(0, len(chosen), batch_size)
        ]
