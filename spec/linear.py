r"""Linear (affine) map: every learned projection in the model.

Math
----
$$y = x W + b, \qquad y_{\dots, o} = \sum_i x_{\dots, i}\, W_{i o} + b_o$$

``W`` is stored (in, out) — the orientation of GPT-2's ``Conv1D`` weights and
of the equation, the transpose of ``torch.nn.Linear.weight``.

Shapes
------
``x``: ``(..., Din)``; ``w``: ``(Din, Dout)``; ``b``: ``(Dout,)`` or ``None``;
result ``(..., Dout)``.

Errors
------
* ``ShapeError`` — ``x`` of rank 0, ``w`` not of rank 2, ``x.shape[-1] != Din``,
  ``b`` not of shape ``(Dout,)``.
* ``DTypeError`` — a non-float argument, or arguments of different dtypes.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="linear",
    title="Linear layer",
    functions=("linear",),
    invariants=invariants(
        (
            "linear.matches_reference",
            "linear(x, w, b) agrees with the float64 reference within the primitive tolerance (scaled by Din).",
        ),
        ("linear.bias_is_added", "linear(x, w, b) - linear(x, w) = b on every row."),
        ("linear.acts_on_last_axis", "Any number of leading batch axes give the same rows as the flattened 2-D call."),
        (
            "linear.errors",
            "Mismatched Din, a weight of rank != 2 or a bias of the wrong shape raise a ShapeError naming the argument.",
        ),
    ),
)
