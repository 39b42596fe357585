r"""Byte-level BPE: GPT-2's tokenizer, written from scratch in pure Python.

Algorithm
---------
1. **Bytes, not characters.** The text is encoded as UTF-8, so every string —
   any script, emoji, combining marks — becomes a sequence over an alphabet of
   exactly 256 symbols, and nothing is ever out of vocabulary. GPT-2 shows
   each byte as a printable Unicode character (:func:`bytes_to_unicode`: the
   188 printable Latin-1 bytes stand for themselves, the other 68 are shifted
   to ``U+0100`` onwards, so the space byte is ``Ġ`` and newline ``Ċ``); the
   tokens of ``vocab.json`` and ``merges.txt`` are written in that alphabet.
2. **Pre-tokenisation.** GPT-2's regular expression cuts the text into words
   before any merging, so a token never spans two words::

       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

   (English contractions; a run of letters, of digits, or of other symbols,
   each with at most one leading space; whitespace, leaving the last space
   for the next word).
3. **Merges by rank.** ``merges.txt`` lists pairs of symbols in the order
   training learned them; a pair's line number is its *rank*. Each word starts
   as its byte symbols; repeatedly take the adjacent pair with the lowest rank
   and merge every occurrence of it, left to right, until no adjacent pair has
   a rank. Each resulting symbol is a key of ``vocab.json``; its value is the id.
   The result depends only on the word, so it is cached per pre-token word.
4. **Decoding** maps each id back to its bytes, concatenates them, and decodes
   UTF-8 (a byte sequence that is not valid UTF-8, which arbitrary ids can
   form, decodes with U+FFFD replacement characters, like ``bytes.decode(errors="replace")``).

Training (:meth:`ByteLevelBPETokenizer.train`) counts the pre-token words of
the corpus (text is first cut at special tokens, which are never learned
from), starts from the 256 byte symbols, and repeatedly merges the most
frequent adjacent pair. **Ties** in frequency go to the pair whose
``(left id, right id)`` is smallest, where ids are vocabulary ids: special
tokens first, then the 256 bytes in byte order, then merged tokens in the
order they were learned. Training stops when the vocabulary reaches
``vocab_size`` or no pair occurs ``min_frequency`` times. A merge whose result
would spell a special token is skipped, so text can never produce one.

Special tokens (``<|endoftext|>``) are vocabulary entries that are neither a
byte nor the result of a merge. ``encode`` treats their spelling in text as
ordinary text unless ``parse_special=True``.

Which regular-expression engine
-------------------------------
GPT-2's pattern uses ``\p{L}`` / ``\p{N}``, which the standard ``re`` module
lacks. We use the third-party ``regex`` module when it is installed — it is
what OpenAI's reference ``encoder.py`` used, and ``transformers`` depends on it,
so it is present wherever the test extras are. Without it we build the same
pattern for ``re`` with explicit character classes: ``\p{L}`` / ``\p{N}`` from
``unicodedata`` categories, and ``\s`` as the Unicode White_Space property (not
``re``'s ``\s``, which also matches U+001C..U+001F). Measured here, the two
engines and the ``tokenizers`` library agree on every code point assigned in
Python's Unicode database; they can differ only on code points that newer
Unicode versions assigned. ``PRETOKENIZER_ENGINE`` says which is in use.

References
----------
Sennrich et al. (2016), *Neural Machine Translation of Rare Words with Subword
Units*; Radford et al. (2019), *Language Models are Unsupervised Multitask
Learners*; OpenAI's ``gpt-2/src/encoder.py``.
"""

from __future__ import annotations

import codecs
import functools
import heapq
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from re import Pattern

from transformer_spec.spec.errors import ConfigError, DTypeError

from .errors import (
    TokenizerFileError,
    lone_surrogate_error,
    read_json_file,
    read_text_file,
    require_ids,
    require_text,
)

