"""The registry of checks: one function per invariant id.

A check is a function ``fn(case)`` decorated with :func:`check`; it draws its
inputs through ``case`` (so the report can show them and write a repro) and
raises :class:`transformer_spec.conformance.case.InvariantViolation` when the invariant fails.
Every id must be declared in a spec module; every spec invariant must have a
check (``tests/test_conformance_meta.py`` holds the suite to that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformer_spec import spec

FLOAT = "float"  # the check runs once per requested float dtype
ANY = "any"  # dtype-independent: runs once, with the first requested dtype

# What a check is run against: an array backend (``runner.run``) or a tokenizer
# object following spec/tokenizer.py's interface (``runner.run_tokenizer``).
BACKEND = "backend"
TOKENIZER = "tokenizer"
SUBJECTS = (BACKEND, TOKENIZER)


@dataclass(frozen=True)
class Check:
    id: str  # the invariant id, e.g. "softmax.sums_to_one"
    fn: Callable[..., None]
    dtypes: str  # FLOAT or ANY
    examples_factor: float  # multiplies the profile's example count (expensive composites < 1)
    subject: str = BACKEND  # BACKEND or TOKENIZER: what ``case.backend`` is
    # The covering set: rows of draw name -> value that every profile runs first, on a fixed seed
    # (see :func:`transformer_spec.conformance.strategies.pairwise`); None: Hypothesis only.
    cover: Callable[[], list[dict[str, Any]]] | None = None

    @property
    def component(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def statement(self) -> str:
        return spec.all_invariants()[self.id].statement


CHECKS: dict[str, Check] = {}


def check(
    invariant_id: str,
    dtypes: str = FLOAT,
    examples_factor: float = 1.0,
    subject: str = BACKEND,
    cover: Callable[[], list[dict[str, Any]]] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn`` as the check of ``invariant_id`` (which a spec module must declare).

    ``cover`` returns the check's covering set: each row fixes some of the check's draws (by name),
    and the runner runs every row before Hypothesis explores."""
    if subject not in SUBJECTS:
        raise ValueError(f"check {invariant_id!r}: subject={subject!r}; expected one of {', '.join(SUBJECTS)}")

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if invariant_id not in _known_ids():
            raise KeyError(f"check {fn.__name__}: invariant {invariant_id!r} is not declared in any spec module")
        if invariant_id in CHECKS:
            raise KeyError(f"invariant {invariant_id!r} already has a check ({CHECKS[invariant_id].fn.__qualname__})")
        CHECKS[invariant_id] = Check(invariant_id, fn, dtypes, examples_factor, subject, cover)
        return fn

    return register


def _known_ids() -> set[str]:
    return set(spec.all_invariants())


def load_all_checks(subject: str | None = None) -> dict[str, Check]:
    """Import every component's check module (registering its checks) and return the registry in spec order.

    ``subject`` (BACKEND or TOKENIZER) keeps only the checks run against that kind of object.
    """
    from . import components  # noqa: F401  (importing registers the checks)

    order = list(spec.all_invariants())
    return {i: CHECKS[i] for i in order if i in CHECKS and (subject is None or CHECKS[i].subject == subject)}
