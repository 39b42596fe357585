"""Training throughput (tokens/s) per backend and engine, side by side in one run.

    python -m benchmarks.bench_train [--preset default] [--steps 10] [--threads N] [--out FILE]

Engines (see transformer_spec/train/steps.py; every one runs the model written once, backends/model.py):

``torch plain``         no hooks: the reference path, AdamW with operators on native tensors
``torch numpy-opt``     same gradient, AdamW on NumPy copies (convert, update, convert back)
``torch auto``          the backend's hooks: in-place ``torch._foreach_*`` AdamW (``adamw_update``)
``torch compile``       the hooks with ``torch.compile`` on (``compiling()``), in-place AdamW
``jax plain``           no hooks: ``jax.value_and_grad`` op by op, AdamW op by op on jax arrays
``jax auto``            the hooks: gradient and update each one ``jax.jit`` program (the default)

Also the optimizer update alone (one AdamW step over the model's parameters)
on native arrays vs through NumPy. Each engine runs ``--warmup`` steps first
(compilation counts there, reported as ``first_steps_s``), then ``--steps``
timed steps on the preset's batch shape. Prints a table and writes JSON
(``--out``, default benchmarks/results/train.json). Never asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import numpy as np

from ._common import write_results


def _engines(names: list[str]):
    from transformer_spec.backends import load_backend
    from transformer_spec.train.optim import adamw_update, clip_by_global_norm
    from transformer_spec.train.steps import Engine

    class NumpyOptimizerEngine(Engine):
        """The plain gradient, then AdamW on NumPy arrays (to measure the conversion against native updates)."""

        def _plain_update(self, params, grads, m, v, norm, lr, bc1, bc2):
            be, opt = self.backend, self.optimizer
            to_np = lambda d: {n: be.to_numpy(a) for n, a in d.items()}  # noqa: E731
            grads = to_np(grads)
            if opt.grad_clip is not None:
                grads, _ = clip_by_global_norm(grads, opt.grad_clip, float(be.to_numpy(norm)))
            new = adamw_update(to_np(params), grads, to_np(m), to_np(v), lr=lr, bias_correction1=bc1,
                               bias_correction2=bc2, config=opt)  # fmt: skip
            return tuple({n: be.asarray(a) for n, a in d.items()} for d in new)

    makers = {
        "torch plain": ("torch", lambda be, *a: Engine(be, *a, hooks=False)),
        "torch numpy-opt": ("torch", lambda be, *a: NumpyOptimizerEngine(be, *a, hooks=False)),
        "torch auto": ("torch", lambda be, *a: Engine(be, *a)),
        "torch compile": ("torch", lambda be, *a: Engine(be.compiling(), *a)),
        "jax plain": ("jax", lambda be, *a: Engine(be, *a, hooks=False)),
        "jax auto": ("jax", lambda be, *a: Engine(be, *a)),
    }
    for name in names:
        backend_name, make = makers[name]
        try:
            backend = load_backend(backend_name)
        except Exception as error:  # not installed: reported, not fatal
            yield name, None, f"{type(error).__name__}: {error}"
            continue
        yield name, (backend, make), None


def bench_optimizer(model_config, optimizer, repeats: int = 20) -> list[dict]:
    """One AdamW update over the model's parameters: native tensors vs NumPy round trip, per backend."""
    from transformer_spec.backends import load_backend
    from transformer_spec.spec.model import init_parameters
    from transformer_spec.train.optim import bias_corrections, decays, init_moments, learning_rate_at, optimizer_step

    params_np = init_parameters(model_config, 0)
    rows = []
    for backend_name in ("torch", "jax"):
        try:
            be = load_backend(backend_name)
        except Exception:
            continue
        params = {n: be.asarray(p) for n, p in params_np.items()}
        grads = {n: be.asarray(p * 0.01) for n, p in params_np.items()}
        m, v = init_moments(params)

        def native():
            out = optimizer_step(params, grads, m, v, 10, optimizer)
            float(out[3])  # wait for the result (JAX dispatches asynchronously)

        def through_numpy():
            to_np = lambda d: {n: be.to_numpy(a) for n, a in d.items()}  # noqa: E731
            p2, m2, v2, _, _ = optimizer_step(to_np(params), to_np(grads), to_np(m), to_np(v), 10, optimizer)
            back = {n: be.asarray(a) for n, a in p2.items()}
            be.to_numpy(next(iter(back.values())))

        variants = [("native operators", native), ("NumPy round trip", through_numpy)]
        if be.adamw_update is not None:  # the backend's fused update hook
            fp = {n: p * 1.0 for n, p in params.items()}
            fm, fv = init_moments(fp)
            bc1, bc2 = bias_corrections(10, optimizer)
            fused = dict(lr=learning_rate_at(10, optimizer), beta1=optimizer.beta1, beta2=optimizer.beta2, eps=optimizer.eps,
                         weight_decay=optimizer.weight_decay, bias_correction1=bc1, bias_correction2=bc2,
                         decay={n: decays(tuple(p.shape)) for n, p in fp.items()})  # fmt: skip
            variants.append(("fused hook (adamw_update)", lambda: be.adamw_update(fp, grads, fm, fv, **fused)))
        for label, fn in variants:
            fn()
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            rows.append({"backend": backend_name, "update": label, "ms": 1000 * statistics.median(samples)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="model shape and batch of this preset (default, smoke)")
    parser.add_argument("--engines", default="torch plain,torch numpy-opt,torch auto,torch compile,jax plain,jax auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per engine")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation happens here)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default=None, help="JSON results (default benchmarks/results/train.json)")
    parser.add_argument(
        "--markdown", default=None, help="also write the table as markdown (e.g. docs/results/train_throughput.md)"
    )
    args = parser.parse_args(argv)

    from transformer_spec.spec.model import init_parameters
    from transformer_spec.train.config import get_preset

    preset = get_preset(args.preset)
    model_config = replace(preset.model, vocab_size=preset.tokenizer_vocab)
    if preset.name == "default":  # the shipped model's exact shape (its tokenizer stopped short of the requested vocabulary)
        try:
            from transformer_spec.checkpoint import default_checkpoint_path, read_config_document

            shipped = read_config_document(default_checkpoint_path() / "config.json")["model"]
            model_config = replace(model_config, vocab_size=int(shipped["vocab_size"]))
        except Exception:  # no shipped model: the preset's requested size
            pass
    train = preset.pretrain
    batch_size = args.batch_size or train.batch_size
    length = train.context_length
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    params = init_parameters(model_config, 0)
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.integers(0, model_config.vocab_size, (batch_size, length)),
            rng.integers(0, model_config.vocab_size, (batch_size, length)),
        )
        for _ in range(4)
    ]
    tokens = batch_size * length
    rows = []
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    print(
        f"model {model_config.d_model}x{model_config.n_layers} layers, V={model_config.vocab_size}, "
        f"{sum(p.size for p in params.values()):,} parameters; batch {batch_size} x {length} = {tokens} tokens/step",
        file=sys.stderr,
    )
    print(f"{'engine':<18}{'tokens/s':>12}{'ms/step':>10}{'first steps s':>15}")
    # Build and warm up every engine (compilation happens here), then time them in interleaved rounds — one
    # step of each engine per round — so a change in the machine's load (it may be shared) hits all alike.
    ready, failed = [], {}
    for name, made, problem in _engines(names):
        if problem:
            failed[name] = problem
            continue
        backend, make = made
        started = time.perf_counter()
        try:
            engine = make(backend, model_config, train.optimizer, params)
            for step in range(1, args.warmup + 1):
                engine.step(*batches[step % len(batches)], step)
        except Exception as error:  # a broken engine is a result, not a crash of the whole benchmark
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        ready.append((name, engine, time.perf_counter() - started))
    samples = {name: [] for name, _, _ in ready}
    for round_ in range(args.steps):
        step = args.warmup + 1 + round_
        for name, engine, _ in ready:
            start = time.perf_counter()
            engine.step(*batches[step % len(batches)], step)
            samples[name].append(time.perf_counter() - start)
    first_steps = {name: first for name, _, first in ready}
    for name in names:
        if name in failed:
            rows.append({"engine": name, "error": failed[name]})
            print(f"{name:<18}{'—':>12}{'—':>10}{'—':>15}  ({failed[name]})")
            continue
        median = statistics.median(samples[name])
        row = {
            "engine": name,
            "tokens_per_second": tokens / median,
            "ms_per_step": 1000 * median,
            "first_steps_s": first_steps[name],
            "warmup_steps": args.warmup,
            "timed_steps": args.steps,
        }
        rows.append(row)
        print(f"{name:<18}{row['tokens_per_second']:>12,.0f}{row['ms_per_step']:>10.1f}{row['first_steps_s']:>15.1f}")
    optimizer_rows = bench_optimizer(model_config, train.optimizer)
    print(f"\n{'optimizer update':<30}{'backend':<8}{'ms':>8}")
    for row in optimizer_rows:
        print(f"{row['update']:<30}{row['backend']:<8}{row['ms']:>8.2f}")
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        pass
    path = write_results(
        "train",
        {
            "preset": preset.name,
            "model": model_config.to_dict(),
            "batch_size": batch_size,
            "sequence_length": length,
            "tokens_per_step": tokens,
            "torch_threads": threads,
            "engines": rows,
            "optimizer_update": optimizer_rows,
        },
        args.out,
    )
    print(f"\nwrote {path}")
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(
            render_markdown(
                rows,
                optimizer_rows,
                model_config,
                batch_size,
                length,
                threads,
                " ".join(["python -m benchmarks.bench_train", *(argv if argv is not None else sys.argv[1:])]),
            ),
            encoding="utf-8",
        )
        print(f"wrote {args.markdown}")
    return 0


def render_markdown(rows, optimizer_rows, model_config, batch_size, length, threads, command) -> str:
    from ._common import machine

    m = machine()
    lines = [
        "# Training throughput",
        "",
        f"Measured by `{command}` on {m['cpus']} CPUs ({m['machine']}, Python {m['python']}), {m['when']}; "
        f"torch threads: {threads}. Model: width {model_config.d_model}, {model_config.n_layers} layers, "
        f"vocabulary {model_config.vocab_size}; batch {batch_size} x {length} tokens. "
        "Median over interleaved rounds (one step of each engine per round), after untimed warm-up steps "
        "(compilation happens there: *first steps*).",
        "",
        "| engine | tokens/s | ms/step | first steps (s) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['engine']} | — | — | — (error: {row['error'][:80]}) |")
        else:
            lines.append(
                f"| {row['engine']} | {row['tokens_per_second']:,.0f} | {row['ms_per_step']:.1f} | {row['first_steps_s']:.1f} |"
            )
    lines += ["", "One AdamW update over all parameters:", "", "| backend | update | ms |", "|---|---|---:|"]
    for row in optimizer_rows:
        lines.append(f"| {row['backend']} | {row['update']} | {row['ms']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
