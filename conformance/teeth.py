"""A catalogue of deliberately broken backends: the suite must reject every one.

Each mutant is the NumPy backend with ONE plausible bug, and names the
invariant that bug breaks (``breaks``). ``tests/test_teeth.py`` runs the suite
against each and asserts that exactly that invariant is reported as failing —
proof that the checks have teeth, not only that they pass.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.special import erf

from transformer_spec.backends.cache import KVCache, arange_positions
from transformer_spec.backends.numpy import NumpyBackend


class Mutant(NumpyBackend):
    breaks: str = ""  # the invariant id the bug must be caught by
    group: str = ""  # which blind spot of the suite it probes (BLIND_SPOTS), for the mutants added for them


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

    def attention(self, q, k, v, mask=None, causal=False, scale=None, need_weights=True):
        scale = 1.0 if scale is None else scale
        return super().attention(q, k, v, mask=mask, causal=causal, scale=scale, need_weights=need_weights)


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
    """Swaps the sequence and head axes with a reshape instead of a transpose (the classic head-split bug):
    (B, L, H, Dh) is reread as (B, H, L, Dh), mixing positions and heads."""

    breaks = "multihead_attention.matches_reference"

    def _transpose(self, x, axes):
        if tuple(axes) == (0, 2, 1, 3):
            return x.reshape(x.shape[0], x.shape[2], x.shape[1], x.shape[3])  # the bug: no transpose
        return super()._transpose(x, axes)


class FeedForwardMixesPositions(Mutant):
    """Averages the output over the sequence: positions leak into each other."""

    breaks = "feedforward.position_wise"

    def feed_forward(self, params, config, x, prefix="blocks.0.mlp."):
        out = super().feed_forward(params, config, x, prefix)
        return (out + out.mean(axis=1, keepdims=True)) / 2


def _public_norm(backend, params, config, x, prefix):
    if config.norm == "rms":
        return backend.rms_norm(x, params[prefix + "weight"], eps=config.norm_eps)
    return backend.layer_norm(x, params[prefix + "weight"], params.get(prefix + "bias"), eps=config.norm_eps)


class BlockPostNorm(Mutant):
    """Normalises after the residual addition (the original Transformer), not before (GPT-2)."""

    breaks = "block.matches_reference"

    def block(self, params, config, x, prefix="blocks.0.", past=None, positions=None):
        attn, kv = self.multihead_attention(params, config, x, prefix + "attn.", past, positions)
        h = _public_norm(self, params, config, x + attn, prefix + "ln1.")
        return _public_norm(self, params, config, h + self.feed_forward(params, config, h, prefix + "mlp."), prefix + "ln2."), kv


class _PositionsFromZero(KVCache):
    """A KV cache whose new tokens always get positions 0, 1, ... (the bug of KVCachePositionsRestartAtZero)."""

    def positions(self, ops, L):
        return arange_positions(ops, 0, L)


class KVCachePositionsRestartAtZero(Mutant):
    """Each new chunk gets positions 0, 1, ... instead of continuing after the cache (a cache hook bug)."""

    breaks = "model.cached_equals_full"

    def init_cache(self, config, batch_size=1):
        return _PositionsFromZero(keys=[None] * config.n_layers, values=[None] * config.n_layers, length=0)


# ---------------------------------------------------------------------- group 1: a config field ignored
# A composite that ignores a field can only be caught when the suite varies that field
# (the covering set gives every field every value; see strategies.config_dimensions).


class UntiedHeadIgnored(Mutant):
    """Always projects with wte transposed, even when the model has its own lm_head (ignores tie_embeddings)."""

    breaks = "model.matches_reference"
    group = "config_field"

    def model_forward(self, params, config, ids, cache=None):
        if not config.tie_embeddings:
            params = {k: v for k, v in params.items() if k != "lm_head.weight"}
            config = replace(config, tie_embeddings=True)
        return super().model_forward(params, config, ids, cache)


class NormEpsIgnored(Mutant):
    """The model's norms use GPT-2's 1e-5 whatever config.norm_eps says (a hard-coded default)."""

    breaks = "model.matches_reference"
    group = "config_field"

    def model_forward(self, params, config, ids, cache=None):
        return super().model_forward(params, replace(config, norm_eps=1e-5), ids, cache)


class RopeBaseIgnored(Mutant):
    """Rotary and sinusoidal positions use base 10000 whatever config.rope_base says."""

    breaks = "model.matches_reference"
    group = "config_field"

    def model_forward(self, params, config, ids, cache=None):
        return super().model_forward(params, replace(config, rope_base=10000.0), ids, cache)


class ExactGeluConfigRunsTanh(Mutant):
    """The model maps activation="gelu" (exact erf) to the tanh form: only the config's default flavour is wired up."""

    breaks = "model.matches_reference"
    group = "config_field"

    def model_forward(self, params, config, ids, cache=None):
        if config.activation == "gelu":
            config = replace(config, activation="gelu_tanh")
        return super().model_forward(params, config, ids, cache)


