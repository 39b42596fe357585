"""The JAX backend's sampler: :mod:`transformer_spec.spec.sampling` step for step, in float64.

In 64-bit mode on the device: the comparison runs in the probabilities' dtype,
so u is rounded *down* and top_p *up* to it first, which gives exactly the
reference's answers. Without 64-bit mode, on the host with the NumPy
reference's steps (one row of V logits is cheap to copy).
"""

from __future__ import annotations

import functools
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from .kernels import _compute_dtype, _jit, _x64_enabled


def _inverse_cdf(kept, u_floor):
    """Smallest index whose cumulative kept probability (vocabulary order) exceeds u; else the last kept index."""
    cumulative = jnp.cumsum(kept / jnp.sum(kept))
    exceeds = cumulative > u_floor
    last_kept = jnp.max(jnp.where(kept > 0, jnp.arange(kept.shape[0]), -1))  # rounding left the total <= u
    return jnp.where(jnp.any(exceeds), jnp.argmax(exceeds), last_kept)


def _first_reaching(mass, threshold, count):
    """Length of the smallest prefix whose mass reaches ``threshold`` (``count`` when none does)."""
    reached = mass >= threshold
    return jnp.where(jnp.any(reached), jnp.argmax(reached) + 1, count)


def _sample_probabilities(logits, temperature):
    z = logits.astype(_compute_dtype(logits.dtype))
    z = (z - jnp.max(z)) / temperature  # shift first: logits / T can overflow, shifted scores are <= 0 and cannot
    e = jnp.exp(z - jnp.max(z))
    return e / jnp.sum(e)  # (V,)


def _sample_plain_impl(logits, u_floor, temperature):
    """No top-k and no top-p: every token is kept."""
    return _inverse_cdf(_sample_probabilities(logits, temperature), u_floor)


def _sample_sorted_impl(logits, u_floor, temperature, top_k, top_p_ceil):
    """Top-k then top-p with a full stable sort; ``top_k`` and ``top_p`` are traced (no recompiles)."""
    p = _sample_probabilities(logits, temperature)  # (V,)
    V = p.shape[0]
    order = jnp.argsort(-p, stable=True)  # most probable first, ties by lower index
    sorted_p = p[order]  # (V,)
    rank = jnp.arange(V)
    in_top_k = rank < top_k
    top_k_p = jnp.where(in_top_k, sorted_p, 0)
    mass = jnp.cumsum(top_k_p) / jnp.sum(top_k_p)  # (V,) normalised over the top-k set
    cut = jnp.minimum(_first_reaching(jnp.where(in_top_k, mass, -jnp.inf), top_p_ceil, top_k), top_k)
    kept = jnp.zeros_like(p).at[order].set(jnp.where(rank < cut, sorted_p, 0))  # back in vocabulary order
    return _inverse_cdf(kept, u_floor)


def _sample_candidates_impl(logits, u_floor, temperature, top_p_ceil, k, normalize_over_candidates):
    """Top-p among the ``k`` most probable tokens from ``lax.top_k`` (a partial sort), ``k`` static.

    With ``normalize_over_candidates`` the ``k`` candidates are the top-k set and
    top-p's mass is normalised over them; without, ``k`` is only a search window
    for top-p over the whole vocabulary, and the caller checks ``complete``.
    Returns (token, complete): complete is False when top-p's threshold was not
    reached inside the window, so the answer needs the full sort.
    """
    p = _sample_probabilities(logits, temperature)  # (V,)
    values, indices = lax.top_k(p, k)  # (k,) most probable first, ties by lower index
    total = jnp.sum(values) if normalize_over_candidates else jnp.sum(p)
    mass = jnp.cumsum(values) / total  # (k,)
    complete = jnp.any(mass >= top_p_ceil) | normalize_over_candidates
    cut = _first_reaching(mass, top_p_ceil, k)
    kept = jnp.where(jnp.arange(k) < cut, values, 0)  # (k,)
    by_index = jnp.argsort(indices)  # the candidates in vocabulary order
    token = indices[by_index][_inverse_cdf(kept[by_index], u_floor)]
    return token, complete


# Vocabularies at least this large use lax.top_k (a partial sort) for top-k / top-p:
# a full stable sort of 50k probabilities costs ~20 ms on a CPU, top_k(50) ~0.2 ms.
# Smaller vocabularies sort fully, with top_k traced, so new k values do not recompile.
PARTIAL_SORT_MIN_VOCAB = 4096
# Without top_k, top-p first looks for its threshold among this many candidates;
# only a flat distribution that needs more falls back to the full sort.
TOP_P_WINDOW = 1024


def _round_toward(value: float, dtype: np.dtype, direction: float) -> Any:
    """``value`` rounded to ``dtype`` toward ``direction`` (-inf: largest not above; +inf: smallest not below)."""
    rounded = dtype.type(value)
    if (direction < 0 and float(rounded) > value) or (direction > 0 and float(rounded) < value):
        rounded = np.nextafter(rounded, dtype.type(direction))
    return rounded


COMPILED = {
    "sample_plain": _jit("sample_plain", _sample_plain_impl),
    "sample_sorted": _jit("sample_sorted", _sample_sorted_impl),
    "sample_candidates": _jit("sample_candidates", _sample_candidates_impl, static_argnames=("k", "normalize_over_candidates")),
}
EAGER = {
    "sample_plain": _sample_plain_impl,
    "sample_sorted": _sample_sorted_impl,
    "sample_candidates": _sample_candidates_impl,
}


@functools.cache
def _host_sampler():
    """The NumPy reference, for sampling without 64-bit mode (made on first use: importing builds nothing)."""
    from ..numpy import NumpyBackend

    return NumpyBackend()


def sample(fn: dict, logits: Any, u: float, temperature: float, top_k: int | None, top_p: float | None) -> int:
    """The token for ``u`` (see the module docstring); ``fn`` holds the compiled (or eager) kernels and sampler pieces."""
    if temperature == 0:
        return int(fn["argmax"](logits))
    if not _x64_enabled():
        return _host_sampler()._sample(np.asarray(logits), u, temperature, top_k, top_p)
    V = logits.shape[0]
    compute = np.dtype(_compute_dtype(logits.dtype))
    u_floor = _round_toward(u, compute, -np.inf)
    temperature_c = compute.type(temperature)  # round to nearest, like np.asarray(T, dtype)
    if top_k is None and top_p is None:
        return int(fn["sample_plain"](logits, u_floor, temperature_c))
    top_p_ceil = compute.type(np.inf) if top_p is None else _round_toward(top_p, compute, np.inf)
    k = V if top_k is None else min(top_k, V)
    if V >= PARTIAL_SORT_MIN_VOCAB and (k < V or top_p is not None):
        window = k if k < V else min(TOP_P_WINDOW, V)
        token, complete = fn["sample_candidates"](
            logits, u_floor, temperature_c, top_p_ceil, k=window, normalize_over_candidates=k < V
        )
        if bool(complete):
            return int(token)
    return int(fn["sample_sorted"](logits, u_floor, temperature_c, np.int32(k), top_p_ceil))
