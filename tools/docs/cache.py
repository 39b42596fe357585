"""A content-addressed cache for the expensive parts of the build.

Everything the build computes (figures, command output, conformance reports)
depends on the code of the project, so the cache key starts with a hash of
every file the site is generated from. Change any of them and everything is
recomputed; change nothing and a rebuild takes seconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from .paths import ROOT, cache_dir

# The folders whose contents the site is generated from.
SOURCE_FOLDERS = ("spec", "backends", "conformance", "tspec", "tools/docs", "benchmarks")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    digest = hashlib.sha256()
    for folder in SOURCE_FOLDERS:
        base = ROOT / folder
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not SKIP_PARTS & set(path.parts) and path.suffix != ".pyc":
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([code_hash(), *parts], default=str).encode()).hexdigest()[:32]


def path_for(kind: str, *parts: object, suffix: str = "") -> Path:
    return cache_dir(kind) / (key(*parts) + suffix)


def cached_bytes(kind: str, parts: tuple, compute: Callable[[], bytes | None]) -> bytes | None:
    """``compute()``'s bytes, computed once per code hash; ``None`` (nothing to show) is cached too, as an empty file."""
    path = path_for(kind, *parts, suffix=".bin")
    if path.exists():
        data = path.read_bytes()
        return data or None
    data = compute()
    path.write_bytes(data or b"")
    return data
