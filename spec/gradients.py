r"""Gradients: what ``value_and_grad`` must compute, and how the suite checks it.

A backend that can differentiate declares ``supports_autodiff = True`` and
implements ``value_and_grad(fn)``; training and fine-tuning need nothing else.
For such a backend the suite checks the gradient of every primitive and of
every composite against central finite differences computed in float64 with
the same backend, the test JAX's ``jax.test_util.check_grads`` makes. Backends
that do not declare autodiff (the NumPy reference) skip these checks, and the
report says why.

Interface
---------
``value_and_grad(fn)`` returns a function ``(params, *args) -> (value, grads)``
where ``params`` is a ``dict`` from name to a native float array, ``fn(params,
*args)`` returns a scalar (0-d) native array, ``value`` is that scalar and
``grads`` is a ``dict`` with the keys of ``params``, each gradient a native
array of its parameter's shape and dtype. A parameter that ``fn`` does not use
gets a zero gradient. The caller's arrays are not modified.

Math: the directional-derivative test
-------------------------------------
For a scalar $f$ of the variables $x$ (all arrays of ``params`` together) and
a random direction $v$ of unit length (Gaussian entries, normalised over all
the arrays),

$$\langle \nabla f(x), v \rangle \;\approx\; D_h = \frac{f(x + h v) - f(x - h v)}{2h},$$

the central difference, whose error is $\tfrac{h^2}{6} f'''$ along $v$. The
suite removes that term by Richardson extrapolation over the steps $h$ and
$2h$,

$$R = \frac{4 D_h - D_{2h}}{3} = \langle \nabla f(x), v\rangle + O(h^4),$$

so that the remaining error is the rounding of $f$ divided by $h$. Every
evaluation is in float64. The test passes when

$$\bigl|\langle \nabla f, v\rangle - R\bigr| \le \text{atol} + \text{rtol}\,\bigl(\lVert\nabla f\rVert_2 + |R|\bigr)$$

with :data:`FINITE_DIFFERENCE_TOLERANCE`: the error is measured against the
gradient's norm (the largest directional derivative a unit $v$ can see), not
against one directional derivative that cancellation can make arbitrarily
small. A gradient with a bug (scaled, detached through one operation, with a
transposed weight) misses by a fraction of its norm, orders of magnitude above
the tolerance.

Directions are drawn fresh for every example, so a gradient that is wrong in
only one coordinate is still caught: almost every random direction has a
component along it.

Why float64 only
----------------
In float32 a central difference keeps only about half of the 24 bits: rounding
of $f$ (relative $6\cdot10^{-8}$) divided by a step small enough to make the
truncation error negligible swamps the comparison. The finite-difference
checks therefore run for ``float64`` only (reported as skipped for other
dtypes); the checks that need no finite differences (the closed form of the
cross-entropy gradient, zero gradients for ignored targets, the contract of
``value_and_grad``) run for every float dtype.

Functions with kinks
--------------------
ReLU has no derivative at 0. Inputs to the primitive checks stay at least
:data:`KINK_MARGIN` away from it; a step $2h\lVert v\rVert = 2\cdot10^{-5}$
cannot cross that margin. Inside a composite with ReLU a pre-activation that
close to 0 is possible, but the unit direction spreads over thousands of
variables and moves each pre-activation far less than the step: in 450
feed-forward, block and model problems with ReLU drawn on the PyTorch
backend, none crossed a kink (the worst error was $10^{-4}$ of the allowed one).

Special cases
-------------
* ``cross_entropy``: a row whose target is ``ignore_index`` gets an exactly
  zero gradient; when every target is ignored the loss is 0 and every gradient
  is 0 (not NaN). On the other rows the gradient of the mean loss over the $M$
  kept rows is $(\operatorname{softmax}(z_t) - e_{y_t}) / M$.
* ``attention``: a query with no allowed key has zero output and zero
  gradient.

References
----------
JAX, ``jax.test_util.check_grads`` and *Automatic differentiation* in the JAX
docs; Griewank & Walther, *Evaluating Derivatives* (2008), ch. 1; Richardson
extrapolation: Press et al., *Numerical Recipes*, §5.7.
"""

from .component import Component, invariants
from .tolerances import tolerance

# The step h of the central differences (along a direction of unit length). Small enough that the
# extrapolated truncation error O(h^4) is far below the tolerance, large enough that float64 rounding
# of f divided by h stays below it too.
FINITE_DIFFERENCE_STEP = 1e-5

# Agreement of <grad f, v> with the extrapolated central difference, relative to |grad f| + |R| (see the
# module docstring): the ("float64", "gradient") row of the one tolerance table.
FINITE_DIFFERENCE_TOLERANCE = tolerance("float64", "gradient")

# Inputs to ReLU in the primitive checks keep at least this distance from the kink at 0.
KINK_MARGIN = 0.05

# Random directions tried per drawn example.
DIRECTIONS_PER_EXAMPLE = 2

COMPONENT = Component(
    name="gradients",
    title="Gradients (automatic differentiation)",
    functions=("value_and_grad",),
    invariants=invariants(
        (
            "gradients.declared_autodiff_works",
            "A backend with supports_autodiff returns (value, grads): value equals fn(params), grads has the keys, "
            "shapes and dtype of params, an unused parameter gets zeros, and params are left unchanged.",
        ),
        (
            "gradients.primitives_match_finite_differences",
            "For every primitive (softmax, log_softmax, relu, gelu both forms, silu, linear, layer_norm, rms_norm, "
            "embedding, learned_positions, rotary, attention both paths, cross_entropy), <grad f, v> matches float64 "
            "central differences along random unit directions v.",
        ),
        (
            "gradients.composites_match_finite_differences",
            "For multi-head attention, the feed-forward layer, the block and the model forward followed by the "
            "cross-entropy loss, <grad f, v> matches float64 central differences along random unit directions v.",
        ),
        (
            "gradients.cross_entropy_gradient_closed_form",
            "The gradient of the mean cross-entropy over M kept rows is (softmax(z) - onehot(y)) / M on each kept row.",
        ),
        (
            "gradients.loss_gradient_ignores_ignored_targets",
            "Rows whose target is ignore_index get exactly zero gradient; all targets ignored gives loss 0 and zero "
            "gradients for the logits and for every model parameter (never NaN).",
        ),
    ),
)
