r"""Hugging Face ``tokenizer.json`` (byte-level BPE: Llama 3, Qwen2, SmolLM, GPT-2) read into our BPE.

A ``tokenizer.json`` describes a pipeline; for the byte-level BPE kind it is:

1. **Added tokens** (``added_tokens``: ``<|begin_of_text|>``, ``<|im_start|>``, ...)
   are cut out of the text first and become their ids directly (here: with
   ``encode(..., parse_special=True)``, which is what the ``tokenizers``
   library does by default).
2. **Normalizer**: none, or one Unicode normal form (Qwen2 uses NFC).
3. **Pre-tokenizer**: a sequence of ``Split`` (a regular expression whose
   matches and the gaps between them become words — Llama 3's and Qwen2's
   pattern), ``Digits`` (each digit, or each run of digits, its own word —
   SmolLM) and ``ByteLevel`` (GPT-2's pattern when ``use_regex``, an optional
   leading space).
4. **Model**: byte-level BPE (:mod:`transformer_spec.tokenizers.bpe`): the words'
   UTF-8 bytes in GPT-2's byte alphabet, merged by rank. With ``ignore_merges``
   (Llama 3) a word that is itself a vocabulary entry is that one token, before
   any merging.
5. **Decoder**: ``ByteLevel`` — ids to bytes to UTF-8, as our BPE decodes.

The chat template comes from ``tokenizer_config.json`` (``chat_template``) or
``chat_template.jinja``; :meth:`HFByteLevelBPETokenizer.apply_chat_template`
renders it in Jinja's immutable sandbox, with ``trim_blocks`` and
``lstrip_blocks``, ``bos_token``/``eos_token`` and ``raise_exception``, as
``transformers`` does: a template from a downloaded folder can compute
strings but cannot reach Python objects' internals or change its inputs.

Other families — SentencePiece-Unigram, WordPiece, WordLevel, BPE with a
byte fallback or a subword prefix — are a :class:`TokenizerFileError` that
names the field and what is supported.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformer_spec.spec.errors import ConfigError

from .bpe import BYTE_TO_UNICODE, GPT2_SPLIT_PATTERN, UNICODE_TO_BYTE, ByteLevelBPETokenizer
from .errors import TokenizerFileError, read_json_file

HF_TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
NORMALIZERS = ("NFC", "NFD", "NFKC", "NFKD")
PRE_TOKENIZERS = ("Split", "Digits", "ByteLevel", "Sequence")
SUPPORTED = (
    "byte-level BPE (model.type BPE with a ByteLevel pre-tokenizer or decoder: Llama 3, Qwen2, SmolLM, GPT-2); "
    f"normalizer none or {'/'.join(NORMALIZERS)}; pre-tokenizers {', '.join(PRE_TOKENIZERS)}"
)

Splitter = Callable[[list[str]], list[str]]


def is_hf_tokenizer_document(document: Any) -> bool:
    """Whether a parsed ``tokenizer.json`` is the Hugging Face ``tokenizers`` format (it has "model", no "type")."""
    return isinstance(document, dict) and "model" in document and "type" not in document


def _regex_module(where: str) -> Any:
    try:
        import regex
    except ImportError:  # pragma: no cover - regex comes with transformers and the test extras
        raise TokenizerFileError(
            f"{where}: its pre-tokenizer pattern needs the `regex` module (\\p{{L}}, (?i:...)); pip install regex"
        ) from None
    return regex


def _isolated(pattern: Any) -> Splitter:
    """Split each piece at the pattern's matches, keeping matches and the gaps between them (behavior Isolated)."""

    def split(pieces: list[str]) -> list[str]:
        out: list[str] = []
        for piece in pieces:
            start = 0
            for match in pattern.finditer(piece):
                if match.start() > start:
                    out.append(piece[start : match.start()])
                if match.end() > match.start():
                    out.append(match.group())
                start = match.end()
            if start < len(piece):
                out.append(piece[start:])
        return out

    return split


