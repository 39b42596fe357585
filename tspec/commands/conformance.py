"""``tspec conformance``: run the conformance suite against a backend and print the verdict table."""

from __future__ import annotations

import argparse

NAME = "conformance"
HELP = "run the conformance suite against a backend and print the verdict table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from conformance.cli import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from conformance.cli import run_from_args

    return run_from_args(args)
