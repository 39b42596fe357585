"""JaxBackend: the kernels of :mod:`.kernels`, the hooks of :mod:`.hooks`, the cache of :mod:`.cache`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError, DTypeError, OutOfRangeError

from .. import model
from ..base import Backend, count_traces
from . import hooks, kernels, sampling
from .cache import (
    StaticBuffers,
    StaticKVCache,
    _CacheStorage,
    as_static_cache,
    attention_window,
    bucket_length,
    copy_buffers,
    empty_buffers,
)
from .kernels import _INT32_RANGE, _compute_dtype, _is_tracer, _jax_dtype, _rotary_cos_sin, _x64_enabled


class JaxBackend(Backend):
    """Kernels in ``jax.numpy``; the shared model compiled with ``jax.jit``; a static KV cache."""

    name = "jax"
    array_type = jax.Array
    supports_autodiff = True
    rotary_positions_per_row = True

    def __init__(self, device: str | None = None, jit: bool = True, donate_cache: bool = True) -> None:
        if not isinstance(jit, bool) or not isinstance(donate_cache, bool):
            raise ConfigError(f"JaxBackend: jit = {jit!r}, donate_cache = {donate_cache!r}; expected True or False")
        self._device = self._find_device(device)
        self.device = self._device.platform if device is None else device
        self.jit = jit
        self.donate_cache = donate_cache
        self._fn = {**kernels.COMPILED, **sampling.COMPILED} if jit else {**kernels.EAGER, **sampling.EAGER}

    @staticmethod
    def _find_device(device: str | None) -> Any:
        if device is None:
            return jax.devices()[0]
        if not isinstance(device, str):
            raise ConfigError(f"JaxBackend: device = {device!r}, expected a JAX platform name such as 'cpu', 'gpu' or 'gpu:1'")
        platform, _, index = device.partition(":")
        try:
            devices = jax.devices(platform)
        except RuntimeError as error:
            raise ConfigError(
                f"JaxBackend: no JAX device of platform {platform!r} ({error}); "
                f"available: {sorted({d.platform for d in jax.devices()})}"
            ) from error
        if index and (not index.isdigit() or int(index) >= len(devices)):
            raise ConfigError(f"JaxBackend: device = {device!r}, expected an index in [0, {len(devices)}) after ':'")
        return devices[int(index) if index else 0]

    @property
    def dtypes(self) -> tuple[str, ...]:  # type: ignore[override]
        """Float dtypes available now: float64 only when JAX's 64-bit mode is on (read at call time)."""
        return ("float16", "bfloat16", "float32") + (("float64",) if _x64_enabled() else ())

    def dtype_hint(self, dtype: str) -> str | None:
        if dtype == "float64" and not _x64_enabled():
            return (
                ". JAX computes in 64 bits only in its 64-bit mode, which is off, and would otherwise silently use "
                "float32: set the environment variable JAX_ENABLE_X64=1 before starting Python, or call "
                'jax.config.update("jax_enable_x64", True) before creating any array'
            )
        return None

    @property
    def compiles(self) -> bool:  # type: ignore[override]
        return self.jit

    def compile_key(self) -> Any:
        """Backends on the same device with the same options share compiled programs."""
        return ("jax", str(self._device), self.jit, self.donate_cache)

    def compile(self, fn: Callable[..., Any], static: tuple[str, ...] = (), donate: tuple[str, ...] = ()) -> Callable[..., Any]:
        """``jax.jit`` (one jitted function per (fn, static, donate), shared by equal backends); ``jit=False``: fn itself."""
        return hooks.jit(fn, static, donate) if self.jit else fn

    def value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """``value_and_grad(fn)(params, *args)`` → (fn's scalar value, gradients with the keys of params)."""
        return hooks.value_and_grad(fn)

    def trace_counts(self) -> dict[str, int]:
        """How often each kernel and model function has been traced (each trace is a compilation), by name."""
        return {**kernels.TRACE_COUNTS, **super().trace_counts()}

    enable_persistent_cache = staticmethod(hooks.enable_persistent_cache)

    @classmethod
    def join_hosts(cls, timeout: float = 300.0) -> bool:
        """With ``JAX_COORDINATOR_ADDRESS`` (and ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) set: join the other hosts."""
        from .parallel import join_hosts_from_environment

        return join_hosts_from_environment(timeout)

    def data_parallel(self, devices: int | None = None, timeout: float = 300.0):
        """A ``jax.sharding.Mesh`` over ``devices`` local devices (None: all; every host's after
        ``jax.distributed.initialize``): the batch sharded, the parameters replicated, XLA all-reduces."""
        from .parallel import JaxDataParallel

        return JaxDataParallel(self, devices)

    # ---------------------------------------------------------------- conversion
    def _asarray(self, x, dtype):
        if isinstance(x, jax.Array):
            return x if dtype is None else x.astype(_jax_dtype(dtype))
        host = np.asarray(x)
        if dtype is None:
            dtype = "bool" if host.dtype == np.bool_ else str(host.dtype)
            if dtype == "float64" and not _x64_enabled():
                # JAX would silently round to float32: refuse instead, like an explicit request
                self.check_dtype_supported("float64")
        if dtype in ("int64", "int32") and not (_x64_enabled() and dtype == "int64") and host.size:
            if host.min() < _INT32_RANGE[0] or host.max() > _INT32_RANGE[1]:
                raise OutOfRangeError(
                    f"asarray: values in [{host.min()}, {host.max()}] do not fit int32, which is how JAX holds {dtype} "
                    f"without 64-bit mode; expected values in [{_INT32_RANGE[0]}, {_INT32_RANGE[1]}] (or set JAX_ENABLE_X64=1)"
                )
        target = (
            _jax_dtype(dtype) if dtype in ("float16", "bfloat16", "float32", "float64", "int32", "int64", "bool") else host.dtype
        )
        return jax.device_put(host.astype(target, copy=False), self._device)

    def _to_numpy(self, x):
        if _is_tracer(x):
            raise DTypeError(
                "to_numpy: the argument is a traced JAX value (inside jax.jit, grad or vmap), which has no data yet; "
                "expected a concrete array — pass integer inputs (ids, positions, targets) as arguments that are not traced"
            )
        return np.asarray(x)

    def _dtype_of(self, x):
        return str(x.dtype)

    def _reshape(self, x, shape):
        return jnp.reshape(x, shape)

    def _transpose(self, x, axes):
        return jnp.transpose(x, axes)

    def _concat(self, xs, axis):
        return jnp.concatenate(xs, axis=axis)

    def _kernel(self, name: str) -> Callable[..., Any]:
        """The kernel ``name``: jitted, or its plain function while a compiled program traces it
        (see :data:`.hooks.TRACING_COMPILED`)."""
        return kernels.EAGER[name] if hooks.TRACING_COMPILED.get() else self._fn[name]

    # ---------------------------------------------------------------- primitives
    def _softmax(self, x, axis):
        return self._kernel("softmax")(x, axis=axis)

    def _log_softmax(self, x, axis):
        return self._kernel("log_softmax")(x, axis=axis)

    def _relu(self, x):
        return self._kernel("relu")(x)

    def _gelu(self, x, approximate):
        return self._kernel("gelu")(x, approximate=approximate)

    def _silu(self, x):
        return self._kernel("silu")(x)

    def _linear(self, x, w, b):
        return self._kernel("linear")(x, w, b)

    def _layer_norm(self, x, w, b, eps):
        return self._kernel("layer_norm")(x, w, b, eps)

    def _rms_norm(self, x, w, eps):
        return self._kernel("rms_norm")(x, w, eps)

    def _embedding(self, table, ids):
        return self._kernel("embedding")(table, ids)

    def _rotary(self, x, positions, base):
        cos, sin = _rotary_cos_sin(positions, x.shape[-1], base, _compute_dtype(x.dtype))  # each (L, Dh/2)
        return self._kernel("rotary")(x, cos, sin)

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        return self._kernel("attention")(q, k, v, mask, scale=scale, causal=causal, need_weights=need_weights)

    def _cross_entropy(self, logits, targets, ignore_index):
        info = np.iinfo(np.dtype(str(targets.dtype)))
        # an ignore_index no target can hold ignores nothing (and must not overflow the comparison)
        ignore = ignore_index if info.min <= ignore_index <= info.max else None
        return self._kernel("cross_entropy")(logits, targets, ignore_index=ignore)

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        if _is_tracer(offset):  # inside a compiled step, after a static cache's traced start
            return kernels.sinusoidal_traced(length, dim, base, offset, _jax_dtype(dtype))
        table = kernels.sinusoidal_table_host(length, dim, base, int(offset))  # float64, like the reference
        return jax.device_put(table.astype(_jax_dtype(dtype)), self._device)

    def _sample(self, logits, u, temperature, top_k, top_p):
        return sampling.sample(self._fn, logits, u, temperature, top_k, top_p)

    # ---------------------------------------------------------------- the KV-cache hook
    def init_cache(self, config: ModelConfig, batch_size: int = 1) -> StaticKVCache:
        """An empty :class:`StaticKVCache`; its buffers are allocated by the first ``model_forward``."""
        if not isinstance(config, ModelConfig):
            raise ConfigError(
                f"init_cache: config is a {type(config).__name__}, expected a transformer_spec.spec.config.ModelConfig"
            )
        super().init_cache(config, batch_size)  # validates batch_size
        return StaticKVCache(config, batch_size)

    def init_padded_cache(self, config: ModelConfig, pad: tuple[int, ...]) -> StaticKVCache:
        """The static cache of a left-padded batch: per-row positions and padding masked, one compiled step."""
        super().init_padded_cache(config, pad)  # validates pad
        return StaticKVCache(config, len(pad), pad=tuple(int(p) for p in pad))

    def check_cache(self, cache: Any, where: str) -> None:
        if not isinstance(cache, StaticKVCache):  # a growing KVCache is copied into buffers by _model_forward
            super().check_cache(cache, where)

    def _model_forward(self, params, config, ids, cache):
        """The shared model through ``jax.jit`` with the static cache's buffers donated (updated in place)."""
        B, L = ids.shape
        dtype = params["wte"].dtype
        cache = as_static_cache(config, cache, B, dtype)
        storage = cache._storage
        traced = any(_is_tracer(p) for p in params.values())
        padded = L if traced or not self.jit else bucket_length(L, cache.length, config.context_length)
        if padded != L:
            # Every new L compiles the whole model again (seconds for GPT-2), so prompts and
            # chunks are padded at the END to a power of two: causal attention keeps the
            # padding from touching the real positions, and its keys land in slots past the
            # new length, which stay masked until later tokens overwrite them.
            ids = jax.device_put(np.pad(np.asarray(ids), ((0, 0), (0, padded - L))), self._device)  # (B, padded)
        if storage is None:
            storage = _CacheStorage(*empty_buffers(config, B, dtype))
        elif not (cache.is_newest() and self.donate_cache and not traced):
            # A branch off an older cache (or donation is off, or under autodiff): the
            # shared buffers must stay intact, so the step writes into a copy of them.
            storage = _CacheStorage(*copy_buffers(storage))
        pad = None if cache.pad is None else jnp.asarray(cache.pad, jnp.int32)  # (B,): a left-padded batch
        window = attention_window(cache.length + padded, config.context_length)
        start = jnp.asarray(cache.length, jnp.int32)
        buffers = StaticBuffers(storage.keys, storage.values, start, cache._storage is None, pad, window)
        # Donated: XLA writes the new keys into the same memory. Positions below
        # cache.length are never written again, so older caches keep their prefix.
        logits, buffers = self._forward_donating()(self.ops, params, config, ids, buffers)
        storage.keys, storage.values = buffers.keys, buffers.values
        storage.epoch += 1
        if padded != L:
            logits = logits[:, :L]  # (B, L, V)
        return logits, StaticKVCache(config, B, cache.length + L, storage, storage.epoch, cache.pad)

    def _forward_donating(self) -> Callable[..., Any]:
        forward = self.__dict__.get("_forward")
        if forward is None:
            counted = count_traces(self, "model_forward", model.model_forward)
            forward = self.__dict__["_forward"] = self.compile(counted, static=("ops", "config"), donate=("cache",))
        return forward
