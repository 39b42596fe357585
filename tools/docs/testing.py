"""Helpers shared by ``tests/test_docs.py`` and ``tests/test_docs_browser.py``."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .blocks import Block, exempt, find_blocks
from .paths import DOCS, ROOT


@dataclass(frozen=True)
class Build:
    site: Path
    returncode: int
    output: str
    seconds: float


# A site already built (``mkdocs build --strict --site-dir DIR``) that the tests may check instead of building
# their own: for iterating on the browser checks without rebuilding.
SITE_ENV = "TSPEC_DOCS_SITE"


@functools.lru_cache(maxsize=1)
def built_site() -> Build:
    """``mkdocs build --strict`` into a temporary folder, once per test session (or $TSPEC_DOCS_SITE, if set)."""
    if os.environ.get(SITE_ENV):
        return Build(Path(os.environ[SITE_ENV]), 0, f"(not built: ${SITE_ENV} names an already built site)", 0.0)
    site = Path(tempfile.mkdtemp(prefix="tspec-site-"))
    atexit.register(shutil.rmtree, site, True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return Build(site, done.returncode, done.stdout, time.perf_counter() - start)


def pages() -> list[Path]:
    """The pages whose blocks the docs' own rules govern (see :func:`tools.docs.blocks.exempt`)."""
    return sorted(p for p in DOCS.rglob("*.md") if not exempt(p.relative_to(DOCS).as_posix()))


def page_blocks() -> list[tuple[Block, list[Block]]]:
    """Every python block of every page, with the file blocks that come before it on its page."""
    out = []
    for path in pages():
        blocks = find_blocks(path.read_text(), path.relative_to(DOCS).as_posix())
        files: list[Block] = []
        for block in blocks:
            if block.file:
                files.append(block)
            if block.language == "python":
                out.append((block, list(files)))
    return out
