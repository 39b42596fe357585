"""The fenced blocks of the Markdown pages: what each kind means, and how to run it.

Every fenced block in ``docs/**/*.md`` is one of these, and nothing else (the
build stops on any other kind, so that no code on the site goes unexecuted):

``python``
    A self-contained example. The tests (``tests/test_docs.py``) run it.
``python exec``
    Also run at build time; its real standard output is shown under it.
``python file=NAME.py``
    A file the reader writes. It is saved into the page's workspace (a scratch
    folder per page) so that later commands on the page can use it; the tests
    run it as a script.
``console exec`` (optionally ``returncode=N``)
    Lines starting with ``$ `` are shell commands, run at build time in the
    page's workspace; the block shows each command with its real output. The
    build fails if a command's exit status differs from ``returncode`` (0
    unless given).
``text file=NAME``
    A data file the page's commands read (an xfails list, say), saved into
    the workspace like a python file.
``mermaid``
    A diagram, drawn by Mermaid in the browser.

``requires=MODULE[:ATTRIBUTE]`` on a python or console block names a part of
the project that is not written yet; until it exists the block is shown
without output, with a note saying so, and the tests skip it (saying why).
A ``tspec SUBCOMMAND`` that the command line lacks is treated the same way.

Generated blocks (reference source, outputs) are added by the build after
this check, so they are not subject to it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .paths import ROOT

# Pages whose code blocks are verified by a test of their own instead (it runs the commands they show and
# compares the output they quote), and which include real source with pymdownx.snippets: page → that test.
VERIFIED_ELSEWHERE = {
    "tutorial_backend.md": "tests/test_tutorial_backend.py",
}
# Folders of pages written by measurement scripts (each page names the command that wrote it): their content is
# the output of a run, not examples to execute.
WRITTEN_BY_SCRIPTS = ("results/",)


def exempt(src_uri: str) -> bool:
    """Whether a page's blocks are someone else's to check (see VERIFIED_ELSEWHERE and WRITTEN_BY_SCRIPTS)."""
    return src_uri in VERIFIED_ELSEWHERE or src_uri.startswith(WRITTEN_BY_SCRIPTS)


FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S
)
KINDS = ("python", "console", "mermaid", "text")


class BlockError(ValueError):
    """A fenced block the docs do not allow, or one that failed to run."""


@dataclass(frozen=True)
class Block:
    path: str  # the page, relative to docs/
    line: int  # 1-based line of the opening fence
    language: str
    options: dict[str, str] = field(default_factory=dict)
    body: str = ""
    start: int = 0  # character span of the whole fence in the page
    end: int = 0

    @property
    def where(self) -> str:
        return f"docs/{self.path}:{self.line}"

    @property
    def executes_at_build(self) -> bool:
        return "exec" in self.options

    @property
    def file(self) -> str | None:
        return self.options.get("file")


def parse_info(info: str) -> tuple[str, dict[str, str]]:
    words = shlex.split(info.strip())
    if not words:
        return "", {}
    options = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        options[key] = value
    return words[0], options


def find_blocks(text: str, path: str) -> list[Block]:
    """Every fenced block of a page, checked against the kinds above."""
    blocks = []
    for match in FENCE.finditer(text):
        language, options = parse_info(match.group("info"))
        line = text.count("\n", 0, match.start()) + 1
        indent = match.group("indent")
        body = "".join(
            l[len(indent) :] if l.startswith(indent) else l.lstrip(" \t") for l in match.group("body").splitlines(keepends=True)
        )
        block = Block(path, line, language, options, body, match.start(), match.end())
        check(block)
        blocks.append(block)
    return blocks


def check(block: Block) -> None:
    allowed = {
        "python": {"exec", "file", "requires"},
        "console": {"exec", "returncode", "requires"},
        "mermaid": set(),
        "text": {"file"},
    }
    if block.language not in allowed:
        raise BlockError(
            f"{block.where}: a ```{block.language or '(no language)'} block; the docs allow only {', '.join(KINDS)} blocks, "
            "each of which is executed (see tools/docs/blocks.py). Put a command that cannot run at build time in inline code."
        )
    unknown = set(block.options) - allowed[block.language]
    if unknown:
        raise BlockError(
            f"{block.where}: unknown option(s) {', '.join(sorted(unknown))} on a ```{block.language} block; "
            f"expected {', '.join(sorted(allowed[block.language])) or 'none'}"
        )
    if block.language == "console" and not block.executes_at_build:
        raise BlockError(f"{block.where}: a ```console block must say `exec` (it is run at build time)")
    if block.language == "text" and not block.file:
        raise BlockError(f"{block.where}: a ```text block must be a file the page's commands read (file=NAME)")
    if block.language == "python" and block.file and block.executes_at_build:
        raise BlockError(f"{block.where}: a ```python block is either a file (file=...) or run (exec), not both")
    if block.file is not None and (
        not block.file or "/" in block.file or (block.language == "python" and not block.file.endswith(".py"))
    ):
        raise BlockError(f"{block.where}: file={block.file!r}, expected a plain file name (ending in .py for python)")


def requirement_missing(block: Block) -> str | None:
    """The ``requires=`` target when it does not exist in this build, else None."""
    target = block.options.get("requires")
    if not target:
        return None
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return target
        raise
    return target if attribute and not hasattr(module, attribute) else None


def environment(workspace: Path) -> dict[str, str]:
    """The environment of every command and example: this interpreter first on PATH, the repo importable."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(workspace), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MPLBACKEND"] = "Agg"
    env["COLUMNS"] = "100"  # argparse wraps --help at the terminal width: make it the same everywhere
    env.pop("TSPEC_BACKEND", None)  # the pages say which backend they mean
    return env


def run_python(block: Block, workspace: Path) -> str:
    """Run a python block in a fresh namespace with the workspace as the current folder; return what it printed."""
    code = compile(block.body, block.where, "exec")
    out = io.StringIO()
    old_cwd, old_path = Path.cwd(), list(sys.path)
    os.chdir(workspace)
    sys.path[:0] = [str(workspace), str(ROOT)]
    try:
        with contextlib.redirect_stdout(out):
            exec(code, {"__name__": "__main__", "__file__": str(workspace / "example.py")})
    except Exception as error:
        raise BlockError(f"{block.where}: the example raised {type(error).__name__}: {error}") from error
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
    return out.getvalue()


def write_file(block: Block, workspace: Path) -> Path:
    path = workspace / block.file
    path.write_text(block.body)
    return path


def commands(block: Block) -> list[str]:
    lines = [line for line in block.body.splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith("$ ")]
    if bad or not lines:
        raise BlockError(
            f"{block.where}: every line of a ```console exec block must be a command starting with '$ '; got {bad[:1] or 'nothing'}"
        )
    return [line[2:] for line in lines]


def run_command(command: str, workspace: Path, timeout: float = 300) -> tuple[int, str]:
    """Run one shell command; return its exit status and its stdout and stderr, interleaved as a terminal shows them."""
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=workspace,
            env=environment(workspace),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BlockError(f"command {command!r} did not finish in {timeout:.0f} s") from None
    return done.returncode, done.stdout
