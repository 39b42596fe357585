r"""Multi-head self-attention with an optional KV cache, rotary positions and grouped keys and values.

Math
----
For the normalised residual stream $x \in \mathbb R^{L\times D}$:

$$[Q\;K\;V] = x\,W_{qkv} + b_{qkv},\qquad
\text{head}_h = \operatorname{attention}(Q_h, K_h, V_h, \text{causal}),\qquad
\text{out} = [\text{head}_1 \dots \text{head}_H]\, W_o + b_o$$

where $Q_h$ is columns $h D_h .. (h+1) D_h - 1$ of $Q$. Splitting into heads is
a reshape ``(B, L, H·Dh) → (B, L, H, Dh)`` **followed by a transpose** to
``(B, H, L, Dh)``; reshaping straight to ``(B, H, L, Dh)`` mixes positions and
heads (a classic bug).

Grouped-query attention
-----------------------
With $H_{kv}$ = ``config.kv_heads`` key/value heads ($H_{kv}$ divides $H$;
$H_{kv} = H$ is the attention above, $H_{kv} = 1$ is multi-query attention),
$K$ and $V$ have $H_{kv}$ heads and query head $h$ reads KV head
$\lfloor h / (H / H_{kv}) \rfloor$:

$$\text{head}_h = \operatorname{attention}\big(Q_h,\; K_{\lfloor h G^{-1}\rfloor},\; V_{\lfloor h G^{-1}\rfloor}\big),\qquad G = H / H_{kv}$$

The fused projection's columns are $[Q\;K\;V]$ with widths $H D_h$, $H_{kv} D_h$,
$H_{kv} D_h$, and the cache stores only the $H_{kv}$ heads: $H / H_{kv}$ times
less memory per position. With rotary positions, $Q_h$ and $K_h$ are rotated at
positions ``start .. start+L-1``, where ``start`` is the cache length.

KV cache
--------
The keys and values of earlier positions do not change when a token is
appended (causality), so decoding keeps them: ``cache`` holds ``(K, V)`` of
shape ``(B, Hkv, S_past, Dh)`` per layer, new keys are appended, and the new
queries attend causally with the alignment of :mod:`transformer_spec.spec.attention`.

Parameters (names in the flat parameter dict, see :mod:`transformer_spec.spec.model`)
-----------------------------------------------------------------------
``attn.qkv.weight`` ``(D, (H + 2 Hkv) Dh)`` (``(D, 3D)`` without grouping), ``attn.qkv.bias`` ``((H + 2 Hkv) Dh,)``,
``attn.proj.weight`` ``(D, D)``, ``attn.proj.bias`` ``(D,)``. ``attn.proj.bias`` exists when
``config.bias``; ``attn.qkv.bias`` when ``config.has_qkv_bias`` (``qkv_bias``, or ``bias`` when
that is None: Qwen2 biases q, k and v only).

Errors
------
``ShapeError`` if ``x`` is not ``(B, L, D)``; ``ConfigError`` if heads do not
divide the width (raised by :class:`transformer_spec.spec.config.ModelConfig`).
"""

from .component import Component, invariants

COMPONENT = Component(
    name="multihead_attention",
    title="Multi-head attention",
    functions=("multihead_attention",),
    # ``positional`` says whether q and k rotate; ``rope_base`` how fast.
    config_fields=("d_model", "n_heads", "n_kv_heads", "positional", "rope_base", "bias", "qkv_bias"),
    invariants=invariants(
        ("multihead_attention.matches_reference", "Agrees with a float64 reference that loops over heads one at a time."),
        ("multihead_attention.causal", "Output at position i does not change when tokens after i change."),
        (
            "multihead_attention.cached_equals_full",
            "Feeding the sequence in chunks through the KV cache gives the same outputs as one full call.",
        ),
        (
            "multihead_attention.grouped_heads_share_kv",
            "With grouped KV heads, the query heads of one group read the same keys and values: the output equals "
            "ungrouped attention whose K and V columns repeat each KV head for its group.",
        ),
        ("multihead_attention.errors", "An input that is not (B, L, D) raises a ShapeError naming x and the expected width."),
    ),
)