def _prefix_space(pieces: list[str]) -> list[str]:
    return [piece if piece.startswith(" ") else " " + piece for piece in pieces]


def build_pre_tokenizer(spec: Any, where: str) -> Splitter:
    """The words of a text (as one-piece list) under the ``pre_tokenizer`` object of a ``tokenizer.json``."""
    if spec is None:
        return lambda pieces: pieces
    if not isinstance(spec, dict):
        raise TokenizerFileError(f"{where}: pre_tokenizer is {spec!r}; expected an object or null")
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [build_pre_tokenizer(step, where) for step in spec.get("pretokenizers", [])]

        def sequence(pieces: list[str]) -> list[str]:
            for step in steps:
                pieces = step(pieces)
            return pieces

        return sequence
    if kind == "Split":
        pattern = spec.get("pattern", {})
        behavior, invert = spec.get("behavior"), spec.get("invert", False)
        if behavior != "Isolated" or invert:
            raise TokenizerFileError(
                f"{where}: pre_tokenizer Split with behavior = {behavior!r}, invert = {invert!r} is not supported; "
                f"expected behavior 'Isolated', invert false ({SUPPORTED})"
            )
        regex = _regex_module(where)
        if "Regex" in pattern:
            return _isolated(regex.compile(pattern["Regex"]))
        if "String" in pattern:
            return _isolated(regex.compile(regex.escape(pattern["String"])))
        raise TokenizerFileError(f"{where}: pre_tokenizer Split has pattern {pattern!r}; expected Regex or String")
    if kind == "Digits":
        regex = _regex_module(where)
        return _isolated(regex.compile(r"\p{N}" if spec.get("individual_digits", False) else r"\p{N}+"))
    if kind == "ByteLevel":
        gpt2 = _isolated(_regex_module(where).compile(GPT2_SPLIT_PATTERN)) if spec.get("use_regex", True) else None
        add_prefix = bool(spec.get("add_prefix_space", False))

        def byte_level(pieces: list[str]) -> list[str]:
            if add_prefix:  # per piece, as the library does
                pieces = _prefix_space(pieces)
            return gpt2(pieces) if gpt2 is not None else pieces

        return byte_level
    raise TokenizerFileError(f"{where}: pre_tokenizer type {kind!r} is not supported; expected one of {SUPPORTED}")


def build_normalizer(spec: Any, where: str) -> Callable[[str], str]:
    if spec is None:
        return lambda text: text
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "Sequence" and not spec.get("normalizers"):
        return lambda text: text
    if kind in NORMALIZERS:
        return lambda text: unicodedata.normalize(kind, text)
    raise TokenizerFileError(f"{where}: normalizer {kind or spec!r} is not supported; expected null or {', '.join(NORMALIZERS)}")


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, dict):
        raise TokenizerFileError(f'{where}: "model" is {type(model).__name__}; expected an object')
    kind = model.get("type", "BPE" if "merges" in model else None)
    if kind != "BPE":
        family = {"Unigram": "SentencePiece-Unigram", "WordPiece": "WordPiece (BERT)", "WordLevel": "WordLevel"}.get(kind, kind)
        raise TokenizerFileError(
            f"{where}: a Hugging Face tokenizers file with model.type {kind!r} ({family}), which tspec does not "
            f"read; supported: {SUPPORTED}"
        )
    for field, default in (
        ("byte_fallback", False),
        ("continuing_subword_prefix", None),
        ("end_of_word_suffix", None),
        ("dropout", None),
    ):
        value = model.get(field, default)
        allowed = (None, "") if default is None else (default,)  # an empty prefix or suffix is no prefix
        if value not in allowed:
            raise TokenizerFileError(
                f"{where}: model.{field} = {value!r} is not supported; expected {default!r} (SentencePiece-style BPE "
                f"with byte fallback is not byte-level BPE); supported: {SUPPORTED}"
            )


