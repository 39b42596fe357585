"""A catalogue of deliberately broken tokenizers: the tokenizer checks must reject every one.

The suite checks any object with the interface of ``spec/tokenizer.py``, so its
teeth are small tokenizers written here (the conformance layer does not import
the application's ``transformer_spec.tokenizers``):

* :class:`ReferenceByteTokenizer` — byte-level: the 256 bytes, a few multi-byte
  tokens (some of them half an emoji, so characters split across tokens), and
  ``<|endoftext|>``; greedy longest match. It passes every check that applies.
* :class:`ReferenceWordTokenizer` — word-level: lowercase words and single
  punctuation marks from a fixed vocabulary, ``<pad> <unk> <bos> <eos>``.

Each mutant is one of them with ONE plausible bug, and names the invariant that
bug breaks (``breaks``); ``tests/test_tokenizer_conformance.py`` runs the
tokenizer checks against each and asserts that this invariant is reported as
failing. Every class builds itself with no arguments, so
``tspec conformance --tokenizer transformer_spec.conformance.teeth_tokenizers:NAME`` checks it.
"""

from __future__ import annotations

import codecs
import json
import operator
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformer_spec.spec.errors import DTypeError, OutOfRangeError, SpecError

END_OF_TEXT = "<|endoftext|>"
BYTE_FILE = "byte_tokenizer.json"
WORD_FILE = "word_tokenizer.json"

# Multi-byte tokens of the reference byte tokenizer. b"\xf0\x9f" is the first half of
# most emoji, so an emoji becomes [F0 9F][98][80]: a decoder must hold back its start.
MERGED_TOKENS = (
    b" the",
    b"the",
    b" a",
    b"at",
    b"on",
    b" on",
    b"ing",
    b"'s",
    b"\xf0\x9f",
    b"\xc3\xa9",
    b"\r\n",
    b"  ",
)
WORD_VOCAB = (
    "<pad>",
    "<unk>",
    "<bos>",
    "<eos>",
    "the",
    "a",
    "cat",
    "sat",
    "on",
    "mat",
    "and",
    "it",
    "was",
    "happy",
    "don",
    "t",
    "what",
    "is",
    "capital",
    "of",
    "42",
    "café",
    ".",
    ",",
    "!",
    "?",
    "'",
    "(",
    ")",
    "<",
    ">",
    "|",
)


# ------------------------------------------------------------------ shared validation


def require_text(text: object, function: str) -> str:
    if not isinstance(text, str):
        raise DTypeError(f"{function}: text must be a str, got {type(text).__name__}")
    return text


def require_ids(ids: Iterable[object], vocab_size: int, function: str) -> list[int]:
    checked = []
    for position, token_id in enumerate(ids):
        if isinstance(token_id, bool):
            raise DTypeError(f"{function}: ids[{position}] is the bool {token_id}; expected an int token id")
        try:
            value = operator.index(token_id)
        except TypeError:
            raise DTypeError(f"{function}: ids[{position}] is {token_id!r}; expected an int token id") from None
        if not 0 <= value < vocab_size:
            raise OutOfRangeError(f"{function}: ids[{position}] = {value} is outside [0, vocab_size = {vocab_size})")
        checked.append(value)
    return checked


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise SpecError(f"load: {path} does not exist; expected a saved tokenizer file there")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SpecError(f"{path} line {error.lineno} column {error.colno}: malformed JSON ({error.msg})") from None


# ------------------------------------------------------------------ byte level


class ByteStream:
    """Holds back an incomplete UTF-8 tail (Python's incremental decoder does the bookkeeping)."""

    def __init__(self, tokenizer: ReferenceByteTokenizer, skip_special: bool) -> None:
        self._tokenizer, self._skip_special = tokenizer, skip_special
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        (token_id,) = require_ids([token_id], self._tokenizer.vocab_size, "stream_decoder.push")
        return self._decoder.decode(self._tokenizer._piece(token_id, self._skip_special), final=False)

    def flush(self) -> str:
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text


