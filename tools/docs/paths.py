"""Where the docs build reads and writes."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root
DOCS = ROOT / "docs"

# Build caches (npm packages, conformance reports, figures, command output).
# build/ is ignored by git; TSPEC_DOCS_CACHE moves the cache elsewhere.
CACHE_ENV = "TSPEC_DOCS_CACHE"


def cache_dir(*parts: str) -> Path:
    base = Path(os.environ.get(CACHE_ENV) or ROOT / "build" / "docs-cache")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