def _uses_byte_level(document: dict[str, Any]) -> bool:
    def has(spec: Any) -> bool:
        if not isinstance(spec, dict):
            return False
        if spec.get("type") == "ByteLevel":
            return True
        return any(has(s) for s in spec.get("pretokenizers", []) + spec.get("decoders", []))

    return has(document.get("pre_tokenizer")) or has(document.get("decoder"))


def _merges(raw: Any, where: str) -> list[tuple[str, str]]:
    merges = []
    for i, merge in enumerate(raw or []):
        if isinstance(merge, str):
            parts = merge.split(" ")
        elif isinstance(merge, list):
            parts = merge
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise TokenizerFileError(f'{where}: model.merges[{i}] is {merge!r}; expected "left right" or [left, right]')
        merges.append((parts[0], parts[1]))
    return merges


def _token_text(value: Any) -> str | None:
    """A role token in tokenizer_config.json: a string, or an AddedToken object {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class HFByteLevelBPETokenizer(ByteLevelBPETokenizer):
    """Our byte-level BPE with a ``tokenizer.json``'s normalizer, pre-tokenizer, added tokens and chat template.

    Encoding and decoding are :class:`ByteLevelBPETokenizer`'s; only the cutting
    of text into words (and ``ignore_merges``) differ. ``save`` writes the
    original ``tokenizer.json`` (and ``tokenizer_config.json``) back.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        tokenizer_config: Mapping[str, Any] | None = None,
        chat_template: str | None = None,
        source: str = HF_TOKENIZER_FILE,
        eos_token_id: int | None = None,
        bos_token_id: int | None = None,
    ) -> None:
        where = source
        if not is_hf_tokenizer_document(document):
            raise TokenizerFileError(f'{where}: not a Hugging Face tokenizers file (expected "model" and no "type")')
        model = document["model"]
        _check_model(model, where)
        if not _uses_byte_level(document):
            raise TokenizerFileError(
                f"{where}: a Hugging Face tokenizers file whose BPE has no ByteLevel pre-tokenizer or decoder "
                f"(SentencePiece-style) is not supported; "
                f"supported: {SUPPORTED}"
            )
        vocab = dict(model.get("vocab") or {})
        merges = _merges(model.get("merges"), where)
        added = []
        for entry in document.get("added_tokens") or []:
            for field in ("single_word", "lstrip", "rstrip"):
                if entry.get(field, False):
                    raise TokenizerFileError(
                        f"{where}: added token {entry.get('content')!r} has {field} = true, which is not supported; "
                        f"expected false (plain added tokens, as in Llama 3 and Qwen2)"
                    )
            content, token_id = entry.get("content"), entry.get("id")
            if vocab.get(content, token_id) != token_id:
                raise TokenizerFileError(
                    f"{where}: added token {content!r} has id {token_id} but the vocab says {vocab[content]}"
                )
            vocab[content] = token_id
            added.append(content)
        merge_results = {a + b for a, b in merges}
        # An added token that is a byte or a merge result is an ordinary vocabulary entry to our BPE (rare).
        specials = [t for t in added if t not in merge_results and t not in UNICODE_TO_BYTE]
        config = dict(tokenizer_config or {})
        by_id = {token_id: token for token, token_id in vocab.items()}
        roles: dict[str, str | None] = {}
        for role, fallback_id in (("bos_token", bos_token_id), ("eos_token", eos_token_id)):
            token = _token_text(config.get(role))
            if token is None and isinstance(fallback_id, int):
                token = by_id.get(fallback_id)
            roles[role] = token if token in specials else None
        for role in ("unk_token", "pad_token"):
            token = _token_text(config.get(role))
            roles[role] = token if token in specials else None
        try:
            super().__init__(vocab, merges, special_tokens=specials, **roles)
        except ConfigError as error:
            raise TokenizerFileError(f"{where}: {error}") from None
        self._normalize = build_normalizer(document.get("normalizer"), where)
        self._pre_tokenize = build_pre_tokenizer(document.get("pre_tokenizer"), where)
        self._ignore_merges = bool(model.get("ignore_merges", False))
        self.template_prefix_ids, self.template_suffix_ids = _template_ids(document.get("post_processor"), where)
        self._document = dict(document)
        self._tokenizer_config = config
        template = chat_template if chat_template is not None else config.get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        self.chat_template: str | None = template if isinstance(template, str) else None

    def __repr__(self) -> str:
        return (
            f"HFByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"added_tokens={len(self.special_tokens)}, chat_template={self.chat_template is not None})"
        )

    # ------------------------------------------------------------------- encoding

    def pre_tokenize(self, text: str) -> list[str]:
        """The words the pre-tokenizer cuts (normalised) ``text`` into; they concatenate to the normalised text."""
        return self._pre_tokenize([self._normalize(text)]) if text else []

    def _encode_ordinary(self, text: str, ids: list[int]) -> None:
        cache = self._cache
        for word in self.pre_tokenize(text):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = self._encode_word(word)
                if len(word) <= 256:
                    cache[word] = word_ids
            ids.extend(word_ids)

    def _encode_word(self, word: str) -> tuple[int, ...]:
        if self._ignore_merges:
            # Llama 3: a word the vocabulary holds whole is one token, whatever the merges would make of it.
            whole = "".join(BYTE_TO_UNICODE[byte] for byte in word.encode("utf-8"))
            token_id = self.token_to_id(whole)
            if token_id is not None and whole not in self._special_to_id:
                return (token_id,)
        return super()._encode_word(word)

    # ---------------------------------------------------------------- chat template

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True, **extra: Any
    ) -> str:
        """The prompt text for ``messages`` ([{"role": ..., "content": ...}]) under the tokenizer's chat template.

        Rendered in ``jinja2.sandbox.ImmutableSandboxedEnvironment`` (``trim_blocks``,
        ``lstrip_blocks``), with ``bos_token``, ``eos_token``, ``add_generation_prompt``
        and ``raise_exception`` as ``transformers`` provides them. Encode the result
        with ``parse_special=True`` so its special tokens become their ids.
        """
        if self.chat_template is None:
            raise TokenizerFileError(
                "apply_chat_template: this tokenizer has no chat template; expected chat_template in "
                f"{TOKENIZER_CONFIG_FILE} or a {CHAT_TEMPLATE_FILE} file next to {HF_TOKENIZER_FILE}"
            )
        return render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=_token_text(self._tokenizer_config.get("bos_token")) or "",
            eos_token=_token_text(self._tokenizer_config.get("eos_token")) or "",
            **extra,
        )

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` (as read) and ``tokenizer_config.json`` (roles, chat template)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / HF_TOKENIZER_FILE).write_text(json.dumps(self._document, ensure_ascii=False), encoding="utf-8")
        config = dict(self._tokenizer_config)
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
        for role in ("bos_token", "eos_token", "unk_token", "pad_token"):
            token = self._role_tokens.get(role)
            if token is not None:
                config.setdefault(role, token)
        (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return directory

    save_hf = save  # the name transformer_spec.hf_llama.export_llama looks for
    # This class reads a trained tokenizer.json; training one is the `tokenizers` library's job (or
    # ByteLevelBPETokenizer.train for GPT-2's kind). None tells generic callers, the conformance suite included.
    train = None  # type: ignore[assignment]

    @classmethod
    def load(cls, directory: str | Path, *, hf_config: Mapping[str, Any] | None = None) -> HFByteLevelBPETokenizer:  # type: ignore[override]
        return load_hf_tokenizer(directory, hf_config=hf_config)


def _template_ids(spec: Any, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special ids a ``TemplateProcessing`` post-processor puts before and after one sequence (``single``).

    Llama 3's is ``<|begin_of_text|> $A``: the ``tokenizers`` library (and
    ``transformers``' ``tokenizer(text)``) prepends that id by default. Our
    ``encode`` never adds ids silently (``add_special`` means bos + eos), so the
    prefix is kept here for callers that want the library's default, such as
    :func:`transformer_spec.generate.encode_prompt`.
    """
    if not isinstance(spec, dict):
        return (), ()
    if spec.get("type") == "Sequence":
        for step in spec.get("processors", []):
            found = _template_ids(step, where)
            if found != ((), ()):
                return found
        return (), ()
    if spec.get("type") != "TemplateProcessing":
        return (), ()
    specials = spec.get("special_tokens") or {}
    prefix: list[int] = []
    suffix: list[int] = []
    seen_sequence = False
    for piece in spec.get("single") or []:
        if "Sequence" in piece:
            seen_sequence = True
        elif "SpecialToken" in piece:
            name = piece["SpecialToken"].get("id")
            ids = (specials.get(name) or {}).get("ids")
            if not isinstance(ids, list):
                raise TokenizerFileError(f"{where}: post_processor names special token {name!r} without its ids")
            (suffix if seen_sequence else prefix).extend(int(i) for i in ids)
    return tuple(prefix), tuple(suffix)


def render_chat_template(template: str, messages: Sequence[Mapping[str, Any]], **variables: Any) -> str:
    """``template`` rendered for ``messages`` in Jinja's immutable sandbox (what ``transformers`` does)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TokenizerFileError(f"chat template: {message}")

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    try:
        compiled = environment.from_string(template)
        return compiled.render(messages=[dict(m) for m in messages], **variables)
    except TemplateError as error:
        raise TokenizerFileError(f"chat template: {type(error).__name__}: {error}") from None


def load_hf_tokenizer(path: str | Path, *, hf_config: Mapping[str, Any] | None = None) -> HFByteLevelBPETokenizer:
    """The ``tokenizer.json`` in folder ``path`` (or the file itself), with ``tokenizer_config.json`` beside it."""
    path = Path(path)
    file_path = path if path.is_file() else path / HF_TOKENIZER_FILE
    folder = file_path.parent
    document = read_json_file(file_path, what="a Hugging Face tokenizer.json")
    config: dict[str, Any] = {}
    if (folder / TOKENIZER_CONFIG_FILE).is_file():
        loaded = read_json_file(folder / TOKENIZER_CONFIG_FILE, what="a Hugging Face tokenizer_config.json")
        config = loaded if isinstance(loaded, dict) else {}
    template = None
    if (folder / CHAT_TEMPLATE_FILE).is_file():
        template = (folder / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
    if hf_config is None and (folder / "config.json").is_file():
        try:
            candidate = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            hf_config = candidate if isinstance(candidate, dict) and "format" not in candidate else None
        except (OSError, ValueError):
            hf_config = None
    ids = dict(hf_config or {})
    return HFByteLevelBPETokenizer(
        document,
        tokenizer_config=config,
        chat_template=template,
        source=str(file_path),
        eos_token_id=ids.get("eos_token_id") if isinstance(ids.get("eos_token_id"), int) else None,
        bos_token_id=ids.get("bos_token_id") if isinstance(ids.get("bos_token_id"), int) else None,
    )


def copy_tokenizer_files(source: Path, target: Path) -> None:
    """Copy a folder's Hugging Face tokenizer files (used when exporting an imported model)."""
    for name in (HF_TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)


__all__ = [
    "CHAT_TEMPLATE_FILE",
    "HFByteLevelBPETokenizer",
    "HF_TOKENIZER_FILE",
    "TOKENIZER_CONFIG_FILE",
    "is_hf_tokenizer_document",
    "load_hf_tokenizer",
    "render_chat_template",
]