DEFAULT_SPECIAL_TOKEN = "<|endoftext|>"
MERGES_HEADER = "#version: 0.2"  # first line of GPT-2's merges.txt (OpenAI's vocab.bpe)
VOCAB_FILE, MERGES_FILE, SPECIAL_TOKENS_MAP_FILE = "vocab.json", "merges.txt", "special_tokens_map.json"

GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Words longer than this are encoded but not cached: one pathological word
# (a megabyte of letters) must not pin its result in memory.
_CACHE_MAX_WORD_LENGTH = 256
_CACHE_MAX_ENTRIES = 1 << 17

# The Unicode White_Space property (PropList.txt). This is what `regex` and the
# `tokenizers` library mean by \s; `re`'s \s adds U+001C..U+001F.
_WHITE_SPACE_CODE_POINTS = (
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680]
    + list(range(0x2000, 0x200B))
    + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each byte value to a printable character standing for it.

    Printable Latin-1 bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) map to
    themselves; the remaining 68 (controls, space, soft hyphen, ...) map to
    ``chr(256 + n)`` in byte order, so none is whitespace or a control character.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return dict(sorted(table.items()))


BYTE_TO_UNICODE: tuple[str, ...] = tuple(bytes_to_unicode().values())  # index = byte value
UNICODE_TO_BYTE: dict[str, int] = {symbol: byte for byte, symbol in enumerate(BYTE_TO_UNICODE)}


def _class_of(code_points: Iterable[int]) -> str:
    """A regular-expression character-class body matching exactly ``code_points``."""
    parts: list[str] = []
    run_start = previous = None
    for cp in sorted(code_points):
        if previous is not None and cp == previous + 1:
            previous = cp
            continue
        if run_start is not None:
            parts.append(_range(run_start, previous))
        run_start = previous = cp
    if run_start is not None:
        parts.append(_range(run_start, previous))
    return "".join(parts)


def _range(first: int, last: int) -> str:
    escape = lambda cp: f"\\U{cp:08X}"  # noqa: E731 — unambiguous for any code point
    return escape(first) if first == last else f"{escape(first)}-{escape(last)}"


def stdlib_split_pattern() -> str:
    """GPT-2's pattern spelled for the standard ``re`` module (explicit Unicode classes)."""
    letters, numbers = [], []
    for cp in range(0x110000):
        category = unicodedata.category(chr(cp))
        if category[0] == "L":
            letters.append(cp)
        elif category[0] == "N":
            numbers.append(cp)
    L, N, WS = _class_of(letters), _class_of(numbers), _class_of(_WHITE_SPACE_CODE_POINTS)
    return (
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{WS}{L}{N}]+"
        rf"|[{WS}]+(?![^{WS}])|[{WS}]+"
    )


@functools.lru_cache(maxsize=2)
def compile_split_pattern(engine: str) -> Pattern[str]:
    """GPT-2's pre-tokenisation pattern compiled by ``engine``: ``"regex"`` or ``"re"``."""
    if engine == "regex":
        import regex  # noqa: PLC0415 — optional dependency, imported only when chosen

        return regex.compile(GPT2_SPLIT_PATTERN)
    if engine == "re":
        return re.compile(stdlib_split_pattern())
    raise ConfigError(f"compile_split_pattern: engine must be 'regex' or 're', got {engine!r}")


def _available_engine() -> str:
    try:
        import regex  # noqa: F401, PLC0415
    except ImportError:
        return "re"
    return "regex"


PRETOKENIZER_ENGINE = _available_engine()


def pretokenize(text: str, *, engine: str | None = None) -> list[str]:
    """Cut ``text`` into GPT-2's pre-token words (their concatenation is ``text``)."""
    return compile_split_pattern(engine or PRETOKENIZER_ENGINE).findall(text)


