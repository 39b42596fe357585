"""Replay one check on recorded draws: the last lines of every failure's repro.

``replay(be, "model.cached_equals_full", "float32", [config, param_seed, ...])``
runs the check with each draw taken, in order, from the list instead of from
Hypothesis, so the repro re-checks exactly the invariant that failed on exactly
the shrunk inputs. It prints the verdict and exits 1 while the invariant fails.
"""

from __future__ import annotations

import sys
from typing import Any

from .case import Case, InvariantViolation


class ReplayExhausted(Exception):
    """The check drew more values than the repro recorded (the check changed since the repro was written)."""


def replay(backend: Any, invariant_id: str, dtype: str, draws: list[Any], exit_on_failure: bool = True) -> str | None:
    """Run the check of ``invariant_id`` on ``draws``; return None when it holds, else its failure message
    (and, with ``exit_on_failure``, print it and exit with status 1)."""
    from .registry import load_all_checks

    checks = load_all_checks()
    if invariant_id not in checks:
        raise KeyError(f"replay: no check for invariant {invariant_id!r}")
    values = iter(draws)

    def draw_fn(strategy: Any, label: str | None = None) -> Any:
        try:
            return next(values)
        except StopIteration:
            raise ReplayExhausted(
                f"replay of {invariant_id}: the check drew more than the {len(draws)} recorded values"
            ) from None

    case = Case(backend, dtype, draw_fn)
    try:
        checks[invariant_id].fn(case)
    except InvariantViolation as violation:
        message = f"FAILED {invariant_id}{f' [{dtype}]' if dtype else ''}: {violation.message}"
        if not exit_on_failure:
            return message
        print(message)
        sys.exit(1)
    print(f"{invariant_id}{f' [{dtype}]' if dtype else ''} holds on these inputs")
    return None
