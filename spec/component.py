"""How a spec module describes itself: a component with its invariants.

Each spec module ends with ``COMPONENT = Component(...)``. The invariant ids are
stable: they name the conformance check, the docs row and the report line.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Invariant:
    id: str  # "<component>.<name>", stable across releases
    statement: str  # one sentence, rendered in the docs table and the report


@dataclass(frozen=True)
class Component:
    name: str  # the prefix of every invariant id, and the report row
    title: str  # human title for the docs
    functions: tuple[str, ...]  # the backend methods this component specifies
    invariants: tuple[Invariant, ...] = field(default_factory=tuple)
    # The ModelConfig fields the component's functions read: their output depends on no other field (a
    # layer of the model reads only its own; empty: the component takes no config, or reads all of it).
    config_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for inv in self.invariants:
            if not inv.id.startswith(self.name + "."):
                raise ValueError(f"invariant {inv.id!r} must start with {self.name + '.'!r}")
        ids = [inv.id for inv in self.invariants]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate invariant ids in component {self.name!r}")

    def invariant(self, invariant_id: str) -> Invariant:
        for inv in self.invariants:
            if inv.id == invariant_id:
                return inv
        raise KeyError(f"component {self.name!r} has no invariant {invariant_id!r}")


def invariants(*pairs: tuple[str, str]) -> tuple[Invariant, ...]:
    """Build a tuple of invariants from ``(id, statement)`` pairs."""
    return tuple(Invariant(id=i, statement=s) for i, s in pairs)
