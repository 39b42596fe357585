"""A catalogue of deliberately broken backends: the suite must reject every one.

Each mutant is the NumPy backend with ONE plausible bug, and names the
invariant that bug breaks (``breaks``). ``tests/test_teeth.py`` runs the suite
against each and asserts that exactly that invariant is reported as failing —
proof that the checks have teeth, not only that they pass.
"""

from __future__ import annotations

import math

import numpy as np

from transformer_spec.backends.base import KVCache
from transformer_spec.backends.numpy import NumpyBackend


class Mutant(NumpyBackend):
    breaks: str = ""  # the invariant id the bug must be caught by


class SoftmaxWithoutMaxSubtraction(Mutant):
    """exp(x) / sum(exp(x)): overflows to inf/inf = NaN for large scores."""

    breaks = "softmax.finite_for_extreme_inputs"

    def _softmax(self, x, axis):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)


class SoftmaxOverWrongAxis(Mutant):
    """Normalises over the first axis whatever the caller asked for."""

    breaks = "softmax.sums_to_one"

    def _softmax(self, x, axis):
        return super()._softmax(x, 0)


class LogSoftmaxAsLogOfSoftmax(Mutant):
    """log(softmax(x)): -inf once a probability underflows."""

    breaks = "softmax.finite_for_extreme_inputs"

    def _log_softmax(self, x, axis):
        with np.errstate(divide="ignore"):
            return np.log(self._softmax(x, axis))


class GeluExactWhenTanhAsked(Mutant):
    """Ignores approximate=True and always uses the erf form (the PyTorch default)."""

    breaks = "activations.gelu_tanh_matches_reference"

    def _gelu(self, x, approximate):
        return super()._gelu(x, False)


class SiluWithoutX(Mutant):
    """Returns sigmoid(x) instead of x * sigmoid(x)."""

    breaks = "activations.silu_matches_reference"

    def _silu(self, x):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


class LinearIgnoresBias(Mutant):
    """Drops the bias."""

    breaks = "linear.bias_is_added"

    def _linear(self, x, w, b):
        return x @ w


class LayerNormUnbiasedVariance(Mutant):
    """Divides the variance by D - 1 (numpy's ddof=1) instead of D."""

    breaks = "normalization.layer_norm_standardizes"

    def _layer_norm(self, x, w, b, eps):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).sum(axis=-1, keepdims=True) / max(x.shape[-1] - 1, 1)
        y = (x - mean) / np.sqrt(var + eps) * w
        return (y if b is None else y + b).astype(x.dtype)


class RmsNormSubtractsMean(Mutant):
    """Centres the row first: that is layer norm, not RMS norm."""

    breaks = "normalization.rms_norm_matches_reference"

    def _rms_norm(self, x, w, eps):
        return super()._rms_norm(x - x.mean(axis=-1, keepdims=True), w, eps)


class EmbeddingWrapsAround(Mutant):
    """Overrides the public method and takes ids modulo V: -1 silently becomes the last row."""

    breaks = "embedding.out_of_range_is_error"

    def embedding(self, table, ids):
        return table[ids % table.shape[0]]


class SinusoidalIgnoresPosition(Mutant):
    """Every row gets the encoding of position `offset`."""

    breaks = "positional.sinusoidal_distinct_positions"

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        row = super()._sinusoidal_encoding(1, dim, base, offset, dtype)
        return np.repeat(row, length, axis=0)


class RotaryInterleaved(Mutant):
    """Rotates adjacent pairs (2i, 2i+1) — the GPT-J convention — instead of (i, i + Dh/2)."""

    breaks = "positional.rotary_matches_reference"

    def _rotary(self, x, positions, base):
        half = x.shape[-1] // 2
        frequencies = base ** (-np.arange(half, dtype=np.float64) * 2 / x.shape[-1])
        angles = positions[:, None].astype(np.float64) * frequencies  # (L, Dh/2)
        cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = odd * cos + even * sin
        return out


class AttentionWithoutScale(Mutant):
    """Forgets the 1/sqrt(Dh) when the caller leaves scale=None."""

    breaks = "attention.default_scale"

    def attention(self, q, k, v, mask=None, causal=False, scale=None):
        return super().attention(q, k, v, mask=mask, causal=causal, scale=1.0 if scale is None else scale)


class CausalMaskOffByOne(Mutant):
    """Lets query i also see key i + S - L + 1: one token of the future leaks."""

    breaks = "attention.causal"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        if not causal:
            return super()._attention(q, k, v, mask, causal, scale, need_weights)
        L, S = q.shape[-2], k.shape[-2]
        leaky = np.tril(np.ones((L, S), dtype=bool), k=S - L + 1)
        return super()._attention(q, k, v, leaky if mask is None else mask & leaky, False, scale, need_weights)


