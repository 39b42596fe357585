"""A content-addressed cache for the expensive parts of the build.

Everything the build computes (figures, command output, generated tables,
conformance reports) depends on the code of the project, so each cache key
starts with a hash of the files it is computed from: by default every file
the site is generated from (``SOURCE_FOLDERS``); the conformance reports only
the code they check (``CONFORMANCE_INPUTS``), so a change to a page, a
generator or the application does not rerun the suite. Change an input and
what depends on it is recomputed; change nothing and a rebuild takes seconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from .paths import ROOT, cache_dir

# The folders and files whose contents the site is generated from (docs/results: measured results that pages read).
SOURCE_FOLDERS = (
    "spec",
    "backends",
    "conformance",
    "transformer_spec",
    "tools/docs",
    "benchmarks",
    "docs/results",
    "pyproject.toml",
)
# What a conformance report depends on: the code under test, the suite, and how the build runs it.
CONFORMANCE_INPUTS = ("spec", "backends", "conformance", "tools/docs/conformance_runs.py", "pyproject.toml")
# What a page's executed blocks depend on: the project's code, and how blocks are run (not the generators or figures).
PAGE_INPUTS = (
    *(f for f in SOURCE_FOLDERS if f != "tools/docs"),
    "tools/docs/blocks.py",
    "tools/docs/render.py",
)
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}


@functools.lru_cache(maxsize=8)
def hash_of(inputs: tuple[str, ...]) -> str:
    """A hash of the names and contents of every file in ``inputs`` (folders, searched recursively, or files)."""
    digest = hashlib.sha256()
    for entry in inputs:
        base = ROOT / entry
        paths = [base] if base.is_file() else sorted(base.rglob("*")) if base.exists() else []
        for path in paths:
            if path.is_file() and not SKIP_PARTS & set(path.parts) and path.suffix != ".pyc":
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_hash() -> str:
    return hash_of(SOURCE_FOLDERS)


def key(*parts: object, inputs: tuple[str, ...] = SOURCE_FOLDERS) -> str:
    return hashlib.sha256(json.dumps([hash_of(inputs), *parts], default=str).encode()).hexdigest()[:32]


def path_for(kind: str, *parts: object, suffix: str = "", inputs: tuple[str, ...] = SOURCE_FOLDERS) -> Path:
    return cache_dir(kind) / (key(*parts, inputs=inputs) + suffix)


def cached_bytes(kind: str, parts: tuple, compute: Callable[[], bytes | None]) -> bytes | None:
    """``compute()``'s bytes, computed once per code hash; ``None`` (nothing to show) is cached too, as an empty file."""
    path = path_for(kind, *parts, suffix=".bin")
    if path.exists():
        data = path.read_bytes()
        return data or None
    data = compute()
    path.write_bytes(data or b"")
    return data


def cached_text(kind: str, parts: tuple, compute: Callable[[], str]) -> str:
    """``compute()``'s text, computed once per code hash (a generator's Markdown, for instance)."""
    path = path_for(kind, *parts, suffix=".md")
    if path.exists():
        return path.read_text(encoding="utf-8")
    text = compute()
    path.write_text(text, encoding="utf-8")
    return text
