"""Tokenizers: text to token ids and back.

Two kinds, one interface (:class:`Tokenizer`), specified in ``spec/tokenizer.py``:

* :class:`WordTokenizer` — words and punctuation marks, ``<pad>``/``<unk>``/``<bos>``/``<eos>``,
  saved as ``tokenizer.json``.
* :class:`ByteLevelBPETokenizer` — GPT-2's byte-level BPE, saved as
  ``vocab.json`` + ``merges.txt`` (interchangeable with GPT-2's and the
  ``tokenizers`` library's files).

:func:`load_tokenizer` reads either from a folder, telling them apart by their files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from .bpe import (
    DEFAULT_SPECIAL_TOKEN,
    MERGES_FILE,
    PRETOKENIZER_ENGINE,
    VOCAB_FILE,
    ByteLevelBPETokenizer,
    ByteStreamDecoder,
    bytes_to_unicode,
    pretokenize,
)
from .errors import InvalidTextError, TokenizerFileError, read_json_file
from .hf_json import HFByteLevelBPETokenizer, is_hf_tokenizer_document, load_hf_tokenizer
from .word import TOKENIZER_FILE, WordStreamDecoder, WordTokenizer


@runtime_checkable
class StreamDecoder(Protocol):
    def push(self, token_id: int) -> str: ...
    def flush(self) -> str: ...


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of the application may rely on, whichever kind it holds."""

    vocab_size: int  # ids lie in [0, vocab_size)
    byte_level: bool  # True: decode(encode(s)) == s for every Unicode string s

    @property
    def bos_id(self) -> int | None: ...
    @property
    def eos_id(self) -> int | None: ...
    @property
    def unk_id(self) -> int | None: ...
    @property
    def pad_id(self) -> int | None: ...
    @property
    def special_tokens(self) -> dict[str, int]: ...

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]: ...
    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str: ...
    def stream_decoder(self, *, skip_special: bool = False) -> StreamDecoder: ...
    def save(self, directory: str | Path) -> Path: ...


def load_tokenizer(path: str | Path) -> WordTokenizer | ByteLevelBPETokenizer | HFByteLevelBPETokenizer:
    """The tokenizer saved in folder ``path`` (or the word tokenizer file ``path`` itself).

    * ``tokenizer.json`` with ``"type": "word"`` → :class:`WordTokenizer`;
    * a Hugging Face ``tokenizer.json`` (byte-level BPE: Llama 3, Qwen2, SmolLM) →
      :class:`HFByteLevelBPETokenizer` (see :mod:`transformer_spec.tokenizers.hf_json`);
    * ``vocab.json`` and ``merges.txt`` → :class:`ByteLevelBPETokenizer`
      (with ``special_tokens_map.json`` for the roles, when present).
    """
    path = Path(path)
    if path.is_file():
        if path.name == VOCAB_FILE or path.name == MERGES_FILE:
            return ByteLevelBPETokenizer.load(path.parent)
        return _load_tokenizer_json(path)
    if not path.exists():
        raise TokenizerFileError(
            f"load_tokenizer: {path} does not exist; expected a folder holding {TOKENIZER_FILE} "
            f"(word tokenizer) or {VOCAB_FILE} + {MERGES_FILE} (byte-level BPE)",
            path=path,
        )
    if (path / TOKENIZER_FILE).is_file():
        return _load_tokenizer_json(path / TOKENIZER_FILE)
    has_vocab, has_merges = (path / VOCAB_FILE).is_file(), (path / MERGES_FILE).is_file()
    if has_vocab and has_merges:
        return ByteLevelBPETokenizer.load(path)
    if has_vocab != has_merges:
        present, absent = (VOCAB_FILE, MERGES_FILE) if has_vocab else (MERGES_FILE, VOCAB_FILE)
        raise TokenizerFileError(
            f"load_tokenizer: {path} has {present} but no {absent}; a byte-level BPE tokenizer needs both",
            path=path / absent,
        )
    found = sorted(child.name for child in path.iterdir())[:10]
    raise TokenizerFileError(
        f"load_tokenizer: {path} holds no tokenizer (found: {found or 'nothing'}); expected {TOKENIZER_FILE} "
        f"(word tokenizer) or {VOCAB_FILE} + {MERGES_FILE} (byte-level BPE)",
        path=path,
    )


def _load_tokenizer_json(file_path: Path) -> WordTokenizer:
    document = read_json_file(file_path, what='a tokenizer file ({"type": "word", ...})')
    if is_hf_tokenizer_document(document):
        # The Hugging Face `tokenizers` single-file format shares the name: a byte-level BPE is read into ours.
        return load_hf_tokenizer(file_path)
    kinds = {"word": WordTokenizer}
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in kinds:
        raise TokenizerFileError(f'{file_path}: "type" is {kind!r}; expected one of {sorted(kinds)}', path=file_path)
    return kinds[kind].from_document(document, source=file_path)


__all__ = [
    "ByteLevelBPETokenizer",
    "ByteStreamDecoder",
    "HFByteLevelBPETokenizer",
    "load_hf_tokenizer",
    "WordTokenizer",
    "WordStreamDecoder",
    "Tokenizer",
    "StreamDecoder",
    "load_tokenizer",
    "TokenizerFileError",
    "InvalidTextError",
    "DEFAULT_SPECIAL_TOKEN",
    "PRETOKENIZER_ENGINE",
    "bytes_to_unicode",
    "pretokenize",
]
