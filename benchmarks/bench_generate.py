"""Generation speed per backend, against Hugging Face ``transformers`` on the same weights, in one run.

For each model — the shipped default model, and a GPT-2-small-sized model
(``ModelConfig.gpt2()``, weights from ``init_parameters``) — and each backend:
batch 1, greedy, KV cache, a fixed random prompt, the same number of new
tokens, no stopping at end-of-text. The same weights are loaded into
``transformers.GPT2LMHeadModel`` (through :func:`transformer_spec.hf.gpt2_model_from_params`)
and timed with ``model.generate(do_sample=False, use_cache=True)``.

Beside them, the weight-streaming limit of this machine, measured in the same
run: a decoding step reads every weight once (the tied embedding once, as the
output projection), so decode can go no faster than the GEMV bandwidth
(``--gemv-mb`` MB float32 matrix times a vector, median of 20, on the threads
given) divided by the weight bytes per token. "% of limit" is decode tokens/s
over that bound.

Reported per implementation: prefill seconds (our time to first token),
decode tokens/s (ours: tokens after the first per second), end-to-end new
tokens/s (new tokens / total time; the only figure HF's ``generate`` gives), and
the ratio ours / HF end-to-end. Whether our greedy tokens equal HF's is
reported too (random GPT-2 weights give near-ties, so a late divergence is
rounding, not a bug). Every figure is the median of ``--repeats`` runs after one
warm-up run (which also compiles JAX). Times are never asserted.

Llama-shaped rows (``--models smollm``): a SmolLM-135M-shaped model (30 layers,
width 576, 9 heads, 3 KV heads, random weights) at batch 1 and batch 8
(``--llama-batches``), prompts of different lengths, ours (batched generation:
left padding with a padding mask) against ``LlamaForCausalLM.generate`` with a
left-padded attention mask on the same weights; new tokens/s counts every row's
tokens, and the ratio is ours / HF at the same batch size. Written to
``results/generate_llama.json``.

    python -m benchmarks.bench_generate --new-tokens 32 --repeats 3 [--models default,gpt2] [--threads N] [--out FILE]
    python -m benchmarks.bench_generate --models smollm --llama-batches 1,8 --new-tokens 16 --repeats 1 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _thread_limit_from_argv(argv: list[str]) -> int | None:
    """``--threads N`` must act before NumPy, torch and JAX start their thread pools, so it is read here."""
    for index, argument in enumerate(argv):
        if argument == "--threads" and index + 1 < len(argv):
            return int(argv[index + 1])
        if argument.startswith("--threads="):
            return int(argument.split("=", 1)[1])
    return None


THREADS = _thread_limit_from_argv(sys.argv[1:])
if THREADS is not None:
    # On a shared, busy machine a BLAS or torch thread pool waiting for its own threads can be
    # ten times slower than one thread (measured here: GPT-2-small decode 0.6 s/token vs 75 ms).
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(THREADS)
    if THREADS == 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, write_results  # noqa: E402
from transformer_spec.backends import available_backends, load_backend  # noqa: E402
from transformer_spec.checkpoint import load_default_checkpoint  # noqa: E402
from transformer_spec.generate import generate_tokens, native_params  # noqa: E402
from transformer_spec.spec.config import ModelConfig  # noqa: E402
from transformer_spec.spec.model import init_parameters  # noqa: E402


def models(names: list[str]) -> list[tuple[str, ModelConfig, dict[str, np.ndarray]]]:
    out = []
    for name in names:
        if name == "default":
            checkpoint = load_default_checkpoint()
            out.append(("default", checkpoint.config, dict(checkpoint.params)))
        elif name == "gpt2":
            config = ModelConfig.gpt2()
            out.append(("gpt2-small (random)", config, init_parameters(config, seed=0)))
        else:
            raise SystemExit(f"unknown model {name!r}; expected default or gpt2")
    return out


def gemv_bandwidth(megabytes: int) -> float:
    """Bytes per second that a float32 matrix-vector product streams from memory here (median of 20)."""
    side = int((megabytes * 2**20 / 4) ** 0.5)
    matrix = np.random.default_rng(0).standard_normal((side, side), dtype=np.float32)  # (side, side), larger than caches
    vector = np.ones((1, side), np.float32)
    vector @ matrix  # warm-up: page the matrix in
    seconds = []
    for _ in range(20):
        start = time.perf_counter()
        vector @ matrix
        seconds.append(time.perf_counter() - start)
    return matrix.nbytes / statistics.median(seconds)


def weight_bytes_per_token(config: ModelConfig, params: dict[str, np.ndarray]) -> int:
    """Bytes of float32 weights one decoding step reads: all of them, but a single row of the position table."""
    total = sum(p.size for name, p in params.items() if name != "wpe") + (config.d_model if "wpe" in params else 0)
    return 4 * total


def time_ours(
    backend_name: str, config: ModelConfig, params: dict[str, np.ndarray], prompt: list[int], new_tokens: int, repeats: int
) -> dict[str, Any]:
    backend = load_backend(backend_name)
    native = native_params(backend, params, "float32")

    def once():
        return generate_tokens(backend, config, native, prompt, max_new_tokens=new_tokens, temperature=0.0, eos_id=None)

    warm_start = time.perf_counter()
    first = once()  # warm-up (and JAX compilation of the prefill and decode shapes)
    warm_up = time.perf_counter() - warm_start
    runs = [once() for _ in range(repeats)]
    return {
        "implementation": f"ours ({backend_name})",
        "prefill_s": statistics.median(r.prefill_seconds for r in runs),
        "decode_tokens_per_s": statistics.median((len(r.token_ids) - 1) / r.decode_seconds for r in runs),
        "end_to_end_tokens_per_s": statistics.median(len(r.token_ids) / (r.prefill_seconds + r.decode_seconds) for r in runs),
        "warm_up_s": warm_up,
        "tokens": list(first.token_ids),
    }


def time_hf(
    config: ModelConfig, params: dict[str, np.ndarray], prompt: list[int], new_tokens: int, repeats: int
) -> dict[str, Any]:
    import torch

    from transformer_spec.hf import gpt2_model_from_params

    model = gpt2_model_from_params(params, config)
    model.generation_config.eos_token_id = None  # generate exactly new_tokens, like ours with eos_id=None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor([prompt])

    def once() -> tuple[float, list[int]]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, use_cache=True, num_beams=1)
        elapsed = time.perf_counter() - start
        return elapsed, out[0, len(prompt) :].tolist()

    warm_start = time.perf_counter()
    _, tokens = once()
    warm_up = time.perf_counter() - warm_start
    seconds = statistics.median(once()[0] for _ in range(repeats))
    if len(tokens) != new_tokens:
        raise RuntimeError(f"transformers generated {len(tokens)} tokens, expected {new_tokens}")
    return {
        "implementation": "HF transformers",
        "prefill_s": None,
        "decode_tokens_per_s": None,
        "end_to_end_tokens_per_s": new_tokens / seconds,
        "warm_up_s": warm_up,
        "tokens": tokens,
    }


# ---------------------------------------------------------------------- Llama-shaped rows (issue 13)
#
# A SmolLM-135M-shaped model with random weights (rotary, RMS norm, SwiGLU, grouped-query attention 9 heads / 3 KV
# heads, tied embeddings), at batch 1 and batch 8: ours through generate_tokens / generate_batch_tokens (left padding
# with a padding mask), HF through LlamaForCausalLM.generate on the same weights with a left-padded attention mask.
# Prompts of different lengths, greedy, no end-of-text: every row makes exactly --new-tokens tokens.

LLAMA_MODELS = ("smollm",)


def smollm_model() -> tuple[str, ModelConfig, dict[str, np.ndarray]]:
    """SmolLM-135M's shape (30 layers, width 576, 9 heads, 3 KV heads, F 1536, V 49152), random weights."""
    config = ModelConfig(
        vocab_size=49152,
        context_length=2048,
        d_model=576,
        n_heads=9,
        n_kv_heads=3,
        n_layers=30,
        d_ff=1536,
        positional="rotary",
        norm="rms",
        activation="swiglu",
        tie_embeddings=True,
        bias=False,
        norm_eps=1e-5,
        rope_base=10000.0,
    )
    return "smollm-135m shape (random)", config, init_parameters(config, seed=0)


