r"""Cross-entropy: how surprised the model is by the true next token.

Math
----
$$\mathcal L = \frac{1}{|M|}\sum_{t \in M} -\log \operatorname{softmax}(z_t)_{y_t},
\qquad M = \{t : y_t \ne \text{ignore\_index}\}$$

Perplexity is $e^{\mathcal L}$. Uniform logits over $V$ tokens give
$\mathcal L = \log V$: the loss of a model that knows nothing.

Shapes
------
``logits``: ``(..., V)``; ``targets``: integer ``(...)`` with the same leading
shape; result: a scalar (0-d array).

Special cases
-------------
Targets equal to ``ignore_index`` (default -100, PyTorch's convention) are
left out of both sum and count — fine-tuning uses this to score only the
answer tokens. If every target is ignored the loss is 0 (and so is its
gradient), not NaN.

Errors
------
``ShapeError`` when leading shapes differ; ``OutOfRangeError`` for a target
outside ``[0, V)`` that is not ``ignore_index``; ``DTypeError`` for float
targets or integer logits.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="loss",
    title="Cross-entropy loss",
    functions=("cross_entropy",),
    invariants=invariants(
        ("loss.matches_reference", "cross_entropy agrees with the float64 reference mean of -log p[target]."),
        ("loss.ignore_index_ignored", "Targets equal to ignore_index change neither the sum nor the count; all ignored gives 0."),
        ("loss.uniform_logits_give_log_v", "Equal logits give a loss of log V for any targets."),
        ("loss.errors", "Mismatched shapes, float targets, or targets out of range raise a SpecError naming the argument."),
    ),
)
