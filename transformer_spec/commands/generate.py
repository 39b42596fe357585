"""``tspec generate "PROMPT"``: continue a prompt with a model, printing tokens as they come.

The prompt is echoed, then the continuation streams to standard output; a
line of statistics (tokens, stop reason, prefill time, decoding speed) goes to
standard error, so ``tspec generate ... > story.txt`` keeps only the text.
Bad input (an unknown backend, a missing checkpoint, an option out of range)
is one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from transformer_spec.spec.errors import SpecError

NAME = "generate"
HELP = "generate text from a prompt with any backend (the default model ships with the package)"


class OptionError(SpecError):
    """A command-line option has a value of the wrong kind (not a number, say)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers arrive as strings and are converted in run(): a bad value is then a
    # one-line SpecError like every other bad input, not argparse's usage dump.
    parser.add_argument("prompt", nargs="?", default=None, help="the text to continue (or use --prompts-file)")
    parser.add_argument(
        "--prompts-file",
        default=None,
        metavar="FILE",
        help='JSONL, one prompt a line ("text" or {"prompt": "text", "seed": 1, ...}): generated in batches, '
        "one JSON result a line on standard output; each equals generating that prompt alone with its seed",
    )
    parser.add_argument("--batch-size", default="8", metavar="N", help="prompts per batch with --prompts-file (default: 8)")
    parser.add_argument(
        "--backend", default=None, help="numpy, torch, jax, torch:cuda, or module:attr (default: $TSPEC_BACKEND or numpy)"
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="DIR",
        help="checkpoint folder, or a Hugging Face GPT-2, Llama, Mistral or Qwen2 folder (default: the shipped model)",
    )
    parser.add_argument("--dtype", default="float32", help="float dtype to compute in (default: float32)")
    parser.add_argument("--max-new-tokens", default="64", metavar="N", help="stop after N new tokens (default: 64)")
    parser.add_argument("--temperature", default="1.0", metavar="T", help="0 = greedy; higher = more random (default: 1.0)")
    parser.add_argument("--top-k", default=None, metavar="K", help="sample only among the K most probable tokens")
    parser.add_argument(
        "--top-p",
        default=None,
        metavar="P",
        help="sample only in the smallest set of tokens with probability mass >= P, in (0, 1]",
    )
    parser.add_argument(
        "--seed", default="0", metavar="S", help="random seed: the same seed gives the same text on every backend (default: 0)"
    )
    parser.add_argument(
        "--overflow",
        default="error",
        help="when the text outgrows the context: error (default) or slide (keep the latest tokens)",
    )
    parser.add_argument("--ignore-eos", action="store_true", help="keep generating after the end-of-text token")
    parser.add_argument("--no-stream", action="store_true", help="print the text once, at the end")
    parser.add_argument("--no-echo", action="store_true", help="print only the continuation, not the prompt")


def run(args: argparse.Namespace) -> int:
    options = {
        "max_new_tokens": _number(args.max_new_tokens, int, "--max-new-tokens"),
        "temperature": _number(args.temperature, float, "--temperature"),
        "top_k": None if args.top_k is None else _number(args.top_k, int, "--top-k"),
        "top_p": None if args.top_p is None else _number(args.top_p, float, "--top-p"),
        "seed": _number(args.seed, int, "--seed"),
        "overflow": args.overflow,
        "stop_at_eos": not args.ignore_eos,
    }
    from transformer_spec.api import load_model
    from transformer_spec.generate import check_generation_options, check_prompt_fits, encode_prompt

    if (args.prompt is None) == (args.prompts_file is None):
        raise OptionError("generate: expected a PROMPT or --prompts-file FILE (one of the two)")
    if args.prompts_file is not None:
        return _run_prompts_file(args, options)
    # Everything is checked before the prompt is echoed, so bad input prints only the error line.
    check_generation_options(stream=None, **options)
    model = load_model(args.checkpoint, backend=args.backend, dtype=args.dtype)
    check_prompt_fits(len(encode_prompt(model.tokenizer, args.prompt)), model.config, options["overflow"])
    out = _Output(sys.stdout)
    try:
        if not args.no_echo:
            out.write(args.prompt)
        result = model.generate(args.prompt, stream=None if args.no_stream else out.write, **options)
        if args.no_stream:
            out.write(result.text)
        out.write("\n")
    except _ReaderGone:
        return 0  # `tspec generate ... | head`: the reader has what it wanted
    speed = result.decode_tokens_per_second
    print(
        f"[{len(result.prompt_ids)} prompt tokens, {len(result.token_ids)} new tokens, stop: {result.stop_reason}; "
        f"prefill {result.prefill_seconds * 1000:.1f} ms, decode "
        f"{'n/a' if math.isnan(speed) else f'{speed:.1f} tokens/s'}; {model.backend.name} {model.dtype}"
        f"{'; slid ' + str(result.slides) + ' times' if result.slides else ''}"
        f"{'; untrained placeholder model' if model.metadata.get('trained') is False else ''}]",
        file=sys.stderr,
    )
    return 0


