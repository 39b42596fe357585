"""The ``tspec`` command. Each subcommand is a module in :mod:`transformer_spec.commands`.

Exit status: 0 on success, 1 when a check or evaluation fails, 2 for bad input
(with a one-line message naming what was wrong; never a traceback), 130 after
Ctrl-C and 143 after SIGTERM (training saves first). Output paths are checked
before any work starts (:mod:`transformer_spec.outputs`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from transformer_spec.spec.errors import SpecError

from . import commands


def command_modules() -> list:
    return [
        importlib.import_module(f"{commands.__name__}.{info.name}")
        for info in pkgutil.iter_modules(commands.__path__)
        if not info.name.startswith("_")
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tspec", description="transformer-spec: a tested reference transformer with swappable backends."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as error:  # bad input anywhere below: one line, exit status 2
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
