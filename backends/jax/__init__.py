"""The JAX backend: every kernel in ``jax.numpy``, composites compiled with ``jax.jit``.

How it differs from the NumPy reference, and why
------------------------------------------------
* **The model, compiled.** The model written once in
  :mod:`transformer_spec.backends.model` runs through the ``compile`` hook,
  ``jax.jit``, with the kernel namespace and the config as static arguments: one
  XLA program per (config, shapes), shared by every JaxBackend on the same
  device.
* **Compiled kernels.** Each kernel is one ``jax.jit`` function shared by every
  instance, so a new input shape costs one compilation of the whole kernel
  rather than one per ``jax.numpy`` operation inside it (see the pitfalls in
  ``DESIGN.md``). Option values that only change numbers (``eps``, ``scale``,
  ``temperature``, ``u``) are traced, not static, so drawing new values does not
  recompile; options that change the program (``axis``, ``causal``,
  ``approximate``, the model config) are static.
* **A static-shape KV cache.** :class:`StaticKVCache` preallocates keys and
  values for the whole context, ``(B·H, C, Dh)`` per layer, and each decoding step
  writes its new keys with ``lax.dynamic_update_slice`` at the traced position
  ``start``; keys beyond the current length are masked. Every step therefore
  has the same shapes and runs one already-compiled function. The step's input
  buffers are *donated* (updated in place) when the cache passed in is the
  newest one made from its buffers; an older cache stays valid (see
  :class:`StaticKVCache`). A decoding step is one call of one compiled
  function; a prompt (or chunk) of a new length L compiles the model once more,
  so L > 1 is padded at the end to a power of two (causal attention keeps the
  padding from touching the real positions) and nearby lengths share a program.
* **Half precision.** float16 / bfloat16 inputs are stored in their dtype but
  reductions (softmax, norms, the loss, the sampler's probabilities) are
  computed in float32 and rounded once at the end: closer to the float64
  reference than computing in half precision throughout.
* **Positions on the host in float64.** Sinusoidal tables and rotary angles are
  computed in NumPy float64 (like the reference) and rounded once to the
  compute dtype; the compiled model slices rows of those tables.
* **float64** needs JAX's 64-bit mode (``JAX_ENABLE_X64=1``). Without it the
  backend refuses float64 with a message saying so, instead of JAX's default of
  silently computing in float32. Integer data asked for as int64 is held as
  int32 in 32-bit mode (values are checked to fit).

Options
-------
``JaxBackend(device=None, jit=True, donate_cache=True)``: ``device`` is a JAX
platform ("cpu", "gpu", "tpu", optionally ":index"); ``jit=False`` runs the same
functions op by op (the eager path, for checking compiled == eager);
``donate_cache=False`` never updates cache buffers in place.

``enable_persistent_cache(directory)`` (default ``$TSPEC_JAX_CACHE_DIR``) turns
on JAX's persistent compilation cache, so a second run (of the conformance
suite, say) loads its compiled programs instead of compiling them again. It
changes JAX's process-wide settings, so nothing calls it on import.
"""

from __future__ import annotations

from .backend import JaxBackend
from .cache import StaticKVCache
from .hooks import enable_persistent_cache
from .kernels import TRACE_COUNTS

__all__ = ["JaxBackend", "StaticKVCache", "TRACE_COUNTS", "enable_persistent_cache"]
