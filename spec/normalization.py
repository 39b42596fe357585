r"""Layer normalisation and RMS normalisation, over the last axis.

Math
----
Layer norm (Ba et al. 2016), with the *biased* variance (divide by $D$, not $D-1$):

$$\mu = \tfrac1D \sum_i x_i,\quad \sigma^2 = \tfrac1D \sum_i (x_i-\mu)^2,\quad
y_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \varepsilon}}\, w_i + b_i$$

RMS norm (Zhang & Sennrich 2019) skips the centring and the bias:

$$\operatorname{rms} = \sqrt{\tfrac1D \sum_i x_i^2 + \varepsilon},\qquad y_i = \frac{x_i}{\operatorname{rms}}\, w_i$$

Shapes
------
``x``: ``(..., D)``; ``w``: ``(D,)``; ``b``: ``(D,)`` or ``None`` (no shift); result ``(..., D)``.

Interface
---------
``layer_norm(x, w, b=None, eps=1e-5)``, ``rms_norm(x, w, eps=1e-6)``.

Special cases
-------------
A constant row gives ``b`` (layer norm): the centred values are all zero.
$\varepsilon$ keeps the division finite there.

Errors
------
``ShapeError`` if ``w`` or ``b`` is not ``(D,)``; ``DTypeError`` for non-float
input; ``ConfigError`` for ``eps < 0``.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="normalization",
    title="Normalization",
    functions=("layer_norm", "rms_norm"),
    invariants=invariants(
        (
            "normalization.layer_norm_standardizes",
            "With w = 1, b = 0, each row has mean 0 and (biased) variance sigma^2/(sigma^2 + eps).",
        ),
        ("normalization.layer_norm_matches_reference", "layer_norm agrees with the float64 reference."),
        (
            "normalization.layer_norm_shift_scale_invariant",
            "layer_norm(a*x + c) = layer_norm(x) for a > 0 (eps = 0 limit, checked with eps tiny).",
        ),
        (
            "normalization.rms_norm_unit_rms",
            "With w = 1, each row has root-mean-square ms/(ms + eps) under the square root, i.e. 1 up to eps.",
        ),
        ("normalization.rms_norm_matches_reference", "rms_norm agrees with the float64 reference (no centring)."),
        (
            "normalization.errors",
            "Weights of the wrong shape, non-float input or negative eps raise a SpecError naming the argument.",
        ),
    ),
)
