"""Which torch device a backend runs on, checked up front with a clear error."""

from __future__ import annotations

from typing import Any

import torch

from transformer_spec.spec.errors import ConfigError


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
