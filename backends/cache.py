"""KV caches: where the keys and values of past positions live between calls.

The model (:mod:`transformer_spec.backends.model`) talks to a cache through
three methods, so a backend can choose its storage without touching the model:

``positions(ops, L)``
    the positions of the next ``L`` tokens, a native int array ``(L,)`` — or
    ``(B, L)`` when each row has its own (a left-padded batch);
``attend(ops, layer, k, v)``
    store this chunk's keys and values ``(B, Hkv, L, Dh)`` of ``layer`` and
    return ``(cache, keys, values, mask, causal)``: the updated cache, the keys
    and values attention should read ``(B, Hkv, S, Dh)``, and the ``mask`` /
    ``causal`` arguments of the attention primitive that hide what a query
    must not see;
``advance(L)``
    the cache after all layers have stored ``L`` more positions.

Caches are values: each method returns a new cache and never changes the one it
was called on, so a compiled function can take a cache in and hand a new one
back. Four are provided:

* :class:`KVCache` — a growing list per layer (``concat`` of old and new keys):
  any backend, any length; the default of :meth:`Backend.init_cache`.
* :class:`PaddedKVCache` — the growing cache of a left-padded batch: per-row
  positions ``(B, L)`` and a padding mask (batched generation).
* :class:`NoCache` — keeps nothing: training and scoring, where each batch is
  one whole chunk.
* a preallocated buffer updated in place — the JAX backend's
  ``StaticKVCache``, whose shapes do not change from step to step, so one
  compiled decoding step serves them all.

``length`` is the number of positions stored (the position the next token
gets); a static cache may hold it as a traced scalar.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

CACHE_METHODS = ("positions", "attend", "advance")


def arange_positions(ops: Any, start: int, length: int) -> Any:
    """The int64 positions start .. start + length - 1 as a native array (L,)."""
    return ops.asarray(np.arange(start, start + length), "int64")


@dataclass
class KVCache:
    """Keys and values of every layer for the positions seen so far, grown by concatenation.

    ``keys[i]`` and ``values[i]`` are native arrays ``(B, Hkv, S, Dh)`` (``None``
    before the first call); ``length`` is S, the position the next token gets.
    """

    keys: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    length: int = 0

    def positions(self, ops: Any, L: int) -> Any:
        return arange_positions(ops, self.length, L)

    def attend(self, ops: Any, layer: int, k: Any, v: Any) -> tuple[KVCache, Any, Any, Any, bool]:
        if self.keys[layer] is not None:
            k = ops.concat([self.keys[layer], k], 2)  # (B, Hkv, S, Dh)
            v = ops.concat([self.values[layer], v], 2)  # (B, Hkv, S, Dh)
        keys, values = list(self.keys), list(self.values)
        keys[layer], values[layer] = k, v
        # causal attention aligns the L queries with the LAST L keys: exactly the cached prefix + this chunk
        return replace(self, keys=keys, values=values), k, v, None, True

    def advance(self, L: int) -> KVCache:
        return replace(self, length=self.length + L)


@dataclass
class PaddedKVCache(KVCache):
    """A growing cache for a LEFT-padded batch: row b's first ``pad[b]`` slots hold padding, not tokens.

    Batched generation puts prompts of different lengths in one ``(B, L)`` array
    by padding each on the left, so that every row's newest token is in the last
    column. Two things make each row compute exactly what it would alone:

    * ``positions`` are per row, ``(B, L)``: slot s of row b is position
      ``s - pad[b]`` (padding slots get 0; nothing reads them);
    * ``attend`` returns the mask ``(B, 1, 1, S)``, True where slot s is a real
      token of that row (``s >= pad[b]``), with ``causal`` still True: a key is
      seen iff it is a real token at or before the query. A padding query sees no
      key at all, and attention gives such a row zero output.

    ``pad`` is a tuple of host ints (the pattern is known before the first call).
    """

    pad: tuple[int, ...] = ()

    @classmethod
    def empty(cls, n_layers: int, pad: tuple[int, ...]) -> PaddedKVCache:
        return cls(keys=[None] * n_layers, values=[None] * n_layers, length=0, pad=tuple(int(p) for p in pad))

    def positions(self, ops: Any, L: int) -> Any:
        slots = np.arange(self.length, self.length + L)[None, :]  # (1, L)
        return ops.asarray(np.maximum(slots - np.asarray(self.pad)[:, None], 0), "int64")  # (B, L)

    def attend(self, ops: Any, layer: int, k: Any, v: Any) -> tuple[PaddedKVCache, Any, Any, Any, bool]:
        cache, keys, values, _, causal = super().attend(ops, layer, k, v)  # keys, values (B, Hkv, S, Dh)
        real = np.arange(keys.shape[2])[None, :] >= np.asarray(self.pad)[:, None]  # (B, S)
        return cache, keys, values, ops.asarray(real[:, None, None, :], "bool"), causal  # mask (B, 1, 1, S)


@dataclass(frozen=True)
class NoCache:
    """A cache that keeps nothing: attention sees only the chunk itself (training, scoring)."""

    length: int = 0

    def positions(self, ops: Any, L: int) -> Any:
        return arange_positions(ops, 0, L)

    def attend(self, ops: Any, layer: int, k: Any, v: Any) -> tuple[NoCache, Any, Any, Any, bool]:
        return self, k, v, None, True

    def advance(self, L: int) -> NoCache:
        return self


def check_cache(cache: Any, where: str) -> None:
    """Raise a clear error unless ``cache`` has the methods the model calls (a hook returning the wrong object)."""
    missing = [name for name in CACHE_METHODS if not callable(getattr(cache, name, None))]
    if missing or not hasattr(cache, "length"):
        from transformer_spec.spec.errors import ConfigError

        lacks = missing + ([] if hasattr(cache, "length") else ["length"])
        raise ConfigError(
            f"{where} returned a {type(cache).__name__}, which lacks {', '.join(lacks)}; expected a KV cache with "
            f"length, positions(ops, L), attend(ops, layer, k, v) and advance(L) (see transformer_spec.backends.cache)"
        )
