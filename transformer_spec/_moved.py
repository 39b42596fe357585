"""The old top-level import names, and a clear error that gives the new ones.

Up to version 0.1 the distribution installed the top-level packages ``spec``,
``backends``, ``conformance`` and ``tspec``. Those names belong to other
distributions on the package index, so since 0.2 everything lives under
``transformer_spec`` (see CHANGELOG.md). A backend written against the old
tutorial fails on its first line, ``from backends.base import Backend``; this
module turns that failure into a message with the new path.

The hint is a finder placed at the *end* of ``sys.meta_path``: it is consulted
only after every real finder has failed to find the module, so a distribution
that really provides ``spec`` or ``backends`` is never shadowed, and an import
that would fail anyway still raises ``ModuleNotFoundError`` — only its message
changes.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

# old top-level name -> its new home
MOVED = {
    "spec": "transformer_spec.spec",
    "backends": "transformer_spec.backends",
    "conformance": "transformer_spec.conformance",
    "tspec": "transformer_spec",
}


def new_name(old: str) -> str | None:
    """``backends.base`` → ``transformer_spec.backends.base``; None for a name that did not move."""
    top, dot, rest = old.partition(".")
    return MOVED[top] + dot + rest if top in MOVED else None


class MovedModuleHint(MetaPathFinder):
    """Raise ModuleNotFoundError naming the new path for an old top-level name nobody else provides."""

    def find_spec(self, fullname, path=None, target=None):
        if path is not None or fullname not in MOVED:
            return None  # only the old top-level names themselves
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: transformer-spec 0.2 moved it to {MOVED[fullname]!r}. "
            f"Replace 'from {fullname}.…' with 'from {MOVED[fullname]}.…' "
            f"(for example 'from transformer_spec.backends.base import Backend'); see CHANGELOG.md",
            name=fullname,
        )


def install_moved_module_hints() -> None:
    """Append the hint finder to ``sys.meta_path`` once (idempotent)."""
    if not any(isinstance(finder, MovedModuleHint) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleHint())
