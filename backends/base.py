"""The backend interface, and every composite written once from the primitives.

A backend subclasses :class:`Backend` and implements the *kernels*: the methods
whose names start with one underscore (``_softmax``, ``_linear``, ...), listed
in :data:`KERNELS`. The public methods (``softmax``, ``linear``, ...) belong to
the contract: they check their arguments against :mod:`spec` — raising the
documented errors with clear messages — and then call the kernel. Composites
(multi-head attention, feed-forward, block, model forward) are written here
once, check their inputs at the entry, and then call kernels directly, so a
decoding step pays for argument checks once, not once per primitive.

A backend may override a composite's kernel (``_model_forward``, ``_block``,
...) with a fused or compiled version; the suite checks it like any other.

Native arrays in, native arrays out: a backend never receives another
library's arrays (``asarray`` converts them first).
"""

from __future__ import annotations

import collections
import functools
import importlib
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from transformer_spec.spec import validate as V
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.dtypes import ALL_DTYPES, FLOAT_DTYPES
from transformer_spec.spec.errors import ConfigError, DTypeError, NotFiniteError, OutOfRangeError, ShapeError
from transformer_spec.spec.model import check_parameters

from . import model
from .cache import KVCache, NoCache, PaddedKVCache, check_cache

# The kernels every backend implements, with the primitive each one serves.
KERNELS: dict[str, str] = {
    "_asarray": "asarray(x, dtype) — convert NumPy data / Python scalars to a native array",
    "_to_numpy": "to_numpy(x) — a native array to a NumPy array",
    "_dtype_of": "dtype_of(x) — the dtype name ('float32', 'int64', 'bool', ...) of a native array",
    "_reshape": "reshape(x, shape)",
    "_transpose": "transpose(x, axes) — permute axes",
    "_concat": "concat(xs, axis)",
    "_softmax": "softmax(x, axis)",
    "_log_softmax": "log_softmax(x, axis)",
    "_relu": "relu(x)",
    "_gelu": "gelu(x, approximate)",
    "_silu": "silu(x)",
    "_linear": "linear(x, w, b)",
    "_layer_norm": "layer_norm(x, w, b, eps)",
    "_rms_norm": "rms_norm(x, w, eps)",
    "_embedding": "embedding(table, ids)",
    "_sinusoidal_encoding": "sinusoidal_encoding(length, dim, base, offset, dtype)",
    "_rotary": "rotary(x, positions, base)",
    "_attention": "attention(q, k, v, mask, causal, scale, need_weights) -> (out, weights or None)",
    "_cross_entropy": "cross_entropy(logits, targets, ignore_index)",
    "_sample": "sample(logits, u, temperature, top_k, top_p) -> int",
}


class Ops:
    """A backend's kernel namespace: ``ops.linear`` is ``backend._linear``, and so on for every name in :data:`KERNELS`.

    The model functions (:mod:`transformer_spec.backends.model`) compute with nothing else. Two namespaces are equal
    when their backends' ``compile_key()`` are (by default: the same backend object), so a compiler that caches on
    static arguments (``jax.jit``) can share one compiled program between equal backends.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        for kernel in KERNELS:
            setattr(self, kernel[1:], getattr(backend, kernel))
        self.rotary_per_row = backend.rotary_positions_per_row

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ops) and self.backend.compile_key() == other.backend.compile_key()

    def __hash__(self) -> int:
        return hash(self.backend.compile_key())

    def __repr__(self) -> str:
        return f"Ops({self.backend!r})"


# Composite kernels a 0.1 backend could override with its own copy of the model (see Backend.__init_subclass__).
MODEL_COPIES = ("_norm", "_multihead_attention", "_feed_forward", "_block")


# How often each model function's Python code ran, by (backend.compile_key(), name): backends that share compiled
# programs (equal compile keys) share their counts.
TRACE_COUNTS: collections.Counter[tuple[Any, str]] = collections.Counter()


def count_traces(backend: Backend, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, counting in ``backend.trace_counts()[name]`` each time its Python code runs (under a compiler: each trace)."""
    key = (backend.compile_key(), name)

    @functools.wraps(fn)  # keeps fn's signature, which jax.jit reads to map static / donated argument names
    def counted(*args: Any, **kwargs: Any) -> Any:
        TRACE_COUNTS[key] += 1
        return fn(*args, **kwargs)

    return counted


def missing_kernels(backend: Backend | type[Backend]) -> list[str]:
    """Kernels that ``backend`` does not implement (still the base class's placeholder)."""
    cls = backend if isinstance(backend, type) else type(backend)
    return [name for name in KERNELS if getattr(cls, name, None) is getattr(Backend, name)]


