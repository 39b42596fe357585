"""Checks for :mod:`transformer_spec.spec.tokenizer`, run against a tokenizer object instead of a backend.

``transformer_spec.conformance.runner.run_tokenizer(tokenizer, "PATH")`` (or ``tspec conformance
--tokenizer PATH``) runs them; ``case.backend`` is then the tokenizer, so
``case.call("encode", text)`` calls ``tokenizer.encode(text)`` and lands in the repro.
Only the interface of ``spec/tokenizer.py`` is used, so any tokenizer that follows
it can be checked, not only ``transformer_spec.tokenizers``. An invariant applies only where
the tokenizer declares what it needs (``byte_level``, ``normalize``, ``save`` and
``load``, ``train``); otherwise the check is skipped and says why.
"""

from __future__ import annotations

import inspect
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError, SpecError

from ..case import Case
from ..registry import ANY, TOKENIZER, check
from ..runner import SkipCheck

# ------------------------------------------------------------------ strategies

# Words, so that a trained BPE's merges are exercised, not only its byte tokens.
WORDS = tuple(
    (
        "the a cat sat on mat and it was happy because dogs don't like cats who're there Once upon time king "
        "queen asked said what is capital of Nigeria Abuja France Paris 1999 42 3.14 café naïve Zürich"
    ).split()
)
# Where a tokenizer most likely splits a character across tokens or mishandles text:
# emoji (with skin tone, ZWJ sequences, flags), combining marks, conjuncts, astral
# letters, CJK and Hangul, control and format characters, GPT-2's contractions, and
# text that Unicode normalisation would change (decomposed letters, Hangul jamo,
# the Ångström and Ohm signs), which a byte-level tokenizer must leave alone.
TRICKY_PIECES = (
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇳🇬",
    "e\u0301",
    "a\u0308\u0304",
    "o\u0302",
    "\u1100\u1161",
    "\u212b",
    "\u2126",
    "\u0915\u094d\u0937",
    "𝔘𝔫𝔦",
    "\u200d",
    "\ufeff",
    "\x00",
    "\r\n",
    "ß",
    "İ",
    "ﬁ",
    "中文",
    "한국어",
    "\u2028",
    "\xa0",
    "\t",
    "  ",
    "'s",
    "'ll",
)
WHITESPACE = (" ", "  ", "\n", "\t", " \n ", "\u3000")


def unicode_text(specials: Iterable[str] = (), max_pieces: int = 12) -> st.SearchStrategy[str]:
    """Yields any Unicode string without lone surrogates (which have no UTF-8 form):
    runs of arbitrary code points (unassigned and private-use included) mixed with
    words, tricky multi-code-point pieces, whitespace and the spellings in ``specials``."""
    pieces = st.one_of(
        st.text(max_size=6), st.sampled_from(WORDS), st.sampled_from(TRICKY_PIECES), st.sampled_from(WHITESPACE + tuple(specials))
    )
    return st.lists(pieces, max_size=max_pieces).map("".join)


def text_spelling_specials(specials: Iterable[str]) -> st.SearchStrategy[str]:
    """Yields text in which the spellings of ``specials`` are common (about half the pieces),
    between and inside runs of :func:`unicode_text`."""
    specials = tuple(specials)
    if not specials:
        return unicode_text()
    return st.lists(st.one_of(unicode_text(max_pieces=4), st.sampled_from(specials)), max_size=6).map("".join)


def assigned_text(specials: Iterable[str] = ()) -> st.SearchStrategy[str]:
    """Yields text of code points assigned in Python's Unicode database (no Cn, no Cs),
    mixed with words, tricky pieces and ``specials``. Regular-expression engines of
    other Unicode versions disagree on \\p{L} for code points assigned since, so
    comparisons with another implementation use only assigned ones."""
    assigned = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=6)
    pieces = st.one_of(
        assigned, st.sampled_from(WORDS), st.sampled_from(TRICKY_PIECES), st.sampled_from(WHITESPACE + tuple(specials))
    )
    return st.lists(pieces, max_size=12).map("".join)


