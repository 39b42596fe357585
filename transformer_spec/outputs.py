"""Output paths, checked before any work starts, and written so that a crash never leaves half a file.

Every file or folder a command writes is checked up front with
:func:`check_output_file` or :func:`check_output_folder`: a long training run or
evaluation must not die at its very end because ``--out`` names a regular file,
``--json`` names a folder, or the place cannot be written. Each problem is an
:class:`OutputPathError` (a :class:`~transformer_spec.spec.errors.SpecError`,
so the CLI prints it as one line and exits with status 2).

The checks only probe: nothing is created (a run refused later for bad data
leaves no empty folder behind). A probe file, created and removed at once in
the nearest existing folder, is the test of "can be created": ``os.access``
alone says yes to root everywhere, even where the kernel refuses (``/proc``).

Names starting with :data:`INTERNAL_PREFIX` are this package's own scratch and
lock files (see :mod:`transformer_spec.checkpoint`); they never count as a
folder's contents.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from transformer_spec.spec.errors import SpecError

INTERNAL_PREFIX = ".tspec-"  # scratch folders, commit folders and lock files of transformer_spec
_LISTED = 6  # how many existing names an error message shows


class OutputPathError(SpecError):
    """An output path cannot be written as asked (a folder where a file is expected, no permission, ...)."""


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` as a Path, after checking that a file can be written there (missing parent folders are creatable).

    ``option`` names the flag in messages (``"--json"``). An existing regular file is accepted (it will be
    replaced); anything else that exists is not.
    """
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise OutputPathError(f"{option} {str(path)!r}: expected a file name")
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; expected a file name to write (e.g. {path / 'results.json'})")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputPathError(f"{option} {path}: exists and is not a regular file; expected a file name to write")
        try:
            # Append mode opens for writing without changing a byte or the modification time.
            with open(path, "ab"):
                pass
        except OSError as error:
            raise OutputPathError(f"{option} {path}: cannot be written ({error.strerror}); expected a writable file") from None
        return path
    _check_creatable(path, option, "file")
    return path


def check_output_folder(
    path: str | os.PathLike[str], option: str, *, overwrite: bool = False, allowed: Iterable[str] = ()
) -> Path:
    """``path`` as a Path, after checking that it is (or can become) a writable folder that may be written into.

    A folder that already holds files is refused unless ``overwrite`` is set: the message lists what is there.
    ``allowed`` names files the caller handles itself (they do not count as "already there").
    """
    path = Path(path)
    if str(path) == "":
        raise OutputPathError(f"{option} '': expected a folder name")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise OutputPathError(
                f"{option} {path}: is a file, not a folder; expected a folder to write the run into "
                f"(choose another name, or remove the file)"
            )
        _probe(path, option, "folder")
        present = existing_files(path, ignore=allowed)
        if present and not overwrite:
            raise OutputPathError(
                f"{option} {path}: the folder already holds {describe_names(present)}; "
                f"pass --overwrite to write over them, or choose another {option}"
            )
        return path
    _check_creatable(path, option, "folder")
    return path


def existing_files(folder: Path, ignore: Iterable[str] = ()) -> list[str]:
    """The names in ``folder``, sorted, without this package's scratch and lock files and without ``ignore``."""
    skip = set(ignore)
    return sorted(
        child.name for child in folder.iterdir() if not child.name.startswith(INTERNAL_PREFIX) and child.name not in skip
    )


def describe_names(names: list[str]) -> str:
    """``a, b, c`` (or the first few and how many more)."""
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"


def _check_creatable(path: Path, option: str, kind: str) -> None:
    ancestor = path.parent
    while not (ancestor.exists() or ancestor.is_symlink()):
        if ancestor == ancestor.parent:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{option} {path}: {ancestor} is a file, not a folder, so the {kind} cannot be created there; expected a path "
            f"inside a folder"
        )
    _probe(ancestor, option, kind, target=path)


def _probe(folder: Path, option: str, kind: str, target: Path | None = None) -> None:
    """Create and remove a file in ``folder``: the only test of writability that root, ACLs and read-only mounts all honour."""
    try:
        handle, name = tempfile.mkstemp(prefix=INTERNAL_PREFIX + "probe-", dir=folder)
    except OSError as error:
        where = f"{target}: cannot be created in {folder}" if target is not None else f"{folder}: cannot be written"
        raise OutputPathError(f"{option} {where} ({error.strerror}); expected a writable place for the {kind}") from None
    os.close(handle)
    os.unlink(name)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a scratch file and a rename: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=INTERNAL_PREFIX + "write-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(scratch, 0o666 & ~_umask())  # mkstemp makes 0600; a results file is as readable as any other
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = [
    "INTERNAL_PREFIX",
    "OutputPathError",
    "check_output_file",
    "check_output_folder",
    "describe_names",
    "existing_files",
    "write_text_atomically",
]