def llama_prompts(config: ModelConfig, batch: int, prompt_tokens: int) -> list[list[int]]:
    """``batch`` prompts of different lengths (prompt_tokens/2 .. prompt_tokens), seeded."""
    rng = np.random.default_rng(0)
    lengths = np.linspace(max(prompt_tokens // 2, 1), prompt_tokens, batch).round().astype(int) if batch > 1 else [prompt_tokens]
    return [[int(i) for i in rng.integers(0, config.vocab_size, size=n)] for n in lengths]


def time_ours_llama(
    backend_name: str, config: ModelConfig, params: dict[str, np.ndarray], prompts: list[list[int]], new_tokens: int, repeats: int
) -> dict[str, Any]:
    from transformer_spec.generate import generate_batch_tokens

    backend = load_backend(backend_name)
    native = native_params(backend, params, "float32")

    def once() -> tuple[float, list[list[int]]]:
        start = time.perf_counter()
        if len(prompts) == 1:
            out = [generate_tokens(backend, config, native, prompts[0], max_new_tokens=new_tokens, temperature=0.0, eos_id=None)]
        else:
            out = generate_batch_tokens(
                backend, config, native, prompts, max_new_tokens=new_tokens, temperature=0.0, seeds=[0] * len(prompts)
            )
        return time.perf_counter() - start, [list(r.token_ids) for r in out]

    warm_start = time.perf_counter()
    _, tokens = once()  # warm-up (JAX compiles here)
    warm_up = time.perf_counter() - warm_start
    seconds = statistics.median(once()[0] for _ in range(repeats))
    return {"implementation": f"ours ({backend_name})", "seconds": seconds, "warm_up_s": warm_up, "tokens": tokens}


def time_hf_llama(
    config: ModelConfig, params: dict[str, np.ndarray], prompts: list[list[int]], new_tokens: int, repeats: int
) -> dict[str, Any]:
    import torch

    from transformer_spec.hf_llama import llama_model_from_params

    model = llama_model_from_params(params, config)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    longest = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (longest - len(p)) + p for p in prompts])  # (B, P): left padding, as HF expects
    mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])  # (B, P)

    def once() -> tuple[float, list[list[int]]]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False, use_cache=True, num_beams=1
            )
        return time.perf_counter() - start, out[:, longest:].tolist()

    warm_start = time.perf_counter()
    _, tokens = once()
    warm_up = time.perf_counter() - warm_start
    seconds = statistics.median(once()[0] for _ in range(repeats))
    return {"implementation": "HF transformers", "seconds": seconds, "warm_up_s": warm_up, "tokens": tokens}


