"""``tspec finetune``: teach a pretrained model to answer — question/answer, chat or instruction examples.

Each example is shown as ``User: <prompt>\\nAssistant: <response><|endoftext|>``
and only the response tokens (and the closing end-of-text) are scored: the
prompt's targets are -100 (ignored by the loss). Every batch also rehearses a
few windows of the pretraining text (``--replay-rows``), so the model keeps
what it learned there — the capitals of countries no example mentions.

Examples::

    tspec finetune --checkpoint runs/base --out runs/chat          # the built-in set (20% of countries held out)
    tspec finetune --checkpoint runs/base --out runs/chat --data qa.jsonl --data chat.jsonl --eval-data held.jsonl
    tspec finetune --resume runs/chat

JSONL lines: ``{"prompt": "...", "response": "...", "kind": "..."}`` (see transformer_spec.data.read_jsonl).
"""

from __future__ import annotations

import argparse

from transformer_spec.spec.errors import ConfigError

NAME = "finetune"
HELP = "fine-tune a checkpoint on question/answer, chat or instruction JSONL (loss on answers only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from transformer_spec.train.cli import add_backend_options, add_parallel_options, add_training_options
    from transformer_spec.train.config import PRESETS

    run = parser.add_argument_group("run")
    run.add_argument("--checkpoint", metavar="DIR", help="the pretrained model to start from")
    run.add_argument("--out", help="run folder to create (checkpoint + optimizer state)")
    run.add_argument("--resume", metavar="DIR", help="continue the fine-tuning run in DIR")
    run.add_argument("--preset", default="default", choices=sorted(PRESETS), help="training defaults")
    data = parser.add_argument_group("data (default: the built-in question/answer, chat and instruction set)")
    data.add_argument("--data", metavar="FILE", action="append", default=[], help="JSONL examples (repeatable)")
    data.add_argument("--eval-data", metavar="FILE", help="JSONL examples for the periodic evaluation")
    data.add_argument("--data-seed", type=int, default=0, help="built-in set: which countries are held out, example order")
    data.add_argument("--holdout-fraction", type=float, default=0.2, help="built-in set: fraction of countries held out")
    data.add_argument(
        "--replay-rows",
        type=int,
        default=None,
        help="windows of pretraining text added to every batch, so the model keeps what it learned "
        "(default: the preset's; 0: none)",
    )
    data.add_argument(
        "--replay-documents", type=int, default=None, help="replay from the first N pretraining documents (default: the preset's)"
    )
    data.add_argument(
        "--replay-text", metavar="FILE", help="replay this text (default: the pretraining data the checkpoint records)"
    )
    add_training_options(parser, "default: the shipped model's fine-tuning")
    add_backend_options(parser)
    add_parallel_options(parser)


def run(args: argparse.Namespace) -> int:
    from transformer_spec.train.cli import (
        apply_training_changes,
        check_parallel_batch,
        check_run_paths,
        resume_run,
        run_to_the_end,
        setup_backend,
        setup_parallel,
        training_changes,
    )
    from transformer_spec.train.config import get_preset
    from transformer_spec.train.data import check_batch_shape
    from transformer_spec.train.distributed import launch
    from transformer_spec.train.pipeline import finetune_examples, replay_documents, replay_spec, start_finetuning

    if bool(args.out) == bool(args.resume):
        raise ConfigError("expected exactly one of --out DIR (a new run) or --resume DIR (continue a run)")
    if args.out and not args.checkpoint:
        raise ConfigError(
            "--checkpoint DIR is required: the pretrained model to fine-tune (e.g. the folder of tspec train --out)"
        )
    check_run_paths(args)  # before any work: a run must not die at its final save
    if args.resume:
        if args.checkpoint or args.data or args.eval_data:
            raise ConfigError("--resume continues with the run's own model and data; drop --checkpoint / --data / --eval-data")
        return resume_run(args, NAME, "fine-tuned")
    from transformer_spec.hf import load_checkpoint_source

    # Options, checkpoint and data are checked before the backend is loaded.
    config = apply_training_changes(get_preset(args.preset).finetune, training_changes(args))
    if args.data:
        data_spec = {"kind": "jsonl", "paths": list(args.data), "eval_path": args.eval_data}
    else:
        if args.eval_data:
            raise ConfigError("--eval-data needs --data (the built-in set evaluates on its held-out countries)")
        data_spec = {"kind": "builtin", "seed": args.data_seed, "holdout_fraction": args.holdout_fraction}
    examples = finetune_examples(data_spec)  # reads (and checks) the files, once: a pipe cannot be read twice
    base = load_checkpoint_source(args.checkpoint)  # our folders and Hugging Face GPT-2 folders, as generate
    preset = get_preset(args.preset)
    rows = preset.replay_rows if args.replay_rows is None else args.replay_rows
    if rows < 0:
        raise ConfigError(f"--replay-rows {rows}, expected an integer >= 0")
    documents = preset.replay_documents if args.replay_documents is None else args.replay_documents
    if documents < 1:
        raise ConfigError(f"--replay-documents {documents}, expected an integer >= 1")
    replay = replay_spec(base, rows, documents, args.replay_text)
    replay_text = None
    if replay is not None:
        data_spec["replay"] = replay
        replay_text = replay_documents(replay)  # read (and checked) now, before the backend loads
    if "context_length" not in training_changes(args):
        config = config.with_changes(context_length=min(config.context_length, base.config.context_length))
    check_batch_shape(config.batch_size, config.context_length, base.config.context_length)
    check_parallel_batch(args, config.batch_size, rows if replay is not None else 0)  # data-parallel: before work
    if args.nproc is not None:
        return launch(args.nproc, args.peer_timeout)
    backend = setup_backend(args)
    parallel = setup_parallel(args, backend)
    trainer = start_finetuning(
        backend,
        base,
        config,
        data_spec,
        out_dir=args.out,
        engine=args.engine,
        compile=args.compile,
        overwrite=args.overwrite,
        progress=not args.quiet,
        examples=examples,
        replay=replay_text,
        parallel=parallel,
    )
    return run_to_the_end(trainer, parallel, NAME, "fine-tuned")
