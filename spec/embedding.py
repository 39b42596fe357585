r"""Token embedding: each token id selects one row of a learned table.

Math
----
$$E(\text{ids})_{\dots} = T[\text{ids}_{\dots}, :]$$

Equivalently a one-hot vector times the table: $\operatorname{onehot}(i)\,T = T_{i,:}$.
Words used in similar contexts end up with nearby rows ("apple" near "orange").

Shapes
------
``table``: ``(V, D)``; ``ids``: integer ``(...)``; result ``(..., D)``.

Errors
------
* ``OutOfRangeError`` — an id outside ``[0, V)``. Never a wrap-around: ``-1``
  is an error, not the last row.
* ``DTypeError`` — float ids, or a non-float table.
* ``ShapeError`` — a table that is not 2-D.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="embedding",
    title="Embedding",
    functions=("embedding",),
    invariants=invariants(
        ("embedding.selects_rows", "embedding(table, ids)[..., :] equals table[ids] exactly, for ids of any shape."),
        ("embedding.out_of_range_is_error", "An id < 0 or >= V raises OutOfRangeError naming the id; no wrap-around."),
        ("embedding.errors", "Float ids or a table of rank != 2 raise a SpecError naming the argument."),
    ),
)
