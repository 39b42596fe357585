"""The JAX backend's KV cache: preallocated buffers updated in place, so every decoding step has one shape.

:class:`StaticKVCache` is what ``JaxBackend.init_cache`` returns and users hold;
:class:`StaticBuffers` is its form inside the compiled model function (a JAX
pytree implementing the cache protocol of :mod:`transformer_spec.backends.cache`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError
from transformer_spec.spec.validate import fmt_shape

from ..cache import KVCache

# The growing cache (the public block/multihead_attention methods pass one) is a tree of arrays for jax.jit:
# its keys and values are the leaves, its length a static number.
jax.tree_util.register_pytree_node(
    KVCache,
    lambda cache: ((cache.keys, cache.values), cache.length),
    lambda length, children: KVCache(list(children[0]), list(children[1]), length),
)


class _CacheStorage:
    """The buffers one line of decoding writes into, and the epoch of the newest cache using them."""

    __slots__ = ("keys", "values", "epoch")

    def __init__(self, keys: tuple[Any, ...], values: tuple[Any, ...]) -> None:
        self.keys = keys  # N × (B·Hkv, C, Dh)
        self.values = values  # N × (B·Hkv, C, Dh)
        self.epoch = 0


class StaticKVCache:
    """A KV cache with a fixed shape: the JAX backend's cache (``JaxBackend.init_cache`` returns one).

    Keys and values of each layer live in preallocated buffers ``(B·Hkv, C, Dh)``
    (C = ``config.context_length``), one pair per layer; slot ``s`` holds
    position ``s``, and slots ``>= length`` are masked out of attention. The
    buffers are created by the first ``model_forward`` (which fixes the batch
    size B and the dtype) and written in place by later ones, so every decoding
    step has the same shapes and reuses one compiled program.

    A cache is a value, like :class:`transformer_spec.backends.base.KVCache`: ``model_forward``
    returns a new cache and the old one stays usable. Feeding the *newest*
    cache of a line of decoding updates the buffers in place (positions below
    its ``length`` are never written again, so older caches still read their
    own prefix); feeding an older one — branching — copies the buffers first.

    Attributes: ``length`` (S, the position the next token gets), ``config``,
    ``batch_size``; ``keys`` / ``values`` give per-layer views ``(B, Hkv, S, Dh)``
    like ``KVCache``; ``buffers`` gives the raw buffers, two tuples of N
    ``(B·Hkv, C, Dh)`` arrays (the next in-place step invalidates them).
    """

    __slots__ = ("config", "batch_size", "length", "_storage", "_epoch", "pad")

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        length: int = 0,
        storage: _CacheStorage | None = None,
        epoch: int = 0,
        pad: tuple[int, ...] | None = None,
    ) -> None:
        self.config = config
        self.batch_size = batch_size
        self.length = length
        self._storage = storage
        self._epoch = epoch
        # A left-padded batch (backends/cache.py PaddedKVCache): row b's first pad[b] slots are padding.
        self.pad = pad

    @property
    def capacity(self) -> int:
        return self.config.context_length

    @property
    def buffers(self) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """The raw (keys, values) buffers, N × (B·Hkv, C, Dh) each, or None before the first call."""
        return None if self._storage is None else (self._storage.keys, self._storage.values)

    @property
    def keys(self) -> list[Any]:
        """Per layer, the keys of positions 0..length-1, (B, Hkv, S, Dh); None before the first call."""
        if self._storage is None:
            return [None] * self.config.n_layers
        return [self._layer_view(k) for k in self._storage.keys]  # N × (B, Hkv, S, Dh)

    @property
    def values(self) -> list[Any]:
        """Per layer, the values of positions 0..length-1, (B, Hkv, S, Dh); None before the first call."""
        if self._storage is None:
            return [None] * self.config.n_layers
        return [self._layer_view(v) for v in self._storage.values]  # N × (B, Hkv, S, Dh)

    def _layer_view(self, buffer: Any) -> Any:
        B, Hkv, Dh = self.batch_size, self.config.kv_heads, self.config.head_dim
        return buffer[:, : self.length].reshape(B, Hkv, self.length, Dh)  # (B, Hkv, S, Dh)

    def is_newest(self) -> bool:
        """Whether the next model_forward on this cache may update its buffers in place."""
        return self._storage is not None and self._storage.epoch == self._epoch

    def copy(self) -> StaticKVCache:
        """An independent cache with the same contents (its own buffers)."""
        if self._storage is None:
            return StaticKVCache(self.config, self.batch_size, pad=self.pad)
        storage = _CacheStorage(*copy_buffers(self._storage))
        return StaticKVCache(self.config, self.batch_size, self.length, storage, storage.epoch, self.pad)

    def to_kv_cache(self) -> KVCache:
        """The same contents as a growing :class:`transformer_spec.backends.base.KVCache`."""
        return KVCache(keys=self.keys, values=self.values, length=self.length)

    def __repr__(self) -> str:
        state = "empty" if self._storage is None else ("newest" if self.is_newest() else "branch point")
        return f"StaticKVCache(length={self.length}, capacity={self.capacity}, batch_size={self.batch_size}, {state})"


@jax.tree_util.register_pytree_node_class
class StaticBuffers:
    """The cache protocol inside the compiled model: N × (B·Hkv, C, Dh) key and value buffers and the traced start.

    ``fresh`` (static) means the buffers hold nothing yet: attention then looks only
    at the chunk's own L keys (cost L×L, not L×C). Otherwise every query looks at
    the first ``window`` slots (static: a power of two covering every filled slot),
    with the slots past its own position masked, so one program serves every
    decoding step until the cache outgrows the window: a handful of programs per
    context, and a step reads the keys it needs rather than all C slots. The buffers merge batch and heads into one leading
    axis: with B = 1 a unit axis made XLA's CPU compiler copy every buffer around
    the in-place update, 15x slower than the update itself.
    """

    def __init__(
        self, keys: tuple[Any, ...], values: tuple[Any, ...], start: Any, fresh: bool, pad: Any = None, window: int = 0
    ) -> None:
        self.keys, self.values, self.start, self.fresh = keys, values, start, fresh
        self.pad = pad  # None, or (B,) ints: a left-padded batch whose row b starts at slot pad[b]
        self.window = window  # static: how many leading slots attention reads

    @property
    def length(self) -> Any:
        return self.start

    def tree_flatten(self):
        return (self.keys, self.values, self.start, self.pad), (self.fresh, self.window)

    @classmethod
    def tree_unflatten(cls, static, children):
        keys, values, start, pad = children
        return cls(keys, values, start, *static[:1], pad, static[1])

    def positions(self, ops: Any, L: int) -> Any:
        slots = self.start + jnp.arange(L, dtype=self.start.dtype)  # (L,)
        if self.pad is None:
            return slots
        return jnp.maximum(slots[None, :] - self.pad[:, None].astype(slots.dtype), 0)  # (B, L): each row its own

    def _real(self, S: int) -> Any:
        """(B, 1, 1, S): True where slot s is a real token of row b (not left padding)."""
        return (jnp.arange(S)[None, :] >= self.pad[:, None])[:, None, None, :]

    def attend(self, ops: Any, layer: int, k: Any, v: Any) -> tuple[StaticBuffers, Any, Any, Any, bool]:
        B, Hkv, L, Dh = k.shape
        zero = jnp.zeros((), self.start.dtype)  # update indices share one dtype (a Python 0 is int64 in x64 mode)
        keys, values = list(self.keys), list(self.values)
        # One buffer per layer, written once and then only read: XLA updates it in place.
        keys[layer] = lax.dynamic_update_slice(keys[layer], k.reshape(B * Hkv, L, Dh), (zero, self.start, zero))
        values[layer] = lax.dynamic_update_slice(values[layer], v.reshape(B * Hkv, L, Dh), (zero, self.start, zero))
        cache = StaticBuffers(tuple(keys), tuple(values), self.start, self.fresh, self.pad, self.window)
        if self.fresh:  # plain causal attention within the chunk (slots 0 .. L-1), padding keys hidden
            return cache, k, v, None if self.pad is None else self._real(L), True
        W = self.window
        allowed = jnp.arange(W)[None, :] <= self.start + jnp.arange(L)[:, None]  # (L, W): slot s holds position s
        if self.pad is not None:
            allowed = allowed & self._real(W)  # (B, 1, L, W)
        window = lambda buffer: buffer[:, :W].reshape(B, Hkv, W, Dh)  # noqa: E731  (B, Hkv, W, Dh)
        return cache, window(keys[layer]), window(values[layer]), allowed, False

    def advance(self, L: int) -> StaticBuffers:
        return StaticBuffers(self.keys, self.values, self.start + L, False, self.pad, self.window)


def empty_buffers(config: ModelConfig, batch_size: int, dtype: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    shape = (batch_size * config.kv_heads, config.context_length, config.head_dim)  # (B·Hkv, C, Dh)
    return tuple(jnp.zeros(shape, dtype) for _ in range(config.n_layers)), tuple(
        jnp.zeros(shape, dtype) for _ in range(config.n_layers)
    )


def as_static_cache(config: ModelConfig, cache: Any, batch_size: int, dtype: Any) -> StaticKVCache:
    """``cache`` as a StaticKVCache, checked against the call (a growing KVCache is copied into buffers)."""
    if isinstance(cache, KVCache):
        if cache.length == 0 or all(k is None for k in cache.keys):
            return StaticKVCache(config, batch_size, pad=getattr(cache, "pad", None))  # a PaddedKVCache keeps its padding
        expected = (batch_size, config.kv_heads, cache.length, config.head_dim)
        layers = []
        for name, arrays in (("keys", cache.keys), ("values", cache.values)):
            if len(arrays) != config.n_layers:
                raise ShapeError(f"model_forward: cache.{name} has {len(arrays)} layers, expected n_layers = {config.n_layers}")
            for i, a in enumerate(arrays):
                if not isinstance(a, jax.Array) or tuple(a.shape) != expected:
                    got = type(a).__name__ if not isinstance(a, jax.Array) else fmt_shape(a.shape)
                    raise ShapeError(
                        f"model_forward: cache.{name}[{i}] is {got}, expected a JAX array (B, Hkv, S, Dh) = {fmt_shape(expected)}"
                    )
            B_Hkv = batch_size * config.kv_heads
            empty = jnp.zeros((B_Hkv, config.context_length, config.head_dim), dtype)  # (B·Hkv, C, Dh)
            layers.append(
                tuple(
                    lax.dynamic_update_slice(empty, a.astype(dtype).reshape(B_Hkv, cache.length, config.head_dim), (0, 0, 0))
                    for a in arrays
                )
            )
        storage = _CacheStorage(*layers)
        return StaticKVCache(config, batch_size, cache.length, storage, storage.epoch, getattr(cache, "pad", None))
    if not isinstance(cache, StaticKVCache):
        raise ConfigError(
            f"model_forward: cache is a {type(cache).__name__}, expected the StaticKVCache from init_cache (or a KVCache)"
        )
    if cache.config != config:
        raise ConfigError(
            "model_forward: the cache was made for another ModelConfig; expected a cache from init_cache(config) with this config"
        )
    if cache._storage is not None:
        buffer = cache._storage.keys[0]
        expected = (batch_size * config.kv_heads, config.context_length, config.head_dim)
        if tuple(buffer.shape) != expected:
            raise ShapeError(
                f"model_forward: the cache holds buffers {fmt_shape(buffer.shape)} (B·Hkv, C, Dh) for batch size {cache.batch_size} "
                f"but ids have batch size {batch_size}; expected {fmt_shape(expected)} — the batch size is fixed by the first call"
            )
        if buffer.dtype != dtype:
            raise DTypeError(
                f"model_forward: the cache holds {buffer.dtype} but the parameters are {dtype}; "
                "expected one dtype (start a new cache with init_cache)"
            )
    return cache


def attention_window(filled: int, context_length: int) -> int:
    """Slots a step's attention reads: the power of two (at least 16) covering ``filled`` slots, at most the context."""
    return min(context_length, max(16, 1 << (filled - 1).bit_length()))


def bucket_length(length: int, start: int, context_length: int) -> int:
    """``length`` rounded up to a power of two when the padded chunk still fits the context, else ``length``."""
    padded = 1 << (length - 1).bit_length()
    return padded if start + padded <= context_length else length


def copy_buffers(storage: _CacheStorage) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return tuple(jnp.copy(k) for k in storage.keys), tuple(jnp.copy(v) for v in storage.values)
