"""The PyTorch kernels: each primitive on PyTorch's own operator, plus only what the contract asks beyond it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from transformer_spec.spec.errors import DTypeError

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


class TorchKernels:
    """The kernels of :data:`transformer_spec.backends.base.KERNELS` (but ``_sample``), for :class:`TorchBackend`."""

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
        angles = positions.to(device=self._table_device, dtype=torch.float64)[..., None] * frequencies  # (..., L, Dh/2)
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
