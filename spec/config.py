"""Model configuration: every architectural choice of a decoder-only transformer, frozen.

``ModelConfig`` validates itself on construction, so an impossible model (heads
that do not divide the width, an odd head width with rotary positions, ...) is a
``ConfigError`` before any weight is drawn.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import ConfigError

POSITIONAL_SCHEMES = ("learned", "sinusoidal", "rotary")
NORMS = ("layer", "rms")
ACTIVATIONS = ("gelu_tanh", "gelu", "relu", "swiglu")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 512  # V: rows of the token embedding and columns of the logits
    context_length: int = 128  # C: longest sequence the model accepts (rows of wpe when learned)
    d_model: int = 64  # D: width of the residual stream
    n_heads: int = 4  # H: attention heads; must divide d_model
    n_layers: int = 2  # N: number of blocks
    d_ff: int = 256  # F: hidden width of the feed-forward layer (4*D in GPT-2)
    positional: str = "learned"  # "learned" (GPT-2), "sinusoidal" (Vaswani) or "rotary" (Llama)
    norm: str = "layer"  # "layer" (GPT-2) or "rms" (Llama)
    activation: str = "gelu_tanh"  # "gelu_tanh" (GPT-2), "gelu" (exact erf), "relu" or "swiglu"
    tie_embeddings: bool = True  # the output projection is wte transposed (GPT-2)
    bias: bool = True  # biases in linear layers and layer norms (GPT-2 has them)
    norm_eps: float = 1e-5  # epsilon inside every norm (GPT-2: 1e-5)
    rope_base: float = 10000.0  # base of the rotary / sinusoidal frequencies
    n_kv_heads: int | None = None  # Hkv: key/value heads (grouped-query attention); None means n_heads (GPT-2), 1 is multi-query
    # Whether the fused q/k/v projection has a bias, apart from `bias`: None follows `bias` (GPT-2: all linears
    # biased; Llama: none); True with bias=False is Qwen2 (q/k/v biased, output projection and MLP not).
    qkv_bias: bool | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "d_model", "n_heads", "n_layers", "d_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ModelConfig: {name} = {value!r}, expected a positive integer")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"ModelConfig: n_heads = {self.n_heads} does not divide d_model = {self.d_model}; "
                f"expected d_model to be a multiple of n_heads (head width D/H)"
            )
        if self.n_kv_heads is not None and (
            isinstance(self.n_kv_heads, bool)
            or not isinstance(self.n_kv_heads, int)
            or self.n_kv_heads < 1
            or self.n_heads % self.n_kv_heads
        ):
            raise ConfigError(
                f"ModelConfig: n_kv_heads = {self.n_kv_heads!r}, expected None (= n_heads) or a positive divisor of "
                f"n_heads = {self.n_heads} (each KV head serves n_heads / n_kv_heads query heads)"
            )
        for name, allowed in (("positional", POSITIONAL_SCHEMES), ("norm", NORMS), ("activation", ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"ModelConfig: {name} = {getattr(self, name)!r}, expected one of {', '.join(allowed)}")
        if self.positional == "rotary" and self.head_dim % 2:
            raise ConfigError(f"ModelConfig: rotary positions need an even head width, got d_model/n_heads = {self.head_dim}")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ConfigError(f"ModelConfig: sinusoidal positions need an even d_model, got {self.d_model}")
        for name in ("tie_embeddings", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"ModelConfig: {name} = {getattr(self, name)!r}, expected True or False")
        if self.qkv_bias is not None and not isinstance(self.qkv_bias, bool):
            raise ConfigError(f"ModelConfig: qkv_bias = {self.qkv_bias!r}, expected None (follow bias), True or False")
        if not isinstance(self.norm_eps, (int, float)) or not 0 <= self.norm_eps < 1:
            raise ConfigError(f"ModelConfig: norm_eps = {self.norm_eps!r}, expected a number in [0, 1)")
        if not isinstance(self.rope_base, (int, float)) or not self.rope_base > 1:
            raise ConfigError(f"ModelConfig: rope_base = {self.rope_base!r}, expected a number > 1")

    @property
    def head_dim(self) -> int:
        """Dh = D / H, the width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def has_qkv_bias(self) -> bool:
        """Whether ``attn.qkv.bias`` exists: ``qkv_bias``, or ``bias`` when that is None."""
        return self.bias if self.qkv_bias is None else self.qkv_bias

    @property
    def kv_heads(self) -> int:
        """Hkv, the number of key/value heads: ``n_kv_heads``, or ``n_heads`` when that is None."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @classmethod
    def gpt2(cls, **overrides: Any) -> ModelConfig:
        """GPT-2 small (124M): pre-norm, learned positions, GELU-tanh, tied embeddings, eps 1e-5."""
        base = cls(
            vocab_size=50257,
            context_length=1024,
            d_model=768,
            n_heads=12,
            n_layers=12,
            d_ff=3072,
            positional="learned",
            norm="layer",
            activation="gelu_tanh",
            tie_embeddings=True,
            bias=True,
            norm_eps=1e-5,
        )
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"ModelConfig: unknown field(s) {unknown}; expected only {sorted(known)}")
        return cls(**data)


# ---------------------------------------------------------------------------- allowed values
# The choices of each enumerated field, for tools that enumerate configurations (the
# conformance suite's covering sets read them here and never keep a copy). A new
# enumerated field, or a new value of one, is added here and nowhere else; boolean
# fields need no entry (both values are allowed).
FIELD_CHOICES: dict[str, tuple[Any, ...]] = {
    "positional": POSITIONAL_SCHEMES,
    "norm": NORMS,
    "activation": ACTIVATIONS,
    # A tri-state, so listed here (booleans need no entry): None follows `bias`, True/False override it.
    "qkv_bias": (None, False, True),
}
