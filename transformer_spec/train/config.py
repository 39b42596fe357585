"""Training configurations and the named presets (``smoke`` for tests, ``default`` for the shipped model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError

from .optim import AdamWConfig


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} = {value!r}, expected an integer >= {minimum}")


@dataclass(frozen=True)
class TrainConfig:
    """How long and how one training stage runs. Validated on construction."""

    steps: int = 1000  # optimizer steps (the cosine schedule ends here)
    batch_size: int = 16  # sequences per step
    context_length: int = 128  # positions per sequence (<= the model's context)
    seed: int = 0  # initial weights (when training from scratch) and the order of batches
    eval_every: int = 0  # evaluate on held-out data every this many steps (0: only at the end)
    eval_batches: int = 8  # held-out batches per evaluation (the same ones each time)
    checkpoint_every: int = 0  # save model + optimizer + step + RNG every this many steps (0: only at the end)
    log_every: int = 10  # a progress line every this many steps when stderr is not a terminal
    optimizer: AdamWConfig = field(default_factory=AdamWConfig)  # AdamW and its schedule; total_steps == steps

    def __post_init__(self) -> None:
        _positive_int("steps", self.steps)
        _positive_int("batch size", self.batch_size)
        _positive_int("context length", self.context_length)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed = {self.seed!r}, expected an integer >= 0")
        _positive_int("eval_every", self.eval_every, 0)
        _positive_int("eval_batches", self.eval_batches, 1)
        _positive_int("checkpoint_every", self.checkpoint_every, 0)
        _positive_int("log_every", self.log_every, 1)
        if not isinstance(self.optimizer, AdamWConfig):
            raise ConfigError(f"optimizer is a {type(self.optimizer).__name__}, expected an AdamWConfig")
        if self.optimizer.total_steps != self.steps:
            raise ConfigError(
                f"optimizer.total_steps = {self.optimizer.total_steps} differs from steps = {self.steps}; "
                f"build the config with TrainConfig.create(...) so the schedule ends where training does"
            )

    @classmethod
    def create(
        cls,
        *,
        lr: float = 3e-3,
        warmup_steps: int | None = None,
        weight_decay: float = 0.1,
        grad_clip: float | None = 1.0,
        min_lr_ratio: float = 0.1,
        beta2: float = 0.99,
        **kwargs: Any,
    ) -> TrainConfig:
        """A config whose schedule matches ``steps``; ``warmup_steps`` defaults to 5% of the steps."""
        steps = kwargs.get("steps", cls.steps)
        _positive_int("steps", steps)
        if warmup_steps is None:
            warmup_steps = max(1, steps // 20) if steps > 1 else 0
        warmup_steps = min(warmup_steps, steps)
        optimizer = AdamWConfig(
            lr=lr,
            warmup_steps=warmup_steps,
            total_steps=steps,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            min_lr_ratio=min_lr_ratio,
            beta2=beta2,
        )
        return cls(optimizer=optimizer, **kwargs)

    def with_changes(self, **changes: Any) -> TrainConfig:
        """A copy with training fields and/or optimizer fields (lr, warmup_steps, ...) replaced; total_steps follows steps."""
        optimizer_fields = {f.name for f in fields(AdamWConfig)}
        opt_changes = {k: v for k, v in changes.items() if k in optimizer_fields}
        own = {k: v for k, v in changes.items() if k not in optimizer_fields}
        steps = own.get("steps", self.steps)
        _positive_int("steps", steps)
        opt_changes["total_steps"] = steps
        opt_changes.setdefault("warmup_steps", min(self.optimizer.warmup_steps, steps))
        return replace(self, optimizer=replace(self.optimizer, **opt_changes), **own)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        optimizer = AdamWConfig(**data.pop("optimizer"))
        return cls(optimizer=optimizer, **data)


@dataclass(frozen=True)
class Preset:
    """Everything the default-model recipe needs: data sizes, tokenizer, model shape, both training stages."""

    name: str
    corpus_documents: int  # pretraining documents from transformer_spec.data.generate_corpus
    held_out_documents: int  # evaluation documents (another seed): perplexity of transformer and n-grams
    tokenizer_vocab: int  # byte-level BPE vocabulary (incl. the 256 bytes and <|endoftext|>)
    tokenizer_documents: int  # the first this many corpus documents train the tokenizer
    model: ModelConfig  # vocab_size is replaced by the tokenizer's size
    pretrain: TrainConfig
    finetune: TrainConfig
    corpus_seed: int = 0  # generate_corpus seed of the pretraining text
    held_out_seed: int = 1_000_003  # generate_corpus seed of the held-out text (other documents)
    finetune_seed: int = 0  # build_finetune_dataset seed: which countries are held out
    stories_per_subject: int = 1  # instruction examples per story subject in the fine-tuning set
    replay_rows: int = 8  # windows of pretraining text added to every fine-tuning batch (0: none)
    replay_documents: int = 5_000  # ... drawn from the first this many pretraining documents


SMOKE = Preset(
    name="smoke",
    corpus_documents=300,
    held_out_documents=20,
    tokenizer_vocab=300,
    tokenizer_documents=300,
    model=ModelConfig(vocab_size=300, context_length=64, d_model=32, n_heads=2, n_layers=1, d_ff=64),
    pretrain=TrainConfig.create(steps=30, batch_size=4, context_length=64, lr=1e-2, eval_batches=2, log_every=10),
    finetune=TrainConfig.create(steps=20, batch_size=4, context_length=64, lr=5e-3, eval_batches=2, log_every=10),
    replay_rows=2,
    replay_documents=300,
)

DEFAULT = Preset(
    name="default",
    corpus_documents=20_000,
    held_out_documents=400,
    tokenizer_vocab=3072,
    tokenizer_documents=20_000,
    model=ModelConfig(vocab_size=3072, context_length=128, d_model=128, n_heads=4, n_layers=4, d_ff=512),
    pretrain=TrainConfig.create(
        steps=1000, batch_size=16, context_length=128, lr=3e-3, eval_every=250, eval_batches=8, checkpoint_every=250, log_every=25
    ),
    finetune=TrainConfig.create(
        steps=300,
        batch_size=16,
        context_length=128,
        lr=1e-3,
        eval_every=100,
        eval_batches=8,
        checkpoint_every=100,
        log_every=25,
        warmup_steps=20,
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SMOKE, DEFAULT)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}") from None
