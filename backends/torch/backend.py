"""TorchBackend: the kernels of :mod:`.kernels` and :mod:`.sampling`, the hooks of :mod:`.hooks`, on a checked device."""

from __future__ import annotations

from typing import Any

import torch

from transformer_spec.spec.errors import ConfigError

from ..base import Backend
from .device import _resolve_device
from .hooks import TorchHooks
from .kernels import TorchKernels
from .sampling import TorchSampling


class TorchBackend(TorchHooks, TorchSampling, TorchKernels, Backend):
    name = "torch"
    array_type = torch.Tensor
    dtypes = ("float16", "bfloat16", "float32", "float64")
    supports_autodiff = True
    rotary_positions_per_row = True

    def __init__(self, device: str = "cpu", compile: bool = False):
        if not isinstance(compile, bool):
            raise ConfigError(f"TorchBackend: compile = {compile!r}, expected True (torch.compile the model) or False")
        self.torch_device = _resolve_device(device)
        self.compile_functions = compile
        self.device = str(self.torch_device)
        if self.torch_device.type == "mps":
            # Metal has no float64: say so up front rather than fail inside a kernel.
            self.dtypes = ("float16", "bfloat16", "float32")
        # Trigonometric tables are computed in float64 (like the reference); Metal cannot, so they are built on the host there.
        self._table_device = torch.device("cpu") if self.torch_device.type == "mps" else self.torch_device
        self._differentiating = 0  # > 0 while value_and_grad is running fn: model_forward must keep the graph
        self._forward_depth = 0  # > 0 while model_forward runs: rotary tables may be reused across layers
        self._rotary_tables: tuple[Any, ...] | None = None  # (positions, (Dh, base, dtype), (cos, sin)) of this forward

    @property
    def compiles(self) -> bool:  # type: ignore[override]
        return self.compile_functions

    def compile_key(self) -> Any:
        return ("torch", str(self.torch_device), self.compile_functions)

    def dtype_hint(self, dtype: str) -> str | None:
        if dtype == "float64" and self.torch_device.type == "mps":
            return "; the MPS device has no float64: use float32, or device='cpu' for float64"
        return None