class FastPathIgnoresMask(Mutant):
    """The need_weights=False path (the one composites and fused kernels use) forgets the mask."""

    breaks = "attention.fast_path_matches_reference"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        return super()._attention(q, k, v, mask if need_weights else None, causal, scale, need_weights)


class AttentionMaskInverted(Mutant):
    """Reads the mask as True = blocked."""

    breaks = "attention.masked_keys_zero_weight"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        return super()._attention(q, k, v, None if mask is None else ~mask, causal, scale, need_weights)


class FullyMaskedRowUniform(Mutant):
    """A query with no allowed key averages all values uniformly instead of returning zeros."""

    breaks = "attention.fully_masked_row_is_zero"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        if mask is not None:
            empty = ~mask.any(axis=-1, keepdims=True)  # rows with no allowed key
            mask = mask | empty
        return super()._attention(q, k, v, mask, causal, scale, need_weights)


class HeadsSplitWithoutTranspose(Mutant):
    """Reshapes (B, L, 3D) straight to (3, B, H, L, Dh), mixing positions and heads."""

    breaks = "multihead_attention.matches_reference"

    def _multihead_attention(self, params, config, x, prefix, past, positions):
        B, L, D = x.shape
        H, Dh = config.n_heads, config.head_dim
        qkv = self._linear(x, params[prefix + "qkv.weight"], params.get(prefix + "qkv.bias"))
        qkv = qkv.reshape(3, B, H, L, Dh)  # the bug: no transpose
        q, k, v = qkv[0], qkv[1], qkv[2]
        if config.positional == "rotary":
            q, k = self._rotary(q, positions, config.rope_base), self._rotary(k, positions, config.rope_base)
        if past is not None:
            k, v = np.concatenate([past[0], k], 2), np.concatenate([past[1], v], 2)
        out, _ = self._attention(q, k, v, None, True, 1.0 / math.sqrt(Dh), False)
        out = out.reshape(B, L, D)  # the bug again: no transpose back
        return self._linear(out, params[prefix + "proj.weight"], params.get(prefix + "proj.bias")), (k, v)


class FeedForwardMixesPositions(Mutant):
    """Averages the hidden layer over the sequence: positions leak into each other."""

    breaks = "feedforward.position_wise"

    def _feed_forward(self, params, config, x, prefix):
        out = super()._feed_forward(params, config, x, prefix)
        return (out + out.mean(axis=1, keepdims=True)) / 2


class BlockPostNorm(Mutant):
    """Normalises after the residual addition (the original Transformer), not before (GPT-2)."""

    breaks = "block.matches_reference"

    def _block(self, params, config, x, prefix, past, positions):
        attn, kv = self._multihead_attention(params, config, x, prefix + "attn.", past, positions)
        h = self._norm(params, config, x + attn, prefix + "ln1.")
        return self._norm(params, config, h + self._feed_forward(params, config, h, prefix + "mlp."), prefix + "ln2."), kv


class KVCachePositionsRestartAtZero(Mutant):
    """Each new chunk gets positions 0, 1, ... instead of continuing after the cache."""

    breaks = "model.cached_equals_full"

    def _model_forward(self, params, config, ids, cache):
        logits, new = super()._model_forward(params, config, ids, KVCache(cache.keys, cache.values, 0))
        return logits, KVCache(new.keys, new.values, cache.length + ids.shape[1])


class UntiedHeadIgnored(Mutant):
    """Always projects with wte transposed, even when the model has its own lm_head."""

    breaks = "model.matches_reference"

    def _model_forward(self, params, config, ids, cache):
        if not config.tie_embeddings:
            from dataclasses import replace

            config = replace(config, tie_embeddings=True)
        return super()._model_forward(params, config, ids, cache)


class CrossEntropyCountsIgnored(Mutant):
    """Skips ignored targets in the sum but still divides by all of them."""

    breaks = "loss.ignore_index_ignored"

    def _cross_entropy(self, logits, targets, ignore_index):
        keep = targets != ignore_index
        if not keep.any():
            return np.zeros((), dtype=logits.dtype)
        log_p = self._log_softmax(logits[keep], -1)
        return np.asarray(-log_p[np.arange(log_p.shape[0]), targets[keep]].sum() / targets.size)


class GreedyPicksLastMaximum(Mutant):
    """Breaks argmax ties toward the highest index."""

    breaks = "sampling.greedy_is_argmax"

    def _sample(self, logits, u, temperature, top_k, top_p):
        if temperature == 0:
            return int(len(logits) - 1 - np.argmax(logits[::-1]))
        return super()._sample(logits, u, temperature, top_k, top_p)


