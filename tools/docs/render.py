"""Turn one page's Markdown source into the Markdown mkdocs renders.

* ``<!-- gen:NAME key=value ... -->`` lines are replaced by their generator's output.
* Fenced blocks are checked (:mod:`tools.docs.blocks`); ``exec`` blocks are run
  in a scratch workspace for the page, and their real output is shown.

A page's executed output is cached under the hash of the code and of the page
itself, so an unchanged page is not run again.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import cache
from .blocks import Block, BlockError, commands, exempt, find_blocks, requirement_missing, run_command, run_python, write_file
from .generators import GENERATORS, Context
from .timing import timed

DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)<!-- gen:(?P<name>\w+)(?P<args>[^>]*?)\s*-->[ \t]*$", re.M)


# Generators whose output is cheap and depends on the build's own state, not only on the code: not cached.
# (``figure`` links what on_files drew; ``conformance_matrix`` registers a deferred placeholder.)
UNCACHED = {"figure", "conformance_matrix"}


class PageError(RuntimeError):
    """Something on a page could not be generated."""


def expand_directives(text: str, ctx: Context) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in GENERATORS:
            raise PageError(f"docs/{ctx.src_uri}: unknown directive gen:{name}; known: {', '.join(sorted(GENERATORS))}")
        try:
            args = dict(word.split("=", 1) for word in shlex.split(match.group("args")))
        except ValueError:
            raise PageError(f"docs/{ctx.src_uri}: gen:{name} arguments must be key=value, got {match.group('args')!r}") from None
        try:
            with timed(f"gen:{name}"):
                if name in UNCACHED:
                    out = GENERATORS[name](ctx, **args)
                else:
                    out = cache.cached_text(
                        "generators", (name, sorted(args.items()), ctx.src_uri), lambda: GENERATORS[name](ctx, **args)
                    )
        except Exception as error:
            raise PageError(
                f"docs/{ctx.src_uri}: gen:{name} {match.group('args').strip()} failed: {type(error).__name__}: {error}"
            ) from error
        indent = match.group("indent")
        return "\n".join(indent + line if line else line for line in out.splitlines())

    return DIRECTIVE.sub(replace, text)


def tspec_subcommand_missing(command: str) -> str | None:
    """The subcommand, if ``command`` runs ``tspec SUBCOMMAND`` and this build has no such subcommand."""
    words = shlex.split(command)
    if len(words) < 2 or words[0] != "tspec" or words[1].startswith("-"):
        return None
    from transformer_spec.cli import command_modules

    return None if words[1] in {m.NAME for m in command_modules()} else words[1]


def _fence(language: str, body: str, title: str = "", indent: str = "") -> str:
    fence = "````" if "```" in body else "```"
    head = f"{fence}{language}" + (f' title="{title}"' if title else "")
    lines = [head, *body.rstrip("\n").splitlines(), fence]
    return "\n".join(indent + line if line else line for line in lines)


def execute(blocks: list[Block], workspace: Path) -> dict[int, dict]:
    """Run the page's exec blocks (and write its files) in order; return what each block showed, by index."""
    outputs: dict[int, dict] = {}
    for index, block in enumerate(blocks):
        missing = requirement_missing(block)
        if missing:
            outputs[index] = {"requires": missing}
        elif block.file:
            write_file(block, workspace)
        elif block.language == "python" and block.executes_at_build:
            outputs[index] = {"stdout": run_python(block, workspace)}
        elif block.language == "console":
            results = []
            expected = int(block.options.get("returncode") or 0)
            for command in commands(block):
                missing = tspec_subcommand_missing(command)
                if missing:
                    results.append({"command": command, "missing": missing})
                    continue
                with timed(f"$ {command[:60]}"):
                    code, output = run_command(command, workspace)
                if code != expected:
                    raise BlockError(f"{block.where}: `{command}` exited {code}, the page expects {expected}:\n{output[-3000:]}")
                results.append({"command": command, "output": output})
            outputs[index] = {"commands": results}
    return outputs