class Backend:
    """Base class of every backend. Subclass it and implement :data:`KERNELS`."""

    name: str = "base"  # registry name, shown in reports
    array_type: type | tuple[type, ...] = object  # the native array class(es)
    dtypes: tuple[str, ...] = ("float32", "float64")  # float dtypes this backend computes in
    supports_autodiff: bool = False  # whether value_and_grad works
    device: str = "cpu"
    # Whether ``_rotary`` also takes per-row positions (B, 1, L), broadcast over the heads (a left-padded batch).
    # Without it the model rotates one row at a time, so a kernel written for (L,) positions keeps working.
    rotary_positions_per_row: bool = False

    def compile_key(self) -> Any:
        """What makes two backends interchangeable for a compiled program (default: being the same object)."""
        return id(self)

    # ------------------------------------------------------------------ conversion
    def asarray(self, x: Any, dtype: str | None = None) -> Any:
        """Convert NumPy data, nested lists or scalars to a native array of ``dtype``."""
        if dtype is not None:
            self.check_dtype_supported(dtype)
        elif isinstance(x, self.array_type):
            return x
        return self._asarray(x, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return self._to_numpy(self._native("to_numpy", "x", x))

    def dtype_of(self, x: Any) -> str:
        return self._dtype_of(self._native("dtype_of", "x", x))

    def check_dtype_supported(self, dtype: str) -> None:
        if dtype not in ALL_DTYPES:
            raise DTypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(ALL_DTYPES)}")
        if dtype in FLOAT_DTYPES and dtype not in self.dtypes:
            raise DTypeError(
                f"backend {self.name!r} does not support {dtype}; it supports {', '.join(self.dtypes)}"
                + (self.dtype_hint(dtype) or "")
            )

    def dtype_hint(self, dtype: str) -> str | None:
        """Extra advice appended to an unsupported-dtype error (e.g. how to enable float64)."""
        return None

    def _native(self, fn: str, arg: str, x: Any) -> Any:
        if not isinstance(x, self.array_type):
            raise DTypeError(
                f"{fn}: argument {arg!r} is a {type(x).__module__}.{type(x).__name__}, expected a native array of "
                f"backend {self.name!r}; convert it with backend.asarray(x, dtype)"
            )
        return x

    def _float(self, fn: str, arg: str, x: Any) -> str:
        dtype = self._dtype_of(self._native(fn, arg, x))
        V.check_float(fn, arg, dtype)
        return dtype

    def _int(self, fn: str, arg: str, x: Any) -> str:
        dtype = self._dtype_of(self._native(fn, arg, x))
        V.check_int(fn, arg, dtype)
        return dtype

    def _check_ids_in_range(self, fn: str, arg: str, ids: Any, high: int, allowed: int | None = None) -> None:
        values = self._to_numpy(ids)
        if values.size == 0:
            return
        bad = (values < 0) | (values >= high)
        if allowed is not None:
            bad &= values != allowed
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            extra = f" or {allowed}" if allowed is not None else ""
            raise OutOfRangeError(
                f"{fn}: argument {arg!r} holds {int(values[where])} at index {where}; expected values in [0, {high}){extra}"
            )

    # ------------------------------------------------------------------ structural
    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return self._reshape(self._native("reshape", "x", x), tuple(shape))

    def transpose(self, x: Any, axes: tuple[int, ...]) -> Any:
        return self._transpose(self._native("transpose", "x", x), tuple(axes))

    def concat(self, xs: list[Any], axis: int) -> Any:
        return self._concat([self._native("concat", "xs", x) for x in xs], axis)

    # ------------------------------------------------------------------ primitives
    def softmax(self, x: Any, axis: int = -1) -> Any:
        """See :mod:`transformer_spec.spec.softmax`."""
        return self._softmax(x, self._check_softmax("softmax", x, axis))

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        """See :mod:`transformer_spec.spec.softmax`."""
        return self._log_softmax(x, self._check_softmax("log_softmax", x, axis))

    def _check_softmax(self, fn: str, x: Any, axis: int) -> int:
        self._float(fn, "x", x)
        shape = tuple(x.shape)
        V.check_rank(fn, "x", shape, 1, "(..., N)")
        axis = V.normalize_axis(fn, axis, len(shape))
        V.check_nonempty(fn, "x", shape, axis, "softmax")
        return axis

    def relu(self, x: Any) -> Any:
        """See :mod:`transformer_spec.spec.activations`."""
        self._float("relu", "x", x)
        return self._relu(x)

    def gelu(self, x: Any, approximate: bool) -> Any:
        """See :mod:`transformer_spec.spec.activations`. ``approximate=True`` is the tanh form (GPT-2)."""
        self._float("gelu", "x", x)
        if not isinstance(approximate, bool):
            raise ConfigError(f"gelu: approximate = {approximate!r}, expected True (tanh form) or False (exact erf form)")
        return self._gelu(x, approximate)

    def silu(self, x: Any) -> Any:
        """See :mod:`transformer_spec.spec.activations`."""
        self._float("silu", "x", x)
        return self._silu(x)

    def linear(self, x: Any, w: Any, b: Any = None) -> Any:
        """``x @ w + b`` with ``w`` shaped (Din, Dout). See :mod:`transformer_spec.spec.linear`."""
        dtypes = {"x": self._float("linear", "x", x), "w": self._float("linear", "w", w)}
        xs, ws = tuple(x.shape), tuple(w.shape)
        V.check_rank("linear", "x", xs, 1, "(..., Din)")
        V.check_exact_rank("linear", "w", ws, 2, "(Din, Dout)")
        if xs[-1] != ws[0]:
            raise ShapeError(
                f"linear: argument 'x' has shape {V.fmt_shape(xs)} but 'w' has shape {V.fmt_shape(ws)}; expected x.shape[-1] == w.shape[0] (Din)"
            )
        if b is not None:
            dtypes["b"] = self._float("linear", "b", b)
            V.check_shape("linear", "b", tuple(b.shape), (ws[1],), "(Dout,)")
        V.check_same_dtype("linear", dtypes)
        return self._linear(x, w, b)

    def layer_norm(self, x: Any, w: Any, b: Any = None, eps: float = 1e-5) -> Any:
        """See :mod:`transformer_spec.spec.normalization`. ``b=None`` means no shift."""
        self._check_norm("layer_norm", x, {"w": w, "b": b}, eps)
        return self._layer_norm(x, w, b, float(eps))

    def rms_norm(self, x: Any, w: Any, eps: float = 1e-6) -> Any:
        """See :mod:`transformer_spec.spec.normalization`."""
        self._check_norm("rms_norm", x, {"w": w}, eps)
        return self._rms_norm(x, w, float(eps))

    def _check_norm(self, fn: str, x: Any, weights: dict[str, Any], eps: float) -> None:
        dtypes = {"x": self._float(fn, "x", x)}
        xs = tuple(x.shape)
        V.check_rank(fn, "x", xs, 1, "(..., D)")
        for name, w in weights.items():
            if w is None and name == "b":
                continue
            dtypes[name] = self._float(fn, name, w)
            V.check_shape(fn, name, tuple(w.shape), (xs[-1],), "(D,)")
        V.check_same_dtype(fn, dtypes)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ConfigError(f"{fn}: eps = {eps!r}, expected a number >= 0")

    def embedding(self, table: Any, ids: Any) -> Any:
        """Rows ``table[ids]``; ids outside [0, V) are an error. See :mod:`transformer_spec.spec.embedding`."""
        self._float("embedding", "table", table)
        self._int("embedding", "ids", ids)
        V.check_exact_rank("embedding", "table", tuple(table.shape), 2, "(V, D)")
        self._check_ids_in_range("embedding", "ids", ids, table.shape[0])
        return self._embedding(table, ids)

    def sinusoidal_encoding(self, length: int, dim: int, base: float = 10000.0, offset: int = 0, dtype: str = "float32") -> Any:
        """The (length, dim) sinusoidal table starting at position ``offset``. See :mod:`transformer_spec.spec.positional`."""
        V.check_positive_int("sinusoidal_encoding", "length", length)
        V.check_positive_int("sinusoidal_encoding", "dim", dim)
        V.check_even("sinusoidal_encoding", "dim", dim, "positions are encoded in (sin, cos) pairs")
        V.check_nonnegative_int("sinusoidal_encoding", "offset", offset)
        V.check_positive_float("sinusoidal_encoding", "base", base)
        V.check_float("sinusoidal_encoding", "dtype", dtype)
        self.check_dtype_supported(dtype)
        return self._sinusoidal_encoding(length, dim, float(base), offset, dtype)

    def learned_positions(self, table: Any, length: int, offset: int = 0) -> Any:
        """Rows ``offset .. offset+length-1`` of a learned position table. See :mod:`transformer_spec.spec.positional`."""
        self._float("learned_positions", "table", table)
        V.check_exact_rank("learned_positions", "table", tuple(table.shape), 2, "(C, D)")
        V.check_positive_int("learned_positions", "length", length)
        V.check_nonnegative_int("learned_positions", "offset", offset)
        if offset + length > table.shape[0]:
            raise OutOfRangeError(
                f"learned_positions: positions {offset}..{offset + length - 1} do not fit a table of {table.shape[0]} "
                f"positions; expected offset + length <= {table.shape[0]} (the context length)"
            )
        return table[offset : offset + length, ...]  # the trailing ... is the Array API spelling of 'all other axes'

    def rotary(self, x: Any, positions: Any, base: float = 10000.0) -> Any:
        """Rotate pairs (i, i + Dh/2) by position × frequency. See :mod:`transformer_spec.spec.positional`."""
        self._float("rotary", "x", x)
        self._int("rotary", "positions", positions)
        xs = tuple(x.shape)
        V.check_rank("rotary", "x", xs, 2, "(..., L, Dh)")
        V.check_even("rotary", "Dh = x.shape[-1]", xs[-1], "rotary rotates pairs (i, i + Dh/2)")
        V.check_shape("rotary", "positions", tuple(positions.shape), (xs[-2],), "(L,) with L = x.shape[-2]")
        V.check_positive_float("rotary", "base", base)
        self._check_ids_in_range("rotary", "positions", positions, 2**62)
        return self._rotary(x, positions, float(base))

    def attention(
        self,
        q: Any,
        k: Any,
        v: Any,
        mask: Any = None,
        causal: bool = False,
        scale: float | None = None,
        need_weights: bool = True,
    ) -> tuple[Any, Any]:
        """``softmax(q kᵀ scale + mask) v`` → (out, weights). See :mod:`transformer_spec.spec.attention`.

        ``need_weights=False`` returns ``(out, None)`` through the backend's fast path (the one composites use).
        """
        fn = "attention"
        dtypes = {"q": self._float(fn, "q", q), "k": self._float(fn, "k", k), "v": self._float(fn, "v", v)}
        V.check_same_dtype(fn, dtypes)
        qs, ks, vs = tuple(q.shape), tuple(k.shape), tuple(v.shape)
        for name, s, expect in (("q", qs, "(..., L, Dh)"), ("k", ks, "(..., S, Dh)"), ("v", vs, "(..., S, Dv)")):
            V.check_rank(fn, name, s, 2, expect)
        if not (qs[:-2] == ks[:-2] == vs[:-2]):
            raise ShapeError(
                f"attention: leading axes differ: q {V.fmt_shape(qs)}, k {V.fmt_shape(ks)}, v {V.fmt_shape(vs)}; expected identical batch axes (no broadcasting)"
            )
        if ks[-1] != qs[-1]:
            raise ShapeError(
                f"attention: argument 'k' has shape {V.fmt_shape(ks)}, expected last axis Dh = {qs[-1]} like q {V.fmt_shape(qs)}"
            )
        if vs[-2] != ks[-2]:
            raise ShapeError(
                f"attention: argument 'v' has shape {V.fmt_shape(vs)}, expected S = {ks[-2]} positions like k {V.fmt_shape(ks)}"
            )
        L, S = qs[-2], ks[-2]
        V.check_nonempty(fn, "q", qs, -2, "query (L)")
        V.check_nonempty(fn, "k", ks, -2, "key (S)")
        if not isinstance(causal, bool):
            raise ConfigError(f"attention: causal = {causal!r}, expected True or False")
        if causal and L > S:
            raise ShapeError(
                f"attention: causal with L = {L} queries but only S = {S} keys; expected L <= S (queries are the last L positions)"
            )
        if mask is not None:
            V.check_bool(fn, "mask", self._dtype_of(self._native(fn, "mask", mask)))
            ms = tuple(mask.shape)
            if ms not in ((L, S), qs[:-2] + (L, S)):
                raise ShapeError(
                    f"attention: argument 'mask' has shape {V.fmt_shape(ms)}, expected (L, S) = {V.fmt_shape((L, S))} or {V.fmt_shape(qs[:-2] + (L, S))}"
                )
        if scale is None:
            scale = 1.0 / math.sqrt(qs[-1])
        else:
            scale = V.check_positive_float(fn, "scale", scale)
        return self._attention(q, k, v, mask, causal, scale, bool(need_weights))

    def cross_entropy(self, logits: Any, targets: Any, ignore_index: int = -100) -> Any:
        """Mean of -log softmax(logits)[target] over non-ignored targets. See :mod:`transformer_spec.spec.loss`."""
        fn = "cross_entropy"
        self._float(fn, "logits", logits)
        self._int(fn, "targets", targets)
        ls, ts = tuple(logits.shape), tuple(targets.shape)
        V.check_rank(fn, "logits", ls, 1, "(..., V)")
        V.check_shape(fn, "targets", ts, ls[:-1], "logits.shape[:-1]")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ConfigError(f"cross_entropy: ignore_index = {ignore_index!r}, expected an int")
        self._check_ids_in_range(fn, "targets", targets, ls[-1], allowed=ignore_index)
        return self._cross_entropy(logits, targets, ignore_index)

    def sample(
        self, logits: Any, u: float, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
    ) -> int:
        """Pick one token id from (V,) logits with the uniform number ``u``. See :mod:`transformer_spec.spec.sampling`."""
        fn = "sample"
        check_sampling_options(temperature, top_k, top_p)
        if isinstance(u, bool) or not isinstance(u, (int, float, np.floating)) or not 0.0 <= float(u) < 1.0:
            raise ConfigError(f"sample: u = {u!r}, expected a float in [0, 1)")
        self._float(fn, "logits", logits)
        V.check_exact_rank(fn, "logits", tuple(logits.shape), 1, "(V,)")
        V.check_nonempty(fn, "logits", tuple(logits.shape), 0, "vocabulary")
        if np.isnan(self._to_numpy(logits)).any():
            raise NotFiniteError(
                "sample: argument 'logits' contains NaN; expected finite scores (check the model's weights and inputs)"
            )
        return int(self._sample(logits, float(u), float(temperature), top_k, None if top_p is None else float(top_p)))

    # ------------------------------------------------------------------ composites
    # The model is written once, in transformer_spec.backends.model, as functions of the kernel namespace
    # ``self.ops``. The public methods check their arguments here, outside any compiled region, and then run
    # the model function through the ``compile`` hook.
    def multihead_attention(
        self,
        params: dict[str, Any],
        config: ModelConfig,
        x: Any,
        prefix: str = "blocks.0.attn.",
        past: tuple[Any, Any] | None = None,
        positions: Any = None,
    ) -> tuple[Any, tuple[Any, Any]]:
        """Causal multi-head self-attention → (out (B, L, D), (keys, values) (B, Hkv, S, Dh))."""
        self._check_stream("multihead_attention", x, config)
        return self._multihead_attention(params, config, x, prefix, past, self._positions_after(past, x, positions))

    def feed_forward(self, params: dict[str, Any], config: ModelConfig, x: Any, prefix: str = "blocks.0.mlp.") -> Any:
        """Position-wise FFN → (B, L, D)."""
        self._check_stream("feed_forward", x, config)
        return self._feed_forward(params, config, x, prefix)

    def block(
        self,
        params: dict[str, Any],
        config: ModelConfig,
        x: Any,
        prefix: str = "blocks.0.",
        past: tuple[Any, Any] | None = None,
        positions: Any = None,
    ) -> tuple[Any, tuple[Any, Any]]:
        """Pre-norm residual block → (out (B, L, D), (keys, values) (B, Hkv, S, Dh))."""
        self._check_stream("block", x, config)
        return self._block(params, config, x, prefix, past, self._positions_after(past, x, positions))

    def _positions_after(self, past: tuple[Any, Any] | None, x: Any, positions: Any) -> Any:
        """The given positions, or S_past .. S_past + L - 1 continuing after the cached keys."""
        if positions is not None:
            return positions
        start = 0 if past is None else past[0].shape[2]
        return self._asarray(np.arange(start, start + x.shape[1]), "int64")

    def init_cache(self, config: ModelConfig, batch_size: int = 1) -> Any:
        """An empty KV cache for ``config`` (batch size is fixed by the first call). Hook: a backend may return its own
        cache (see :mod:`transformer_spec.backends.cache`); the default grows by concatenation."""
        V.check_positive_int("init_cache", "batch_size", batch_size)
        return KVCache(keys=[None] * config.n_layers, values=[None] * config.n_layers, length=0)

    def init_padded_cache(self, config: ModelConfig, pad: tuple[int, ...]) -> Any:
        """An empty KV cache for a LEFT-padded batch: row b's first ``pad[b]`` slots are padding (batched generation).

        Its ``positions`` are per row and its ``attend`` masks padding keys (see
        :class:`~transformer_spec.backends.cache.PaddedKVCache`, the default). Hook: JAX returns its static cache."""
        if not pad or any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in pad):
            raise ConfigError(f"init_padded_cache: pad = {pad!r}, expected a non-empty tuple of ints >= 0, one per row")
        return PaddedKVCache.empty(config.n_layers, tuple(pad))

    def model_forward(self, params: dict[str, Any], config: ModelConfig, ids: Any, cache: Any | None = None) -> tuple[Any, Any]:
        """Token ids (B, L) → (logits (B, L, V), the cache extended by L)."""
        fn = "model_forward"
        self._int(fn, "ids", ids)
        shape = tuple(ids.shape)
        V.check_exact_rank(fn, "ids", shape, 2, "(B, L) token ids")
        V.check_nonempty(fn, "ids", shape, 1, "sequence (L)")
        self.check_params(params, config)
        self._check_ids_in_range(fn, "ids", ids, config.vocab_size)
        if cache is None:
            cache = self.init_cache(config, shape[0])
            self.check_cache(cache, f"{type(self).__name__}.init_cache")
        else:
            self.check_cache(cache, "model_forward: argument 'cache'")
        if cache.length + shape[1] > config.context_length:
            raise OutOfRangeError(
                f"model_forward: positions {cache.length}..{cache.length + shape[1] - 1} exceed the context length "
                f"{config.context_length}; expected cache length + L <= {config.context_length} (shorten the prompt or use a sliding window)"
            )
        return self._model_forward(params, config, ids, cache)

    def loss(self, params: dict[str, Any], config: ModelConfig, ids: Any, targets: Any, ignore_index: int = -100) -> Any:
        """The mean next-token cross-entropy of a batch (the training objective): ids and targets (B, L) → a scalar."""
        fn = "loss"
        self._int(fn, "ids", ids)
        V.check_exact_rank(fn, "ids", tuple(ids.shape), 2, "(B, L) token ids")
        V.check_nonempty(fn, "ids", tuple(ids.shape), 1, "sequence (L)")
        self._int(fn, "targets", targets)
        V.check_shape(fn, "targets", tuple(targets.shape), tuple(ids.shape), "(B, L) like ids")
        self.check_params(params, config)
        self._check_ids_in_range(fn, "ids", ids, config.vocab_size)
        self._check_ids_in_range(fn, "targets", targets, config.vocab_size, allowed=ignore_index)
        if ids.shape[1] > config.context_length:
            raise OutOfRangeError(f"loss: L = {ids.shape[1]} positions exceed the context length {config.context_length}")
        return self.compiled("loss")(self.ops, params, config, ids, targets, NoCache(), ignore_index)

    def check_params(self, params: dict[str, Any], config: ModelConfig) -> None:
        """Raise a clear error unless ``params`` matches the layout of ``config`` (names, shapes, one float dtype)."""
        if not isinstance(params, dict):
            raise ConfigError(f"params is a {type(params).__name__}, expected a dict from parameter name to array")
        # Decoding calls this once per token with the same arrays: remember the last set that passed.
        # The arrays themselves are kept (not their ids, which a freed array's successor may reuse).
        last = getattr(self, "_checked_params", None)
        if (
            last is not None
            and last[0] == config
            and last[1] == tuple(params)
            and all(a is b for a, b in zip(last[2], params.values()))
        ):
            return
        check_parameters(config, {name: tuple(p.shape) for name, p in params.items()})
        dtypes = {name: self._float("model_forward", f"params[{name!r}]", p) for name, p in params.items()}
        if len(set(dtypes.values())) > 1:
            raise DTypeError(
                f"parameters mix dtypes {sorted(set(dtypes.values()))}; expected one float dtype for all (convert with asarray)"
            )
        self._checked_params = (config, tuple(params), tuple(params.values()))

    def _check_stream(self, fn: str, x: Any, config: ModelConfig) -> None:
        self._float(fn, "x", x)
        xs = tuple(x.shape)
        if len(xs) != 3 or xs[-1] != config.d_model or xs[1] == 0:
            raise ShapeError(
                f"{fn}: argument 'x' has shape {V.fmt_shape(xs)}, expected (B, L, D) with D = d_model = {config.d_model} and L >= 1"
            )

    # The composites after their checks: the shared model functions through the compile hook. (0.1 let a backend
    # override these with its own copy of the model; that still works for _model_forward, with a warning for the
    # finer ones, which model_forward no longer calls: see __init_subclass__.)
    def _norm(self, params, config, x, prefix):  # kept for 0.1 backends whose composite overrides call it
        return model.norm(self.ops, params, config, x, prefix)

    def _multihead_attention(self, params, config, x, prefix, past, positions):
        return self._one_layer("attention", params, config, x, prefix, past, positions)

    def _feed_forward(self, params, config, x, prefix):
        return self.compiled("feed_forward")(self.ops, params, config, x, prefix)

    def _block(self, params, config, x, prefix, past, positions):
        return self._one_layer("block", params, config, x, prefix, past, positions)

    def _one_layer(self, name, params, config, x, prefix, past, positions):
        """One layer's ``name`` (attention or block) with its past keys and values as a one-layer growing cache."""
        cache = KVCache(keys=[None if past is None else past[0]], values=[None if past is None else past[1]])
        out, cache = self.compiled(name)(self.ops, params, config, x, prefix, positions, cache, 0)
        return out, (cache.keys[0], cache.values[0])

    def _model_forward(self, params, config, ids, cache):
        return self.compiled("model_forward")(self.ops, params, config, ids, cache)

    # ------------------------------------------------------------------ hooks
    # Optional: only the hooks a backend overrides change anything; the defaults are plain Python.
    @property
    def ops(self) -> Ops:
        """The kernel namespace the model functions compute with (``ops.linear`` is ``self._linear``, ...)."""
        ops = self.__dict__.get("_ops")
        if ops is None:
            ops = self.__dict__["_ops"] = Ops(self)
        return ops

    def check_cache(self, cache: Any, where: str) -> None:
        """Raise a clear error unless ``cache`` is a cache this backend's ``_model_forward`` accepts."""
        check_cache(cache, where)

    def compile(self, fn: Callable[..., Any], static: tuple[str, ...] = (), donate: tuple[str, ...] = ()) -> Callable[..., Any]:
        """Hook: a compiled version of the pure function ``fn``; arguments named in ``static`` are hashable
        options (the config, the kernel namespace), those in ``donate`` may be overwritten. Default: ``fn`` itself
        (NumPy runs op by op); JAX returns ``jax.jit(fn, ...)``."""
        return fn

    def compiled(self, name: str) -> Callable[..., Any]:
        """The model function ``name`` of :mod:`transformer_spec.backends.model`, through :meth:`compile` (once per name)."""
        cache = self.__dict__.setdefault("_compiled", {})
        fn = cache.get(name)
        if fn is None:
            fn = self.compile(count_traces(self, name, getattr(model, name)), static=model.STATIC_ARGUMENTS[name])
            if not callable(fn):
                raise ConfigError(
                    f"{type(self).__name__}.compile returned a {type(fn).__name__} for {name}, expected a callable "
                    f"(the compiled function, or the function itself)"
                )
            cache[name] = fn
        return fn

    def trace_counts(self) -> dict[str, int]:
        """How often each model function's Python code ran: every call without compilation, once per new
        (shapes, dtypes, static options) signature with it. A second call with the same shapes adding to a
        compiled backend's count means it compiled again."""
        own = self.compile_key()
        return {name: count for (key, name), count in TRACE_COUNTS.items() if key == own}

    compiles = False  # whether ``compile`` really compiles (then a repeated signature must not trace again)

    def compiling(self) -> Backend | None:
        """Hook: this backend with its compiler switched on (``--compile``), or None when it has none."""
        return self if self.compiles else None

    def set_threads(self, count: int) -> None:
        """Hook: use ``count`` CPU threads for this backend's work. Default: nothing to set."""

    adamw_update: Callable[..., Any] | None = None
    """Hook: a fused AdamW update, or None for the plain one in the training code. Called as
    ``adamw_update(params, grads, m, v, *, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2,
    decay)`` with dicts of native arrays (``decay[name]``: whether weight decay applies) and returns the new
    ``(params, m, v)`` (which may be the same dicts, updated in place)."""

    @classmethod
    def join_hosts(cls, timeout: float = 300.0) -> bool:
        """Hook, called on the class before any backend is made: join the other hosts of a multi-host run when the
        environment asks for one, and say whether it did. Default: no multi-host join (False). JAX: with
        ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` set, ``jax.distributed.initialize``
        (which must run before anything touches a JAX device, so it cannot wait for an instance)."""
        return False

    def data_parallel(self, devices: int | None = None, timeout: float = 300.0) -> Any | None:
        """Hook: this process's data-parallel group, or None when the backend has no data-parallel engine (default).

        Returns a :class:`transformer_spec.backends.parallel.DataParallel`: which rows of each global batch this
        process computes and how the parts' weighted gradients become the global batch's gradient. ``devices``:
        how many local devices one process shards the batch over (None: all); ``timeout``: seconds a collective
        waits for the other processes before it raises ``PeerLostError``. PyTorch: ``torch.distributed`` across the
        processes ``torchrun`` started; JAX: a ``jax.sharding.Mesh`` over the devices of this (and every joined) host.
        """
        return None

    def capabilities(self) -> dict[str, str]:
        """What this backend brings beyond the kernels, for reports (``tspec conformance`` prints it)."""
        overridden = lambda hook: getattr(type(self), hook) is not getattr(Backend, hook)  # noqa: E731
        return {
            "compile": "compiles"
            if self.compiles
            else ("on request (--compile)" if overridden("compiling") else "none (op by op)"),
            "kv cache": type(self.init_cache(ModelConfig(n_layers=1, d_model=8, n_heads=1, d_ff=8, vocab_size=8), 1)).__name__,
            "autodiff": "value_and_grad" if self.supports_autodiff else "none",
            "fused optimizer": "adamw_update" if self.adamw_update is not None else "none (plain AdamW)",
            "threads": "set_threads" if overridden("set_threads") else "not settable",
            "data parallel": "data_parallel" if overridden("data_parallel") else "none",
        }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        replaced = [name for name in MODEL_COPIES if name in cls.__dict__]
        if replaced:
            warnings.warn(
                f"{cls.__name__} overrides {', '.join(replaced)}: since transformer-spec 0.2 the model is written once in "
                f"transformer_spec.backends.model and model_forward no longer calls these (they still serve the public "
                f"block/multihead_attention/feed_forward methods until 0.3). Put fused code in a kernel or the compile hook.",
                FutureWarning,
                stacklevel=2,
            )
        for method, module in SPEC_OF.items():  # a public method a subclass redefines keeps the spec's help
            if method in cls.__dict__ and not getattr(cls.__dict__[method], "__doc__", None):
                cls.__dict__[method].__doc__ = getattr(Backend, method).__doc__

    # ------------------------------------------------------------------ autodiff
    def value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """Hook: ``value_and_grad(fn)(params, *args)`` → (fn's scalar value, gradient dict like params)."""
        raise NotImplementedError(
            f"backend {self.name!r} does not support automatic differentiation; train with --backend torch or --backend jax"
        )

    # ------------------------------------------------------------------ kernels (to implement)
    def _kernel_missing(self, name: str):
        raise NotImplementedError(f"backend {self.name!r} does not implement the kernel {name} ({KERNELS[name]})")

    def _asarray(self, x, dtype):
        self._kernel_missing("_asarray")

    def _to_numpy(self, x):
        self._kernel_missing("_to_numpy")

    def _dtype_of(self, x):
        self._kernel_missing("_dtype_of")

    def _reshape(self, x, shape):
        self._kernel_missing("_reshape")

    def _transpose(self, x, axes):
        self._kernel_missing("_transpose")

    def _concat(self, xs, axis):
        self._kernel_missing("_concat")

    def _softmax(self, x, axis):
        self._kernel_missing("_softmax")

    def _log_softmax(self, x, axis):
        self._kernel_missing("_log_softmax")

    def _relu(self, x):
        self._kernel_missing("_relu")

    def _gelu(self, x, approximate):
        self._kernel_missing("_gelu")

    def _silu(self, x):
        self._kernel_missing("_silu")

    def _linear(self, x, w, b):
        self._kernel_missing("_linear")

    def _layer_norm(self, x, w, b, eps):
        self._kernel_missing("_layer_norm")

    def _rms_norm(self, x, w, eps):
        self._kernel_missing("_rms_norm")

    def _embedding(self, table, ids):
        self._kernel_missing("_embedding")

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        self._kernel_missing("_sinusoidal_encoding")

    def _rotary(self, x, positions, base):
        self._kernel_missing("_rotary")

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        self._kernel_missing("_attention")

    def _cross_entropy(self, logits, targets, ignore_index):
        self._kernel_missing("_cross_entropy")

    def _sample(self, logits, u, temperature, top_k, top_p):
        self._kernel_missing("_sample")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.device}>"


