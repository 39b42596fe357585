"""The ``tspec`` command: conformance, generation, training, evaluation."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from conformance.cli import add_arguments as add_conformance_arguments

    parser = argparse.ArgumentParser(prog="tspec", description="transformer-spec: a tested reference transformer with swappable backends.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    conformance = commands.add_parser("conformance", help="run the conformance suite against a backend and print the verdict table")
    add_conformance_arguments(conformance)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "conformance":
        from conformance.cli import run_from_args

        return run_from_args(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
