"""Command line of the conformance suite: ``tspec conformance`` and ``python -m transformer_spec.conformance``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformer_spec.spec.errors import SpecError

from .profiles import PROFILES, default_profile

# The runner (and Hypothesis with it) is imported inside the functions that run the suite,
# so that building the `tspec` argument parser stays cheap for every other command.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default=None,
        help="numpy, torch, torch:cuda, jax, an entry-point name, module:attribute, or 'all' (every installed backend); default $TSPEC_BACKEND or numpy",
    )
    parser.add_argument(
        "--tokenizer",
        metavar="PATH",
        default=None,
        help="check a tokenizer instead of a backend: a folder holding a saved tokenizer, module:attribute "
        "(a tokenizer object, or a class or function that builds one), or, with tspec, 'default' "
        "(the shipped model's tokenizer)",
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        help="comma-separated float dtypes to check (default float32), or 'all' for every dtype the backend supports",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="Hypothesis example counts: dev (quick), ci, thorough; default $TSPEC_PROFILE or dev",
    )
    parser.add_argument("--report", metavar="FILE.json", help="write every invariant's status, counterexample and timing as JSON")
    parser.add_argument("--xfails", metavar="FILE", help="invariant ids expected to fail, one per line ('#' starts a comment)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only invariants whose id matches, e.g. 'softmax and not log'")
    parser.add_argument(
        "--seed", type=int, default=None, help="Hypothesis seed (printed with every run, so a failure can be rerun)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the table, not each failure's details")
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs between runs (by default a backend that compiles, such as JAX, caches them in "
        "$TSPEC_JAX_CACHE_DIR or ~/.cache/transformer-spec/jax; TSPEC_JAX_CACHE_DIR= (empty) also turns that off)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a check (one invariant, one dtype) still running after this long fails as timed out and the run stops "
        "(default 600: generous, for a kernel that never returns)",
    )


def run_from_args(args: argparse.Namespace, out=None, load_tokenizer: Callable[[str], Any] | None = None) -> int:
    """Run the suite as the parsed arguments say; return the exit status (0 only when nothing failed).

    Exit 2, with one line on stderr naming what was wrong and what exists, for input that would check
    nothing: an unknown or unsupported dtype, no dtype, a ``-k`` that is malformed or selects nothing,
    an unreadable xfails file, an unknown profile.

    ``load_tokenizer`` reads a tokenizer folder for ``--tokenizer PATH`` (``tspec conformance``
    passes the application's loader; ``module:attribute`` needs none).
    """
    out = sys.stdout if out is None else out  # looked up now, so a redirected stdout is honoured
    from .runner import DEFAULT_TIMEOUT, JAX_CACHE_ENV, Report, checked_dtypes, render_header, render_table, run, selected_checks
    from .runner import _seed_or_random as seed_or_random
    from .runner import _spec_of as spec_of

    try:
        profile = args.profile or default_profile()
    except ValueError as error:
        return _error(str(error))
    timeout = DEFAULT_TIMEOUT if getattr(args, "timeout", None) is None else args.timeout
    if not timeout > 0:
        return _error(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    if getattr(args, "tokenizer", None) is not None:
        return _run_tokenizer_from_args(args, out, load_tokenizer)
    if getattr(args, "no_compile_cache", False):
        os.environ[JAX_CACHE_ENV] = ""  # read by the runner when it turns the cache on
    from transformer_spec.backends import available_backends, load_backend

    from .registry import load_all_checks

    names = available_backends() if args.backend == "all" else [args.backend]
    xfails = _read_xfails(args)
    if xfails is None:
        return 2
    problem = _unwritable(args.report)
    if problem:
        return _error(problem)
    try:
        selected_checks(load_all_checks(), args.keyword)  # a malformed -k, or one that selects nothing, is an error
    except ValueError as error:
        return _error(str(error))
    reports = []
    for name in names:
        try:
            backend = load_backend(name)
        except SpecError as error:
            return _error(str(error))
        requested = tuple(backend.dtypes) if args.dtype.strip() == "all" else tuple(d.strip() for d in args.dtype.split(","))
        try:
            dtypes = checked_dtypes(tuple(d for d in requested if d), backend)
        except ValueError as error:
            return _error(str(error))
        seed = seed_or_random(args.seed)
        target = name if name is not None else backend
        preview = Report(
            backend=target if isinstance(target, str) else spec_of(target),
            backend_class=f"{type(backend).__module__}.{type(backend).__qualname__}",
            dtypes=dtypes,
            profile=profile,
            seed=seed,
            capabilities=backend.capabilities(),
        )
        print(render_header(preview), file=out, flush=True)  # before the first check: a hang still shows what ran
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unknown xfail ids are reported in the table instead
                report = run(
                    target,
                    dtypes=dtypes,
                    profile=profile,
                    keyword=args.keyword,
                    xfails=xfails,
                    seed=seed,
                    timeout=timeout,
                )
        except (NotImplementedError, ValueError) as error:
            return _error(str(error))
        print(file=out)
        print(render_table(report, show_failures=not args.quiet, header=False), file=out)
        print(file=out, flush=True)
        reports.append(report)
        if report.aborted:
            break
    if args.report:
        payload = [json.loads(r.to_json()) for r in reports]
        try:
            Path(args.report).write_text(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
        except OSError as error:
            return _error(f"cannot write --report {args.report!r}: {error.strerror or error}")
        print(f"report written to {args.report}", file=out)
    if any(r.aborted for r in reports):
        # A check is still running in a thread that cannot be stopped: leave without waiting for it.
        out.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0 if all(r.ok for r in reports) else 1


def _unwritable(path: str | None) -> str:
    """Why ``--report PATH`` could not be written (checked before any work), or ""."""
    if not path:
        return ""
    target = Path(path)
    if target.is_dir():
        return f"--report {path!r} is a directory; expected a file name such as report.json"
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        return f"--report {path!r}: folder {str(folder)!r} does not exist"
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"--report {path!r} is not writable"
    return ""


def _error(message: str) -> int:
    """One line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read_xfails(args: argparse.Namespace) -> set[str] | None:
    from .runner import parse_xfails

    if not args.xfails:
        return set()
    try:
        return parse_xfails(args.xfails)
    except OSError as error:
        print(f"error: cannot read --xfails file {args.xfails!r}: {error.strerror or error}", file=sys.stderr)
        return None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def _run_tokenizer_from_args(args: argparse.Namespace, out: Any, load_tokenizer: Callable[[str], Any] | None) -> int:
    from .runner import is_tokenizer_target, load_tokenizer_target, render_table, run_tokenizer

    if args.backend is not None:
        print(
            "error: --backend and --tokenizer exclude each other: the tokenizer checks run on the host, the same for "
            "every backend; run them separately",
            file=sys.stderr,
        )
        return 2
    xfails = _read_xfails(args)
    if xfails is None:
        return 2
    target = args.tokenizer
    try:
        if is_tokenizer_target(target):
            tokenizer = load_tokenizer_target(target)
        else:
            if load_tokenizer is None:
                if target == "default":
                    print(
                        "error: --tokenizer default names the model shipped with tspec; run it as "
                        "tspec conformance --tokenizer default",
                        file=sys.stderr,
                    )
                    return 2
                try:  # only this entry point reaches into the application layer, and only when asked to
                    from transformer_spec.tokenizers import load_tokenizer
                except ImportError:
                    print(
                        f"error: reading the tokenizer folder {target!r} needs the tspec package; install it, or pass "
                        "--tokenizer module:attribute",
                        file=sys.stderr,
                    )
                    return 2
            tokenizer = load_tokenizer(target)
    except (SpecError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown xfail ids are reported in the table instead
            report = run_tokenizer(
                tokenizer, target, profile=args.profile or default_profile(), keyword=args.keyword, xfails=xfails, seed=args.seed
            )
    except (NotImplementedError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render_table(report, show_failures=not args.quiet), file=out)
    print(file=out)
    if args.report:
        Path(args.report).write_text(report.to_json())
        print(f"report written to {args.report}", file=out)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transformer_spec.conformance",
        description="Run the transformer-spec conformance suite against a backend or a tokenizer.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