def run_llama_rows(args: argparse.Namespace, backends: list[str], names: list[str]) -> list[dict[str, Any]]:
    """The Llama-shaped rows: per batch size, ours per backend and HF; new tokens/s (all rows) and ours/HF."""
    rows: list[dict[str, Any]] = []
    for name in names:
        if name != "smollm":
            raise SystemExit(f"unknown model {name!r}; expected default, gpt2 or smollm")
        label, config, params = smollm_model()
        for batch in [int(b) for b in args.llama_batches.split(",") if b]:
            prompts = llama_prompts(config, batch, args.prompt_tokens)
            print(
                f"\n{label}: {sum(p.size for p in params.values()):,} parameters, batch {batch}, prompts of "
                f"{min(map(len, prompts))}..{max(map(len, prompts))} tokens, {args.new_tokens} new tokens each, "
                f"median of {args.repeats}",
                flush=True,
            )
            results = [time_ours_llama(b, config, params, prompts, args.new_tokens, args.repeats) for b in backends]
            hf = None if args.no_hf else time_hf_llama(config, params, prompts, args.new_tokens, args.repeats)
            if hf is not None:
                results.append(hf)
            print(f"{'implementation':<18} {'seconds':>8} {'new tok/s':>10} {'ours/HF':>8} {'= HF tokens':>12} {'warm-up s':>10}")
            for result in results:
                result.update(model=label, batch_size=batch, new_tokens=args.new_tokens)
                result["tokens_per_s"] = batch * args.new_tokens / result["seconds"]
            for result in results:
                if hf is not None:
                    result["ratio_vs_hf"] = result["tokens_per_s"] / hf["tokens_per_s"]
                    result["rows_equal_to_hf"] = sum(a == b for a, b in zip(result["tokens"], hf["tokens"]))
                ratio = f"{result['ratio_vs_hf']:.2f}" if "ratio_vs_hf" in result else ""
                equal = f"{result['rows_equal_to_hf']}/{batch}" if "rows_equal_to_hf" in result else ""
                print(
                    f"{result['implementation']:<18} {result['seconds']:>8.2f} {result['tokens_per_s']:>10.1f} {ratio:>8} "
                    f"{equal:>12} {result['warm_up_s']:>10.1f}",
                    flush=True,
                )
                del result["tokens"]
                rows.append(result)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,gpt2", help="comma-separated: default, gpt2, smollm (Llama-shaped)")
    parser.add_argument("--llama-batches", default="1,8", help="batch sizes of the Llama-shaped rows (default: 1,8)")
    parser.add_argument("--llama-out", default=str(RESULTS / "generate_llama.json"))
    parser.add_argument("--backends", default=",".join(b for b in ("numpy", "torch", "jax") if b in available_backends()))
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS, torch and XLA thread pools to N threads (set before they start; default: their own)",
    )
    parser.add_argument("--no-hf", action="store_true", help="skip transformers")
    parser.add_argument("--gemv-mb", type=int, default=256, help="size of the matrix that measures the GEMV bandwidth")
    parser.add_argument("--out", default=str(RESULTS / "generate.json"))
    args = parser.parse_args(argv)

    torch_threads = None
    if "torch" in args.backends.split(",") or not args.no_hf:
        import torch

        if args.threads is not None:
            torch.set_num_threads(args.threads)  # ours (torch) and HF alike
        torch_threads = torch.get_num_threads()
    backends = [b for b in args.backends.split(",") if b]
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    bandwidth = gemv_bandwidth(args.gemv_mb)
    print(f"GEMV bandwidth: {bandwidth / 1e9:.2f} GB/s ({args.gemv_mb} MB float32 matrix x vector, median of 20)", flush=True)
    names = [m for m in args.models.split(",") if m]
    llama_names = [m for m in names if m in LLAMA_MODELS]
    if llama_names:
        llama_rows = run_llama_rows(args, backends, llama_names)
        settings = {"prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "repeats": args.repeats,
                    "greedy": True, "dtype": "float32", "threads": args.threads, "torch_threads": torch_threads,
                    "load_average_before": load_before, "load_average_after": os.getloadavg()}  # fmt: skip
        print(f"\nwrote {write_results('generate_llama', {'settings': settings, 'results': llama_rows}, args.llama_out)}")
        if len(llama_names) == len(names):
            return 0
    for label, config, params in models([m for m in names if m not in LLAMA_MODELS]):
        rng = np.random.default_rng(0)
        prompt = [int(i) for i in rng.integers(0, config.vocab_size, size=args.prompt_tokens)]
        print(
            f"\n{label}: {sum(p.size for p in params.values()):,} parameters, prompt {len(prompt)} tokens, "
            f"{args.new_tokens} new tokens, median of {args.repeats}",
            flush=True,
        )
        limit = bandwidth / weight_bytes_per_token(config, params)
        print(f"weight-streaming limit: {limit:.1f} tokens/s ({weight_bytes_per_token(config, params) / 1e6:.1f} MB per token)")
        results = []
        hf = None
        if not args.no_hf:
            hf = time_hf(config, params, prompt, args.new_tokens, args.repeats)
        for backend_name in backends:
            results.append(time_ours(backend_name, config, params, prompt, args.new_tokens, args.repeats))
        if hf is not None:
            results.append(hf)
        print(
            f"{'implementation':<18} {'prefill ms':>10} {'decode tok/s':>13} {'% of limit':>10} {'end-to-end tok/s':>17} {'ours/HF':>8} {'= HF tokens':>12}"
        )
        for result in results:
            result["model"] = label
            result["limit_tokens_per_s"] = limit
            if result["decode_tokens_per_s"] is not None:
                result["decode_fraction_of_limit"] = result["decode_tokens_per_s"] / limit
            if hf is not None:
                result["ratio_vs_hf"] = result["end_to_end_tokens_per_s"] / hf["end_to_end_tokens_per_s"]
                agree = next((i for i, (a, b) in enumerate(zip(result["tokens"], hf["tokens"])) if a != b), len(hf["tokens"]))
                result["tokens_agreeing_with_hf"] = agree
            prefill = "" if result["prefill_s"] is None else f"{result['prefill_s'] * 1000:.1f}"
            decode = "" if result["decode_tokens_per_s"] is None else f"{result['decode_tokens_per_s']:.1f}"
            ratio = f"{result['ratio_vs_hf']:.2f}" if "ratio_vs_hf" in result else ""
            share = f"{100 * result['decode_fraction_of_limit']:.0f}%" if "decode_fraction_of_limit" in result else ""
            agreeing = f"{result['tokens_agreeing_with_hf']}/{args.new_tokens}" if "tokens_agreeing_with_hf" in result else ""
            print(
                f"{result['implementation']:<18} {prefill:>10} {decode:>13} {share:>10} {result['end_to_end_tokens_per_s']:>17.1f} {ratio:>8} {agreeing:>12}",
                flush=True,
            )
            del result["tokens"]
            rows.append(result)
    settings = {
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "greedy": True,
        "batch_size": 1,
        "kv_cache": True,
        "dtype": "float32",
        "threads": args.threads,
        "torch_threads": torch_threads,
        "gemv_bytes_per_s": bandwidth,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    path = write_results("generate", {"settings": settings, "results": rows}, args.out)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
