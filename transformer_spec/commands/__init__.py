"""One module per ``tspec`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status). ``transformer_spec.cli`` finds them here, so a new
command is one new file.
"""
