"""A griffe extension for the API reference: the project's reStructuredText-isms, as Markdown.

The docstrings use Sphinx roles (``:class:`Backend```) and double-backquoted
literals (````x````). mkdocstrings renders Markdown, where those would show as
raw text; this turns them into inline code, the same conversion the component
pages use (:func:`tools.docs.specdoc.rst_to_markdown`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # loaded by path from mkdocs.yml

from tools.docs.specdoc import rst_to_markdown  # noqa: E402


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
