r"""Softmax and log-softmax: turning scores into a probability distribution.

Math
----
$$\operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad m = \max_j x_j$$

$$\operatorname{log\_softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}$$

Subtracting the maximum $m$ changes nothing mathematically (softmax is
invariant to adding a constant) but keeps every exponent $\le 0$, so nothing
overflows: the result is finite for any finite input, even $\pm 10^{30}$.

Shapes
------
``x``: ``(..., N)`` along the chosen ``axis`` (default the last); the result has
the shape of ``x``.

Interface
---------
``softmax(x, axis=-1)``, ``log_softmax(x, axis=-1)``: float ``x``, int ``axis``.

Special cases
-------------
* An axis of length one gives exactly ``1`` (``0`` for log-softmax).
* Ties give equal probabilities.
* ``-inf`` entries get probability ``0`` as long as one entry of the row is finite.

Errors
------
* ``DTypeError`` — ``x`` is not a float array.
* ``ShapeError`` — ``axis`` out of range, or the axis has length zero.

References
----------
Bridle (1990), *Probabilistic interpretation of feedforward classification
network outputs*; Goodfellow et al., *Deep Learning*, §4.1.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="softmax",
    title="Softmax",
    functions=("softmax", "log_softmax"),
    invariants=invariants(
        ("softmax.sums_to_one", "Along the axis, the probabilities sum to 1 (within a few ulps per element)."),
        ("softmax.non_negative", "Every probability is >= 0 and <= 1."),
        ("softmax.shift_invariant", "softmax(x + c) = softmax(x) for any constant c added along the axis."),
        ("softmax.order_preserving", "If x_i > x_j then p_i >= p_j: larger scores never get smaller probabilities."),
        (
            "softmax.finite_for_extreme_inputs",
            "For finite inputs as large as ±1e30 (±6e4 in float16) the result is finite and sums to 1.",
        ),
        ("softmax.matches_reference", "softmax agrees with the float64 reference within the primitive tolerance."),
        (
            "softmax.log_softmax_matches_reference",
            "log_softmax agrees with the float64 reference within the primitive tolerance.",
        ),
        ("softmax.log_softmax_is_log_of_softmax", "exp(log_softmax(x)) = softmax(x)."),
        ("softmax.errors", "Integer input, an axis out of range or an empty axis raise a SpecError naming the argument."),
    ),
)
