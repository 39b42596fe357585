"""``tspec train``: pretrain a decoder on the generated corpus or a text file (next-token loss).

Examples::

    tspec train --out runs/base                         # the default model's recipe, on the generated corpus
    tspec train --out runs/tiny --preset smoke          # seconds
    tspec train --out runs/book --text book.txt --steps 2000 --backend jax
    tspec train --resume runs/base                      # continue an interrupted run exactly
    tspec train --resume runs/base --steps 3000         # ... and train longer

The run folder is a checkpoint (load it with ``tspec eval`` / ``tspec generate``)
plus the optimizer and trainer state. ``--out`` is checked before any work: it
must be a writable folder, and one that already holds files needs ``--overwrite``.
Ctrl-C (exit 130) or SIGTERM (exit 143) saves and says how to resume; saves are
atomic, so even ``kill -9`` leaves the last complete checkpoint resumable.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError

NAME = "train"
HELP = "pretrain a model on the generated corpus or a text file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from transformer_spec.train.cli import add_backend_options, add_parallel_options, add_training_options
    from transformer_spec.train.config import PRESETS

    run = parser.add_argument_group("run")
    run.add_argument("--out", help="run folder to create (checkpoint + optimizer state)")
    run.add_argument("--resume", metavar="DIR", help="continue the run in DIR (its data and settings)")
    run.add_argument("--preset", default="default", choices=sorted(PRESETS), help="model shape, data size and training defaults")
    run.add_argument("--init", metavar="CHECKPOINT", help="start from these weights (and their tokenizer and config)")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--text",
        metavar="FILE",
        help="UTF-8 text to train on (documents separated by <|endoftext|>); default: the generated corpus",
    )
    data.add_argument(
        "--held-out-text", metavar="FILE", help="text for the periodic evaluation (default: the last 5%% of --text)"
    )
    data.add_argument("--documents", type=int, default=None, help="generated corpus size (default: the preset's)")
    data.add_argument("--corpus-seed", type=int, default=0, help="generated corpus seed")
    data.add_argument("--tokenizer", metavar="DIR", help="use this tokenizer (default: train a byte-level BPE on the data)")
    data.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary to train (default: the preset's)")
    model = parser.add_argument_group("model (default: the preset's)")
    for flag in ("--d-model", "--n-layers", "--n-heads", "--d-ff", "--model-context"):
        model.add_argument(flag, type=int, default=None)
    add_training_options(parser, "default: the shipped model's pretraining")
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
    from transformer_spec.train.pipeline import pretraining_documents, start_pretraining, train_tokenizer

    if bool(args.out) == bool(args.resume):
        raise ConfigError("expected exactly one of --out DIR (a new run) or --resume DIR (continue a run)")
    check_run_paths(args)  # before any work: a run must not die at its final save
    if args.resume:
        return resume_run(args, NAME, "pretrained")
    # Everything that can be wrong with the options or the data is checked before the backend is loaded.
    preset = get_preset(args.preset)
    config = apply_training_changes(preset.pretrain, training_changes(args))
    check_parallel_batch(args, config.batch_size)
    if args.text:
        data_spec = {"kind": "text", "path": args.text, "held_out_path": args.held_out_text}
    else:
        if args.held_out_text:
            raise ConfigError("--held-out-text needs --text (the generated corpus has its own held-out documents)")
        documents = preset.corpus_documents if args.documents is None else args.documents
        if documents < 1:
            raise ConfigError(f"--documents {documents}, expected an integer >= 1")
        data_spec = {
            "kind": "corpus",
            "seed": args.corpus_seed,
            "documents": documents,
            "held_out_seed": preset.held_out_seed,
            "held_out_documents": preset.held_out_documents,
        }
    if args.nproc is not None:  # every option checked: the processes do the rest
        return launch(args.nproc, args.peer_timeout)
    documents = pretraining_documents(data_spec)  # reads (and checks) the files, once: a pipe cannot be read twice
    training_documents = documents[0]
    _note_unreplayable(args)
    params = None
    if args.init:
        from transformer_spec.hf import load_checkpoint_source

        if any(
            getattr(args, k) is not None
            for k in ("d_model", "n_layers", "n_heads", "d_ff", "model_context", "vocab_size", "tokenizer")
        ):
            raise ConfigError(
                "--init takes the model shape and tokenizer from the checkpoint; drop the model and tokenizer options"
            )
        base = load_checkpoint_source(args.init)  # our folders and Hugging Face GPT-2 folders, as generate
        tokenizer, model_config = base.tokenizer, base.config
        params = {n: p.astype("float32") for n, p in base.params.items()}
    else:
        overrides = {
            k: getattr(args, a)
            for k, a in (
                ("d_model", "d_model"),
                ("n_layers", "n_layers"),
                ("n_heads", "n_heads"),
                ("d_ff", "d_ff"),
                ("context_length", "model_context"),
            )
            if getattr(args, a) is not None
        }
        model_config = ModelConfig.from_dict(preset.model.to_dict() | overrides)  # checked before the tokenizer is trained
        if args.tokenizer:
            from transformer_spec.tokenizers import load_tokenizer

            tokenizer = load_tokenizer(args.tokenizer)
        else:
            vocab = preset.tokenizer_vocab if args.vocab_size is None else args.vocab_size
            tokenizer = train_tokenizer(training_documents, vocab, preset.tokenizer_documents)
        model_config = replace(model_config, vocab_size=tokenizer.vocab_size)
    if "context_length" not in training_changes(args):
        config = config.with_changes(context_length=min(config.context_length, model_config.context_length))
    check_batch_shape(config.batch_size, config.context_length, model_config.context_length)
    backend = setup_backend(args)
    parallel = setup_parallel(args, backend)
    trainer = start_pretraining(
        backend,
        model_config,
        tokenizer,
        config,
        data_spec,
        out_dir=args.out,
        engine=args.engine,
        compile=args.compile,
        params=params,
        overwrite=args.overwrite,
        progress=not args.quiet,
        documents=documents,
        parallel=parallel,
    )
    return run_to_the_end(trainer, parallel, NAME, "pretrained")


def _note_unreplayable(args: argparse.Namespace) -> None:
    """A pipe (``--text <(cat book.txt)``) trains fine, but ``--resume`` rebuilds the data from the path: say so now."""
    import sys
    from pathlib import Path

    pipes = [path for path in (args.text, args.held_out_text) if path and not Path(path).is_file()]
    if pipes:
        print(
            f"note: {', '.join(pipes)} is not a regular file; this run trains on what was read now, but --resume "
            f"reads the data again from the same path (save it to a file to resume later)",
            file=sys.stderr,
        )
