"""Markdown generated from ``spec/``: docstring sections, interfaces, invariant tables, reference source.

A spec module's docstring is written in the house style: a summary line,
optional paragraphs, then sections underlined with dashes (``Math``,
``Shapes``, ``Interface``, ``Special cases``, ``Errors``, ``References``, ...),
with math in ``$$…$$``. These functions turn it into Markdown for the pages, so
the docs show exactly what the spec says.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from transformer_spec import spec
from transformer_spec.spec.component import Component

from .paths import ROOT

# Sections that describe the contract (shown under "Interface"), and the bibliography.
CONTRACT_SECTIONS = ("Shapes", "Interface", "Parameters", "Parameter layout", "Special cases", "Errors")
REFERENCE_SECTIONS = ("References",)

SECTION = re.compile(r"^(?P<title>[^\n]+)\n(?P<rule>-{3,})[ \t]*$", re.M)


@dataclass(frozen=True)
class SpecDoc:
    module: ModuleType
    summary: str
    intro: str
    sections: tuple[tuple[str, str], ...]  # (title, body) in docstring order

    @property
    def path(self) -> str:
        return Path(self.module.__file__).relative_to(ROOT).as_posix()


def spec_modules() -> dict[str, ModuleType]:
    """Every component's spec module by component name, the tokenizer included."""
    modules = {m.COMPONENT.name: m for m in spec.SPEC_MODULES}
    tokenizer = importlib.import_module("transformer_spec.spec.tokenizer")
    modules[tokenizer.COMPONENT.name] = tokenizer
    return modules


def component_module(name: str) -> ModuleType:
    modules = spec_modules()
    if name not in modules:
        raise KeyError(f"no spec component {name!r}; components: {', '.join(modules)}")
    return modules[name]


def parse(module: ModuleType) -> SpecDoc:
    doc = inspect.cleandoc(module.__doc__ or "")
    summary, _, rest = doc.partition("\n")
    headings = list(SECTION.finditer(rest))
    intro = rest[: headings[0].start()] if headings else rest
    sections = []
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(rest)
        sections.append((heading.group("title").strip(), rest[heading.end() : end].strip("\n")))
    return SpecDoc(module, summary.strip(), intro.strip("\n"), tuple(sections))


def rst_to_markdown(text: str) -> str:
    """The reStructuredText-isms of the spec docstrings, as Markdown."""
    text = re.sub(r":(?:mod|func|class|meth|data|attr):`~?([^`]+)`", r"`\1`", text)  # roles → code
    text = re.sub(r"``([^`]+)``", r"`\1`", text)  # literals
    text = re.sub(r"\$\$[ \t]*\n[ \t]*\$\$", "$$\n\n$$", text)  # two display equations on consecutive lines: two paragraphs
    text = re.sub(r"::[ \t]*$", ":", text, flags=re.M)  # "Example::" introduces an indented literal block
    return escape_prose(text)


def _is(title: str, names: tuple[str, ...]) -> bool:
    return any(title == name or title.startswith(name + " ") for name in names)


def render_sections(name: str, part: str, level: int = 3) -> str:
    """Part ``math`` (the intro and every explanatory section), ``contract`` or ``references`` of a spec docstring."""
    doc = parse(component_module(name))
    hashes = "#" * level
    chunks = []
    if part == "math":
        if doc.intro:
            chunks.append(rst_to_markdown(doc.intro))
        selected = [(t, b) for t, b in doc.sections if not _is(t, CONTRACT_SECTIONS + REFERENCE_SECTIONS)]
    elif part == "contract":
        selected = [(t, b) for t, b in doc.sections if _is(t, CONTRACT_SECTIONS)]
    elif part == "references":
        selected = [(t, b) for t, b in doc.sections if _is(t, REFERENCE_SECTIONS)]
    else:
        raise ValueError(f"part={part!r}, expected math, contract or references")
    for title, body in selected:
        # the page's own heading already says "math": a section titled just "Math" needs no heading of its own
        heading = "" if title == "Math" and part == "math" else f"{hashes} {rst_to_markdown(title)}\n\n"
        chunks.append(heading + rst_to_markdown(body))
    if not chunks:
        return ""
    return "\n\n".join(chunks)


def component(name: str) -> Component:
    return component_module(name).COMPONENT


def interface(name: str) -> str:
    """The functions a component specifies, with their signatures and first docstring line."""
    from transformer_spec.backends.base import Backend

    comp = component(name)
    owner: type = Backend
    if name == "tokenizer":
        from transformer_spec.tokenizers import ByteLevelBPETokenizer as owner  # tokenizers are objects of the application layer
    rows = []
    for function in comp.functions:
        target = getattr(owner, function, None)
        if target is None:
            raise AttributeError(f"spec component {name!r} lists {function!r}, but {owner.__qualname__} has no such method")
        signature = _plain_signature(target)
        first = (inspect.getdoc(target) or "").split("\n\n")[0].replace("\n", " ")
        rows.append(f"`{function}{signature}`\n:   {rst_to_markdown(first) or '(no docstring)'}")
    where = "transformer_spec.backends.base.Backend" if owner is Backend else f"{owner.__module__}.{owner.__qualname__}"
    return f"Specified functions (signatures read from `{where}`):\n\n" + "\n\n".join(rows)


def _plain_signature(function) -> str:
    """``(x, axis=-1)``: names and defaults, without ``self`` and without annotations (they are in the API reference)."""
    parameters = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in inspect.signature(function).parameters.values()
        if p.name not in ("self", "cls")
    ]
    return str(inspect.Signature(parameters))


def invariants_table(name: str) -> str:
    comp = component(name)
    lines = ["| Invariant id | Statement |", "|---|---|"]
    for inv in comp.invariants:
        lines.append(f"| `{inv.id}` | {_cell(inv.statement)} |")
    return "\n".join(lines)


TAG_LIKE = re.compile(r"<(/?[A-Za-z|][^<>\n]*)>")
CODE_OR_MATH = re.compile(r"(`+)[^`]*?\1|\$\$.*?\$\$|\$[^$\n]+\$", re.S)


def escape_prose(text: str) -> str:
    """``<word ...>`` outside code spans and math as entities: Markdown passes it through as an HTML tag, which the
    browser then swallows (``"<unk>"`` would show as ``""``, ``<grad f, v>`` as nothing)."""
    out, position = [], 0
    for match in CODE_OR_MATH.finditer(text):
        out.append(TAG_LIKE.sub(r"&lt;\1&gt;", text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(TAG_LIKE.sub(r"&lt;\1&gt;", text[position:]))
    return "".join(out)


def _cell(text: str) -> str:
    return escape_prose(text).replace("|", "\\|").replace("\n", " ")


def resolve(ref: str):
    """``package.module:Qualified.name`` → the object."""
    module_name, _, qualname = ref.partition(":")
    target = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        target = getattr(target, part)
    return target


def source(ref: str) -> str:
    """A fenced block holding the real source of ``ref``, titled with its file and line numbers."""
    target = resolve(ref)
    lines, first = inspect.getsourcelines(target)
    code = textwrap.dedent("".join(lines)).rstrip("\n")
    path = Path(inspect.getsourcefile(target)).resolve().relative_to(ROOT).as_posix()
    last = first + len(lines) - 1
    return f'```python title="{path}, lines {first}–{last}" linenums="{first}"\n{code}\n```'
