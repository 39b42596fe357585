r"""Sampling one token from the logits: a pure function of the logits and one uniform number.

The randomness is an *input*: ``u`` in ``[0, 1)`` is drawn on the host from
``numpy.random.Generator(PCG64(seed))``, so the same seed gives the same tokens
on every backend, and conformance can test sampling exhaustively.

Math
----
1. ``temperature == 0``: return $\arg\max_i z_i$ (the lowest index on ties). Done.
2. $p = \operatorname{softmax}(z / T)$.
3. ``top_k``: keep the $k$ most probable tokens (ties broken toward the lower index).
4. Renormalise; ``top_p``: sort the kept tokens by probability (descending, ties
   toward the lower index) and keep the **smallest prefix whose mass is
   $\ge$ top_p** — the token that crosses the threshold is kept.
5. Renormalise the kept set to $\tilde p$ and return the smallest index $i$ (in
   vocabulary order) with $\sum_{j \le i} \tilde p_j > u$. If rounding leaves
   the total at or below ``u``, return the last index with $\tilde p_i > 0$.

Over ``u`` uniform on ``[0, 1)`` token $i$ comes out with probability exactly
$\tilde p_i$: the inverse-CDF method. Backends compute steps 2–5 in float64
(the logits are one row of ``V`` numbers, cheap to widen): a float32 running sum
over a 50k-token vocabulary drifts across token boundaries, and the same seed
must give the same token on every backend.

Shapes
------
``logits``: ``(V,)`` float; ``u``: a Python float; returns a Python ``int``.

Errors
------
``ConfigError`` for ``temperature < 0`` or NaN, ``top_k < 1``, ``top_p`` outside
``(0, 1]``, ``u`` outside ``[0, 1)``; ``ShapeError`` for logits not 1-D or empty;
``NotFiniteError`` for NaN logits.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="sampling",
    title="Sampling",
    functions=("sample",),
    invariants=invariants(
        ("sampling.greedy_is_argmax", "temperature 0 returns the argmax, the lowest index on ties, for every u."),
        ("sampling.within_top_k", "The token is always one of the top_k most probable (ties toward the lower index)."),
        ("sampling.within_top_p", "The token always lies in the smallest most-probable prefix whose mass >= top_p."),
        (
            "sampling.top_p_keeps_crossing_token",
            "The token that crosses the top_p threshold can be sampled: the kept mass is >= top_p.",
        ),
        (
            "sampling.frequencies_match",
            "Over a uniform grid of u, each token's frequency equals its renormalised probability (within 1/grid).",
        ),
        (
            "sampling.temperature_scales",
            "The frequencies follow softmax(logits / T), not softmax(logits): temperature is applied.",
        ),
        ("sampling.matches_reference", "For u away from a cumulative boundary, the token equals the float64 reference's."),
        ("sampling.errors", "Bad temperature, top_k, top_p, u, NaN or mis-shaped logits raise a SpecError naming the argument."),
    ),
)
