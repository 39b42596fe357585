"""The shipped default model, for the figures that show a trained model — when it exists.

``transformer_spec.api.load_model`` and ``transformer_spec/assets/default_model/`` are written by the
application layer. Until both exist, :func:`load` returns ``None`` and the pages
say that the figure appears once the model ships; once they do, the figures use
it. If the model loads but does not expose what the figures need, the build
stops with a message saying what was expected, rather than silently dropping
the figure.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig

from .paths import ROOT

ASSETS = ROOT / "transformer_spec" / "assets" / "default_model"


@dataclass(frozen=True)
class DefaultModel:
    config: ModelConfig
    params: dict[str, np.ndarray]  # float64 NumPy copies
    tokenizer: Any


def _first(obj: Any, names: tuple[str, ...], what: str) -> Any:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    if isinstance(obj, dict):
        for name in names:
            if name in obj:
                return obj[name]
    public = sorted(n for n in dir(obj) if not n.startswith("_"))
    raise RuntimeError(
        f"transformer_spec.api.load_model(backend='numpy') returned a {type(obj).__name__} without {what} "
        f"(looked for {', '.join(names)}; it has {', '.join(public) or 'nothing public'}). "
        "The docs' attention-map and embedding figures need the model's config (ModelConfig), parameters "
        "(dict of arrays) and tokenizer: expose them, or update tools/docs/default_model.py."
    )


@functools.lru_cache(maxsize=1)
def load() -> DefaultModel | None:
    if not ASSETS.exists():
        return None
    try:
        api = importlib.import_module("transformer_spec.api")
    except ModuleNotFoundError:
        return None
    if not hasattr(api, "load_model"):
        return None
    model = api.load_model(backend="numpy")
    config = _first(model, ("config", "model_config"), "a config")
    params = _first(model, ("params", "parameters", "weights"), "its parameters")
    tokenizer = _first(model, ("tokenizer",), "a tokenizer")
    if not isinstance(config, ModelConfig):
        raise RuntimeError(
            f"transformer_spec.api.load_model(...).config is a {type(config).__name__}, expected transformer_spec.spec.config.ModelConfig"
        )
    return DefaultModel(config, {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}, tokenizer)
