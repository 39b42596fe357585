r"""Positional encodings: telling the model where each token stands.

Attention by itself treats its input as a set; positions must be added.

Sinusoidal (Vaswani et al. 2017)
--------------------------------
$$PE_{p,2i} = \sin\!\big(p / \text{base}^{2i/d}\big),\qquad PE_{p,2i+1} = \cos\!\big(p / \text{base}^{2i/d}\big)$$

Pair $i$ is an arrow turning at angular speed $\text{base}^{-2i/d}$ per
position: the first pairs spin fast, the last ones slower and slower, so
together they give every position a distinct signature. ``offset`` starts the
table at position ``offset`` (row $r$ is position $r + \text{offset}$).

Learned
-------
A table ``wpe`` of shape ``(C, D)`` with one trained row per position
(GPT-2); positions ``offset .. offset+L-1`` select rows. A position ``>= C``
is an ``OutOfRangeError``.

Rotary (Su et al. 2021), half-split convention (GPT-NeoX, Llama)
---------------------------------------------------------------
For a head vector $x \in \mathbb R^{d}$ at position $p$, with
$\theta_i = \text{base}^{-2i/d}$ for $i < d/2$, rotate each pair
$(x_i, x_{i+d/2})$ by the angle $p\,\theta_i$:

$$x'_i = x_i \cos p\theta_i - x_{i+d/2} \sin p\theta_i,\qquad
x'_{i+d/2} = x_{i+d/2} \cos p\theta_i + x_i \sin p\theta_i$$

Rotations keep lengths, and $\langle R_p q, R_s k\rangle$ depends only on
$p - s$: attention sees relative positions.

Shapes
------
``sinusoidal_encoding(length, dim, base=10000, offset=0, dtype="float32")`` →
``(length, dim)``; ``rotary(x, positions, base=10000)`` with ``x``:
``(..., L, Dh)`` and integer ``positions``: ``(L,)`` → the shape of ``x``.

Inside the model a left-padded batch gives each row its own positions. A
backend whose ``_rotary`` kernel also takes positions ``(B, 1, L)`` (one row of
positions per batch row, broadcast over the heads) says so with
``rotary_positions_per_row = True``; otherwise the model rotates one row at a
time with ``(L,)`` positions, so a kernel of the original contract keeps working.

Errors
------
``ShapeError`` for an odd ``dim``/``Dh`` or ``positions`` not of shape ``(L,)``;
``ConfigError`` for ``length < 1``, ``offset < 0`` or ``base <= 0``;
``OutOfRangeError`` for negative positions.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="positional",
    title="Positional encoding",
    functions=("sinusoidal_encoding", "rotary", "learned_positions"),
    invariants=invariants(
        (
            "positional.sinusoidal_matches_formula",
            "sinusoidal_encoding agrees with the float64 formula, sin on even columns and cos on odd ones.",
        ),
        (
            "positional.sinusoidal_distinct_positions",
            "Different positions get different vectors (pairwise distance bounded away from 0).",
        ),
        ("positional.sinusoidal_offset_consistent", "The table with offset o equals rows o.. of the table without offset."),
        (
            "positional.learned_selects_rows",
            "learned_positions(table, L, offset) is rows offset..offset+L-1 of the table; past the table is an OutOfRangeError.",
        ),
        ("positional.rotary_preserves_norm", "Rotary leaves the length of every head vector unchanged."),
        ("positional.rotary_position_zero_is_identity", "At position 0 rotary is the identity."),
        ("positional.rotary_relative", "<rotary(q, p), rotary(k, s)> depends only on p - s."),
        (
            "positional.rotary_matches_reference",
            "rotary agrees with the half-split float64 reference (pairs (i, i + Dh/2), not interleaved).",
        ),
        ("positional.errors", "Odd widths, bad lengths, offsets or positions raise a SpecError naming the argument."),
    ),
)