# ---------------------------------------------------------------------- group 2: rare combinations


class TopKIgnoredWithTopP(Mutant):
    """When top_k and top_p are both given, applies only top_p (top_k alone, or top_p alone, are right)."""

    breaks = "sampling.frequencies_match"
    group = "rare_combination"

    def _sample(self, logits, u, temperature, top_k, top_p):
        if top_k is not None and top_p is not None:
            top_k = None
        return super()._sample(logits, u, temperature, top_k, top_p)


class CachedChunkAlignedToStart(Mutant):
    """Causal attention aligns the queries with the FIRST L keys when 1 < L < S: right for a prompt (L = S)
    and for one-token steps (L = 1), wrong for a cached chunk longer than one token."""

    breaks = "model.cached_equals_full"
    group = "rare_combination"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        L, S = q.shape[-2], k.shape[-2]
        if causal and 1 < L < S:
            early = np.tril(np.ones((L, S), dtype=bool))  # query i sees keys 0..i: the bug
            mask = early if mask is None else mask & early
            causal = False
        return super()._attention(q, k, v, mask, causal, scale, need_weights)


class TiedHeadUntransposedWhenSquare(Mutant):
    """Guesses the orientation of the tied output matrix from its shape: when vocab_size == d_model
    (a square wte) it projects with wte itself instead of wte transposed."""

    breaks = "model.matches_reference"
    group = "rare_combination"

    def model_forward(self, params, config, ids, cache=None):
        if config.tie_embeddings and config.vocab_size == config.d_model:
            params = {**params, "lm_head.weight": params["wte"]}  # the bug: (V, D) read as (D, V)
            config = replace(config, tie_embeddings=False)
        return super().model_forward(params, config, ids, cache)


# ---------------------------------------------------------------------- group 3: state across calls


class ParamsRememberedPerConfig(Mutant):
    """Keeps the first parameter set it sees for each config (weights baked into a cached compiled
    program): a second parameter set for the same config is silently ignored."""

    breaks = "model.matches_reference"
    group = "state_across_calls"

    def model_forward(self, params, config, ids, cache=None):
        remembered = self.__dict__.setdefault("_params_by_config", {})
        return super().model_forward(remembered.setdefault(config, params), config, ids, cache)


class CacheFollowsLastCall(Mutant):
    """Continues from the cache of its own latest call, whatever cache it is given: right while one sequence
    is decoded, wrong as soon as an uncached call comes in between."""

    breaks = "model.cached_equals_full"
    group = "state_across_calls"

    def model_forward(self, params, config, ids, cache=None):
        if cache is not None and cache.length > 0:
            cache = self.__dict__.get("_latest", cache)
        logits, new = super().model_forward(params, config, ids, cache)
        self.__dict__["_latest"] = new
        return logits, new


# ---------------------------------------------------------------------- group 4: a wrong constant in an elementwise function
# Off by a few parts in a million: inside an absolute float32 floor of 1e-5, outside a bound of a few ulps.


class GeluTanhConstantRounded(Mutant):
    """GELU-tanh with 0.0447 for 0.044715."""

    breaks = "activations.gelu_tanh_matches_reference"
    group = "elementwise_constant"

    def _gelu(self, x, approximate):
        if not approximate:
            return super()._gelu(x, approximate)
        with np.errstate(over="ignore"):
            inner = math.sqrt(2 / math.pi) * (x + 0.0447 * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)


class GeluExactSqrt2Rounded(Mutant):
    """Exact GELU with x / 1.4142 for x / sqrt(2)."""

    breaks = "activations.gelu_exact_matches_reference"
    group = "elementwise_constant"

    def _gelu(self, x, approximate):
        if approximate:
            return super()._gelu(x, approximate)
        return (0.5 * x * (1 + erf(x / 1.4142))).astype(x.dtype)


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


class SoftmaxSharesOneMax(Mutant):
    """Subtracts one max over the whole array instead of each row's own: right while all rows are of one
    scale; a row far below the largest underflows to 0/0. Only rows of mixed regimes in one call show it."""

    breaks = "softmax.finite_for_extreme_inputs"
    group = "mixed_rows"

    def _softmax(self, x, axis):
        with np.errstate(invalid="ignore"):
            e = np.exp(x - x.max())
            return e / e.sum(axis=axis, keepdims=True)


