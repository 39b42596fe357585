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

from .backend import TorchBackend
from .device import DeviceUnavailableError

__all__ = ["DeviceUnavailableError", "TorchBackend"]
