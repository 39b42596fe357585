"""The PyTorch backend: every kernel on PyTorch's own operators, on any device.

Each kernel calls the PyTorch operator that computes the primitive
(``torch.softmax``, ``F.gelu``, ``F.layer_norm``, ``F.scaled_dot_product_attention``,
``F.cross_entropy`` ...) and adds only what the contract asks beyond it:

* ``attention`` has two paths side by side: the fused one
  (``F.scaled_dot_product_attention``, used when the caller does not need the
  weights, as the model does) and the plain one (scores, masked softmax,
  weights @ v), which returns the weights. The tests check one against the other.
  Both align a causal mask to the *last* keys (so it works with a KV cache) and
  give a query with no allowed key zero weights and a zero output.
* ``cross_entropy`` of all-ignored targets is 0 (PyTorch's mean gives NaN).
* ``sample`` follows :mod:`transformer_spec.spec.sampling` step by step, in float64 on the host.

``model_forward`` runs under ``torch.inference_mode()`` unless a gradient is
needed (a parameter requires grad, or it is called inside ``value_and_grad``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transformer_spec.spec.errors import ConfigError, DTypeError, ShapeError

from ..base import Backend, KVCache

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_DTYPE_NAMES: dict[torch.dtype, str] = {dtype: name for name, dtype in _TORCH_DTYPES.items()}
_HAS_RMS_NORM = hasattr(F, "rms_norm")  # added in torch 2.4


class DeviceUnavailableError(ConfigError):
    """The requested torch device does not exist or cannot be used on this machine."""


def _resolve_device(device: Any) -> torch.device:
    """Check that ``device`` names a torch device this machine can allocate on; raise a clear error if not."""
    if not isinstance(device, (str, torch.device)):
        raise DeviceUnavailableError(
            f"TorchBackend: device = {device!r}, expected a string such as 'cpu', 'cuda', 'cuda:1' or 'mps'"
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise DeviceUnavailableError(
            f"TorchBackend: device = {device!r} is not a torch device name ({error}); expected 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"TorchBackend: {device!r} requested but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use device='cpu' or install a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeviceUnavailableError(
                f"TorchBackend: {device!r} requested but this machine has {count} CUDA device(s); expected an index in [0, {count})"
            )
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError(
                f"TorchBackend: {device!r} requested but torch.backends.mps.is_available() is False; use device='cpu'"
            )
    elif resolved.type != "cpu":
        try:  # any other accelerator (xpu, ...): the only portable test is to allocate on it
            torch.empty(0, device=resolved)
        except Exception as error:  # torch raises RuntimeError, AssertionError, ... depending on the build
            raise DeviceUnavailableError(
                f"TorchBackend: device {device!r} cannot be used here ({type(error).__name__}: {error}); use device='cpu'"
            ) from None
    return resolved


class TorchBackend(Backend):
    name = "torch"
    array_type = torch.Tensor
    dtypes = ("float16", "bfloat16", "float32", "float64")
    supports_autodiff = True

    def __init__(self, device: str = "cpu"):
        self.torch_device = _resolve_device(device)
        self.device = str(self.torch_device)
        if self.torch_device.type == "mps":
            # Metal has no float64: say so up front rather than fail inside a kernel.
            self.dtypes = ("float16", "bfloat16", "float32")
        # TF32 rounds float32 matmul inputs to 10 mantissa bits on Ampere+ GPUs, far outside the float32 tolerance row.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # Trigonometric tables are computed in float64 (like the reference); Metal cannot, so they are built on the host there.
        self._table_device = torch.device("cpu") if self.torch_device.type == "mps" else self.torch_device
        self._differentiating = 0  # > 0 while value_and_grad is running fn: model_forward must keep the graph
        self._forward_depth = 0  # > 0 while model_forward runs: rotary tables may be reused across layers
        self._rotary_tables: tuple[Any, ...] | None = None  # (positions, (Dh, base, dtype), (cos, sin)) of this forward

    def dtype_hint(self, dtype: str) -> str | None:
        if dtype == "float64" and self.torch_device.type == "mps":
            return "; the MPS device has no float64: use float32, or device='cpu' for float64"
        return None

    # ---------------------------------------------------------------- conversion
    def _asarray(self, x, dtype):
        torch_dtype = None if dtype is None else _TORCH_DTYPES[dtype]
        if isinstance(x, torch.Tensor):
            return x.to(device=self.torch_device, dtype=torch_dtype)
        array = np.asarray(x)  # nested lists and Python scalars take NumPy's dtypes (float64, int64), like the reference
        if array.dtype.kind not in "biuf":
            raise DTypeError(f"asarray: argument 'x' has NumPy dtype {array.dtype}, expected booleans, integers or floats")
        try:
            tensor = torch.tensor(array)  # a copy on the host: never aliases (or warns about) a read-only NumPy buffer
        except TypeError as error:  # e.g. uint16 on older torch
            raise DTypeError(
                f"asarray: NumPy dtype {array.dtype} has no torch equivalent ({error}); convert to int64 or float32 first"
            ) from None
        return tensor.to(device=self.torch_device, dtype=torch_dtype)

    def _to_numpy(self, x):
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.to(torch.float32)  # NumPy has no bfloat16; float32 holds every bfloat16 value exactly
        return x.cpu().numpy()

    def _dtype_of(self, x):
        name = _DTYPE_NAMES.get(x.dtype)
        return name if name is not None else str(x.dtype).removeprefix("torch.")

    def _reshape(self, x, shape):
        return x.reshape(shape)

    def _transpose(self, x, axes):
        return x.permute(axes)

    def _concat(self, xs, axis):
        return torch.cat(xs, dim=axis)

    # ---------------------------------------------------------------- primitives
    def _softmax(self, x, axis):
        return torch.softmax(x, dim=axis)

    def _log_softmax(self, x, axis):
        return torch.log_softmax(x, dim=axis)

    def _relu(self, x):
        return F.relu(x)

    def _gelu(self, x, approximate):
        return F.gelu(x, approximate="tanh" if approximate else "none")  # explicit: torch's default is the erf form

    def _silu(self, x):
        return F.silu(x)

    def _linear(self, x, w, b):
        # Our w is (Din, Dout); F.linear wants nn.Linear's (Dout, Din). w.mT is a view, and F.linear
        # transposes it back inside the GEMM call, so no copy is made.
        return F.linear(x, w.mT, b)  # (..., Dout)

    def _layer_norm(self, x, w, b, eps):
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)

    def _rms_norm(self, x, w, eps):
        if _HAS_RMS_NORM:
            return F.rms_norm(x, (x.shape[-1],), w, eps)
        # torch < 2.4 has no F.rms_norm: the formula, with the mean of squares over the last axis
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w

    def _embedding(self, table, ids):
        return F.embedding(ids, table)  # (..., D); the range of ids was checked by the caller

    def _sinusoidal_encoding(self, length, dim, base, offset, dtype):
        positions = torch.arange(offset, offset + length, dtype=torch.float64, device=self._table_device)[:, None]  # (length, 1)
        frequencies = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=self._table_device) / dim)  # (dim/2,)
        angles = positions * frequencies  # (length, dim/2)
        # Interleave: column 2i is sin, column 2i+1 is cos of the same angle.
        table = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (length, dim/2, 2)
        table = table.reshape(length, dim)  # (length, dim)
        return table.to(device=self.torch_device, dtype=_TORCH_DTYPES[dtype])

    def _rotary_cos_sin(self, positions, head_dim, base, dtype):
        """cos and sin of position × frequency, each (L, Dh/2) in ``dtype``.

        Inside ``model_forward`` every layer rotates q and k with the same positions tensor, which the base
        class made for this one forward and nobody modifies: the tables are computed once and reused.
        """
        key = (head_dim, base, dtype)
        cached = self._rotary_tables
        if self._forward_depth and cached is not None and cached[0] is positions and cached[1] == key:
            return cached[2]
        half = head_dim // 2
        frequencies = base ** (-torch.arange(half, dtype=torch.float64, device=self._table_device) * 2 / head_dim)  # (Dh/2,)
        angles = positions.to(device=self._table_device, dtype=torch.float64)[:, None] * frequencies  # (L, Dh/2)
        tables = (
            torch.cos(angles).to(device=self.torch_device, dtype=dtype),  # (L, Dh/2)
            torch.sin(angles).to(device=self.torch_device, dtype=dtype),
        )  # (L, Dh/2)
        if self._forward_depth:
            self._rotary_tables = (positions, key, tables)  # holding positions keeps its id from being reused
        return tables

    def _rotary(self, x, positions, base):
        half = x.shape[-1] // 2
        cos, sin = self._rotary_cos_sin(positions, x.shape[-1], base, x.dtype)  # each (L, Dh/2)
        x1, x2 = x[..., :half], x[..., half:]  # the pairs (i, i + Dh/2), each (..., L, Dh/2)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)  # (..., L, Dh)

    # ---------------------------------------------------------------- attention
    def _allowed_keys(self, mask, causal, L, S):
        """The boolean (L, S) or (..., L, S) mask of allowed pairs, or None when every key is allowed."""
        allowed = mask
        if causal and L > 1:  # with L == 1 the only query is the last position: it sees every key
            # query i sees key j iff j <= i + S - L: the lower triangle shifted right by S - L
            triangle = torch.ones((L, S), dtype=torch.bool, device=self.torch_device).tril_(diagonal=S - L)  # (L, S)
            allowed = triangle if allowed is None else allowed & triangle
        return allowed

    def _attention(self, q, k, v, mask, causal, scale, need_weights):
        if need_weights:
            return self._attention_plain(q, k, v, mask, causal, scale)
        return self._attention_fused(q, k, v, mask, causal, scale), None

    def _attention_fused(self, q, k, v, mask, causal, scale):
        """``F.scaled_dot_product_attention``; the output only. Agrees with :meth:`_attention_plain`."""
        L, S = q.shape[-2], k.shape[-2]
        if mask is None and causal and L == S:
            # Without a cache the bottom-right alignment is the top-left one SDPA implements natively.
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)  # (..., L, Dv)
        # SDPA's is_causal aligns to the top-left (query i sees keys j <= i), wrong when L < S: pass the mask instead.
        allowed = self._allowed_keys(mask, causal, L, S)
        if allowed is None or mask is None:  # a causal mask alone leaves key 0 to every query: no empty row
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)  # (..., L, Dv)
        # A query with no allowed key: SDPA gives NaN there on some kernels. Let such rows see every key (so the
        # softmax and its gradient stay finite), then zero their output, as the spec says.
        has_key = allowed.any(dim=-1, keepdim=True)  # (..., L, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~has_key, scale=scale)  # (..., L, Dv)
        return out.masked_fill(~has_key, 0)

    def _attention_plain(self, q, k, v, mask, causal, scale):
        """Scores, masked softmax, weights @ v → (out, weights): the readable path, which returns the weights."""
        L, S = q.shape[-2], k.shape[-2]
        scores = torch.matmul(q, k.mT) * scale  # (..., L, S)
        allowed = self._allowed_keys(mask, causal, L, S)
        if allowed is None:
            weights = torch.softmax(scores, dim=-1)  # (..., L, S)
        else:
            # As in the fused path: rows with no allowed key are unmasked for the softmax, then zeroed.
            has_key = allowed.any(dim=-1, keepdim=True)  # (..., L, 1)
            scores = scores.masked_fill(~(allowed | ~has_key), -math.inf)
            weights = torch.softmax(scores, dim=-1).masked_fill(~has_key, 0)  # (..., L, S)
        return torch.matmul(weights, v), weights  # (..., L, Dv), (..., L, S)

    # ---------------------------------------------------------------- loss
    def _cross_entropy(self, logits, targets, ignore_index):
        flat_logits = logits.reshape(-1, logits.shape[-1])  # (N, V)
        flat_targets = targets.reshape(-1).long()  # (N,); F.cross_entropy takes int64 class ids
        # Sum, then divide by max(count, 1): all-ignored gives 0 with a zero gradient, where reduction="mean" gives NaN.
        total = F.cross_entropy(flat_logits, flat_targets, ignore_index=ignore_index, reduction="sum")
        count = (flat_targets != ignore_index).sum().clamp_min(1)
        # A 16-bit float cannot hold every count (bfloat16 stops at 256): divide in float32, then round once.
        wide = torch.float32 if total.dtype in (torch.float16, torch.bfloat16) else total.dtype
        return (total.to(wide) / count.to(wide)).to(total.dtype)

    # ---------------------------------------------------------------- sampling
    _TOP_P_FIRST_GUESS = 256  # top-p without top-k: how many of the most probable tokens to rank first (grows x4)

    def _sample(self, logits, u, temperature, top_k, top_p):
        if temperature == 0:
            return int(torch.argmax(logits))  # torch.argmax returns the first maximum: lowest index on ties
        # The sampler needs one Python int, so the V scores come to the host anyway; float64 there keeps the
        # cumulative sums as close to the float64 reference as possible.
        z = logits.detach().to(device="cpu", dtype=torch.float64)  # (V,)
        # (z - max) / T equals z / T up to a constant (softmax ignores it) but cannot overflow for a small T.
        p = torch.softmax((z - z.max()) / temperature, dim=-1)  # (V,)
        V = p.shape[0]
        if top_k is None and top_p is None:
            kept = p
        else:
            if top_k is not None:
                order = _most_probable(p, top_k)  # (min(k, V),) most probable first, ties by lower index
                mass = torch.cumsum(p[order], dim=0) / p[order].sum()  # renormalised over the top-k
            else:
                # Rank only as many tokens as the top-p prefix needs: a few hundred for a peaked distribution,
                # instead of a stable sort of the whole vocabulary on every decoding step.
                ranked = min(V, self._TOP_P_FIRST_GUESS)
                while True:
                    order = _most_probable(p, ranked)  # (ranked,)
                    # With every token ranked, normalise like the reference (sum in sorted order); before, by the total.
                    mass = torch.cumsum(p[order], dim=0) / (p[order].sum() if ranked == V else p.sum())
                    if ranked == V or bool(mass[-1] >= top_p):
                        break
                    ranked = min(V, 4 * ranked)
            if top_p is not None:
                crossing = int(torch.searchsorted(mass, torch.tensor([top_p], dtype=torch.float64), side="left"))
                order = order[: crossing + 1]  # keep the token that crosses top_p
            kept = torch.zeros_like(p)
            kept[order] = p[order]
        cumulative = torch.cumsum(kept / kept.sum(), dim=0)  # (V,), in vocabulary order
        index = int(
            torch.searchsorted(cumulative, torch.tensor([u], dtype=torch.float64), side="right")
        )  # first i with cumulative[i] > u
        if index < V:
            return index
        return int(torch.nonzero(kept).max())  # rounding left the total <= u: the last token that can be drawn

    # ---------------------------------------------------------------- composites
    def model_forward(self, params: dict[str, Any], config, ids: Any, cache: KVCache | None = None) -> tuple[Any, KVCache]:
        """The base forward (with its checks), under ``torch.inference_mode()`` unless a gradient is needed.

        Inference mode skips autograd's bookkeeping. The tensors it makes (logits, the cache) cannot be saved for
        a later backward pass: a training step must run its forward with parameters that require grad (then this
        never enters inference mode), or inside ``value_and_grad``.
        """
        needs_graph = torch.is_grad_enabled() and (self._differentiating > 0 or _any_requires_grad(params))
        self._forward_depth += 1
        try:
            if needs_graph:
                return super().model_forward(params, config, ids, cache)
            with torch.inference_mode():
                return super().model_forward(params, config, ids, cache)
        finally:
            self._forward_depth -= 1
            if not self._forward_depth:
                self._rotary_tables = None  # tables are never reused across forwards (positions differ anyway)

    # ---------------------------------------------------------------- autodiff
    def value_and_grad(self, fn: Callable[..., Any]) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """``value_and_grad(fn)(params, *args, **kwargs)`` → (fn's value, detached; {name: d value / d params[name]}).

        ``fn(params, *args, **kwargs)`` must return a scalar tensor. Gradients come from ``torch.autograd.grad`` on
        leaf copies of ``params`` (the caller's tensors are not modified and gain no ``.grad``); a parameter ``fn``
        does not use gets a zero gradient.
        """
        if not callable(fn):
            raise ConfigError(f"value_and_grad: fn = {fn!r}, expected a callable fn(params, *args) returning a scalar")

        def value_and_grad_fn(params: dict[str, Any], *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            if not isinstance(params, dict):
                raise ConfigError(f"value_and_grad: params is a {type(params).__name__}, expected a dict from name to tensor")
            leaves = {}
            for name, value in params.items():
                self._float("value_and_grad", f"params[{name!r}]", value)
                # detach() shares storage: no copy. A tensor made under inference_mode must be cloned to join a graph.
                leaf = value.clone() if value.is_inference() else value.detach()
                leaves[name] = leaf.requires_grad_(True)
            self._differentiating += 1
            try:
                with torch.enable_grad():
                    value = fn(leaves, *args, **kwargs)
            finally:
                self._differentiating -= 1
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                described = (
                    f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
                )
                raise ShapeError(f"value_and_grad: fn returned {described}, expected a scalar tensor (the loss)")
            if not value.dtype.is_floating_point:
                raise DTypeError(f"value_and_grad: fn returned a {value.dtype} tensor, expected a float scalar")
            names = list(leaves)
            if value.requires_grad:
                grads = torch.autograd.grad(value.reshape(()), [leaves[n] for n in names], allow_unused=True)
            else:  # fn does not depend on any parameter
                grads = (None,) * len(names)
            return value.detach().reshape(()), {
                name: torch.zeros_like(leaves[name]) if grad is None else grad for name, grad in zip(names, grads)
            }

        return value_and_grad_fn


def _most_probable(p: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` indices of ``argsort(-p, stable=True)`` (most probable first, ties by lower index).

    Without sorting all V entries: ``topk`` finds the count-th largest probability t; the indices with p >= t,
    in vocabulary order, stably sorted by -p, are a prefix of the full stable order (every tie at t included)
    at least ``count`` long.
    """
    if count >= p.shape[0]:
        return torch.argsort(-p, stable=True)  # (V,)
    threshold = torch.topk(p, count, sorted=False).values.min()
    candidates = torch.nonzero(p >= threshold).squeeze(1)  # (M,) with M >= count, in vocabulary order
    return candidates[torch.argsort(-p[candidates], stable=True)][:count]  # (count,)


def _any_requires_grad(params: Any) -> bool:
    if not isinstance(params, dict):
        return False  # the base class's check reports the bad params
    return any(isinstance(p, torch.Tensor) and p.requires_grad for p in params.values())


__all__ = ["DeviceUnavailableError", "TorchBackend"]