def _run_prompts_file(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """--prompts-file: every line's prompt, in batches of --batch-size, one JSON result a line on standard output."""
    import json

    from transformer_spec.api import load_model
    from transformer_spec.generate import check_generation_options, check_prompt_fits, encode_prompt

    if options["overflow"] != "error":
        raise OptionError("generate: --prompts-file generates batches, which do not slide; expected --overflow error")
    batch_size = _number(args.batch_size, int, "--batch-size")
    if batch_size < 1:
        raise OptionError(f"--batch-size {batch_size}: expected an integer >= 1")
    check_generation_options(stream=None, **options)
    try:
        with open(args.prompts_file, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError(f"--prompts-file {args.prompts_file}: cannot be read ({error}); expected a UTF-8 JSONL file") from None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise OptionError(f"--prompts-file {args.prompts_file} line {number}: not JSON ({error.msg})") from None
        if isinstance(record, str):
            record = {"prompt": record}
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise OptionError(
                f'--prompts-file {args.prompts_file} line {number}: expected a JSON string or {{"prompt": "...", ...}}'
            )
        seed = record.get("seed", options["seed"])
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise OptionError(f"--prompts-file {args.prompts_file} line {number}: seed = {seed!r}, expected an integer >= 0")
        records.append(record)
    if not records:
        raise OptionError(f"--prompts-file {args.prompts_file}: holds no prompts; expected one JSON prompt a line")
    model = load_model(args.checkpoint, backend=args.backend, dtype=args.dtype)
    for record in records:  # every prompt is checked before the first batch runs
        check_prompt_fits(len(encode_prompt(model.tokenizer, record["prompt"])), model.config, "error")
    out = _Output(sys.stdout)
    sampling = {key: options[key] for key in ("max_new_tokens", "temperature", "top_k", "top_p", "stop_at_eos")}
    try:
        for first in range(0, len(records), batch_size):
            chunk = records[first : first + batch_size]
            results = model.generate(
                [r["prompt"] for r in chunk], seed=[r.get("seed", options["seed"]) for r in chunk], **sampling
            )
            for record, result in zip(chunk, results):
                line = {
                    **record,
                    "text": result.text,
                    "token_ids": list(result.token_ids),
                    "stop_reason": result.stop_reason,
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    except _ReaderGone:
        return 0
    print(f"[{len(records)} prompts in batches of {batch_size}; {model.backend.name} {model.dtype}]", file=sys.stderr)
    return 0


def _number(text: str, kind: Callable[[str], Any], option: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise OptionError(f"{option} {text!r}: expected {expected}") from None
    return value


class _ReaderGone(Exception):
    """Standard output was closed by its reader (a pipe into `head`): generation stops quietly."""


class _Output:
    """Standard output that flushes every piece, stops on a closed pipe, and never fails on encoding."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        if hasattr(stream, "reconfigure"):
            # A terminal or pipe that cannot show a character prints '?' instead of stopping mid-story.
            stream.reconfigure(errors="replace")

    def write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            # Python would complain again when it flushes stdout at exit: point stdout at /dev/null first.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            except (OSError, ValueError):
                pass
            raise _ReaderGone from None