@st.composite
def similar_texts(draw: st.DrawFn) -> list[str]:
    """Yields 1 to 3 texts of :func:`unicode_text`, each followed by look-alikes: the same
    text with one character replaced (same length, same prefix) and with its case swapped —
    what a cache keyed on less than the whole text would confuse."""
    texts = []
    for text in draw(st.lists(unicode_text(max_pieces=8), min_size=1, max_size=3)):
        texts.append(text)
        if text:
            position = draw(st.integers(0, len(text) - 1))
            texts.append(text[:position] + draw(st.characters(exclude_categories=("Cs",))) + text[position + 1 :])
        texts.append(text.swapcase())
    return texts


# ------------------------------------------------------------------ helpers


def tokenizer_check(invariant_id: str, examples_factor: float = 1.0):
    return check(invariant_id, dtypes=ANY, examples_factor=examples_factor, subject=TOKENIZER)


def _is_byte_level(tok: Any) -> bool:
    return getattr(tok, "byte_level", False) is True


def _specials(tok: Any) -> dict[str, int]:
    return dict(tok.special_tokens)


def _role_ids(tok: Any) -> set[int]:
    return {i for i in (tok.bos_id, tok.eos_id, tok.unk_id, tok.pad_id) if i is not None}


def _can_save_load(tok: Any) -> bool:
    return callable(getattr(tok, "save", None)) and callable(getattr(type(tok), "load", None))


def _decodes(tok: Any, token_id: int) -> bool:
    try:
        tok.decode([token_id])
    except Exception:  # an unassigned id; anything else wrong with decode is another check's business
        return False
    return True


def _draw_ids(case: Case, name: str, max_size: int = 24, exclude: set[int] = frozenset()) -> list[int]:
    """In-range ids that ``decode`` accepts one by one (they may still form invalid UTF-8)."""
    tok = case.backend
    raw = case.draw_fn(st.lists(st.integers(0, tok.vocab_size - 1), max_size=max_size), label=name)
    return case.note(name, [i for i in raw if i not in exclude and _decodes(tok, i)])


def _folder(case: Case, root: str, name: str) -> str:
    """A folder under ``root``, created, and recreated by the repro."""
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    case.note(name, path)
    case.setup.append(f"__import__('os').makedirs({name}, exist_ok=True)")
    return path