class _UseDefault:
    """Marks a special-token role left to the default (``<|endoftext|>`` when the vocabulary has it)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _UseDefault()


class ByteStreamDecoder:
    """Turns ids into text one at a time, holding back an incomplete UTF-8 tail.

    A character such as ``é`` or an emoji can be split over several byte-level
    tokens; emitting text after each token would show a broken character. This
    decoder keeps the bytes of an unfinished UTF-8 sequence until the token that
    completes it arrives, so ``"".join(push(i) for i in ids) + flush()`` equals
    ``decode(ids)`` exactly, and no piece ends in a replacement character that
    the full decode does not have.
    """

    def __init__(self, token_bytes: Callable[[int], bytes], check_id: Callable[[object], int]) -> None:
        self._token_bytes = token_bytes
        self._check_id = check_id
        # Python's incremental UTF-8 decoder with errors="replace" produces, piece by
        # piece, exactly what bytes.decode(errors="replace") produces at once.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The text that ``token_id`` completes (possibly ``""`` while a character is unfinished)."""
        return self._decoder.decode(self._token_bytes(self._check_id(token_id)), final=False)

    def flush(self) -> str:
        """End of stream: whatever is held back, decoded (an unfinished tail becomes U+FFFD)."""
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text

    @property
    def pending_bytes(self) -> int:
        """How many bytes are held back waiting for the rest of their character."""
        return len(self._decoder.getstate()[0])


