"""The three-line Python API::

    from transformer_spec import load_model
    model = load_model(backend="torch")
    print(model.generate("Once upon a time", max_new_tokens=40, seed=0).text)

:func:`load_model` reads a checkpoint folder (default: the model shipped with
the package; a Hugging Face GPT-2 folder is imported), picks the backend by
name, and converts the weights to that backend's arrays once, so every later
call reuses them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.backends import Backend, load_backend
from transformer_spec.spec.config import ModelConfig

from .checkpoint import Checkpoint, default_checkpoint_path, load_checkpoint
from .generate import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerationError,
    GenerationResult,
    encode_prompt,
    generate,
    generate_batch,
    native_params,
)


class Model:
    """A checkpoint bound to a backend and a dtype: ``generate`` text, or read ``logits``."""

    def __init__(self, checkpoint: Checkpoint, backend: Backend | str | None = "numpy", dtype: str = "float32") -> None:
        if not isinstance(checkpoint, Checkpoint):
            raise GenerationError(
                f"Model: checkpoint is a {type(checkpoint).__name__}, expected a transformer_spec.checkpoint.Checkpoint"
            )
        self.checkpoint = checkpoint
        self.backend = load_backend(backend)
        self.dtype = dtype
        self.params = native_params(self.backend, checkpoint.params, dtype)  # the backend's arrays, converted once

    @property
    def config(self) -> ModelConfig:
        return self.checkpoint.config

    @property
    def tokenizer(self) -> Any:
        return self.checkpoint.tokenizer

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.checkpoint.metadata)

    def generate(
        self,
        prompt: str | Sequence[str],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | Sequence[int] = 0,
        stop_at_eos: bool = True,
        overflow: str = "error",
        stream: Callable[[str], Any] | None = None,
    ) -> GenerationResult | list[GenerationResult]:
        """Continue ``prompt``; see :func:`transformer_spec.generate.generate` for every option.

        A list of prompts is generated as one batch (:func:`transformer_spec.generate.generate_batch`)
        and gives a list of results, result i equal to ``generate(prompts[i], seed=seed)`` alone
        (``seed`` may also be a list, one per prompt). Batches do not stream or slide.
        """
        if not isinstance(prompt, str) and isinstance(prompt, Sequence):
            if stream is not None or overflow != "error":
                raise GenerationError(
                    "generate: a list of prompts is generated as a batch, which does not stream or slide; "
                    "expected stream=None and overflow='error' (or call generate once per prompt)"
                )
            return generate_batch(
                self.backend,
                (self.config, self.params, self.tokenizer),
                list(prompt),
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                stop_at_eos=stop_at_eos,
            )
        return generate(
            self.backend,
            (self.config, self.params, self.tokenizer),
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop_at_eos=stop_at_eos,
            overflow=overflow,
            stream=stream,
        )

    def logits(self, text: str) -> np.ndarray:
        """The next-token logits after every token of ``text``: a NumPy array (L, V), no cache."""
        ids = encode_prompt(self.tokenizer, text, function="logits")
        if len(ids) > self.config.context_length:
            raise GenerationError(
                f"logits: the text has {len(ids)} tokens and the context is {self.config.context_length}; "
                f"expected at most {self.config.context_length}"
            )
        native_ids = self.backend.asarray(np.asarray([ids], dtype=np.int64), "int64")  # (1, L)
        logits, _ = self.backend.model_forward(self.params, self.config, native_ids)  # (1, L, V)
        return self.backend.to_numpy(logits)[0]

    def __repr__(self) -> str:
        source = self.checkpoint.path or "memory"
        return f"<Model {source} on {self.backend.name} ({self.dtype}), {self.checkpoint.parameter_count:,} parameters>"


def load_model(
    checkpoint: str | Path | Checkpoint | None = None, backend: Backend | str | None = "numpy", dtype: str = "float32"
) -> Model:
    """A :class:`Model` from a checkpoint folder (None: the shipped default model) on ``backend``.

    ``backend`` is a name ("numpy", "torch", "jax", "torch:cuda", "module:attr")
    or a Backend. A Hugging Face GPT-2, Llama, Mistral or Qwen2 folder (``save_pretrained``) is imported.
    """
    if checkpoint is None:
        checkpoint = load_checkpoint(default_checkpoint_path())
    elif not isinstance(checkpoint, Checkpoint):
        from .hf import import_gpt2, is_hf_folder, is_hf_gpt2_folder

        if is_hf_gpt2_folder(checkpoint):
            checkpoint = import_gpt2(checkpoint)
        elif is_hf_folder(checkpoint):
            from .hf_llama import import_llama

            # Weights stay memory-mapped in their stored dtype; Model converts them once, to the backend's arrays.
            checkpoint = import_llama(checkpoint)
        else:
            checkpoint = load_checkpoint(checkpoint)
    return Model(checkpoint, backend, dtype)


__all__ = ["Model", "load_model"]
