"""Pretraining and fine-tuning on any backend with autodiff (torch, jax).

* :mod:`~transformer_spec.train.optim` — AdamW, warm-up + cosine schedule, clipping by global norm: written once with
  arithmetic operators, so it runs on NumPy, PyTorch and (inside ``jax.jit``) JAX arrays alike.
* :mod:`~transformer_spec.train.steps` — one train step: the gradient from ``backend.value_and_grad``, then the update
  (plain path; PyTorch in-place / ``torch.compile`` path; one ``jax.jit`` for the whole JAX step).
* :mod:`~transformer_spec.train.data` — token streams for pretraining; prompt/response examples with the loss on the
  response only (targets -100 on the prompt).
* :mod:`~transformer_spec.train.trainer` — the loop: progress, periodic evaluation, resumable checkpoints (model +
  optimizer + step + RNG), NaN and Ctrl-C handling.
* :mod:`~transformer_spec.train.pipeline` — data specs and the two stages, shared by the CLI and the default-model build.
* :mod:`~transformer_spec.train.evaluate` — perplexity (per token and per word, comparable with n-grams) and
  question/answer accuracy.
* :mod:`~transformer_spec.train.config` — ``TrainConfig`` and the presets (``smoke``, ``default``).
"""

from .config import DEFAULT, PRESETS, SMOKE, Preset, TrainConfig, get_preset
from .data import IGNORE_INDEX, PROMPT_TEMPLATE, RESPONSE_TEMPLATE, format_prompt
from .optim import AdamWConfig, adamw_update, clip_by_global_norm, global_norm, learning_rate_at, optimizer_step
from .trainer import Trainer, TrainingDivergedError, TrainingError, TrainResult

__all__ = [
    "AdamWConfig",
    "DEFAULT",
    "IGNORE_INDEX",
    "PRESETS",
    "PROMPT_TEMPLATE",
    "Preset",
    "RESPONSE_TEMPLATE",
    "SMOKE",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "TrainingError",
    "adamw_update",
    "clip_by_global_norm",
    "format_prompt",
    "get_preset",
    "global_norm",
    "learning_rate_at",
    "optimizer_step",
]
