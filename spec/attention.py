r"""Scaled dot-product attention: each query takes a weighted average of the values.

Math
----
$$\text{scores} = \text{scale}\cdot q k^\top + \text{bias},\qquad
W = \operatorname{softmax}(\text{scores}),\qquad \text{out} = W v$$

with $\text{scale} = 1/\sqrt{D_h}$ by default (keeps the scores' variance
near one, so the softmax does not saturate). The boolean ``mask`` has ``True``
where a query may attend to a key; a disallowed pair gets weight exactly 0.

In "the bear ate the honey because **it** was hungry", the query for *it*
scores highly against the key for *bear*; with *delicious*, against *honey*.

Causal alignment with a KV cache
--------------------------------
With ``causal=True`` the ``L`` queries are the **last** ``L`` of the ``S``
positions: query ``i`` may see key ``j`` iff ``j <= i + S - L``. With no cache
(``L == S``) that is the usual lower triangle; while decoding one token at a
time (``L == 1``) the new query sees every cached key.

Shapes
------
``q``: ``(..., L, Dh)``, ``k``: ``(..., S, Dh)``, ``v``: ``(..., S, Dv)``, with
the same leading axes (no broadcasting); ``mask``: ``(L, S)`` or
``(..., L, S)``. Returns ``(out, weights)``: ``(..., L, Dv)`` and ``(..., L, S)``;
with ``need_weights=False``, ``(out, None)`` from the backend's fast path
(fused kernels such as PyTorch's ``scaled_dot_product_attention`` do not form
the weights).

Special cases
-------------
A query row with no allowed key (all masked) gets all-zero weights and a zero
output — not NaN and not a uniform average.

Errors
------
``ShapeError`` for ranks below 2, mismatched leading axes, ``Dh`` of q and k
differing, ``S`` of k and v differing, a mask of another shape, empty ``L`` or
``S``, or ``causal`` with ``L > S``; ``DTypeError`` for a non-bool mask or
mixed float dtypes; ``ConfigError`` for a non-positive ``scale``.

References
----------
Vaswani et al. (2017), *Attention Is All You Need*, §3.2.1.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="attention",
    title="Scaled dot-product attention",
    functions=("attention",),
    invariants=invariants(
        ("attention.rows_normalized", "Each row of weights is non-negative and sums to 1 (0 for a row with no allowed key)."),
        ("attention.matches_reference", "out and weights agree with the float64 reference for any mask, scale and causal flag."),
        (
            "attention.fast_path_matches_reference",
            "attention(..., need_weights=False), the path composites use, gives the reference output for any mask, scale and causal flag.",
        ),
        ("attention.default_scale", "scale=None is the same as scale=1/sqrt(Dh)."),
        ("attention.causal", "With causal=True, output i does not change when keys/values after position i + S - L change."),
        (
            "attention.causal_sees_past",
            "With causal=True, query i gives non-zero weight to key i + S - L and to key 0 (nothing allowed is cut off).",
        ),
        (
            "attention.key_permutation_invariant",
            "Permuting keys and values together (and the mask's columns) leaves the output unchanged.",
        ),
        ("attention.masked_keys_zero_weight", "A key the mask disallows gets weight exactly 0."),
        ("attention.fully_masked_row_is_zero", "A query with no allowed key gets zero weights and a zero output."),
        (
            "attention.errors",
            "Bad ranks, mismatched shapes, non-bool masks, causal with L > S raise a SpecError naming the argument.",
        ),
    ),
)
