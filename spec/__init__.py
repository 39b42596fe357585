"""transformer-spec: the contract.

One module per component; each ends with ``COMPONENT``, listing the backend
functions it specifies and its invariants with stable ids. This package imports
no array library but NumPy, and nothing from ``backends`` or ``conformance``.
"""

from __future__ import annotations

from . import (
    activations,
    attention,
    block,
    embedding,
    feedforward,
    gradients,
    linear,
    loss,
    model,
    multihead_attention,
    normalization,
    positional,
    sampling,
    softmax,
    tokenizer,
)
from .component import Component, Invariant
from .config import ModelConfig
from .errors import ConfigError, DTypeError, NotFiniteError, OutOfRangeError, ShapeError, SpecError

# In pipeline order: the order of the report rows and of the docs.
SPEC_MODULES = (
    tokenizer,
    softmax,
    activations,
    linear,
    normalization,
    embedding,
    positional,
    attention,
    multihead_attention,
    feedforward,
    block,
    model,
    loss,
    sampling,
    gradients,
)
COMPONENTS: tuple[Component, ...] = tuple(m.COMPONENT for m in SPEC_MODULES)


def component(name: str) -> Component:
    for c in COMPONENTS:
        if c.name == name:
            return c
    raise KeyError(f"no component {name!r}; components: {', '.join(c.name for c in COMPONENTS)}")


def all_invariants() -> dict[str, Invariant]:
    return {inv.id: inv for c in COMPONENTS for inv in c.invariants}


__all__ = [
    "COMPONENTS",
    "SPEC_MODULES",
    "Component",
    "Invariant",
    "ModelConfig",
    "component",
    "all_invariants",
    "SpecError",
    "ShapeError",
    "DTypeError",
    "OutOfRangeError",
    "ConfigError",
    "NotFiniteError",
]
