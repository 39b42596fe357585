"""Same seed, same tokens? Token agreement across backends when generating from larger random models.

For every model, kind of weights, decoding mode and seed, each backend generates
``--new-tokens`` tokens from the same random prompt with the same weights
(float32) and the same seed: ``u`` is drawn on the host from
``numpy.random.Generator(PCG64(seed))``, one per step, and ``sample`` is a pure
function of the logits and ``u``. The first backend is the reference; for each
other backend the script reports whether the whole sequence is identical, and
the *token agreement rate*: the share of new tokens generated before the first
divergence (after it, the two continue from different histories, so later
positions are not comparable).

Where sequences diverge, the script recomputes both backends' logits on the
common prefix and reports the step, the largest logit difference and, for
greedy decoding, the gap between the two best logits. Float32 backends that sum
in different orders differ in the last bits of the logits; when two tokens are
that close (a near-tie for greedy, ``u`` within a few ulps of a cumulative
boundary for sampling), the token may legitimately flip. A divergence whose
logits still agree within the float32 composite tolerance is labelled
"rounding (near-tie)"; one whose logits do not is labelled "LOGITS DIFFER" — a
bug worth a ``tspec crosscheck``.

GPT-2's initial weights (std 0.02) make almost uniform logits — near-ties
everywhere, the hardest case for agreement; the scaled weights of the
conformance suite make peaked ones.

    python -m benchmarks.bench_agreement [--backends numpy,torch,jax] [--models small,medium]
        [--weights init,scaled] [--seeds 4] [--new-tokens 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from transformer_spec.backends import Backend, available_backends, load_backend
from transformer_spec.conformance import reference as ref
from transformer_spec.conformance import strategies as cs
from transformer_spec.conformance.case import compare
from transformer_spec.conformance.crosscheck import CONFIGS
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.model import init_parameters
from transformer_spec.spec.tolerances import tolerance

from ._common import write_results

MODELS: dict[str, ModelConfig] = {
    **CONFIGS,
    # Larger than the suite's models: 4 layers, width 256, a 4096-token vocabulary.
    "medium": ModelConfig(vocab_size=4096, context_length=256, d_model=256, n_heads=8, n_layers=4, d_ff=1024),
}
MODES = {  # name -> (temperature, top_k, top_p)
    "greedy": (0.0, None, None),
    "sampled": (1.0, None, None),
    "top_k_50": (0.8, 50, None),
    "top_p_0.9": (1.0, None, 0.9),
}
PROMPT_LENGTH = 8


def weights(config: ModelConfig, kind: str, seed: int) -> dict[str, np.ndarray]:
    if kind == "init":
        return init_parameters(config, seed, dtype="float64")
    if kind == "scaled":
        return cs.model_parameters(config, seed)
    raise ValueError(f"unknown weights {kind!r}; expected init or scaled")


def generate(
    backend: Backend, config: ModelConfig, params: dict[str, Any], prompt: list[int], new_tokens: int, mode: str, seed: int
) -> list[int]:
    """``new_tokens`` tokens after ``prompt``: ``transformer_spec.generate.generate_tokens`` when it exists, else the same loop here."""
    temperature, top_k, top_p = MODES[mode]
    try:
        from transformer_spec.generate import generate_tokens
    except ImportError:
        generate_tokens = None
    if generate_tokens is not None:
        return list(
            generate_tokens(
                backend,
                config,
                params,
                prompt,
                max_new_tokens=new_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
            ).token_ids
        )
    # The loop of spec/DESIGN.md: prefill, then one token at a time with the KV cache; one u per step, even greedy.
    rng = np.random.Generator(np.random.PCG64(seed))
    logits, cache = backend.model_forward(params, config, backend.asarray(np.asarray([prompt]), "int64"))
    tokens: list[int] = []
    while True:
        token = backend.sample(logits[0, -1, ...], rng.random(), temperature, top_k, top_p)
        tokens.append(token)
        if len(tokens) == new_tokens:
            return tokens
        logits, cache = backend.model_forward(params, config, backend.asarray(np.asarray([[token]]), "int64"), cache)


def last_logits(backend: Backend, config: ModelConfig, params: dict[str, Any], ids: list[int]) -> np.ndarray:
    logits, _ = backend.model_forward(params, config, backend.asarray(np.asarray([ids]), "int64"))
    return np.asarray(backend.to_numpy(logits), dtype=np.float64)[0, -1]


def diagnose(
    reference: Backend,
    other: Backend,
    config: ModelConfig,
    reference_params: dict[str, Any],
    other_params: dict[str, Any],
    history: list[int],
    mode: str,
    seed: int,
    step: int,
) -> dict[str, Any]:
    """Why two backends chose different tokens at ``step``, after ``history``: their logits there, compared."""
    a = last_logits(reference, config, reference_params, history)
    b = last_logits(other, config, other_params, history)
    tol = tolerance("float32", "composite")
    magnitude = np.full(a.shape, max(float(np.abs(a).max()), 1.0))
    within = compare(b, a, tol.rtol, tol.atol, magnitude) is None
    top2 = np.sort(a)[-2:]
    temperature, top_k, top_p = MODES[mode]
    u_margin = None
    if temperature > 0:  # how close u was to a boundary of the reference's cumulative distribution
        u = np.random.Generator(np.random.PCG64(seed)).random(step + 1)[step]  # the loop draws one u per step
        cumulative = np.cumsum(ref.sampling_distribution(a, temperature, top_k, top_p))
        u_margin = float(np.abs(cumulative - u).min())
    return {
        "max_logit_difference": float(np.abs(a - b).max()),
        "top2_gap": float(top2[1] - top2[0]) if mode == "greedy" else None,
        "u_margin": u_margin,
        "cause": "rounding (near-tie)" if within else "LOGITS DIFFER",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(["numpy"] + [b for b in available_backends() if b in ("torch", "jax")]))
    parser.add_argument("--models", default="small,medium", help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument(
        "--weights", default="init,scaled", help="init (GPT-2 initialisation) and/or scaled (the suite's weights)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument(
        "--seeds", type=int, default=4, help="seeds per (model, weights, mode); each seed draws weights, prompt and u"
    )
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    labels = args.backends.split(",")  # the names as given: two backends may share a class name
    backends = [load_backend(name) for name in labels]
    if len(backends) < 2:
        parser.error("--backends needs at least two backends")
    runs: list[dict[str, Any]] = []
    start = time.perf_counter()
    for model in args.models.split(","):
        config = MODELS[model]
        for kind in args.weights.split(","):
            for seed in range(args.seeds):
                params = weights(config, kind, seed)
                native = [{k: be.asarray(v, "float32") for k, v in params.items()} for be in backends]
                prompt = [int(i) for i in np.random.default_rng([seed, 7]).integers(0, config.vocab_size, PROMPT_LENGTH)]
                for mode in args.modes.split(","):
                    tokens = [generate(be, config, p, prompt, args.new_tokens, mode, seed) for be, p in zip(backends, native)]
                    expected = tokens[0]
                    for i in range(1, len(backends)):
                        got = tokens[i]
                        same = next((i for i, (x, y) in enumerate(zip(expected, got)) if x != y), len(expected))
                        row: dict[str, Any] = {
                            "model": model,
                            "weights": kind,
                            "mode": mode,
                            "seed": seed,
                            "backend": labels[i],
                            "identical": same == len(expected),
                            "agreement": same / len(expected),
                        }
                        if same < len(expected):
                            row["diverges_at"] = same
                            row.update(
                                diagnose(
                                    backends[0],
                                    backends[i],
                                    config,
                                    native[0],
                                    native[i],
                                    prompt + expected[:same],
                                    mode,
                                    seed,
                                    same,
                                )
                            )
                        runs.append(row)
    elapsed = time.perf_counter() - start

    summary = []
    print(
        f"token agreement with {labels[0]}: {args.seeds} seeds x {args.new_tokens} new tokens, float32, prompt of {PROMPT_LENGTH} random tokens"
    )
    width = max(len(label) for label in labels) + 2
    print(f"{'model':<10}{'weights':<8}{'mode':<11}{'backend':<{width}}{'identical':>10}{'agreement':>11}  divergences")
    groups: dict[tuple, list[dict]] = {}
    for row in runs:
        groups.setdefault((row["model"], row["weights"], row["mode"], row["backend"]), []).append(row)
    for (model, kind, mode, name), rows in groups.items():
        identical = sum(r["identical"] for r in rows)
        agreement = float(np.mean([r["agreement"] for r in rows]))
        causes = [
            f"step {r['diverges_at']}: {r['cause']}, |dlogit| {r['max_logit_difference']:.2g}"
            + (f", top-2 gap {r['top2_gap']:.2g}" if r.get("top2_gap") is not None else "")
            + (f", |u - boundary| {r['u_margin']:.2g}" if r.get("u_margin") is not None else "")
            for r in rows
            if not r["identical"]
        ]
        print(
            f"{model:<10}{kind:<8}{mode:<11}{name:<{width}}{f'{identical}/{len(rows)}':>10}{agreement:>10.1%}  {'; '.join(causes) or '-'}"
        )
        summary.append(
            {
                "model": model,
                "weights": kind,
                "mode": mode,
                "backend": name,
                "identical": f"{identical}/{len(rows)}",
                "agreement": agreement,
                "near_tie_flips": sum(r.get("cause") == "rounding (near-tie)" for r in rows),
                "logit_mismatches": sum(r.get("cause") == "LOGITS DIFFER" for r in rows),
            }
        )
    bugs = sum(s["logit_mismatches"] for s in summary)
    flips = sum(s["near_tie_flips"] for s in summary)
    print()
    print(
        f"{flips} divergence(s) where the logits still agree within the float32 tolerance: a one-ulp difference in float32 "
        "logits can legitimately flip a token when two candidates are that close (greedy near-ties, or u next to a "
        "cumulative boundary); after a flip the sequences continue from different histories."
    )
    print(
        f"{bugs} divergence(s) with logits outside the tolerance" + (": run `tspec crosscheck` on that model." if bugs else ".")
    )
    print(f"({elapsed:.1f} s)")
    path = write_results(
        "agreement",
        {
            "reference": labels[0],
            "backends": labels,
            "new_tokens": args.new_tokens,
            "seeds": args.seeds,
            "summary": summary,
            "runs": runs,
            "seconds": elapsed,
            "note": "agreement = share of new tokens before the first divergence; a divergence whose logits "
            "agree within the float32 tolerance is a legitimate near-tie flip",
        },
        args.out,
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