def render_blocks(text: str, blocks: list[Block], outputs: dict[int, dict]) -> str:
    pieces, position = [], 0
    for index, block in enumerate(blocks):
        pieces.append(text[position : block.start])
        position = block.end
        indent = re.match(r"[ \t]*", text[block.start :]).group(0)
        if block.language == "mermaid":
            pieces.append(text[block.start : block.end])
        elif block.file:
            pieces.append(_fence(block.language, block.body, title=block.file, indent=indent))
        elif "requires" in outputs.get(index, {}):
            language = "console" if block.language == "console" else "python"
            shown = _fence(language, block.body, indent=indent)
            shown += (
                f'\n\n{indent}!!! note "No output yet: `{outputs[index]["requires"]}` is not in this build"\n'
                f"{indent}    This example uses a part of the project that is not written yet, so nothing was run. "
                "When it exists, the docs build runs the example and shows its real output here."
            )
            pieces.append(shown)
        elif block.language == "python":
            shown = _fence("python", block.body, indent=indent)
            if index in outputs and outputs[index].get("stdout"):
                shown += "\n\n" + _fence(
                    "text", outputs[index]["stdout"], title="Output (captured when these docs were built)", indent=indent
                )
            pieces.append(shown)
        else:  # console
            chunks, notes = [], []
            for result in outputs[index]["commands"]:
                chunks.append(f"$ {result['command']}\n" + result.get("output", ""))
                if "missing" in result:
                    notes.append(result["missing"])
            shown = _fence("console", "".join(c if c.endswith("\n") else c + "\n" for c in chunks), indent=indent)
            for missing in notes:
                shown += (
                    f'\n\n{indent}!!! note "No output yet: `tspec {missing}` is not in this build"\n'
                    f"{indent}    This command is not part of the `tspec` command line yet, so nothing was run. "
                    "When it exists, the docs build runs it and shows its real output here."
                )
            pieces.append(shown)
    pieces.append(text[position:])
    return "".join(pieces)


def _page_cache(src_uri: str, markdown: str) -> Path:
    return cache.path_for("pages", src_uri, markdown, suffix=".json", inputs=cache.PAGE_INPUTS)


def _execute_into(blocks: list[Block], path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="tspec-docs-") as workspace:
        outputs = execute(blocks, Path(workspace))
    path.write_text(json.dumps(outputs))


# Pages whose executed blocks are all shell commands run ahead, in one background thread, while mkdocs renders
# the other pages: the commands are subprocesses, so they use the second core while this process draws figures
# and runs the python examples (which must stay on the main thread: they change the working folder and stdout).
_ahead: dict[str, Future] = {}
_pool: ThreadPoolExecutor | None = None


def run_ahead(pages: list[tuple[str, str]]) -> None:
    """Start executing the command-only pages among ``pages`` ((src_uri, markdown) pairs) whose output is not cached."""
    global _pool
    for src_uri, markdown in pages:
        if exempt(src_uri) or src_uri in _ahead:
            continue
        try:
            blocks = find_blocks(markdown, src_uri)
        except BlockError:
            continue  # reported when the page itself is rendered
        executed = [b for b in blocks if b.executes_at_build]
        if not executed or any(b.language == "python" for b in executed):
            continue
        path = _page_cache(src_uri, markdown)
        if path.exists():
            continue
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tspec-docs-ahead")
        _ahead[src_uri] = _pool.submit(_execute_into, blocks, path)


def stop_running_ahead() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None
    _ahead.clear()


def render_page(markdown: str, src_uri: str) -> str:
    if exempt(src_uri):  # its blocks are checked by a test of its own, or it is a script's output; directives still work
        return expand_directives(markdown, Context(src_uri))
    blocks = find_blocks(markdown, src_uri)
    needs_run = any(b.executes_at_build for b in blocks)
    outputs: dict[int, dict] = {}
    if needs_run:
        path = _page_cache(src_uri, markdown)
        ahead = _ahead.pop(src_uri, None)
        if ahead is not None:
            ahead.result()  # waits for it; raises what running the page raised
        if not path.exists():
            _execute_into(blocks, path)
        outputs = {int(k): v for k, v in json.loads(path.read_text()).items()}
    text = render_blocks(markdown, blocks, outputs)
    return expand_directives(text, Context(src_uri))
