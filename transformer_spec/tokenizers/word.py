r"""Word-level tokenizer: one id per word or punctuation mark, learned from a corpus.

The simplest tokenizer that works, and the one the n-gram and word2vec parts
of the story use: split the text into words and punctuation marks, give each
distinct one an id, and map anything unseen to ``<unk>``.

Algorithm
---------
* **Split.** Optionally lowercase (the default), then cut the text into
  tokens with ``\w+|[^\w\s]``: a *word* is a maximal run of word characters
  (Unicode letters, digits and ``_``, as Python's ``re`` defines ``\w``); every
  other non-space character (punctuation, symbols, emoji, combining marks that
  follow no letter of their own) is a token by itself. Whitespace only separates.
* **Vocabulary.** ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3, then
  the corpus tokens seen at least ``min_count`` times, most frequent first,
  ties in code-point order of the token, up to ``max_vocab`` ids in all.
* **Encode** maps each token to its id, or ``<unk>``'s.
* **Decode** joins the tokens with single spaces, except:

  - no space before a punctuation token (``"sat ."`` → ``"sat."``), but an
    *opening* mark ``( [ { $ £ € # @`` keeps its space before and takes none
    after (``"said ( hi )"`` → ``"said (hi)"``, ``"costs $ 5"`` → ``"costs $5"``);
  - a *joiner* ``' ’ - /`` takes no space on either side (``"don ' t"`` →
    ``"don't"``, ``"well - known"`` → ``"well-known"``). Quotation marks written
    with ``'`` therefore glue to the next word too: a documented price of
    getting contractions right.

Normal form and round trip
--------------------------
Spacing and case are not recorded, so ``decode(encode(s))`` cannot give back
``s`` itself; it gives :meth:`WordTokenizer.normalize` ``(s)`` — the split
tokens, joined by the decode rule — whenever every token of ``s`` is in the
vocabulary. Two words are always separated by a space, so splitting the
decoded text gives back the same tokens: ``encode(decode(ids)) == ids`` for
any ids without special tokens, and ``normalize`` is idempotent.

Special tokens are matched in text only with ``encode(..., parse_special=True)``;
otherwise ``"<bos>"`` in text is the three ordinary tokens ``<``, ``bos``, ``>``.

File format
-----------
``tokenizer.json``: ``{"type": "word", "version": 1, "lowercase": true,
"vocab": ["<pad>", "<unk>", "<bos>", "<eos>", "the", ...]}`` — the id of a token
is its index in ``vocab``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from transformer_spec.spec.errors import ConfigError, DTypeError

from .errors import TokenizerFileError, read_json_file, require_ids, require_text

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)  # their ids in a trained vocabulary: 0, 1, 2, 3
TOKENIZER_FILE = "tokenizer.json"
FORMAT_TYPE, FORMAT_VERSION = "word", 1

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
PUNCTUATION_PATTERN = re.compile(r"[^\w\s]")  # the second alternative of TOKEN_PATTERN
# Marks that open what follows: a space before them, none after ("said (hi)", "$5", "#tag").
OPENING_MARKS = frozenset("([{$£€#@")
# Marks inside a word: no space on either side (contractions "don't", "well-known", "and/or").
JOINING_MARKS = frozenset("'’-/")


def join_tokens(tokens: Iterable[str]) -> str:
    """Tokens as text by the decode rule: single spaces, none before punctuation, openers and joiners apart."""
    pieces: list[str] = []
    previous: str | None = None
    for token in tokens:
        pieces.append(_separator(previous, token) + token)
        previous = token
    return "".join(pieces)


def _separator(previous: str | None, token: str) -> str:
    """The text between ``previous`` and ``token``. Two words always get a space, so
    splitting the decoded text gives back the same tokens."""
    if previous is None or previous in OPENING_MARKS or previous in JOINING_MARKS:
        return ""
    if token in OPENING_MARKS:
        return " "
    if PUNCTUATION_PATTERN.fullmatch(token):
        return ""
    return " "


class WordStreamDecoder:
    """Word-level text one id at a time: ``"".join(push(i) for i in ids) + flush() == decode(ids)``.

    Every token is whole characters, so nothing is ever held back; the decoder
    only remembers the previous token to place the space.
    """

    def __init__(self, tokenizer: WordTokenizer, skip_special: bool) -> None:
        self._tokenizer = tokenizer
        self._skip_special = skip_special
        self._previous: str | None = None

    def push(self, token_id: int) -> str:
        (checked,) = self._tokenizer._check_ids([token_id], function="stream_decoder.push")
        token = self._tokenizer._id_to_token[checked]
        if self._skip_special and token in SPECIAL_TOKENS:
            return ""
        piece = _separator(self._previous, token) + token
        self._previous = token
        return piece

    def flush(self) -> str:
        self._previous = None
        return ""

    @property
    def pending_bytes(self) -> int:
        return 0


class WordTokenizer:
    """Word and punctuation tokens with ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``.

    ``vocab`` lists the tokens in id order and must contain the four special
    tokens; every other entry must be one token under the split rule (a word,
    or one punctuation character), lowercase when ``lowercase`` is on.
    """

    byte_level = False  # spec/tokenizer.py: the round trip holds for the normal form only (see normalize)

    def __init__(self, vocab: Sequence[str], *, lowercase: bool = True) -> None:
        if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Sequence):
            raise ConfigError(f"WordTokenizer: vocab must be a list of tokens in id order, got {type(vocab).__name__}")
        if not isinstance(lowercase, bool):
            raise ConfigError(f"WordTokenizer: lowercase must be a bool, got {lowercase!r}")
        self.lowercase = lowercase
        self._id_to_token: list[str] = list(vocab)
        self._token_to_id: dict[str, int] = {}
        for token_id, token in enumerate(self._id_to_token):
            if not isinstance(token, str):
                raise ConfigError(f"WordTokenizer: vocab[{token_id}] = {token!r}; expected a str")
            if token in self._token_to_id:
                raise ConfigError(
                    f"WordTokenizer: vocab[{token_id}] = {token!r} repeats vocab[{self._token_to_id[token]}]; "
                    f"expected distinct tokens"
                )
            if token not in SPECIAL_TOKENS and self._split(token) != [token]:
                raise ConfigError(
                    f"WordTokenizer: vocab[{token_id}] = {token!r} is not a single token under the split rule "
                    f"(a run of word characters or one punctuation character"
                    f"{', lowercase' if lowercase else ''}), so encode could never produce it"
                )
            self._token_to_id[token] = token_id
        missing = [token for token in SPECIAL_TOKENS if token not in self._token_to_id]
        if missing:
            raise ConfigError(f"WordTokenizer: vocab lacks the special tokens {missing}; expected all of {list(SPECIAL_TOKENS)}")
        self._special_pattern = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))

    # ----------------------------------------------------------------- properties

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    @property
    def pad_id(self) -> int:
        return self._token_to_id[PAD_TOKEN]

    @property
    def unk_id(self) -> int:
        return self._token_to_id[UNK_TOKEN]

    @property
    def bos_id(self) -> int:
        return self._token_to_id[BOS_TOKEN]

    @property
    def eos_id(self) -> int:
        return self._token_to_id[EOS_TOKEN]

    @property
    def special_tokens(self) -> dict[str, int]:
        return {token: self._token_to_id[token] for token in SPECIAL_TOKENS}

    @property
    def vocab(self) -> list[str]:
        """The tokens in id order."""
        return list(self._id_to_token)

    def token_to_id(self, token: str) -> int | None:
        return self._token_to_id.get(token)

    def id_to_token(self, token_id: int) -> str:
        (checked,) = self._check_ids([token_id], function="id_to_token")
        return self._id_to_token[checked]

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"

    # ------------------------------------------------------------- split & encode

    def _split(self, text: str) -> list[str]:
        return TOKEN_PATTERN.findall(text.lower() if self.lowercase else text)

    def split(self, text: str) -> list[str]:
        """The word and punctuation tokens of ``text`` (after lowercasing, if on)."""
        return self._split(require_text(text, function="split"))

    def normalize(self, text: str) -> str:
        """What ``decode(encode(text))`` gives when every token of ``text`` is in the vocabulary."""
        return join_tokens(self.split(text))

    def encode(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]:
        """Ids of the tokens of ``text``; unseen tokens become ``unk_id``.

        ``add_special`` wraps the ids in ``bos_id`` … ``eos_id``. ``parse_special``
        turns the exact spelling ``<pad>``/``<unk>``/``<bos>``/``<eos>`` in ``text``
        into its id; without it that spelling is ordinary punctuation and words.
        """
        text = require_text(text, function="encode")
        ids: list[int] = [self.bos_id] if add_special else []
        if parse_special:
            start = 0
            for match in self._special_pattern.finditer(text):
                self._encode_ordinary(text[start : match.start()], ids)
                ids.append(self._token_to_id[match.group()])
                start = match.end()
            self._encode_ordinary(text[start:], ids)
        else:
            self._encode_ordinary(text, ids)
        if add_special:
            ids.append(self.eos_id)
        return ids

    def _encode_ordinary(self, text: str, ids: list[int]) -> None:
        unk_id, token_to_id = self.unk_id, self._token_to_id
        for token in self._split(text):
            ids.append(token_to_id.get(token, unk_id))

    # ------------------------------------------------------------------- decoding

    def _check_ids(self, ids: Iterable[object], *, function: str) -> list[int]:
        return require_ids(ids, function=function, vocab_size=self.vocab_size, is_assigned=lambda _: True)

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        """The tokens of ``ids`` joined by the decode rule (see the module docstring)."""
        tokens = [self._id_to_token[i] for i in self._check_ids(ids, function="decode")]
        if skip_special:
            tokens = [token for token in tokens if token not in SPECIAL_TOKENS]
        return join_tokens(tokens)

    def stream_decoder(self, *, skip_special: bool = False) -> WordStreamDecoder:
        return WordStreamDecoder(self, skip_special)

    # ------------------------------------------------------------------- training

    @classmethod
    def train(cls, texts: Iterable[str], *, max_vocab: int = 10_000, min_count: int = 1, lowercase: bool = True) -> WordTokenizer:
        """Count the tokens of ``texts``; keep the most frequent (ties: code-point order) in ``max_vocab`` ids."""
        if isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < len(SPECIAL_TOKENS):
            raise ConfigError(
                f"WordTokenizer.train: max_vocab = {max_vocab!r}; expected an int >= {len(SPECIAL_TOKENS)} "
                f"(the special tokens {list(SPECIAL_TOKENS)} take the first ids)"
            )
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ConfigError(f"WordTokenizer.train: min_count = {min_count!r}; expected an int >= 1")
        if isinstance(texts, str):
            raise DTypeError("WordTokenizer.train: texts must be an iterable of str, got one str; wrap it in a list")
        splitter = cls(list(SPECIAL_TOKENS), lowercase=lowercase)
        counts: Counter[str] = Counter()
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DTypeError(f"WordTokenizer.train: texts[{index}] is {type(text).__name__}; expected str")
            counts.update(splitter._split(text))
        for special in SPECIAL_TOKENS:  # cannot be split tokens, but be explicit: they never count twice
            counts.pop(special, None)
        kept = sorted((token for token, count in counts.items() if count >= min_count), key=lambda t: (-counts[t], t))
        return cls(list(SPECIAL_TOKENS) + kept[: max_vocab - len(SPECIAL_TOKENS)], lowercase=lowercase)

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` into ``directory`` (created if needed); returns the folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {"type": FORMAT_TYPE, "version": FORMAT_VERSION, "lowercase": self.lowercase, "vocab": self._id_to_token}
        (directory / TOKENIZER_FILE).write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, path: str | Path) -> WordTokenizer:
        """Read ``tokenizer.json`` from a folder, or the file itself."""
        path = Path(path)
        file_path = path / TOKENIZER_FILE if path.is_dir() else path
        document = read_json_file(file_path, what='a word tokenizer file ({"type": "word", "vocab": [...]})')
        return cls.from_document(document, source=file_path)

    @classmethod
    def from_document(cls, document: object, *, source: Path) -> WordTokenizer:
        """Build from the parsed JSON of ``tokenizer.json``; ``source`` names the file in errors."""
        expected = f'expected {{"type": "{FORMAT_TYPE}", "version": {FORMAT_VERSION}, "lowercase": bool, "vocab": [str, ...]}}'
        if not isinstance(document, dict):
            raise TokenizerFileError(f"{source}: holds a JSON {type(document).__name__} (not an object); {expected}", path=source)
        if document.get("type") != FORMAT_TYPE:
            raise TokenizerFileError(
                f'{source}: "type" is {document.get("type")!r}, not {FORMAT_TYPE!r}; {expected}', path=source
            )
        if document.get("version") != FORMAT_VERSION:
            raise TokenizerFileError(
                f'{source}: "version" is {document.get("version")!r}; this code reads version {FORMAT_VERSION}', path=source
            )
        vocab, lowercase = document.get("vocab"), document.get("lowercase", True)
        if not isinstance(vocab, list):
            raise TokenizerFileError(f'{source}: "vocab" is {type(vocab).__name__}; {expected}', path=source)
        try:
            return cls(vocab, lowercase=lowercase)
        except ConfigError as err:
            raise TokenizerFileError(f"{source}: {err}", path=source) from None
