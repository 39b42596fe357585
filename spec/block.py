r"""The pre-norm residual block: attention then feed-forward, each added back to the stream.

Math (GPT-2 ordering)
---------------------
$$h = x + \operatorname{MHA}(\operatorname{Norm}_1(x)),\qquad y = h + \operatorname{FFN}(\operatorname{Norm}_2(h))$$

The residual stream ``x`` is never normalised in place: each sub-layer reads a
normalised copy and writes its result back by addition, which keeps gradients
flowing through deep stacks.

Parameters of block ``i`` carry the prefix ``blocks.{i}.``: ``ln1.weight``,
``ln1.bias``, ``attn.*``, ``ln2.weight``, ``ln2.bias``, ``mlp.*`` (norm biases
only for layer norm with ``config.bias``).

Shapes
------
``x``: ``(B, L, D)`` → ``(B, L, D)``, plus the block's updated cache.
"""

from .component import Component, invariants

COMPONENT = Component(
    name="block",
    title="Transformer block",
    functions=("block",),
    # Attention's fields, the two norms' and the feed-forward's.
    config_fields=(
        *("d_model", "n_heads", "n_kv_heads", "positional", "rope_base", "bias", "qkv_bias"),
        *("norm", "norm_eps", "activation", "d_ff"),
    ),
    invariants=invariants(
        ("block.matches_reference", "Agrees with the float64 pre-norm reference block."),
        ("block.causal", "Output at position i does not change when inputs after i change."),
        ("block.cached_equals_full", "Processing the sequence in chunks with the KV cache equals one full call."),
    ),
)
