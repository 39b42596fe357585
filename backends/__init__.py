"""Backend registry: find a backend by name, ``module:attribute``, or entry point.

``load_backend("numpy")``, ``load_backend("torch")``, ``load_backend("torch:cuda")``,
``load_backend("jax")``, ``load_backend("mypkg.mymodule:MyBackend")``, or a name
registered by a package under the entry-point group ``transformer_spec.backends``.
With no argument, ``$TSPEC_BACKEND`` (default ``numpy``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from importlib.metadata import entry_points
from typing import Any

from transformer_spec.spec.errors import SpecError

from .base import KERNELS, Backend, KVCache, missing_kernels

ENTRY_POINT_GROUP = "transformer_spec.backends"

# Built-in backends: name -> (module, class, the package it needs, the extra that installs it)
BUILTIN = {
    "numpy": ("transformer_spec.backends.numpy", "NumpyBackend", "numpy", None),
    "torch": ("transformer_spec.backends.torch", "TorchBackend", "torch", "torch"),
    "jax": ("transformer_spec.backends.jax", "JaxBackend", "jax", "jax"),
}


class BackendError(SpecError):
    """A backend could not be found, imported or constructed."""


def available_backends() -> list[str]:
    """Names that load here: built-ins whose library is installed, plus entry points."""
    names = [n for n, (_, _, pkg, _) in BUILTIN.items() if importlib.util.find_spec(pkg) is not None]
    names += [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in names]
    return names


def known_backend_names() -> list[str]:
    return list(BUILTIN) + [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN]


def load_backend(spec: str | Backend | type[Backend] | None = None) -> Backend:
    """Return a backend instance from a name, ``module:attr``, class, or instance."""
    if spec is None:
        spec = os.environ.get("TSPEC_BACKEND", "numpy")
    if isinstance(spec, Backend):
        return spec
    target, options = _resolve(spec)
    return _from_target(target, spec if isinstance(spec, str) else repr(spec), **options)


def backend_class(spec: str | Backend | type[Backend] | None = None) -> type[Backend]:
    """The class ``load_backend(spec)`` would construct, imported but not constructed (for class-level hooks)."""
    if spec is None:
        spec = os.environ.get("TSPEC_BACKEND", "numpy")
    target = spec if isinstance(spec, Backend) else _resolve(spec)[0]
    cls = target if isinstance(target, type) else type(target)
    if not issubclass(cls, Backend):
        raise BackendError(f"backend {spec!r} is {cls!r}, expected a subclass of transformer_spec.backends.base.Backend")
    return cls


def _resolve(spec: str | type[Backend]) -> tuple[Any, dict[str, Any]]:
    """(a Backend class or instance, the constructor's keyword arguments) that ``spec`` names, imported."""
    if isinstance(spec, type):
        return spec, {}
    if not isinstance(spec, str) or not spec:
        raise BackendError(f"backend must be a name, 'module:attribute', a Backend class or instance; got {spec!r}")
    name, _, option = spec.partition(":")
    if name in BUILTIN:
        module_name, class_name, package, extra = BUILTIN[name]
        if importlib.util.find_spec(package) is None:
            raise BackendError(f"{name} is not installed: pip install 'transformer-spec[{extra}]'")
        return getattr(importlib.import_module(module_name), class_name), ({"device": option} if option else {})
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load(), {}
            except Exception as error:  # an entry point that fails to import is the plugin's bug: say so plainly
                raise BackendError(
                    f"backend {name!r} (entry point {ep.value}) failed to import: {type(error).__name__}: {error}"
                ) from error
    if ":" in spec:
        module_name, attribute = name, option
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise BackendError(
                f"backend {spec!r}: cannot import module {module_name!r} ({error}); expected 'module:attribute' naming an importable module"
            ) from error
        except Exception as error:
            raise BackendError(
                f"backend {spec!r}: importing module {module_name!r} raised {type(error).__name__}: {error}"
            ) from error
        if not hasattr(module, attribute):
            raise BackendError(f"backend {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        return getattr(module, attribute), {}
    raise BackendError(
        f"unknown backend {spec!r}; available: {', '.join(available_backends())} "
        f"(known: {', '.join(known_backend_names())}); or give 'module:attribute' for your own backend"
    )


def _from_target(target: Any, spec: str, **options: Any) -> Backend:
    if isinstance(target, Backend):
        return target
    if isinstance(target, type):
        return _instantiate(target, spec, **options)
    raise BackendError(
        f"backend {spec!r} is a {type(target).__name__}, expected a subclass or instance of transformer_spec.backends.base.Backend"
    )


def _instantiate(cls: type, spec: str, **kwargs: Any) -> Backend:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {spec!r} is {cls!r}, expected a subclass of transformer_spec.backends.base.Backend")
    try:
        return cls(**kwargs)
    except SpecError:
        raise
    except Exception as error:
        raise BackendError(
            f"backend {spec!r}: constructing {cls.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: {type(error).__name__}: {error}"
        ) from error


__all__ = [
    "Backend",
    "BackendError",
    "KERNELS",
    "KVCache",
    "available_backends",
    "backend_class",
    "load_backend",
    "missing_kernels",
]