class ReferenceByteTokenizer:
    """Byte-level: any text round-trips; ``<|endoftext|>`` only when asked."""

    byte_level = True
    breaks = ""  # the invariant a mutant's bug breaks ("" for the reference)

    def __init__(self, merged: Iterable[bytes] = MERGED_TOKENS) -> None:
        self._pieces: list[bytes] = [bytes([b]) for b in range(256)] + list(merged)
        self._ids = {piece: token_id for token_id, piece in enumerate(self._pieces)}
        self._longest = max(len(p) for p in self._pieces)
        self.end_of_text_id = len(self._pieces)
        self.vocab_size = len(self._pieces) + 1

    bos_id = property(lambda self: self.end_of_text_id)
    eos_id = property(lambda self: self.end_of_text_id)
    unk_id = None
    pad_id = None

    @property
    def special_tokens(self) -> dict[str, int]:
        return {END_OF_TEXT: self.end_of_text_id}

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        text = require_text(text, "encode")
        ids = [self.bos_id] if add_special else []
        parts = text.split(END_OF_TEXT) if parse_special else [text]
        for index, part in enumerate(parts):
            if index:
                ids.append(self.end_of_text_id)
            ids += self._encode_ordinary(part)
        return ids + ([self.eos_id] if add_special else [])

    def _encode_ordinary(self, text: str) -> list[int]:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise SpecError(f"encode: text[{error.start}] is a lone surrogate, which has no UTF-8 form") from None
        ids, start = [], 0
        while start < len(data):
            for length in range(min(self._longest, len(data) - start), 0, -1):  # greedy: the longest known piece
                token_id = self._ids.get(data[start : start + length])
                if token_id is not None:
                    ids.append(token_id)
                    start += length
                    break
        return ids

    def _piece(self, token_id: int, skip_special: bool) -> bytes:
        if token_id == self.end_of_text_id:
            return b"" if skip_special else END_OF_TEXT.encode()
        return self._pieces[token_id]

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        checked = require_ids(ids, self.vocab_size, "decode")
        return b"".join(self._piece(i, skip_special) for i in checked).decode("utf-8", errors="replace")

    def stream_decoder(self, *, skip_special: bool = False) -> ByteStream:
        return ByteStream(self, skip_special)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        merged = [p.hex() for p in self._pieces[256:]]
        (directory / BYTE_FILE).write_text(json.dumps({"merged": merged}, indent=1) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceByteTokenizer:
        document = read_json(Path(directory) / BYTE_FILE)
        return cls([bytes.fromhex(h) for h in document["merged"]])


class StreamShowsBrokenCharacters(ReferenceByteTokenizer):
    """The stream decoder decodes each token's bytes on its own, so half an emoji shows as U+FFFD."""

    breaks = "tokenizer.stream_matches_decode"

    def stream_decoder(self, *, skip_special: bool = False) -> Any:
        tokenizer = self

        class Eager:
            def push(self, token_id: int) -> str:
                return tokenizer._piece(token_id, skip_special).decode("utf-8", errors="replace")

            def flush(self) -> str:
                return ""

        return Eager()


class UnknownBytesOutOfRange(ReferenceByteTokenizer):
    """Its vocabulary lacks the bytes of 4-byte characters (emoji, astral letters); it gives them the id
    vocab_size, one past the end, instead of covering all 256 bytes."""

    breaks = "tokenizer.ids_in_range"

    def _encode_ordinary(self, text: str) -> list[int]:
        data_ids = super()._encode_ordinary(text)
        return [self.vocab_size if i in self._unseen else i for i in data_ids]

    @property
    def _unseen(self) -> set[int]:
        return {self._ids[p] for p in self._pieces if p[0] >= 0xF0}


class EndOfTextFromText(ReferenceByteTokenizer):
    """Always matches the spelling '<|endoftext|>' in text, as if parse_special were on: a user's
    text can end the document."""

    breaks = "tokenizer.no_special_from_text"

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        return super().encode(text, add_special=add_special, parse_special=True)


class NormalizesToNFC(ReferenceByteTokenizer):
    """Normalises the text to NFC before encoding: 'e' + combining acute comes back as 'é'."""

    breaks = "tokenizer.roundtrip"

    def _encode_ordinary(self, text: str) -> list[int]:
        return super()._encode_ordinary(unicodedata.normalize("NFC", text))


class DecodeWrapsAround(ReferenceByteTokenizer):
    """decode takes ids modulo vocab_size, so an out-of-range id silently becomes another token."""

    breaks = "tokenizer.errors"

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        return super().decode([operator.index(i) % self.vocab_size for i in ids], skip_special=skip_special)


class CacheKeyedByLength(ReferenceByteTokenizer):
    """Caches encode's result under the text's length, not the text: the second text of a length
    gets the first one's ids, so the ids depend on what was encoded before."""

    breaks = "tokenizer.deterministic"

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self.__dict__.setdefault("_cache", {})
        if len(text) not in cache:
            cache[len(text)] = super()._encode_ordinary(text)
        return list(cache[len(text)])


class LoadForgetsMergedTokens(ReferenceByteTokenizer):
    """load reads the file but builds the tokenizer from the 256 bytes only: a saved and reloaded
    tokenizer gives other ids (and another vocab_size)."""

    breaks = "tokenizer.save_load"

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceByteTokenizer:
        read_json(Path(directory) / BYTE_FILE)
        return cls(merged=())


# ------------------------------------------------------------------ word level

TOKEN = re.compile(r"\w+|[^\w\s]")
PUNCTUATION = re.compile(r"[^\w\s]")


class WordStream:
    def __init__(self, tokenizer: ReferenceWordTokenizer, skip_special: bool) -> None:
        self._tokenizer, self._skip_special, self._started = tokenizer, skip_special, False

    def push(self, token_id: int) -> str:
        (token_id,) = require_ids([token_id], self._tokenizer.vocab_size, "stream_decoder.push")
        token = self._tokenizer.vocab[token_id]
        if self._skip_special and token_id in self._tokenizer.special_tokens.values():
            return ""
        piece = self._tokenizer._separator(self._started, token) + token
        self._started = True
        return piece

    def flush(self) -> str:
        self._started = False
        return ""


class ReferenceWordTokenizer:
    """Word-level: lowercase words and single punctuation marks; a space before each word, none
    before punctuation; ``normalize`` is the text that round-trips."""

    byte_level = False
    lowercase = True
    breaks = ""

    def __init__(self, vocab: Iterable[str] = WORD_VOCAB) -> None:
        self.vocab = list(vocab)
        self._ids = {token: token_id for token_id, token in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (self._ids[t] for t in ("<pad>", "<unk>", "<bos>", "<eos>"))
        self.special_tokens = {t: self._ids[t] for t in ("<pad>", "<unk>", "<bos>", "<eos>")}
        self._special_pattern = re.compile("|".join(re.escape(t) for t in self.special_tokens))

    def split(self, text: str) -> list[str]:
        return TOKEN.findall(require_text(text, "split").lower())

    @staticmethod
    def _separator(started: bool, token: str) -> str:
        return " " if started and not PUNCTUATION.fullmatch(token) else ""

    def _join(self, tokens: Iterable[str]) -> str:
        return "".join(self._separator(index > 0, token) + token for index, token in enumerate(tokens))

    def normalize(self, text: str) -> str:
        return self._join(self.split(text))

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        text = require_text(text, "encode")
        ids = [self.bos_id] if add_special else []
        start = 0
        for match in self._special_pattern.finditer(text) if parse_special else ():
            ids += [self._ids.get(t, self.unk_id) for t in self.split(text[start : match.start()])]
            ids.append(self._ids[match.group()])
            start = match.end()
        ids += [self._ids.get(t, self.unk_id) for t in self.split(text[start:])]
        return ids + ([self.eos_id] if add_special else [])

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        tokens = [self.vocab[i] for i in require_ids(ids, self.vocab_size, "decode")]
        if skip_special:
            tokens = [t for t in tokens if t not in self.special_tokens]
        return self._join(tokens)

    def stream_decoder(self, *, skip_special: bool = False) -> WordStream:
        return WordStream(self, skip_special)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / WORD_FILE).write_text(json.dumps({"vocab": self.vocab}, indent=1) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceWordTokenizer:
        return cls(read_json(Path(directory) / WORD_FILE)["vocab"])


class NormalizeKeepsCase(ReferenceWordTokenizer):
    """normalize forgets to lowercase, though encode does: decode(encode('The')) is 'the', normalize says 'The'."""

    breaks = "tokenizer.word_level_roundtrip"

    def normalize(self, text: str) -> str:
        return self._join(TOKEN.findall(require_text(text, "normalize")))


class DecodeGluesWords(ReferenceWordTokenizer):
    """decode joins tokens with no space, so 'the' 'cat' decodes to 'thecat', one unknown word."""

    breaks = "tokenizer.word_level_roundtrip"

    @staticmethod
    def _separator(started: bool, token: str) -> str:
        return ""


REFERENCES = [ReferenceByteTokenizer, ReferenceWordTokenizer]
MUTANTS = [
    StreamShowsBrokenCharacters,
    UnknownBytesOutOfRange,
    EndOfTextFromText,
    NormalizesToNFC,
    DecodeWrapsAround,
    CacheKeyedByLength,
    LoadForgetsMergedTokens,
    NormalizeKeepsCase,
    DecodeGluesWords,
]
