"""Errors of the tokenizers, and the file readers that raise them.

Every error a tokenizer raises is a :class:`transformer_spec.spec.errors.SpecError`, and its
message says what was wrong, what was expected and, where it helps, what to do:

* :class:`TokenizerFileError` — a tokenizer file is missing, unreadable, not
  valid JSON / UTF-8, or holds something other than what its format requires.
  The message names the file, and the line for malformed JSON or a bad merge.
* :class:`InvalidTextError` — the text cannot be encoded (a lone surrogate has
  no UTF-8 form).
* ``transformer_spec.spec.errors.OutOfRangeError`` — an id outside the vocabulary given to ``decode``.
* ``transformer_spec.spec.errors.DTypeError`` — text that is not ``str``, an id that is not an ``int``.
* ``transformer_spec.spec.errors.ConfigError`` — a bad training option or special-token choice.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from transformer_spec.spec.errors import DTypeError, OutOfRangeError, SpecError


class TokenizerFileError(SpecError):
    """A tokenizer file is missing, unreadable or malformed."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None  # the offending file
        self.line = line  # 1-based line in that file, where one can be named


class InvalidTextError(SpecError):
    """The text given to ``encode`` has no UTF-8 form (it holds a lone surrogate)."""


def read_text_file(path: Path, *, what: str) -> str:
    """The whole file as UTF-8 text; a missing or undecodable file is a TokenizerFileError."""
    if not path.is_file():
        raise TokenizerFileError(f"{what}: {path} does not exist or is not a file; expected {what} there", path=path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        # The line number of the bad byte helps find it in an editor.
        line = raw[: err.start].count(b"\n") + 1
        raise TokenizerFileError(
            f"{path} line {line}: not valid UTF-8 ({err.reason} at byte {err.start}); expected {what} as UTF-8 text",
            path=path,
            line=line,
        ) from None


def read_json_file(path: Path, *, what: str) -> Any:
    """Parse a JSON file; malformed JSON is a TokenizerFileError naming the line and column."""
    text = read_text_file(path, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise TokenizerFileError(
            f"{path} line {err.lineno} column {err.colno}: malformed JSON ({err.msg}); expected {what}",
            path=path,
            line=err.lineno,
        ) from None


def require_text(text: object, *, function: str) -> str:
    """``text`` itself if it is a ``str``, else a DTypeError (lone surrogates are caught where it is encoded)."""
    if not isinstance(text, str):
        raise DTypeError(
            f"{function}: text must be a str, got {type(text).__name__}; decode bytes to str first (bytes.decode('utf-8'))"
        )
    return text


def lone_surrogate_error(text: str, err: UnicodeEncodeError, *, function: str) -> InvalidTextError:
    """The error for text that holds a lone surrogate (it has no UTF-8 form)."""
    code_point = ord(text[err.start])
    return InvalidTextError(
        f"{function}: text[{err.start}] is the lone surrogate U+{code_point:04X}, which has no UTF-8 form; "
        f"expected valid Unicode text (decode the source with errors='replace' or 'surrogatepass' fixes it)"
    )


def require_ids(ids: Iterable[object], *, function: str, vocab_size: int, is_assigned: Callable[[int], bool]) -> list[int]:
    """``ids`` as a list of Python ints, each an assigned id in ``[0, vocab_size)``.

    NumPy integers are accepted (they come out of models); ``bool`` and floats are
    not, since an id of ``True`` or ``3.0`` is almost always a bug upstream.
    """
    if isinstance(ids, (str, bytes)):
        raise DTypeError(f"{function}: ids must be a sequence of ints, got {type(ids).__name__}")
    checked: list[int] = []
    for position, token_id in enumerate(ids):
        if isinstance(token_id, bool):
            raise DTypeError(f"{function}: ids[{position}] is the bool {token_id}; expected an int token id")
        try:
            value = operator.index(token_id)
        except TypeError:
            raise DTypeError(
                f"{function}: ids[{position}] is {token_id!r} of type {type(token_id).__name__}; expected an int token id"
            ) from None
        if not 0 <= value < vocab_size:
            raise OutOfRangeError(
                f"{function}: ids[{position}] = {value} is outside the vocabulary; expected 0 <= id < vocab_size = {vocab_size}"
            )
        if not is_assigned(value):
            raise OutOfRangeError(
                f"{function}: ids[{position}] = {value} is not assigned to any token "
                f"(the vocabulary file skips it); expected an id that names a token"
            )
        checked.append(value)
    return checked
