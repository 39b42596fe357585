"""The exceptions of the contract.

Every bad input to a primitive, composite or configuration raises a subclass of
:class:`SpecError`, never a bare error from deep inside an array library. The
message always has three parts: which function and argument, what was wrong,
and what was expected (and, where it helps, what to do).
"""

from __future__ import annotations


class SpecError(ValueError):
    """Base class of every documented error raised by the contract."""


class ShapeError(SpecError):
    """An argument has the wrong rank or shape, or shapes do not agree."""


class DTypeError(SpecError, TypeError):
    """An argument has a dtype the function does not accept, or the backend lacks it."""


class OutOfRangeError(SpecError, IndexError):
    """An integer id or position lies outside its valid range (never wrapped around)."""


class ConfigError(SpecError):
    """A configuration or option value is invalid (for example heads not dividing the width)."""


class NotFiniteError(SpecError):
    """An input holds NaN where the function cannot give a meaningful answer."""