class ByteLevelBPETokenizer:
    """GPT-2's byte-level BPE tokenizer: ``vocab.json`` + ``merges.txt`` in, ids out.

    ``vocab`` maps each token (in GPT-2's byte alphabet, or a special token's
    text) to its id; ``merges`` lists the pairs in rank order. ``special_tokens``
    defaults to the vocabulary entries that are neither a byte nor the result of
    a merge. ``bos_token`` / ``eos_token`` default to ``<|endoftext|>`` when it is
    a special token (GPT-2 uses it for both); ``unk_token`` / ``pad_token`` to none
    (a byte-level vocabulary never needs an unknown token).
    """

    byte_level = True  # spec/tokenizer.py: every Unicode string round-trips exactly

    def __init__(
        self,
        vocab: Mapping[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        special_tokens: Iterable[str] | None = None,
        bos_token: str | None | _UseDefault = DEFAULT,
        eos_token: str | None | _UseDefault = DEFAULT,
        unk_token: str | None = None,
        pad_token: str | None = None,
    ) -> None:
        self._token_to_id = _checked_vocab(vocab)
        self._merges: tuple[tuple[str, str], ...] = tuple((str(a), str(b)) for a, b in merges)
        self._ranks = _checked_ranks(self._merges, self._token_to_id)
        missing_bytes = [f"{s!r} (byte {b})" for b, s in enumerate(BYTE_TO_UNICODE) if s not in self._token_to_id]
        if missing_bytes:
            raise ConfigError(
                f"ByteLevelBPETokenizer: vocab lacks {len(missing_bytes)} of the 256 byte symbols, "
                f"e.g. {', '.join(missing_bytes[:5])}; expected every byte so that any text can be encoded"
            )

        merge_results = {a + b for a, b in self._merges}
        if special_tokens is None:
            specials = [t for t in self._token_to_id if t not in UNICODE_TO_BYTE and t not in merge_results]
        else:
            specials = list(special_tokens)
            for token in specials:
                if not isinstance(token, str) or token not in self._token_to_id:
                    raise ConfigError(f"ByteLevelBPETokenizer: special token {token!r} is not in the vocab")
                if token in UNICODE_TO_BYTE or token in merge_results:
                    raise ConfigError(
                        f"ByteLevelBPETokenizer: special token {token!r} is also a byte or a merge result, so "
                        f"ordinary text could produce it; expected a special token that no merge produces"
                    )
        for token in specials:
            try:
                token.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"ByteLevelBPETokenizer: special token {token!r} holds a lone surrogate; expected valid Unicode"
                ) from None
        self._special_to_id = {token: self._token_to_id[token] for token in specials}

        default_role = DEFAULT_SPECIAL_TOKEN if DEFAULT_SPECIAL_TOKEN in self._special_to_id else None
        self._role_tokens = {
            "bos_token": default_role if bos_token is DEFAULT else bos_token,
            "eos_token": default_role if eos_token is DEFAULT else eos_token,
            "unk_token": unk_token,
            "pad_token": pad_token,
        }
        for role, token in self._role_tokens.items():
            if token is not None and token not in self._special_to_id:
                raise ConfigError(
                    f"ByteLevelBPETokenizer: {role}={token!r} is not a special token; "
                    f"expected one of {sorted(self._special_to_id)} or None"
                )

        self.vocab_size = max(self._token_to_id.values()) + 1
        self._id_to_token: list[str | None] = [None] * self.vocab_size
        for token, token_id in self._token_to_id.items():
            self._id_to_token[token_id] = token
        self._id_to_bytes: list[bytes | None] = [None if token is None else self._bytes_of(token) for token in self._id_to_token]
        # Longest first, so that a special token that extends another one wins.
        self._special_pattern = (
            re.compile("|".join(re.escape(t) for t in sorted(self._special_to_id, key=len, reverse=True)))
            if self._special_to_id
            else None
        )
        self._split_pattern = compile_split_pattern(PRETOKENIZER_ENGINE)
        self._cache: dict[str, tuple[int, ...]] = {}

    def _bytes_of(self, token: str) -> bytes:
        if token in self._special_to_id:
            return token.encode("utf-8")
        return bytes(UNICODE_TO_BYTE[symbol] for symbol in token)

    # ----------------------------------------------------------------- properties

    @property
    def bos_id(self) -> int | None:
        return self._role_id("bos_token")

    @property
    def eos_id(self) -> int | None:
        return self._role_id("eos_token")

    @property
    def unk_id(self) -> int | None:
        return self._role_id("unk_token")

    @property
    def pad_id(self) -> int | None:
        return self._role_id("pad_token")

    def _role_id(self, role: str) -> int | None:
        token = self._role_tokens[role]
        return None if token is None else self._special_to_id[token]

    @property
    def special_tokens(self) -> dict[str, int]:
        """Each special token's text and id."""
        return dict(self._special_to_id)

    @property
    def vocab(self) -> dict[str, int]:
        return dict(self._token_to_id)

    @property
    def merges(self) -> tuple[tuple[str, str], ...]:
        return self._merges

    def token_to_id(self, token: str) -> int | None:
        return self._token_to_id.get(token)

    def id_to_token(self, token_id: int) -> str:
        (checked,) = self._check_ids([token_id], function="id_to_token")
        return self._id_to_token[checked]  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"ByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
            f"special_tokens={sorted(self._special_to_id)})"
        )

    # ------------------------------------------------------------------- encoding

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """The token ids of ``text``.

        ``add_special`` puts ``bos_id`` first and ``eos_id`` last (each only if the
        tokenizer has one). ``parse_special`` turns the spelling of a special token
        in ``text`` into its id; without it that spelling is ordinary text.
        """
        text = require_text(text, function="encode")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise lone_surrogate_error(text, err, function="encode") from None
        ids: list[int] = []
        if add_special and self.bos_id is not None:
            ids.append(self.bos_id)
        if parse_special and self._special_pattern is not None:
            start = 0
            for match in self._special_pattern.finditer(text):
                self._encode_ordinary(text[start : match.start()], ids)
                ids.append(self._special_to_id[match.group()])
                start = match.end()
            self._encode_ordinary(text[start:], ids)
        else:
            self._encode_ordinary(text, ids)
        if add_special and self.eos_id is not None:
            ids.append(self.eos_id)
        return ids

    def _encode_ordinary(self, text: str, ids: list[int]) -> None:
        cache = self._cache
        for word in self._split_pattern.findall(text):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = self._encode_word(word)
                if len(word) <= _CACHE_MAX_WORD_LENGTH:
                    if len(cache) >= _CACHE_MAX_ENTRIES:
                        cache.clear()  # crude, but keeps memory bounded on an endless stream of new words
                    cache[word] = word_ids
            ids.extend(word_ids)

    def _encode_word(self, word: str) -> tuple[int, ...]:
        symbols = [BYTE_TO_UNICODE[byte] for byte in word.encode("utf-8")]
        token_to_id = self._token_to_id
        return tuple(token_to_id[symbol] for symbol in self._apply_merges(symbols))

    def _apply_merges(self, symbols: list[str]) -> list[str]:
        """GPT-2's ``bpe()``: merge the lowest-ranked adjacent pair everywhere, until none has a rank."""
        ranks = self._ranks
        while len(symbols) > 1:
            best_rank, best_pair = None, None
            for pair in zip(symbols, symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_pair = rank, pair
            if best_pair is None:
                break
            first, second = best_pair
            merged: list[str] = []
            index, last = 0, len(symbols) - 1
            while index <= last:
                if index < last and symbols[index] == first and symbols[index + 1] == second:
                    merged.append(first + second)
                    index += 2
                else:
                    merged.append(symbols[index])
                    index += 1
            symbols = merged
        return symbols

    # ------------------------------------------------------------------- decoding

    def _check_ids(self, ids: Iterable[object], *, function: str) -> list[int]:
        return require_ids(
            ids,
            function=function,
            vocab_size=self.vocab_size,
            is_assigned=lambda i: self._id_to_token[i] is not None,
        )

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        """The text of ``ids``; invalid UTF-8 (possible from arbitrary ids) decodes to U+FFFD."""
        checked = self._check_ids(ids, function="decode")
        return b"".join(self._piece_bytes(i, skip_special) for i in checked).decode("utf-8", errors="replace")

    def _piece_bytes(self, token_id: int, skip_special: bool) -> bytes:
        if skip_special and self._id_to_token[token_id] in self._special_to_id:
            return b""
        return self._id_to_bytes[token_id]  # type: ignore[return-value]

    def stream_decoder(self, *, skip_special: bool = False) -> ByteStreamDecoder:
        """A decoder for ids arriving one at a time (generation); see :class:`ByteStreamDecoder`."""

        def check_id(token_id: object) -> int:
            (checked,) = self._check_ids([token_id], function="stream_decoder.push")
            return checked

        return ByteStreamDecoder(lambda i: self._piece_bytes(i, skip_special), check_id)

    # ------------------------------------------------------------------- training

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        special_tokens: Sequence[str] = (DEFAULT_SPECIAL_TOKEN,),
        *,
        min_frequency: int = 2,
        bos_token: str | None | _UseDefault = DEFAULT,
        eos_token: str | None | _UseDefault = DEFAULT,
        unk_token: str | None = None,
        pad_token: str | None = None,
    ) -> ByteLevelBPETokenizer:
        """Learn merges from ``texts`` until the vocabulary has ``vocab_size`` tokens.

        Deterministic: the same texts and options always give the same files.
        See the module docstring for the tie rule.
        """
        special_tokens = list(special_tokens)
        _check_training_options(vocab_size, special_tokens, min_frequency)

        word_counts = _count_words(texts, special_tokens)

        id_to_token: list[str] = list(special_tokens) + list(BYTE_TO_UNICODE)
        token_to_id = {token: token_id for token_id, token in enumerate(id_to_token)}
        special_set = set(special_tokens)
        first_byte_id = len(special_tokens)

        words: list[list[int]] = []
        counts: list[int] = []
        for word, count in sorted(word_counts.items()):  # sorted: identical runs regardless of dict order
            words.append([first_byte_id + byte for byte in word.encode("utf-8")])
            counts.append(count)

        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        pair_words: dict[tuple[int, int], set[int]] = defaultdict(set)  # which words hold the pair
        for word_index, (symbols, count) in enumerate(zip(words, counts)):
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += count
                pair_words[pair].add(word_index)

        # Max-heap by count, ties to the smallest (left id, right id): the documented rule.
        # Entries go stale when a count changes; a popped entry is used only if current.
        heap = [(-count, left, right) for (left, right), count in pair_counts.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        blocked: set[tuple[int, int]] = set()

        while len(id_to_token) < vocab_size and heap:
            negative_count, left, right = heapq.heappop(heap)
            pair = (left, right)
            if pair_counts.get(pair) != -negative_count or pair in blocked:
                continue
            if -negative_count < min_frequency:
                break
            merged_token = id_to_token[left] + id_to_token[right]
            if merged_token in special_set:
                blocked.add(pair)  # text must never produce a special token
                continue
            merged_id = token_to_id.get(merged_token)
            if merged_id is None:  # a different pair may already have produced the same string
                merged_id = len(id_to_token)
                id_to_token.append(merged_token)
                token_to_id[merged_token] = merged_id
            merges.append((id_to_token[left], id_to_token[right]))

            deltas: dict[tuple[int, int], int] = defaultdict(int)
            for word_index in pair_words.pop(pair):
                old_symbols = words[word_index]
                new_symbols = _merge_pair(old_symbols, left, right, merged_id)
                if len(new_symbols) == len(old_symbols):
                    continue  # stale entry: an earlier merge already consumed the pair here
                count = counts[word_index]
                for old_pair in zip(old_symbols, old_symbols[1:]):
                    deltas[old_pair] -= count
                for new_pair in zip(new_symbols, new_symbols[1:]):
                    deltas[new_pair] += count
                    pair_words[new_pair].add(word_index)
                words[word_index] = new_symbols
            for changed_pair, delta in deltas.items():
                if delta == 0:
                    continue
                new_count = pair_counts.get(changed_pair, 0) + delta
                if new_count > 0:
                    pair_counts[changed_pair] = new_count
                    heapq.heappush(heap, (-new_count, *changed_pair))
                else:
                    pair_counts.pop(changed_pair, None)

        return cls(
            token_to_id,
            merges,
            special_tokens=special_tokens,
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
        )

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        """Write ``vocab.json`` and ``merges.txt`` in GPT-2's format, plus ``special_tokens_map.json``.

        ``vocab.json`` is one JSON object ordered by id, written like OpenAI's
        ``encoder.json`` (``json.dumps`` defaults); ``merges.txt`` is the line
        ``#version: 0.2`` then one ``left right`` pair per line in rank order.
        ``special_tokens_map.json`` (the Hugging Face file of that name) records
        which special token plays which role; GPT-2's two files have no place for it.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ordered_vocab = dict(sorted(self._token_to_id.items(), key=lambda item: item[1]))
        (directory / VOCAB_FILE).write_text(json.dumps(ordered_vocab), encoding="utf-8")
        merge_lines = [MERGES_HEADER] + [f"{left} {right}" for left, right in self._merges]
        (directory / MERGES_FILE).write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
        roles = {role: token for role, token in self._role_tokens.items() if token is not None}
        (directory / SPECIAL_TOKENS_MAP_FILE).write_text(json.dumps(roles, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ByteLevelBPETokenizer:
        """Read a folder written by :meth:`save`, by GPT-2, or by the ``tokenizers`` library."""
        directory = Path(directory)
        if not directory.is_dir():
            raise TokenizerFileError(
                f"ByteLevelBPETokenizer.load: {directory} is not a folder; "
                f"expected a folder holding {VOCAB_FILE} and {MERGES_FILE}",
                path=directory,
            )
        roles: dict[str, str | None] = {}
        roles_path = directory / SPECIAL_TOKENS_MAP_FILE
        if roles_path.is_file():
            roles = _read_special_tokens_map(roles_path)
        return cls.from_files(directory / VOCAB_FILE, directory / MERGES_FILE, **roles)

    @classmethod
    def from_files(
        cls,
        vocab_path: str | Path,
        merges_path: str | Path,
        *,
        bos_token: str | None | _UseDefault = DEFAULT,
        eos_token: str | None | _UseDefault = DEFAULT,
        unk_token: str | None = None,
        pad_token: str | None = None,
    ) -> ByteLevelBPETokenizer:
        """Read GPT-2's ``vocab.json`` and ``merges.txt`` (any file names)."""
        vocab_path, merges_path = Path(vocab_path), Path(merges_path)
        for path, name in ((vocab_path, VOCAB_FILE), (merges_path, MERGES_FILE)):
            if not path.is_file():  # both checked before parsing either: say what is missing first
                raise TokenizerFileError(
                    f"ByteLevelBPETokenizer.from_files: {path} does not exist or is not a file; expected GPT-2's {name} there",
                    path=path,
                )
        vocab = _read_vocab(vocab_path)
        merges = _read_merges(merges_path, vocab)
        try:
            return cls(vocab, merges, bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, pad_token=pad_token)
        except ConfigError as err:
            raise TokenizerFileError(f"{vocab_path}: {err}", path=vocab_path) from None


# ------------------------------------------------------------------------ helpers


def _merge_pair(symbols: list[int], left: int, right: int, merged: int) -> list[int]:
    """``symbols`` with every non-overlapping (left, right), scanning left to right, replaced by ``merged``."""
    result: list[int] = []
    index, last = 0, len(symbols) - 1
    while index <= last:
        if index < last and symbols[index] == left and symbols[index + 1] == right:
            result.append(merged)
            index += 2
        else:
            result.append(symbols[index])
            index += 1
    return result


def _count_words(texts: Iterable[str], special_tokens: Sequence[str]) -> Counter[str]:
    if isinstance(texts, str):
        raise DTypeError("ByteLevelBPETokenizer.train: texts must be an iterable of str, got one str; wrap it in a list")
    split_pattern = compile_split_pattern(PRETOKENIZER_ENGINE)
    special_pattern = (
        re.compile("|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True))) if special_tokens else None
    )
    word_counts: Counter[str] = Counter()
    for text_index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DTypeError(f"ByteLevelBPETokenizer.train: texts[{text_index}] is {type(text).__name__}; expected str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise lone_surrogate_error(text, err, function=f"ByteLevelBPETokenizer.train: texts[{text_index}]") from None
        pieces = special_pattern.split(text) if special_pattern is not None else [text]
        for piece in pieces:
            word_counts.update(split_pattern.findall(piece))
    return word_counts


def _check_training_options(vocab_size: object, special_tokens: list[str], min_frequency: object) -> None:
    where = "ByteLevelBPETokenizer.train"
    for position, token in enumerate(special_tokens):
        if not isinstance(token, str) or not token:
            raise ConfigError(f"{where}: special_tokens[{position}] = {token!r}; expected a non-empty str")
        if token in UNICODE_TO_BYTE:
            raise ConfigError(
                f"{where}: special token {token!r} is also the byte symbol of byte {UNICODE_TO_BYTE[token]}; "
                f"expected a special token that is not a single byte symbol (e.g. '<|endoftext|>')"
            )
    if len(set(special_tokens)) != len(special_tokens):
        raise ConfigError(f"{where}: special_tokens {special_tokens} has duplicates; expected distinct tokens")
    minimum = len(special_tokens) + 256
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < minimum:
        raise ConfigError(
            f"{where}: vocab_size = {vocab_size!r}; expected an int >= {minimum} "
            f"(the {len(special_tokens)} special tokens plus the 256 byte symbols)"
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ConfigError(f"{where}: min_frequency = {min_frequency!r}; expected an int >= 1")


def _checked_vocab(vocab: Mapping[str, int]) -> dict[str, int]:
    where = "ByteLevelBPETokenizer"
    if not isinstance(vocab, Mapping) or not vocab:
        raise ConfigError(f"{where}: vocab must be a non-empty mapping from token to id, got {type(vocab).__name__}")
    token_of_id: dict[int, str] = {}
    for token, token_id in vocab.items():
        if not isinstance(token, str) or not token:
            raise ConfigError(f"{where}: vocab key {token!r} is not a non-empty str")
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
            raise ConfigError(f"{where}: vocab[{token!r}] = {token_id!r}; expected an int id >= 0")
        if token_id in token_of_id:
            raise ConfigError(
                f"{where}: id {token_id} is given to both {token_of_id[token_id]!r} and {token!r}; "
                f"expected each id to name one token"
            )
        token_of_id[token_id] = token
    return dict(vocab)


def _checked_ranks(merges: Sequence[tuple[str, str]], token_to_id: Mapping[str, int]) -> dict[tuple[str, str], int]:
    ranks: dict[tuple[str, str], int] = {}
    for rank, (left, right) in enumerate(merges):
        for part in (left, right, left + right):
            if part not in token_to_id:
                raise ConfigError(
                    f"ByteLevelBPETokenizer: merge {rank} ({left!r} {right!r}) needs {part!r}, "
                    f"which is not in the vocab; expected every merge's parts and result in the vocab"
                )
        if (left, right) in ranks:
            raise ConfigError(
                f"ByteLevelBPETokenizer: merge {rank} ({left!r} {right!r}) repeats merge {ranks[(left, right)]}; "
                f"expected each pair once"
            )
        ranks[(left, right)] = rank
    return ranks


def _read_vocab(path: Path) -> dict[str, int]:
    vocab = read_json_file(path, what=f"a GPT-2 {VOCAB_FILE} (a JSON object from token to id)")
    if not isinstance(vocab, dict) or not vocab:
        found = "an empty object" if isinstance(vocab, dict) else f"a JSON {_json_type_name(vocab)}"
        raise TokenizerFileError(f"{path}: holds {found}; expected a non-empty object mapping each token to its id", path=path)
    for token, token_id in vocab.items():
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
            raise TokenizerFileError(f"{path}: the id of {token!r} is {token_id!r}; expected an integer >= 0", path=path)
    return vocab


def _json_type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _read_merges(path: Path, vocab: Mapping[str, int]) -> list[tuple[str, str]]:
    text = read_text_file(path, what=f"a GPT-2 {MERGES_FILE} ('{MERGES_HEADER}' then one 'left right' pair per line)")
    merges: list[tuple[str, str]] = []
    first_line_of: dict[tuple[str, str], int] = {}
    for line_number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line or (line_number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise TokenizerFileError(
                f"{path} line {line_number}: {line!r} is not a merge; expected two tokens separated by one space",
                path=path,
                line=line_number,
            )
        left, right = parts
        for part in (left, right, left + right):
            if part not in vocab:
                raise TokenizerFileError(
                    f"{path} line {line_number}: the merge {line!r} needs {part!r}, which is not in the vocabulary; "
                    f"expected vocab.json and merges.txt from the same tokenizer",
                    path=path,
                    line=line_number,
                )
        if (left, right) in first_line_of:
            raise TokenizerFileError(
                f"{path} line {line_number}: the merge {line!r} already appears on line {first_line_of[(left, right)]}; "
                f"expected each pair once",
                path=path,
                line=line_number,
            )
        first_line_of[(left, right)] = line_number
        merges.append((left, right))
    return merges


def _read_special_tokens_map(path: Path) -> dict[str, str | None]:
    """The roles of ``special_tokens_map.json``; values are a token or ``{"content": token}`` (Hugging Face)."""
    raw = read_json_file(path, what="a JSON object from role (bos_token, ...) to special token")
    if not isinstance(raw, dict):
        raise TokenizerFileError(f"{path}: holds a JSON {_json_type_name(raw)}; expected an object", path=path)
    roles: dict[str, str | None] = {"bos_token": None, "eos_token": None}  # absent from the file = no such role
    for role in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = raw.get(role)
        if isinstance(value, dict):
            value = value.get("content")
        if value is not None and not isinstance(value, str):
            raise TokenizerFileError(f"{path}: {role} is {value!r}; expected a token string", path=path)
        roles[role] = value
    return roles
