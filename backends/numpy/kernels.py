"""The NumPy backend's kernels: the readable reference.

Each kernel is a few lines that read like the equation in its spec module.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from ..base import Backend

_NUMPY_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


def _at_least_float32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.promote_types(x.dtype, np.float32), copy=False)


class NumpyBackend(Backend):
    name = "numpy"
    array_type = np.ndarray
    dtypes = ("float16", "float32", "float64")
    rotary_positions_per_row = True  # positions (L,) or (B, 1, L): the angles broadcast

    # ---------------------------------------------------------------- conversion
    def _asarray(self, x, dtype):
        return np.asarray(x, dtype=None if dtype is None else _NUMPY_DTYPES[dtype])

    def _to_numpy(self, x):
        return np.asarray(x)

    def _dtype_of(self, x):
        return "bool" if x.dtype == np.bool_ else str(x.dtype)

    def _reshape(self, x, shape):
        return x.reshape(shape)

    def _transpose(self, x, axes):
        return x.transpose(axes)

    def _concat(self, xs, axis):
        return np.concatenate(xs, axis=axis)

    # ---------------------------------------------------------------- primitives
    def _softmax(self, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))  # every exponent <= 0: no overflow
        return e / e.sum(axis=axis, keepdims=True)

    def _log_softmax(self, x, axis):
        z = x - x.max(axis=axis, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))

    def _relu(self, x):
        return np.maximum(x, 0).astype(x.dtype)

    def _gelu(self, x, approximate):
        if approximate:
            with np.errstate(over="ignore"):  # x**3 may overflow to ±inf for large |x|; tanh(±inf) = ±1 is still right
                inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
            return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)
        return (0.5 * x * (1 + erf(x / math.sqrt(2)))).astype(x.dtype)

    def _silu(self, x):
        # x * sigmoid(x), written with exp(-|x|) so that it never overflows
        e = np.exp(-np.abs(x))
        sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return (x * sigmoid).astype(x.dtype)

    def _linear(self, x, w, b):
        y = x @ w
        return y if b is None else y + b

    def _layer_norm(self, x, w, b, eps):
        xf = _at_least_float32(x)  # squares of float16 values overflow at 256: take statistics in float32
        mean = xf.mean(axis=-1, keepdims=True)
        var = ((xf - mean) ** 2).mean(axis=-1, keepdims=True)  # biased: divide by D
        y = (xf - mean) / np.sqrt(var + eps) * w
        return (y if b is None else y + b).astype(x.dtype)

    def _rms_norm(self, x, w, eps):
        xf = _at_least_float32(x)
        rms = np.sqrt((xf * xf).mean(axis=-1, keepdims=True) + eps)
        return (xf / rms * w).astype(x.dtype)

    def _embedding(self, table, ids):
        return table[ids]  # (..., D)

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        positions = np.arange(offset, offset + length, dtype=np.float64)[:, None]  # (length, 1)
        frequencies = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (dim/2,)
        angles = positions * frequencies  # (length, dim/2)
        table = np.empty((length, dim))
        table[:, 0::2] = np.sin(angles)
        table[:, 1::2] = np.cos(angles)
        return table.astype(dtype)

    def _rotary(self, x, positions, base):
        half = x.shape[-1] // 2
        frequencies = base ** (-np.arange(half, dtype=np.float64) * 2 / x.shape[-1])  # (Dh/2,)
        angles = positions[..., None].astype(np.float64) * frequencies  # (..., L, Dh/2): per-row positions (B, 1, L) too
        cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
        x1, x2 = x[..., :half], x[..., half:]  # the pairs (i, i + Dh/2)
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        L, S = q.shape[-2], k.shape[-2]
        scores = (q @ np.swapaxes(k, -1, -2)) * np.asarray(scale, q.dtype)  # (..., L, S)
        allowed = np.ones((L, S), dtype=bool) if mask is None else mask
        if causal:  # query i sees key j iff j <= i + S - L
            allowed = allowed & np.tril(np.ones((L, S), dtype=bool), k=S - L)
        scores = np.where(allowed, scores, -np.inf)
        row_max = scores.max(axis=-1, keepdims=True)
        row_max = np.where(np.isfinite(row_max), row_max, 0)  # a fully masked row stays all -inf
        e = np.exp(scores - row_max)  # masked entries: exp(-inf) = 0
        total = e.sum(axis=-1, keepdims=True)
        weights = e / np.where(total > 0, total, 1)  # a fully masked row: zero weights
        return weights @ v, (weights if need_weights else None)

    def _cross_entropy(self, logits, targets, ignore_index):
        keep = targets != ignore_index
        if not keep.any():
            return np.zeros((), dtype=logits.dtype)
        log_p = self._log_softmax(logits[keep], -1)  # (M, V)
        return np.asarray(-log_p[np.arange(log_p.shape[0]), targets[keep]].mean())  # a 0-d array, not a NumPy scalar

    def _sample(self, logits, u, temperature, top_k, top_p):
        if temperature == 0:
            return int(np.argmax(logits))  # the first maximum: lowest index on ties
        # The cut and the inverse CDF are decided in float64, so every backend that does the same picks the same
        # token for the same u (a float32 running sum over 50k tokens drifts across token boundaries).
        logits = logits.astype(np.float64)
        with np.errstate(over="ignore"):  # scores spanning ±3e38 may shift to -inf: probability 0, as it should be
            z = logits - logits.max()  # scaling by 1/T can overflow; shifted scores are <= 0 and cannot
            p = self._softmax(z / np.asarray(temperature, logits.dtype), -1)
        order = np.argsort(-p, kind="stable")  # most probable first, ties by lower index
        if top_k is not None:
            order = order[:top_k]
        if top_p is not None:
            mass = np.cumsum(p[order]) / p[order].sum()
            order = order[: int(np.searchsorted(mass, top_p, side="left")) + 1]  # keep the crossing token
        kept = np.zeros_like(p)
        kept[order] = p[order]
        cumulative = np.cumsum(kept / kept.sum())  # in vocabulary order
        index = int(np.searchsorted(cumulative, u, side="right"))  # first i with cumulative[i] > u
        return index if index < p.shape[0] else int(np.flatnonzero(kept).max())  # rounding left the total <= u