def _write(case: Case, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    case.calls.append(f"open({str(path)!r}, 'w', encoding='utf-8').write({text!r})")


def _first_difference(got: Any, expected: Any) -> str:
    for index, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"first difference at index {index}: {a!r} vs {b!r}"
    return f"lengths {len(got)} vs {len(expected)}"


def _expect_error(
    case: Case, exception: type[BaseException], must_mention: Iterable[str], target: Any, method: str, *args: Any, **kwargs: Any
) -> None:
    """``target.method(...)`` must raise ``exception`` with a message naming each of ``must_mention``."""
    must_mention = list(must_mention)
    try:
        case.call_on(target, method, *args, **kwargs)
    except exception as error:
        missing = [m for m in must_mention if m not in str(error)]
        case.require(not missing, f"{method} raised {type(error).__name__} but its message does not name {missing}: {error}")
        return
    except Exception as error:
        case.fail(
            f"{method} raised {type(error).__module__}.{type(error).__name__} ({error}); "
            f"expected a {exception.__name__} (a transformer_spec.spec.errors.SpecError) naming {must_mention}"
        )
    case.fail(f"{method} accepted invalid input without an error; expected {exception.__name__} naming {must_mention}")


def _training_options(tok: Any) -> dict[str, Any] | None:
    """Keyword arguments for ``type(tok).train(texts, ...)``, or None when it cannot be called generically."""
    train = getattr(type(tok), "train", None)
    if not callable(train):
        return None
    try:
        parameters = list(inspect.signature(train).parameters.values())
    except (TypeError, ValueError):
        return None
    if parameters and parameters[0].name in ("self", "cls"):
        return None  # an instance method: not a trainer that builds a tokenizer from texts
    options: dict[str, Any] = {}
    for index, parameter in enumerate(parameters):
        if (
            index == 0
            or parameter.default is not inspect.Parameter.empty
            or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ):
            continue
        if parameter.name == "vocab_size":
            options["vocab_size"] = tok.vocab_size
        else:
            return None  # a required option we cannot choose for it
    if "vocab_size" not in options and "vocab_size" in {p.name for p in parameters}:
        options["vocab_size"] = tok.vocab_size
    return options


def _special_counts(text: str, specials: dict[str, int]) -> dict[int, int]:
    """How many times each special id should come out of ``encode(text, parse_special=True)``:
    the spellings matched left to right, longest first."""
    counts: dict[int, int] = {}
    if not specials:
        return counts
    pattern = re.compile("|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)))
    for match in pattern.finditer(text):
        token_id = specials[match.group()]
        counts[token_id] = counts.get(token_id, 0) + 1
    return counts


# ------------------------------------------------------------------ checks


@tokenizer_check("tokenizer.roundtrip")
def roundtrip(case: Case) -> None:
    tok = case.backend
    if not _is_byte_level(tok):
        raise SkipCheck(
            "the tokenizer does not declare byte_level = True; only a byte-level tokenizer promises "
            "decode(encode(s)) == s (a word-level one is checked by tokenizer.word_level_roundtrip)"
        )
    text = case.draw(unicode_text(), "text")
    ids = case.call("encode", text)
    back = case.call("decode", ids)
    case.require(
        back == text, f"decode(encode(text)) = {back!r}, expected the text itself {text!r} ({_first_difference(back, text)})"
    )


@tokenizer_check("tokenizer.ids_in_range")
def ids_in_range(case: Case) -> None:
    tok = case.backend
    text = case.draw(unicode_text(_specials(tok)), "text")
    add_special = case.draw(st.booleans(), "add_special")
    parse_special = case.draw(st.booleans(), "parse_special")
    ids = case.call("encode", text, add_special=add_special, parse_special=parse_special)
    case.require(isinstance(ids, list), f"encode returned a {type(ids).__name__}; expected a list of int ids")
    for position, token_id in enumerate(ids):
        case.require(
            isinstance(token_id, int) and not isinstance(token_id, bool),
            f"encode returned {token_id!r} ({type(token_id).__name__}) at position {position}; expected an int id",
        )
        case.require(
            0 <= token_id < tok.vocab_size,
            f"encode returned id {token_id} at position {position}, outside [0, vocab_size = {tok.vocab_size})",
        )
    try:
        case.call("decode", ids)
    except Exception as error:
        case.fail(f"decode rejected the ids encode returned: {type(error).__name__}: {error}")


@tokenizer_check("tokenizer.deterministic", examples_factor=0.5)
def deterministic(case: Case) -> None:
    tok = case.backend
    texts = case.draw(similar_texts(), "texts")
    first = [case.call("encode", t) for t in texts]
    again = [case.call("encode", t) for t in reversed(texts)][::-1]  # a warm cache, another call order
    for text, a, b in zip(texts, first, again):
        case.require(a == b, f"encode({text!r}) gave {a} the first time and {b} the second ({_first_difference(b, a)})")
    options = _training_options(tok)
    if not _can_save_load(tok) and options is None:
        return
    with tempfile.TemporaryDirectory(prefix="tspec-tokenizer-") as root:
        if _can_save_load(tok):
            folder = _folder(case, root, "saved")
            case.call("save", folder)
            cold = case.call_on(type(tok), "load", folder)  # a fresh object: an empty cache
            for text, expected in reversed(list(zip(texts, first))):
                got = case.call_on(cold, "encode", text)
                case.require(
                    got == expected,
                    f"a freshly loaded copy encodes {text!r} as {got}, the original as {expected} "
                    f"({_first_difference(got, expected)})",
                )
        if options is None or not callable(getattr(tok, "save", None)):
            return
        corpus = case.note("corpus", [" ".join(WORDS[i:] + WORDS[:i]) for i in range(0, len(WORDS), 7)] + list(texts))
        written = []
        for name in ("trained_1", "trained_2"):
            trained = case.call_on(type(tok), "train", corpus, **options)
            folder = _folder(case, root, name)
            case.call_on(trained, "save", folder)
            written.append({p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()})
        case.require(
            sorted(written[0]) == sorted(written[1]),
            f"training twice on the same corpus wrote different files: {sorted(written[0])} vs {sorted(written[1])}",
        )
        for name in written[0]:
            case.require(written[0][name] == written[1][name], f"training twice on the same corpus wrote two different {name}")


@tokenizer_check("tokenizer.no_special_from_text")
def no_special_from_text(case: Case) -> None:
    tok = case.backend
    specials = _specials(tok)
    special_ids = set(specials.values()) | _role_ids(tok)
    if not special_ids:
        raise SkipCheck("the tokenizer has no special tokens (special_tokens is empty, no bos/eos/unk/pad id)")
    text = case.draw(text_spelling_specials(specials), "text")
    # <unk> is the one special that ordinary text may give: for a token the vocabulary lacks.
    forbidden = special_ids - ({tok.unk_id} if tok.unk_id is not None else set())
    names = {i: t for t, i in specials.items()}
    ordinary = case.call("encode", text)
    produced = [(position, i) for position, i in enumerate(ordinary) if i in forbidden]
    if produced:
        position, token_id = produced[0]
        case.fail(
            f"encode(text) gave the special id {token_id} ({names.get(token_id, 'a special role')!r}) at position {position} "
            f"from ordinary text; only parse_special=True or add_special=True may give special ids"
        )
    wrapped = case.call("encode", text, add_special=True)
    expected = ([tok.bos_id] if tok.bos_id is not None else []) + ordinary + ([tok.eos_id] if tok.eos_id is not None else [])
    case.require(
        wrapped == expected,
        f"encode(text, add_special=True) = {wrapped}; expected bos_id {tok.bos_id} + encode(text) + "
        f"eos_id {tok.eos_id} = {expected} ({_first_difference(wrapped, expected)})",
    )
    parsed = case.call("encode", text, parse_special=True)
    for token_id, count in sorted(_special_counts(text, specials).items()):
        if token_id in forbidden:
            got = parsed.count(token_id)
            case.require(
                got == count,
                f"text spells {names[token_id]!r} {count} time(s), but encode(text, parse_special=True) "
                f"gave its id {token_id} {got} time(s)",
            )
    stray = [i for i in set(parsed) & forbidden if i not in _special_counts(text, specials)]
    case.require(not stray, f"encode(text, parse_special=True) gave special ids {sorted(stray)} that the text does not spell")


@tokenizer_check("tokenizer.stream_matches_decode")
def stream_matches_decode(case: Case) -> None:
    tok = case.backend
    skip_special = case.draw(st.booleans(), "skip_special")
    if case.draw(st.booleans(), "from_text"):  # ids of real text: characters split across tokens
        text = case.draw(unicode_text(_specials(tok)), "text")
        ids = case.call("encode", text, parse_special=case.draw(st.booleans(), "parse_special"))
    else:  # arbitrary ids: invalid UTF-8, an unfinished character at the end
        ids = _draw_ids(case, "ids")
    full = case.call("decode", ids, skip_special=skip_special)
    decoder = case.call("stream_decoder", skip_special=skip_special)
    shown = ""
    for step in range(len(ids) + 1):  # each piece is checked as it comes, so the repro ends at the bad one
        piece = case.call_on(decoder, "push", ids[step]) if step < len(ids) else case.call_on(decoder, "flush")
        what = "flush()" if step == len(ids) else f"push({ids[step]}) (id {step})"
        case.require(isinstance(piece, str), f"{what} returned {type(piece).__name__}; expected str")
        shown += piece
        if not full.startswith(shown):
            broken = " — a broken character: an incomplete UTF-8 tail must be held back" if "\ufffd" in piece else ""
            case.fail(
                f"after {what} the stream has shown {shown!r}, which is not how decode(ids) = {full!r} begins; "
                f"that piece was {piece!r}{broken}"
            )
    case.require(shown == full, f"the stream's pieces concatenate to {shown!r}; decode(ids) = {full!r}")


@tokenizer_check("tokenizer.word_level_roundtrip")
def word_level_roundtrip(case: Case) -> None:
    tok = case.backend
    if not callable(getattr(tok, "normalize", None)):
        raise SkipCheck(
            "the tokenizer has no normalize(text): not a word-level tokenizer "
            "(a byte-level one is checked by tokenizer.roundtrip)"
        )
    ids = _draw_ids(case, "ids", max_size=16, exclude=set(_specials(tok).values()) | _role_ids(tok))
    text = case.call("decode", ids)
    again = case.call("encode", text)
    case.require(again == ids, f"encode(decode(ids)) = {again}, expected ids = {ids} ({_first_difference(again, ids)})")
    # Spacing (and case, when the tokenizer folds it) are not part of the normal form.
    parts = text.split(" ")
    spaces = case.draw(st.lists(st.sampled_from(WHITESPACE), min_size=len(parts) + 1, max_size=len(parts) + 1), "spaces")
    # Each single space of the decoded text becomes a drawn run of whitespace; more before and after.
    variant = spaces[-2] + parts[0] + "".join(space + part for space, part in zip(spaces, parts[1:])) + spaces[-1]
    if getattr(tok, "lowercase", False) is True:
        upper = case.draw(st.lists(st.booleans(), min_size=len(variant), max_size=len(variant)), "upper")
        variant = "".join(c.upper() if flag and c.isascii() and c.isalpha() else c for c, flag in zip(variant, upper))
    variant = case.note("variant", variant)
    variant_ids = case.call("encode", variant)
    if tok.unk_id is None or tok.unk_id not in variant_ids:  # every token known: the invariant applies
        back = case.call("decode", variant_ids)
        normal = case.call("normalize", variant)
        case.require(back == normal, f"decode(encode(s)) = {back!r} but normalize(s) = {normal!r} for s = {variant!r}")
    any_text = case.draw(unicode_text(), "any_text")
    normal = case.call("normalize", any_text)
    twice = case.call("normalize", normal)
    case.require(twice == normal, f"normalize is not idempotent: normalize(s) = {normal!r}, normalize of that = {twice!r}")


@tokenizer_check("tokenizer.gpt2_compatible", examples_factor=0.5)
def gpt2_compatible(case: Case) -> None:
    tok = case.backend
    if not _is_byte_level(tok):
        raise SkipCheck("the tokenizer does not declare byte_level = True, so it is not GPT-2's byte-level BPE")
    if not callable(getattr(tok, "save", None)):
        raise SkipCheck("the tokenizer has no save(directory): no vocab.json + merges.txt to give the oracle")
    try:
        import tokenizers as oracle_library
    except ImportError:
        raise SkipCheck("the `tokenizers` library (the GPT-2 oracle) is not installed: pip install tokenizers") from None
    specials = _specials(tok)
    with tempfile.TemporaryDirectory(prefix="tspec-tokenizer-") as root:
        folder = _folder(case, root, "saved")
        case.call("save", folder)
        vocab, merges = Path(folder, "vocab.json"), Path(folder, "merges.txt")
        if not (vocab.is_file() and merges.is_file()):
            raise SkipCheck(
                f"save(directory) wrote {sorted(p.name for p in Path(folder).iterdir())}, not GPT-2's vocab.json + merges.txt"
            )
        plain = oracle_library.ByteLevelBPETokenizer(str(vocab), str(merges))
        with_specials = oracle_library.ByteLevelBPETokenizer(str(vocab), str(merges))
        with_specials.add_special_tokens(list(specials))
        text = case.draw(assigned_text(specials), "text")
        got, expected = case.call("encode", text), plain.encode(text).ids
        case.require(
            got == expected,
            f"encode(text) = {got}; GPT-2's algorithm (the tokenizers library) on the same files gives "
            f"{expected} ({_first_difference(got, expected)})",
        )
        got, expected = case.call("encode", text, parse_special=True), with_specials.encode(text).ids
        case.require(
            got == expected,
            f"encode(text, parse_special=True) = {got}; the tokenizers library with the special tokens "
            f"added gives {expected} ({_first_difference(got, expected)})",
        )
        if not callable(getattr(type(tok), "load", None)):
            return
        # The other direction: files written by the library's trainer, read by the tokenizer's class.
        corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(0, len(WORDS), 5)] + [text]
        trainer = oracle_library.ByteLevelBPETokenizer()
        trainer.train_from_iterator(
            corpus, vocab_size=len(specials) + 256 + 64, min_frequency=2, special_tokens=list(specials), show_progress=False
        )
        trained_folder = _folder(case, root, "oracle_trained")
        trainer.save_model(trained_folder)
        ours = case.call_on(type(tok), "load", trained_folder)
        got, expected = case.call_on(ours, "encode", text, parse_special=True), trainer.encode(text).ids
        case.require(
            got == expected,
            f"on files the tokenizers library trained, load(...).encode(text, parse_special=True) = {got}; "
            f"the library gives {expected} ({_first_difference(got, expected)})",
        )


@tokenizer_check("tokenizer.save_load", examples_factor=0.5)
def save_load(case: Case) -> None:
    tok = case.backend
    if not _can_save_load(tok):
        raise SkipCheck("the tokenizer lacks save(directory) or its class lacks load(directory)")
    with tempfile.TemporaryDirectory(prefix="tspec-tokenizer-") as root:
        folder = _folder(case, root, "saved")
        case.call("save", folder)
        loaded = case.call_on(type(tok), "load", folder)
    for name in ("vocab_size", "special_tokens", "bos_id", "eos_id", "unk_id", "pad_id", "vocab"):
        if hasattr(tok, name):
            before, after = getattr(tok, name), getattr(loaded, name, None)
            case.require(before == after, f"after save and load, {name} is {_short(after)}; before it was {_short(before)}")
    text = case.draw(unicode_text(_specials(tok)), "text")
    for options in ({}, {"parse_special": True}):
        got, expected = case.call_on(loaded, "encode", text, **options), case.call("encode", text, **options)
        case.require(
            got == expected,
            f"the loaded copy's encode(text{', parse_special=True' if options else ''}) = {got}; "
            f"the original's = {expected} ({_first_difference(got, expected)})",
        )
    ids = _draw_ids(case, "ids")
    got, expected = case.call_on(loaded, "decode", ids), case.call("decode", ids)
    case.require(got == expected, f"the loaded copy decodes ids to {got!r}; the original to {expected!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "…"


MALFORMED_JSON = '{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n'  # the missing comma is an error on line 4
BAD_MERGE = "Ġ t h"  # three tokens where a merge has two


@tokenizer_check("tokenizer.errors", examples_factor=0.5)
def errors(case: Case) -> None:
    tok = case.backend
    ids = _draw_ids(case, "ids", max_size=8)
    bad_id = case.draw(st.one_of(st.integers(-(10**6), -1), st.integers(tok.vocab_size, tok.vocab_size + 10**6)), "bad_id")
    position = case.draw(st.integers(0, len(ids)), "position")
    with_bad = case.note("with_bad", ids[:position] + [bad_id] + ids[position:])
    _expect_error(case, OutOfRangeError, [str(bad_id)], tok, "decode", with_bad)
    decoder = case.call("stream_decoder")
    _expect_error(case, OutOfRangeError, [str(bad_id)], decoder, "push", bad_id)
    _expect_error(case, DTypeError, ["text"], tok, "encode", case.note("raw_bytes", b"hello"))
    _expect_error(case, DTypeError, ["ids"], tok, "decode", ids + [float(tok.vocab_size - 1)])
    _expect_error(case, DTypeError, ["ids"], tok, "decode", [True])
    if _is_byte_level(tok):  # only a byte-level tokenizer must encode every str, so only it must reject one with no UTF-8 form
        text = case.draw(unicode_text(max_pieces=4), "text")
        _expect_error(case, SpecError, ["surrogate"], tok, "encode", text + "\ud800" + text)
    options = _training_options(tok)
    if options is not None:
        train = getattr(type(tok), "train")
        names = set(inspect.signature(train).parameters)
        for option in ("vocab_size", "max_vocab", "min_count", "min_frequency"):
            if option in names:
                _expect_error(case, ConfigError, [option], type(tok), "train", list(WORDS), **{**options, option: 0})
    if not _can_save_load(tok):
        return
    with tempfile.TemporaryDirectory(prefix="tspec-tokenizer-") as root:
        nowhere = case.note("nowhere", os.path.join(root, "no_such_folder"))
        _expect_error(case, SpecError, ["no_such_folder"], type(tok), "load", nowhere)
        saved = _folder(case, root, "saved")
        case.call("save", saved)
        # Break one file at a time, each in a fresh copy (so a repro shows only the broken file).
        for number, name in enumerate(sorted(p.name for p in Path(saved).iterdir() if p.is_file())):
            if not (name.endswith(".json") or name == "merges.txt"):
                continue
            folder = _folder(case, root, f"broken_{number}")
            case.call("save", folder)
            path = Path(folder, name)
            if name.endswith(".json"):
                _write(case, path, MALFORMED_JSON)
                _expect_error(case, SpecError, [name, "line 4"], type(tok), "load", folder)
            else:
                lines = path.read_text(encoding="utf-8").split("\n")
                index = min(3, max(1, len(lines) - 1))
                _write(case, path, "\n".join(lines[:index] + [BAD_MERGE] + lines[index:]))
                _expect_error(case, SpecError, [name, f"line {index + 1}"], type(tok), "load", folder)
