"""The tutorial's first draft of softmax, kept so that the tutorial can show a real failure report."""

from __future__ import annotations

from .backend import ArrayAPIStrictBackend, namespace


# --8<-- [start:first_attempt]
class FirstAttempt(ArrayAPIStrictBackend):
    """The finished backend, but with the softmax of a first draft: exp(x) / sum(exp(x))."""

    def _softmax(self, x, axis):
        xp = namespace(x)
        e = xp.exp(x)  # overflows to inf for scores above ~88 (float32) or ~709 (float64)
        return e / xp.sum(e, axis=axis, keepdims=True)


# --8<-- [end:first_attempt]