class LinearTransposesSquareWeight(Mutant):
    """Reads a square w as (Dout, Din), the nn.Linear layout (x @ w.T): a non-square w would fail on its
    shape, so only a square one, whose shape is no different, shows it."""

    breaks = "linear.matches_reference"
    group = "rare_combination"

    def _linear(self, x, w, b):
        return super()._linear(x, w.T if w.shape[0] == w.shape[1] else w, b)


class AttentionDefaultScaleFromValueWidth(Mutant):
    """Takes the default scale from the value width, 1/sqrt(Dv), instead of 1/sqrt(Dh): only Dh != Dv shows it."""

    breaks = "attention.default_scale"
    group = "rare_combination"

    def attention(self, q, k, v, mask=None, causal=False, scale=None, need_weights=True):
        scale = 1.0 / math.sqrt(v.shape[-1]) if scale is None else scale
        return super().attention(q, k, v, mask=mask, causal=causal, scale=scale, need_weights=need_weights)


class AttentionZeroQueriesFromFirstElement(Mutant):
    """Looks at the first batch element only to decide that the queries are zero (so scores are equal) and
    then averages every element's values uniformly. Right while every element is of one regime; only
    stacked elements of mixed regimes (zero queries first, others after) show it."""

    breaks = "attention.matches_reference"
    group = "mixed_rows"

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        first = q.reshape((-1,) + q.shape[-2:])[0]  # (L, Dh): the first batch element's queries
        if q.ndim > 2 and not first.any():
            q = np.zeros_like(q)
        return super()._attention(q, k, v, mask, causal, scale, need_weights)


class CrossEntropyStabilityFromFirstRow(Mutant):
    """Skips the max subtraction of log-softmax when the first row's logits are small, for every row: a
    later row of large logits overflows exp to inf. Only rows of mixed regimes in one call show it."""

    breaks = "loss.matches_reference"
    group = "mixed_rows"

    def _cross_entropy(self, logits, targets, ignore_index):
        first = logits.reshape(-1, logits.shape[-1])[0]  # (V,): the first row
        keep = targets != ignore_index
        if np.abs(first).max() > 30 or not keep.any():
            return super()._cross_entropy(logits, targets, ignore_index)
        kept = logits[keep]  # (M, V)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # the bug: exp overflows to inf
            log_p = kept - np.log(np.exp(kept).sum(axis=-1, keepdims=True))
        return np.asarray(-log_p[np.arange(kept.shape[0]), targets[keep]].mean())


class GeluExactRemainderAsTanh(Mutant):
    """A vectorised exact GELU whose remainder loop (the elements after the last full block of 8) uses the
    tanh form: right on sizes that are multiples of 8. Shuffling values within one shape (the elementwise
    check's way of adding no program) moves them in and out of the remainder, and shows it."""

    breaks = "activations.elementwise"

    def _gelu(self, x, approximate):
        y = super()._gelu(x, approximate)
        if approximate:
            return y
        flat = y.reshape(-1)  # (size,)
        body = flat.size - flat.size % 8
        remainder = super()._gelu(x.reshape(-1)[body:], True)  # (size - body,)
        return np.concatenate([flat[:body], remainder]).reshape(x.shape)


# The four blind spots measured in issue 10 — each has mutants that only a covering set (or a stateful check,
# or an ulp bound) catches on every seed — and a fifth: a kernel that decides something for a whole batch
# from one row, which only rows of mixed regimes stacked in one call show.
BLIND_SPOTS = ("config_field", "rare_combination", "state_across_calls", "elementwise_constant", "mixed_rows")

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

        def block(self, params, config, x, prefix="blocks.0.", past=None, positions=None):
            attn_out, kv = self.multihead_attention(
                params, config, _public_norm(self, params, config, x, prefix + "ln1."), prefix + "attn.", past, positions
            )
            h = x.detach() + attn_out
            normed = _public_norm(self, params, config, h, prefix + "ln2.")
            return h + self.feed_forward(params, config, normed, prefix + "mlp."), kv

    class CrossEntropyMeanOfNothing(GradientMutant):
        """Uses F.cross_entropy(reduction="mean"): when every target is ignored, the loss and its gradient are NaN, not 0."""

        breaks = "gradients.loss_gradient_ignores_ignored_targets"

        def _cross_entropy(self, logits, targets, ignore_index):
            flat_logits = logits.reshape(-1, logits.shape[-1])  # (N, V)
            return _torch.nn.functional.cross_entropy(flat_logits, targets.reshape(-1).long(), ignore_index=ignore_index)

    GRADIENT_MUTANTS = (GradientsScaledByHalf, LayerNormStatisticsDetached, BlockResidualDetached, CrossEntropyMeanOfNothing)

MUTANTS = MUTANTS + GRADIENT_MUTANTS
