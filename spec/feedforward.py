r"""Position-wise feed-forward network.

Math
----
$$\operatorname{FFN}(x) = \phi(x W_1 + b_1)\, W_2 + b_2$$

with $\phi$ = GELU-tanh (GPT-2), exact GELU, or ReLU. SwiGLU (Shazeer 2020,
Llama) gates instead of activating:

$$\operatorname{FFN}_{\text{SwiGLU}}(x) = \big(\operatorname{SiLU}(x W_g) \odot x W_1\big) W_2$$

It acts on every position separately: the same weights, no mixing along the
sequence axis (attention is the only place positions talk to each other).

Parameters
----------
``mlp.fc.weight`` ``(D, F)``, ``mlp.fc.bias`` ``(F,)``, ``mlp.proj.weight``
``(F, D)``, ``mlp.proj.bias`` ``(D,)``; SwiGLU adds ``mlp.gate.weight``
``(D, F)`` (and ``mlp.gate.bias`` with biases).

Shapes
------
``x``: ``(..., D)`` → ``(..., D)``.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="feedforward",
    title="Feed-forward network",
    functions=("feed_forward",),
    config_fields=("d_model", "d_ff", "activation", "bias"),
    invariants=invariants(
        ("feedforward.matches_reference", "Agrees with the float64 reference for GELU-tanh, GELU, ReLU and SwiGLU."),
        (
            "feedforward.position_wise",
            "Each output depends only on its own position: changing one position leaves the others unchanged, and permuting positions permutes the outputs.",
        ),
        ("feedforward.errors", "An input whose last axis is not D raises a ShapeError naming x."),
    ),
)
