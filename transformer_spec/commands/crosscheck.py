"""``tspec crosscheck``: run one random model on several backends and walk every intermediate.

The same NumPy weights and token ids go to every backend; the command prints
each intermediate's largest error against the first backend and names the
first one outside the tolerance (exit status 1), or says that all agree (0).
"""

from __future__ import annotations

import argparse

NAME = "crosscheck"
HELP = "run one random model on several backends and name the first intermediate where they differ"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from transformer_spec.conformance.crosscheck import CONFIGS

    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends, the first is the reference (names, entry points or module:attribute); "
        "default: numpy and every other installed built-in backend",
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small", help="model size (default small)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the token ids (default 0)")
    parser.add_argument("--dtype", default="float32", help="float dtype every backend computes in (default float32)")
    parser.add_argument("--batch", type=int, default=2, help="sequences in the batch (default 2)")
    parser.add_argument("--length", type=int, default=16, help="tokens per sequence (default 16)")


def run(args: argparse.Namespace) -> int:
    from transformer_spec.backends import BUILTIN, available_backends, load_backend
    from transformer_spec.conformance.crosscheck import compare_backends, random_model
    from transformer_spec.spec.errors import ConfigError

    names = (
        [b.strip() for b in args.backends.split(",") if b.strip()]
        if args.backends
        else [b for b in BUILTIN if b in available_backends()]  # the built-in backends installed here
    )
    if len(names) < 2:
        raise ConfigError(f"--backends {args.backends!r} names {len(names)} backend(s); expected at least two, e.g. numpy,torch")
    for option in ("batch", "length"):
        if getattr(args, option) < 1:
            raise ConfigError(f"--{option} = {getattr(args, option)}, expected an integer >= 1")
    for name in names:
        load_backend(name)  # an unknown or broken backend is a one-line error before any work
    config, params, ids = random_model(args.config, args.seed, args.batch, args.length)
    print(
        f"model {args.config}: V={config.vocab_size} D={config.d_model} H={config.n_heads} N={config.n_layers} F={config.d_ff} "
        f"({config.positional}, {config.norm}, {config.activation}) · ids {ids.shape} · seed {args.seed}"
    )
    agreement = compare_backends(names, config, params, ids, dtype=args.dtype)
    print(agreement.table())
    return 0 if agreement.agree else 1
