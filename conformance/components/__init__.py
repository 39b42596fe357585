"""One check module per spec component; importing this package registers every check."""

from . import (  # noqa: F401
    activations,
    attention,
    block,
    embedding,
    feedforward,
    gradients,
    linear,
    loss,
    model,
    multihead_attention,
    normalization,
    positional,
    sampling,
    softmax,
    tokenizer,
)
