"""A transformer-spec backend written against the Python Array API standard.

Every kernel asks its inputs for their namespace (``array_api_compat.array_namespace``)
and calls only functions of the standard in it, so the same code runs on any
library that implements the standard. :class:`ArrayAPIStrictBackend` runs it on
``array-api-strict``, the standard's strictest implementation, which refuses
anything the standard does not promise (NumPy-only functions, implicit dtype
casts, flat indexing of several axes): passing the suite there is the best
evidence that the code is portable.

Registered under the entry-point group ``transformer_spec.backends`` as
``array_api_strict`` (see ``pyproject.toml``), so
``tspec conformance --backend array_api_strict`` finds it.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import array_api_strict
import numpy as np

from transformer_spec.backends.base import Backend
from transformer_spec.spec.errors import DTypeError

# --8<-- [start:setup]
_DTYPE_NAMES = ("float32", "float64", "int32", "int64", "bool")  # the contract's dtypes that the standard has too


def namespace(*arrays: Any) -> Any:
    """The Array API namespace of ``arrays`` (None entries, like an absent bias, are skipped)."""
    return array_api_compat.array_namespace(*[a for a in arrays if a is not None])


class ArrayAPIBackend(Backend):
    """Every kernel in the Array API standard. A subclass names the library: ``xp`` and ``array_type``."""

    xp: Any = None  # the namespace that creates arrays from host data; kernels take theirs from their inputs
    dtypes = ("float32", "float64")  # the standard has no float16 or bfloat16
    # --8<-- [end:setup]

    # --8<-- [start:conversion]
    def _asarray(self, x, dtype):
        xp = self.xp
        if isinstance(x, self.array_type):
            return x if dtype is None else xp.astype(x, getattr(xp, dtype))
        host = np.asarray(x)  # nested lists and Python scalars take NumPy's dtypes (float64, int64), like the reference
        if dtype is None:
            dtype = "bool" if host.dtype == np.bool_ else str(host.dtype)
        if host.dtype.kind not in "biuf" or not hasattr(xp, dtype):
            raise DTypeError(
                f"asarray: cannot make an array of dtype {dtype} from NumPy dtype {host.dtype} with "
                f"{xp.__name__}; expected booleans, integers, float32 or float64"
            )
        return xp.asarray(host, dtype=getattr(xp, dtype))

    def _to_numpy(self, x):
        return np.from_dlpack(x).copy()  # DLPack: the standard's way to hand an array to another library

    def _dtype_of(self, x):
        xp = namespace(x)
        for name in _DTYPE_NAMES:
            if x.dtype == getattr(xp, name):
                return name
        return str(x.dtype)

    def _reshape(self, x, shape):
        return namespace(x).reshape(x, shape)

    def _transpose(self, x, axes):
        return namespace(x).permute_dims(x, axes)

    def _concat(self, xs, axis):
        return namespace(*xs).concat(xs, axis=axis)

    # --8<-- [end:conversion]

    # --8<-- [start:softmax]
    def _softmax(self, x, axis):
        xp = namespace(x)
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))  # every exponent <= 0: nothing overflows
        return e / xp.sum(e, axis=axis, keepdims=True)

    def _log_softmax(self, x, axis):
        xp = namespace(x)
        z = x - xp.max(x, axis=axis, keepdims=True)
        return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))

    # --8<-- [end:softmax]

    # --8<-- [start:activations]
    def _relu(self, x):
        xp = namespace(x)
        return xp.where(x > 0, x, xp.zeros_like(x))

    def _gelu(self, x, approximate):
        xp = namespace(x)
        if approximate:
            # For |x| >= 20 the tanh is exactly ±1 in float32 and float64; clipping there keeps x**3 finite.
            c = xp.clip(x, min=-20.0, max=20.0)
            return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (c + 0.044715 * c * c * c)))
        # Exact GELU is x * Phi(x) = x/2 * erfc(-x/sqrt(2)); the standard has no erf, so erfc is computed below.
        # erfc rather than 1 + erf: for negative x, 1 + erf(x/sqrt 2) would cancel to 0 digits.
        return 0.5 * x * erfc(-x / math.sqrt(2.0))

    def _silu(self, x):
        xp = namespace(x)
        e = xp.exp(-xp.abs(x))  # sigmoid written with exp(-|x|), which never overflows
        return x * xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    # --8<-- [end:activations]

    # --8<-- [start:linear]
    def _linear(self, x, w, b):
        y = namespace(x, w).matmul(x, w)  # (..., Din) @ (Din, Dout) -> (..., Dout)
        return y if b is None else y + b

    def _layer_norm(self, x, w, b, eps):
        xp = namespace(x, w)
        mean = xp.mean(x, axis=-1, keepdims=True)
        var = xp.mean((x - mean) ** 2, axis=-1, keepdims=True)  # biased: divide by D
        y = (x - mean) / xp.sqrt(var + eps) * w
        return y if b is None else y + b

    def _rms_norm(self, x, w, eps):
        xp = namespace(x, w)
        return x / xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps) * w

    # --8<-- [end:linear]

    # --8<-- [start:positions]
    def _embedding(self, table, ids):
        xp = namespace(table, ids)
        rows = xp.take(table, xp.reshape(ids, (-1,)), axis=0)  # (N, D); take works on one axis of indices
        return xp.reshape(rows, tuple(ids.shape) + (table.shape[1],))  # (..., D)

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        xp = self.xp
        positions = xp.arange(offset, offset + length, dtype=xp.float64)  # (length,)
        frequencies = xp.pow(xp.asarray(base, dtype=xp.float64), -xp.arange(0, dim, 2, dtype=xp.float64) / dim)  # (dim/2,)
        angles = xp.expand_dims(positions, axis=1) * xp.expand_dims(frequencies, axis=0)  # (length, dim/2)
        table = xp.stack([xp.sin(angles), xp.cos(angles)], axis=-1)  # (length, dim/2, 2): sin, cos of one angle
        return xp.astype(xp.reshape(table, (length, dim)), getattr(xp, dtype))  # (length, dim), interleaved

    def _rotary(self, x, positions, base):
        xp = namespace(x, positions)
        half = x.shape[-1] // 2
        exponents = -(xp.arange(half, dtype=xp.float64) * 2) / x.shape[-1]
        frequencies = xp.pow(xp.asarray(base, dtype=xp.float64), exponents)  # (Dh/2,)
        angles = xp.expand_dims(xp.astype(positions, xp.float64), axis=1) * xp.expand_dims(frequencies, axis=0)  # (L, Dh/2)
        cos, sin = xp.astype(xp.cos(angles), x.dtype), xp.astype(xp.sin(angles), x.dtype)
        x1, x2 = x[..., :half], x[..., half:]  # the pairs (i, i + Dh/2), each (..., L, Dh/2)
        return xp.concat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # (..., L, Dh)

    # --8<-- [end:positions]

    # --8<-- [start:attention]
    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        xp = namespace(q, k, v, mask)
        L, S = q.shape[-2], k.shape[-2]
        scores = xp.matmul(q, xp.matrix_transpose(k)) * scale  # (..., L, S)
        allowed = mask
        if causal:  # query i sees key j iff j <= i + S - L (the queries are the last L positions)
            i = xp.expand_dims(xp.arange(L), axis=1)  # (L, 1)
            j = xp.expand_dims(xp.arange(S), axis=0)  # (1, S)
            triangle = j <= i + (S - L)  # (L, S)
            allowed = triangle if allowed is None else xp.logical_and(allowed, triangle)
        if allowed is None:
            weights = self._softmax(scores, -1)
        else:
            scores = xp.where(allowed, scores, xp.full_like(scores, -math.inf))
            row_max = xp.max(scores, axis=-1, keepdims=True)
            row_max = xp.where(xp.isfinite(row_max), row_max, xp.zeros_like(row_max))  # a row with no allowed key
            e = xp.exp(scores - row_max)  # masked entries: exp(-inf) = 0
            total = xp.sum(e, axis=-1, keepdims=True)
            weights = e / xp.where(total > 0, total, xp.ones_like(total))  # no allowed key: zero weights, zero output
        return xp.matmul(weights, v), (weights if need_weights else None)  # (..., L, Dv), (..., L, S)

    # --8<-- [end:attention]

    # --8<-- [start:loss]
    def _cross_entropy(self, logits, targets, ignore_index):
        xp = namespace(logits, targets)
        V = logits.shape[-1]
        log_p = self._log_softmax(xp.reshape(logits, (-1, V)), -1)  # (N, V)
        targets = xp.reshape(targets, (-1,))  # (N,)
        keep = targets != ignore_index
        one_hot = xp.expand_dims(xp.where(keep, targets, xp.zeros_like(targets)), axis=1) == xp.arange(V)  # (N, V)
        picked = xp.sum(xp.where(one_hot, log_p, xp.zeros_like(log_p)), axis=1)  # (N,): log p[target]
        kept = xp.astype(keep, logits.dtype)
        count = xp.sum(kept)
        return -xp.sum(picked * kept) / xp.where(count > 0, count, xp.ones_like(count))  # all ignored: 0, not NaN

    # --8<-- [end:loss]

    # --8<-- [start:sample]
    def _sample(self, logits, u, temperature, top_k, top_p):
        xp = namespace(logits)
        if temperature == 0:
            return int(xp.argmax(logits))  # the standard's argmax returns the first maximum: lowest index on ties
        z = xp.astype(logits, xp.float64)  # (V,), sampled in float64 like the reference
        p = self._softmax((z - xp.max(z)) / temperature, -1)  # shifted first: z / T alone can overflow for small T
        V = p.shape[0]
        order = xp.argsort(-p, stable=True)  # most probable first, ties by lower index
        rank = xp.argsort(order)  # rank[i]: where token i stands in that order (the inverse permutation)
        keep = V if top_k is None else min(top_k, V)
        if top_p is not None:
            head = xp.take(p, order[:keep])  # the top-k probabilities, most probable first
            mass = xp.cumulative_sum(head) / xp.sum(head)
            crossing = int(xp.searchsorted(mass, xp.asarray([top_p], dtype=xp.float64), side="left")[0])
            keep = min(crossing + 1, keep)  # keep the token that crosses top_p
        kept = xp.where(rank < keep, p, xp.zeros_like(p))
        cumulative = xp.cumulative_sum(kept / xp.sum(kept))  # in vocabulary order
        index = int(
            xp.searchsorted(cumulative, xp.asarray([u], dtype=xp.float64), side="right")[0]
        )  # first i with cumulative[i] > u
        if index < V:
            return index
        return int(xp.max(xp.where(kept > 0, xp.arange(V), xp.full_like(order, -1))))  # rounding left the total <= u

    # --8<-- [end:sample]


# --8<-- [start:erfc]
# W. J. Cody's rational Chebyshev approximations of erf and erfc (Math. Comp. 23, 1969, pp. 631-638;
# the coefficients of netlib's specfun/erf, accurate to about 18 significant digits). Three intervals:
# |z| <= 0.46875: erf(z) = z P(z^2) / Q(z^2);   0.46875 < |z| <= 4: erfc(z) = exp(-z^2) P(z) / Q(z);
# |z| > 4: erfc(z) = exp(-z^2) / z (1/sqrt(pi) - P(1/z^2) / (z^2 Q(1/z^2))).
_ERF_P = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_Q = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_P = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_ERFC_Q = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_TAIL_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_TAIL_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 0.56418958354775628695


def _ratio(t: Any, p: tuple[float, ...], q: tuple[float, ...]) -> Any:
    """Cody's P(t) / Q(t): Horner's rule with the last coefficient of P first and a monic Q."""
    n = len(q)
    numerator, denominator = p[n] * t, t
    for i in range(n - 1):
        numerator, denominator = (numerator + p[i]) * t, (denominator + q[i]) * t
    return (numerator + p[n - 1]) / (denominator + q[n - 1])


def _exp_minus_square(xp: Any, y: Any) -> Any:
    """exp(-y^2) as exp(-a^2) exp(-(y - a)(y + a)) with a = y rounded down to 1/16: a^2 is exact, so no digits are lost."""
    a = xp.trunc(y * 16.0) / 16.0
    return xp.exp(-a * a) * xp.exp(-(y - a) * (y + a))


def erfc(z: Any) -> Any:
    """The complementary error function, elementwise, with only Array API functions (the standard has no erf)."""
    xp = namespace(z)
    y = xp.abs(z)
    small = xp.clip(y, max=0.46875)  # each interval's formula sees only arguments in its range: no overflow, no NaN
    middle = xp.clip(y, min=0.46875, max=4.0)
    large = xp.clip(y, min=4.0, max=27.0)  # erfc(27) underflows to 0 even in float64
    erfc_small = 1.0 - small * _ratio(small * small, _ERF_P, _ERF_Q)
    erfc_middle = _exp_minus_square(xp, middle) * _ratio(middle, _ERFC_P, _ERFC_Q)
    inverse_square = 1.0 / (large * large)
    erfc_large = (
        _exp_minus_square(xp, large) * (_ONE_OVER_SQRT_PI - inverse_square * _ratio(inverse_square, _TAIL_P, _TAIL_Q)) / large
    )
    positive = xp.where(y <= 0.46875, erfc_small, xp.where(y <= 4.0, erfc_middle, erfc_large))  # erfc(|z|)
    return xp.where(z < 0, 2.0 - positive, positive)  # erfc(-y) = 2 - erfc(y)


# --8<-- [end:erfc]


# --8<-- [start:strict]
class ArrayAPIStrictBackend(ArrayAPIBackend):
    """The Array API backend on array-api-strict, which allows nothing the standard does not promise."""

    name = "array_api_strict"
    xp = array_api_strict
    array_type = type(array_api_strict.asarray(0.0))  # array_api_strict's Array class


# --8<-- [end:strict]


__all__ = ["ArrayAPIBackend", "ArrayAPIStrictBackend", "erfc", "namespace"]
