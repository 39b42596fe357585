"""The JAX backend's hooks: compilation (``jax.jit``, shared between equal backends), autodiff, the persistent cache."""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError

CACHE_DIR_VARIABLE = "TSPEC_JAX_CACHE_DIR"


def enable_persistent_cache(directory: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``directory`` (default ``$TSPEC_JAX_CACHE_DIR``).

    Returns the folder used, or None when neither is given (the cache stays off).
    Every compilation is cached, however short: the suite compiles hundreds of
    small kernels, each well under JAX's default one-second threshold. This
    changes JAX's process-wide configuration, so nothing calls it on import: the
    caller (the conformance runner, a script) decides.
    """
    directory = directory or os.environ.get(CACHE_DIR_VARIABLE)
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


# jax.jit caches compiled programs per jitted function object and static arguments. One jitted function
# per (function, static, donated) shared by every backend: with the kernel namespace a static argument
# that compares equal between equal backends, a second JaxBackend reuses the first one's programs.
_JITTED: dict[tuple[Any, ...], Callable[..., Any]] = {}


# True while jax.jit traces a compiled function: the kernels it calls are then traced inline (their plain
# functions), since a nested jit would only add a function to lower and a trace to cache — about a third
# of a composite's compile time. Eager autodiff (value_and_grad outside jit) still calls the jitted kernels.
TRACING_COMPILED = contextvars.ContextVar("TRACING_COMPILED", default=False)


def jit(fn: Callable[..., Any], static: tuple[str, ...], donate: tuple[str, ...]) -> Callable[..., Any]:
    key = (getattr(fn, "__wrapped__", fn), tuple(static), tuple(donate))
    jitted = _JITTED.get(key)
    if jitted is None:

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            token = TRACING_COMPILED.set(True)
            try:
                return fn(*args, **kwargs)
            finally:
                TRACING_COMPILED.reset(token)

        jitted = _JITTED[key] = jax.jit(traced, static_argnames=tuple(static), donate_argnames=tuple(donate))
    return jitted


def value_and_grad(fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """``value_and_grad(fn)(params, *args)`` → (fn's scalar value, gradients with the keys of params)."""
    if not callable(fn):
        raise ConfigError(f"value_and_grad: fn is a {type(fn).__name__}, expected a function (params, *args) -> scalar")
    differentiate = jax.value_and_grad(fn)

    def value_and_gradient(params: dict[str, Any], *args: Any) -> tuple[Any, dict[str, Any]]:
        if not isinstance(params, dict):
            raise ConfigError(f"value_and_grad: params is a {type(params).__name__}, expected a dict from name to float array")
        for name, p in params.items():
            if not isinstance(p, jax.Array):
                raise DTypeError(
                    f"value_and_grad: params[{name!r}] is a {type(p).__name__}, expected a JAX array (convert with asarray)"
                )
            if not jnp.issubdtype(p.dtype, jnp.floating):
                raise DTypeError(
                    f"value_and_grad: params[{name!r}] has dtype {p.dtype}, expected a float dtype (gradients need floats)"
                )
        try:
            return differentiate(params, *args)
        except TypeError as error:
            if "scalar" in str(error):
                raise ShapeError(
                    f"value_and_grad: fn must return a scalar (0-d array), e.g. a mean loss; JAX says: {error}"
                ) from error
            raise

    return value_and_gradient
