"""Cross-backend agreement: one set of weights, one input, every backend, every intermediate.

The conformance suite checks one backend at a time against the float64
reference. This module puts backends side by side: given one dictionary of
NumPy weights and one batch of token ids, :func:`trace_forward` runs the
forward pass step by step with a backend's *public* methods and records every
intermediate (embeddings, positions, each block's norms, attention,
feed-forward and residual sums, the backend's own block composite, the final
norm, the logits, and the backend's ``model_forward``); :func:`compare_backends`
walks the traces in that order and names the first intermediate where a
backend leaves the tolerance of the first (reference) backend — where a bug
*starts*, not where it ends up.

    >>> from transformer_spec.conformance.crosscheck import compare_backends, random_model
    >>> config, params, ids = random_model("small", seed=0)
    >>> print(compare_backends(["numpy", "torch"], config, params, ids).describe())   # doctest: +SKIP
    all 23 intermediates agree within the float32 composite tolerance (worst: logits, torch, max abs error 3.1e-06)

The command line is ``tspec crosscheck --backends numpy,torch,jax``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transformer_spec.backends import Backend, load_backend
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.tolerances import tolerance

from .case import InvariantViolation, compare

# Named model sizes for the command line.
CONFIGS: dict[str, ModelConfig] = {
    "small": ModelConfig(),  # the defaults: V 512, C 128, D 64, 4 heads, 2 layers, F 256, GPT-2 choices
    # GPT-2's architecture and vocabulary (50257, learned positions, GELU-tanh, tied) at a width that runs anywhere.
    "gpt2-tiny": ModelConfig.gpt2(context_length=256, d_model=128, n_heads=4, n_layers=2, d_ff=512),
}


def random_model(
    config: str | ModelConfig, seed: int = 0, batch: int = 2, length: int = 16
) -> tuple[ModelConfig, dict[str, np.ndarray], np.ndarray]:
    """A config (a name from :data:`CONFIGS`, or a ModelConfig), float64 weights and token ids (batch, length) from ``seed``.

    The weights are GPT-2's initialisation scaled up, with random norm weights and biases
    (:func:`transformer_spec.conformance.strategies.model_parameters`), so every weight changes the output.
    """
    if isinstance(config, str):
        try:
            config = CONFIGS[config]
        except KeyError:
            from transformer_spec.spec.errors import ConfigError

            raise ConfigError(f"unknown model config {config!r}; expected one of {', '.join(CONFIGS)}") from None
    from .strategies import (
        model_parameters,  # imported here: the strategies bring in Hypothesis, which `tspec --help` should not pay for
    )

    params = model_parameters(config, seed)
    length = min(length, config.context_length)
    ids = np.random.default_rng([seed, 1]).integers(0, config.vocab_size, size=(batch, length))
    return config, params, ids


def _norm(be: Backend, p: Mapping[str, Any], config: ModelConfig, x: Any, prefix: str) -> Any:
    if config.norm == "rms":
        return be.rms_norm(x, p[prefix + "weight"], config.norm_eps)
    return be.layer_norm(x, p[prefix + "weight"], p.get(prefix + "bias"), config.norm_eps)


def trace_forward(
    backend: Any, config: ModelConfig, params: Mapping[str, np.ndarray], ids: np.ndarray, dtype: str = "float32"
) -> list[tuple[str, np.ndarray]]:
    """The forward pass of ``backend`` step by step, as ``[(name, float64 NumPy array), ...]`` in computation order.

    Every step is a public method of the backend (``embedding``, ``learned_positions`` /
    ``sinusoidal_encoding``, ``layer_norm`` / ``rms_norm``, ``multihead_attention``, ``feed_forward``,
    ``block``, ``linear``, ``model_forward``), so the trace checks what a caller sees. Names:

    ``embedding``, ``positions`` (learned or sinusoidal only), ``input``; per block i
    ``blocks.i.ln1``, ``blocks.i.attn``, ``blocks.i.attn_residual``, ``blocks.i.ln2``, ``blocks.i.mlp``,
    ``blocks.i.out`` (those steps, composed here) and ``blocks.i.block`` (the backend's ``block`` on the
    same input, which is what feeds block i + 1); then ``ln_f``, ``logits``, and ``model_forward`` (the
    backend's whole forward, fused or compiled as it likes).
    """
    be = load_backend(backend)
    p = {name: be.asarray(np.asarray(value), dtype) for name, value in params.items()}
    ids = np.asarray(ids)
    native_ids = be.asarray(ids, "int64")
    L = ids.shape[1]
    trace: list[tuple[str, np.ndarray]] = []

    def record(name: str, value: Any) -> Any:
        trace.append((name, np.asarray(be.to_numpy(value), dtype=np.float64)))
        return value

    x = record("embedding", be.embedding(p["wte"], native_ids))  # (B, L, D)
    if config.positional == "learned":
        x = x + record("positions", be.learned_positions(p["wpe"], L))  # (L, D) broadcast over B
    elif config.positional == "sinusoidal":
        x = x + record("positions", be.sinusoidal_encoding(L, config.d_model, config.rope_base, 0, dtype))
    record("input", x)  # (B, L, D)
    for i in range(config.n_layers):
        prefix = f"blocks.{i}."
        h1 = record(prefix + "ln1", _norm(be, p, config, x, prefix + "ln1."))
        attn = record(prefix + "attn", be.multihead_attention(p, config, h1, prefix=prefix + "attn.")[0])  # (B, L, D)
        h = record(prefix + "attn_residual", x + attn)
        h2 = record(prefix + "ln2", _norm(be, p, config, h, prefix + "ln2."))
        mlp = record(prefix + "mlp", be.feed_forward(p, config, h2, prefix=prefix + "mlp."))  # (B, L, D)
        record(prefix + "out", h + mlp)
        x = record(prefix + "block", be.block(p, config, x, prefix=prefix)[0])  # (B, L, D)
    xf = record("ln_f", _norm(be, p, config, x, "ln_f."))
    head = be.transpose(p["wte"], (1, 0)) if config.tie_embeddings else p["lm_head.weight"]  # (D, V)
    record("logits", be.linear(xf, head))  # (B, L, V)
    record("model_forward", be.model_forward(p, config, native_ids)[0])  # (B, L, V)
    return trace


@dataclass(frozen=True)
class Difference:
    """The first intermediate at which a backend leaves the tolerance of the reference backend."""

    name: str  # the intermediate, e.g. "blocks.0.attn"
    backend: str
    reference: str
    max_abs_error: float
    index: tuple[int, ...]  # where the error is largest relative to what is allowed
    got: float
    expected: float
    allowed: float
    mismatched: int
    total: int
    note: str = ""  # e.g. a shape mismatch

    def describe(self) -> str:
        if self.note:
            return f"{self.name}: {self.backend} differs from {self.reference}: {self.note}"
        return (
            f"{self.name}: {self.backend} differs from {self.reference} — {self.mismatched} of {self.total} elements outside "
            f"the tolerance; max abs error {self.max_abs_error:.3g}; worst at index {self.index}: got {self.got!r}, "
            f"expected {self.expected!r} (allowed {self.allowed:.3g})"
        )


@dataclass
class Agreement:
    """The verdict of :func:`compare_backends`: every intermediate's error per backend, and the first difference."""

    backends: tuple[str, ...]  # the first is the reference
    dtype: str
    kind: str  # the tolerance row used ("composite")
    names: list[str] = field(default_factory=list)  # intermediates in computation order
    errors: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> backend -> max abs error vs the reference
    first_difference: Difference | None = None

    @property
    def agree(self) -> bool:
        return self.first_difference is None

    def describe(self) -> str:
        tol = tolerance(self.dtype, self.kind)
        if self.first_difference is not None:
            return f"first difference at {self.first_difference.describe()}"
        worst = max(((e, n, b) for n, row in self.errors.items() for b, e in row.items()), default=(0.0, "-", "-"))
        return (
            f"all {len(self.names)} intermediates agree within the {self.dtype} {self.kind} tolerance "
            f"(rtol {tol.rtol:g}, atol {tol.atol:g}); worst: {worst[1]}, {worst[2]}, max abs error {worst[0]:.3g}"
        )

    def table(self) -> str:
        """One row per intermediate: each backend's max abs error against the reference, and where they first differ."""
        others = self.backends[1:]
        width = max([len(n) for n in self.names] + [12])
        lines = [f"{'intermediate':<{width}}" + "".join(f"{b[:22]:>24}" for b in others)]
        lines.append("-" * len(lines[0]))
        for name in self.names:
            cells = []
            for b in others:
                error = self.errors.get(name, {}).get(b)
                mark = (
                    "  <- first difference"
                    if self.first_difference and self.first_difference.name == name and self.first_difference.backend == b
                    else ""
                )
                cells.append(f"{'-' if error is None else f'{error:.3g}':>24}{mark}")
            lines.append(f"{name:<{width}}" + "".join(cells))
        lines.append("")
        lines.append(f"reference: {self.backends[0]} · dtype {self.dtype} · max abs error against the reference")
        lines.append(("AGREE: " if self.agree else "DIFFER: ") + self.describe())
        return "\n".join(lines)


def _magnitude(expected: np.ndarray) -> np.ndarray:
    """Per-row scale (the row's largest |value|, at least 1), as the composite checks of the suite use."""
    if expected.ndim == 0:
        return np.maximum(np.abs(expected), 1.0)
    return np.broadcast_to(np.maximum(np.abs(expected).max(axis=-1, keepdims=True), 1.0), expected.shape)


def compare_backends(
    backends: list[Any],
    config: ModelConfig,
    params: Mapping[str, np.ndarray],
    ids: np.ndarray,
    dtype: str = "float32",
    kind: str = "composite",
) -> Agreement:
    """Trace the forward pass on each backend and compare every intermediate with the first backend's.

    ``backends``: names, ``module:attribute`` strings, classes or instances; the first is the reference.
    The tolerance is the table's ``(dtype, kind)`` row, relative to each row's largest value (as in the
    suite's composite checks). The agreement names the first intermediate, in computation order, where
    any backend differs, with its largest error and where it is.
    """
    if len(backends) < 2:
        raise ValueError(f"compare_backends needs at least two backends, got {len(backends)}")
    labels = tuple(b if isinstance(b, str) else (b.name if isinstance(b, Backend) else b.__name__) for b in backends)
    if len(set(labels)) != len(labels):
        labels = tuple(f"{label}#{i}" for i, label in enumerate(labels))
    traces = [trace_forward(b, config, params, ids, dtype) for b in backends]
    tol = tolerance(dtype, kind)
    agreement = Agreement(labels, dtype, kind, names=[name for name, _ in traces[0]])
    reference = dict(traces[0])
    for name in agreement.names:
        expected = reference[name]
        agreement.errors[name] = {}
        for label, trace in zip(labels[1:], traces[1:]):
            got = dict(trace).get(name)
            difference = None
            if got is None:
                difference = Difference(
                    name,
                    label,
                    labels[0],
                    float("inf"),
                    (),
                    float("nan"),
                    float("nan"),
                    0.0,
                    0,
                    0,
                    note="this intermediate is missing from its trace",
                )
            elif got.shape != expected.shape:
                difference = Difference(
                    name,
                    label,
                    labels[0],
                    float("inf"),
                    (),
                    float("nan"),
                    float("nan"),
                    0.0,
                    0,
                    0,
                    note=f"shape {got.shape}, expected {expected.shape}",
                )
            else:
                with np.errstate(invalid="ignore"):
                    error = np.abs(got - expected)
                agreement.errors[name][label] = (
                    float(np.nanmax(error)) if error.size and not np.isnan(error).all() else (float("nan") if error.size else 0.0)
                )
                try:
                    mismatch = compare(got, expected, tol.rtol, tol.atol, _magnitude(expected))
                except InvariantViolation as violation:  # cannot happen after the shape check; kept as a guard
                    difference = Difference(
                        name, label, labels[0], float("inf"), (), float("nan"), float("nan"), 0.0, 0, 0, note=violation.message
                    )
                else:
                    if mismatch is not None:
                        difference = Difference(
                            name,
                            label,
                            labels[0],
                            mismatch.max_abs_error,
                            mismatch.worst_index,
                            mismatch.got,
                            mismatch.expected,
                            mismatch.allowed,
                            mismatch.mismatched,
                            mismatch.total,
                        )
            if difference is not None and agreement.first_difference is None:
                agreement.first_difference = difference
    return agreement


__all__ = ["CONFIGS", "Agreement", "Difference", "compare_backends", "random_model", "trace_forward"]