# Each public method's help() is its spec module: the math, shapes, invariants and errors, written once in spec/.
SPEC_OF = {
    "softmax": "softmax",
    "log_softmax": "softmax",
    "relu": "activations",
    "gelu": "activations",
    "silu": "activations",
    "linear": "linear",
    "layer_norm": "normalization",
    "rms_norm": "normalization",
    "embedding": "embedding",
    "sinusoidal_encoding": "positional",
    "learned_positions": "positional",
    "rotary": "positional",
    "attention": "attention",
    "cross_entropy": "loss",
    "sample": "sampling",
    "multihead_attention": "multihead_attention",
    "feed_forward": "feedforward",
    "block": "block",
    "model_forward": "model",
    "init_cache": "model",
    "loss": "loss",
}


def _document_from_spec() -> None:
    for method, module in SPEC_OF.items():
        function = getattr(Backend, method)
        summary = (function.__doc__ or "").strip()
        spec_doc = importlib.import_module(f"transformer_spec.spec.{module}").__doc__ or ""
        function.__doc__ = f"{summary}\n\nFrom transformer_spec.spec.{module}:\n\n{spec_doc.strip()}\n"


_document_from_spec()


def check_sampling_options(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ConfigError for sampling options outside their documented ranges."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not (math.isfinite(temperature) and temperature >= 0)
    ):
        raise ConfigError(f"temperature = {temperature!r}, expected a finite number >= 0 (0 means greedy)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k = {top_k!r}, expected an integer >= 1 (or None for no top-k cut)")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ConfigError(f"top_p = {top_p!r}, expected a number in (0, 1] (or None for no top-p cut)")
