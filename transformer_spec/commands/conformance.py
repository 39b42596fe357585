"""``tspec conformance``: run the conformance suite against a backend (or, with ``--tokenizer``, a tokenizer) and print the verdict table."""

from __future__ import annotations

import argparse
import sys

NAME = "conformance"
HELP = "run the conformance suite against a backend (or --tokenizer PATH) and print the verdict table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from transformer_spec.conformance.cli import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from transformer_spec.conformance.cli import run_from_args

    from ..tokenizers import load_tokenizer

    if args.tokenizer == "default":  # the shipped model's folder holds its tokenizer
        try:
            from ..checkpoint import default_checkpoint_path
        except ImportError as error:
            print(
                f"error: --tokenizer default needs transformer_spec.checkpoint ({error}); pass a tokenizer folder instead",
                file=sys.stderr,
            )
            return 2
        args.tokenizer = str(default_checkpoint_path())
    return run_from_args(args, load_tokenizer=load_tokenizer)