class TopKKeepsKPlusOne(Mutant):
    """Keeps one token too many."""

    breaks = "sampling.within_top_k"

    def _sample(self, logits, u, temperature, top_k, top_p):
        return super()._sample(logits, u, temperature, None if top_k is None else top_k + 1, top_p)


class TopPDropsCrossingToken(Mutant):
    """Keeps only the tokens whose cumulative mass stays strictly below top_p."""

    breaks = "sampling.top_p_keeps_crossing_token"

    def _sample(self, logits, u, temperature, top_k, top_p):
        if temperature == 0 or top_p is None:
            return super()._sample(logits, u, temperature, top_k, top_p)
        p = self._softmax(logits / np.asarray(temperature, logits.dtype), -1)
        order = np.argsort(-p, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        mass = np.cumsum(p[order]) / p[order].sum()
        order = order[: max(1, int(np.searchsorted(mass, top_p, side="left")))]  # the bug: no + 1
        kept = np.zeros_like(p)
        kept[order] = p[order]
        cumulative = np.cumsum(kept / kept.sum())
        index = int(np.searchsorted(cumulative, u, side="right"))
        return index if index < len(p) else int(np.flatnonzero(kept).max())


class TemperatureIgnored(Mutant):
    """Samples from softmax(logits) whatever the temperature (except 0)."""

    breaks = "sampling.temperature_scales"

    def _sample(self, logits, u, temperature, top_k, top_p):
        return super()._sample(logits, u, 1.0 if temperature > 0 else 0.0, top_k, top_p)


MUTANTS: tuple[type[Mutant], ...] = tuple(
    cls for cls in list(globals().values()) if isinstance(cls, type) and issubclass(cls, Mutant) and cls is not Mutant
)


# ---------------------------------------------------------------------- gradient mutants
# A gradient bug needs a backend that differentiates, so these are the PyTorch backend with one bug each
# (and exist only where torch is installed). Their forward values are right: only the gradient checks,
# which run in float64 (``suite_dtypes``), can catch them.

try:
    from transformer_spec.backends.torch import TorchBackend as _TorchBackend
except ImportError:  # torch is an optional dependency
    _TorchBackend = None

GRADIENT_MUTANTS: tuple[type, ...] = ()

if _TorchBackend is not None:
    import torch as _torch

    class GradientMutant(_TorchBackend):
        breaks: str = ""  # the invariant id the bug must be caught by
        suite_dtypes: tuple[str, ...] = ("float64",)  # gradients are checked against finite differences in float64

    class GradientsScaledByHalf(GradientMutant):
        """value_and_grad returns half of every gradient (a stray 0.5, e.g. from averaging over two devices)."""

        breaks = "gradients.primitives_match_finite_differences"

        def value_and_grad(self, fn):
            inner = super().value_and_grad(fn)

            def halved(params, *args, **kwargs):
                value, grads = inner(params, *args, **kwargs)
                return value, {name: 0.5 * g for name, g in grads.items()}

            return halved

    class LayerNormStatisticsDetached(GradientMutant):
        """Computes layer norm's mean and variance from x.detach(): the values are right, the gradient through the statistics is lost."""

        breaks = "gradients.primitives_match_finite_differences"

        def _layer_norm(self, x, w, b, eps):
            frozen = x.detach()
            mean = frozen.mean(dim=-1, keepdim=True)
            var = frozen.var(dim=-1, unbiased=False, keepdim=True)
            y = (x - mean) / _torch.sqrt(var + eps) * w
            return y if b is None else y + b

    class BlockResidualDetached(GradientMutant):
        """Adds the attention output to x.detach(): the block's value is right, but no gradient flows along the residual path."""

        breaks = "gradients.composites_match_finite_differences"

        def _block(self, params, config, x, prefix, past, positions):
            attn_out, kv = self._multihead_attention(
                params, config, self._norm(params, config, x, prefix + "ln1."), prefix + "attn.", past, positions
            )
            h = x.detach() + attn_out
            return h + self._feed_forward(params, config, self._norm(params, config, h, prefix + "ln2."), prefix + "mlp."), kv

    class CrossEntropyMeanOfNothing(GradientMutant):
        """Uses F.cross_entropy(reduction="mean"): when every target is ignored, the loss and its gradient are NaN, not 0."""

        breaks = "gradients.loss_gradient_ignores_ignored_targets"

        def _cross_entropy(self, logits, targets, ignore_index):
            flat_logits = logits.reshape(-1, logits.shape[-1])  # (N, V)
            return _torch.nn.functional.cross_entropy(flat_logits, targets.reshape(-1).long(), ignore_index=ignore_index)

    GRADIENT_MUTANTS = (GradientsScaledByHalf, LayerNormStatisticsDetached, BlockResidualDetached, CrossEntropyMeanOfNothing)

MUTANTS = MUTANTS + GRADIENT_MUTANTS
