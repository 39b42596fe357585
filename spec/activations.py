r"""Activation functions: the non-linearity between the two linear maps of a feed-forward layer.

Math
----
$$\operatorname{ReLU}(x) = \max(0, x)$$

$$\operatorname{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\left(1 + \operatorname{erf}\!\left(x/\sqrt 2\right)\right) \qquad(\text{approximate=False})$$

$$\operatorname{GELU}_{\tanh}(x) = \tfrac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right) \qquad(\text{approximate=True, GPT-2})$$

$$\operatorname{SiLU}(x) = x\,\sigma(x) = \frac{x}{1 + e^{-x}}$$

Shapes
------
Elementwise: any shape in, the same shape out.

Interface
---------
``relu(x)``, ``gelu(x, approximate)``, ``silu(x)``. ``approximate`` has no
default on purpose: PyTorch's ``gelu`` defaults to the exact form and JAX's to
the tanh form, so every caller must say which one it means.

Special cases
-------------
``gelu(0) = relu(0) = silu(0) = 0``; for large positive x all three tend to x,
for large negative x to 0.

Errors
------
``DTypeError`` for a non-float ``x``; ``ConfigError`` if ``approximate`` is not a bool.

References
----------
Hendrycks & Gimpel (2016), *Gaussian Error Linear Units*; Ramachandran et al.
(2017), *Searching for Activation Functions* (SiLU/Swish).
"""

from .component import Component, invariants

COMPONENT = Component(
    name="activations",
    title="Activation functions",
    functions=("relu", "gelu", "silu"),
    invariants=invariants(
        (
            "activations.elementwise",
            "Each activation keeps the shape and acts on each element alone: permuting the input permutes the output.",
        ),
        ("activations.relu_matches_reference", "relu agrees with the float64 reference."),
        ("activations.gelu_exact_matches_reference", "gelu(x, approximate=False) agrees with the erf form of the reference."),
        (
            "activations.gelu_tanh_matches_reference",
            "gelu(x, approximate=True) agrees with the tanh form of the reference (GPT-2).",
        ),
        ("activations.silu_matches_reference", "silu agrees with the float64 reference."),
        ("activations.errors", "Integer input or a non-bool approximate flag raise a SpecError naming the argument."),
    ),
)
