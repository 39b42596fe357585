"""Build the default model that ships inside the package — one reproducible command.

    python scripts/build_default_model.py            # ≈ 10-20 min on 2 CPU cores (torch backend, 1 thread)

Stages (every number below comes from transformer_spec.train.config.DEFAULT):

1. **Corpus**: ``generate_corpus(0, 20000)`` for pretraining, and 400 other
   documents (another seed) held out for perplexity.
2. **Tokenizer**: byte-level BPE with ``<|endoftext|>``, trained on the first
   corpus documents.
3. **Pretrain** a small GPT-2-style decoder on the corpus (next-token loss).
4. **Fine-tune** it on question/answer, chat and instruction examples
   (``build_finetune_dataset(0)``: 20% of the countries are held out and appear
   in no fine-tuning example), loss on the answer tokens only; every batch
   also rehearses 8 windows of pretraining text, without which the model
   forgets the held-out capitals' tokens (measured: 0% held-out accuracy).
   During both stages the build records *learning as it happens*: at a dozen
   steps (log-spaced, step 0 included) the held-out loss and the model's
   greedy continuation of a few fixed prompts, with the weights of that step
   (``LearningRecorder``; it draws no random numbers of the training run, so
   the trained weights are the same with or without it).
5. **Evaluate**: per-token and per-word perplexity of both models on the
   held-out documents, against word n-gram baselines (n = 1..5) trained on the
   same corpus; answers to the held-out countries' capital questions, from the
   base model (the bare question, and the fine-tuning prompt format) and from
   the fine-tuned model.
6. **Write** the fine-tuned model into ``transformer_spec/assets/default_model/``
   (safetensors) and the measured results into ``docs/results/default_model.json``
   and ``docs/results/default_model.md``. Nothing in the results is typed in.

Intermediate runs (resumable training folders) go to ``--work-dir``
(default ``build/default_model``); ``--resume`` continues an interrupted build.
``--preset smoke`` runs the same recipe in seconds (for tests and trying it out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from transformer_spec.backends import load_backend  # noqa: E402
from transformer_spec.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from transformer_spec.data import build_finetune_dataset, capital_qa_examples, generate_corpus  # noqa: E402
from transformer_spec.train.config import get_preset  # noqa: E402
from transformer_spec.train.evaluate import answer_examples, ngram_baselines, qa_summary, transformer_perplexity  # noqa: E402
from transformer_spec.train.pipeline import (  # noqa: E402
    replay_spec,  # noqa: E402
    start_finetuning,
    start_pretraining,
    train_tokenizer,
)
from transformer_spec.train.trainer import STATE_FILE  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="default", help="default (the shipped model) or smoke (seconds)")
    parser.add_argument("--backend", default="torch", help="torch (fastest here) or jax")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: bit-reproducible, and fastest on a shared machine)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the loss (measure: see benchmarks/bench_train.py)")
    parser.add_argument("--work-dir", default="build/default_model", help="intermediate runs (resumable)")
    parser.add_argument(
        "--out", default=None, help="where the model goes (default: transformer_spec/assets/default_model for the default preset)"
    )
    parser.add_argument(
        "--results", default=None, help="results stem (default: docs/results/default_model for the default preset)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the runs in --work-dir instead of starting over")
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--finetune-steps", type=int, default=None)
    parser.add_argument(
        "--dtype",
        default="float16",
        choices=("float16", "float32"),
        help="storage dtype of the shipped weights (computed in float32 either way); evaluated as stored",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--render-only", action="store_true", help="only rewrite the .md results page from the existing .json (no training)"
    )
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# What the recorder shows at each recorded step: greedy continuations of these prompts (fine-tuning: in the
# fine-tuning prompt format). Nigeria is one of the held-out countries: no fine-tuning example names it.
PRETRAIN_PROMPTS = ("Once upon a time", "The king")
FINETUNE_PROMPTS = ("What is the capital of Nigeria?", "Hello!", "Write a story about a cat.")
RECORD_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75)  # of the stage's steps, plus its first and last
RECORD_TOKENS = 24


class LearningRecorder:
    """Held-out loss and greedy samples at a few steps of a training stage, from the weights of that step.

    Attached as the trainer's ``on_step`` callback. Sampling runs on the NumPy backend with temperature 0 and
    evaluation reads only the held-out batches, so recording leaves the training run itself unchanged.
    """

    def __init__(self, stage: str, prompts: tuple[str, ...], template: str | None) -> None:
        self.stage, self.prompts, self.template = stage, prompts, template
        self.records: list[dict] = []
        self.steps: set[int] = set()

    def attach(self, trainer):
        total = trainer.config.steps
        self.steps = {max(1, round(total * f)) for f in RECORD_FRACTIONS} | {total}
        self.records = [r for r in self.records if r["step"] <= trainer.step]  # a resumed run keeps what was recorded
        if trainer.step == 0:
            self.record(trainer)
        trainer.on_step = self._on_step
        return trainer

    def _on_step(self, trainer, result) -> None:
        if trainer.step in self.steps:
            self.record(trainer)

    def record(self, trainer) -> None:
        from transformer_spec.generate import generate

        numpy_backend = load_backend("numpy")
        params = {n: np.asarray(trainer.backend.to_numpy(p), dtype=np.float32) for n, p in trainer.engine.params.items()}
        tokenizer = trainer.tokenizer
        evaluation = trainer.evaluate()
        recent = trainer.losses[-10:]
        samples = []
        for prompt in self.prompts:
            text = self.template.format(prompt=prompt) if self.template else prompt
            out = generate(
                numpy_backend,
                (trainer.model_config, params, tokenizer),
                text,
                max_new_tokens=RECORD_TOKENS,
                temperature=0,
                seed=0,
            )
            samples.append({"prompt": prompt, "text": out.text, "stop_reason": out.stop_reason})
        self.records.append(
            {
                "step": trainer.step,
                "train_loss": float(np.mean(recent)) if recent else None,
                "held_out_loss": evaluation["loss"] if evaluation else None,
                "samples": samples,
            }
        )
        if not trainer.progress:
            return
        log(f"{self.stage} step {trainer.step}: recorded ({len(samples)} samples)")


def run_stage(make_trainer, run_dir: Path, resume: bool, backend, args, changes, recorder: LearningRecorder | None = None):
    """Train one stage in ``run_dir``, resuming when asked and possible; returns (TrainResult, seconds)."""
    started = time.perf_counter()
    if resume and (run_dir / STATE_FILE).exists():
        from transformer_spec.train.pipeline import resume as resume_run

        state = json.loads((run_dir / STATE_FILE).read_text())
        if state["step"] >= state["config"]["steps"] and not changes:
            log(f"{run_dir}: already complete (step {state['step']})")
            return None, 0.0
        trainer = resume_run(backend, run_dir, compile=args.compile, changes=changes, progress=not args.quiet)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        trainer = make_trainer()
    if recorder is not None:
        recorder.attach(trainer)
    result = trainer.run()
    if result.stopped != "finished":
        raise SystemExit(f"interrupted at step {result.step}; continue with: python scripts/build_default_model.py --resume")
    return result, time.perf_counter() - started


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = get_preset(args.preset)
    is_default = preset.name == "default"
    out = (
        Path(args.out)
        if args.out
        else (ROOT / "transformer_spec/assets/default_model" if is_default else Path(args.work_dir) / "model")
    )
    results_stem = (
        Path(args.results)
        if args.results
        else (ROOT / "docs/results/default_model" if is_default else Path(args.work_dir) / "results")
    )
    if args.render_only:
        results = json.loads(Path(str(results_stem) + ".json").read_text(encoding="utf-8"))
        Path(str(results_stem) + ".md").write_text(render_markdown(results), encoding="utf-8")
        print(render_markdown(results))
        return 0
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    backend = load_backend(args.backend)
    pretrain_config, finetune_config = preset.pretrain, preset.finetune
    if args.pretrain_steps:
        pretrain_config = pretrain_config.with_changes(steps=args.pretrain_steps)
    if args.finetune_steps:
        finetune_config = finetune_config.with_changes(steps=args.finetune_steps)
    timings: dict[str, float] = {}
    build_started = time.perf_counter()

    # 1. corpus
    t = time.perf_counter()
    data_spec = {
        "kind": "corpus",
        "seed": preset.corpus_seed,
        "documents": preset.corpus_documents,
        "held_out_seed": preset.held_out_seed,
        "held_out_documents": preset.held_out_documents,
    }
    corpus = generate_corpus(preset.corpus_seed, preset.corpus_documents)
    held_out = generate_corpus(preset.held_out_seed, preset.held_out_documents)
    timings["corpus"] = time.perf_counter() - t
    log(f"corpus: {len(corpus)} documents, {len(held_out)} held out")

    # 2. tokenizer
    t = time.perf_counter()
    tokenizer = train_tokenizer(corpus, preset.tokenizer_vocab, preset.tokenizer_documents)
    timings["tokenizer"] = time.perf_counter() - t
    model_config = replace(preset.model, vocab_size=tokenizer.vocab_size)
    log(f"tokenizer: {tokenizer.vocab_size} tokens; model: {model_config}")

    # 3. pretrain
    from transformer_spec.train.data import PROMPT_TEMPLATE

    pretrain_recorder = LearningRecorder("pretrain", PRETRAIN_PROMPTS, None)
    finetune_recorder = LearningRecorder("finetune", FINETUNE_PROMPTS, PROMPT_TEMPLATE)
    base_dir = work / "base"
    pre_result, timings["pretrain"] = run_stage(
        lambda: start_pretraining(
            backend,
            model_config,
            tokenizer,
            pretrain_config,
            data_spec,
            out_dir=base_dir,
            compile=args.compile,
            progress=not args.quiet,
        ),
        base_dir,
        args.resume,
        backend,
        args,
        {"steps": args.pretrain_steps} if args.pretrain_steps else None,
        pretrain_recorder,
    )
    base = load_checkpoint(base_dir)
    log(f"pretrained: step {base.metadata['step']}, {timings['pretrain']:.0f} s")

    # 4. fine-tune
    ft_spec = {
        "kind": "builtin",
        "seed": preset.finetune_seed,
        "holdout_fraction": 0.2,
        "stories_per_subject": preset.stories_per_subject,
        "replay": replay_spec(base, preset.replay_rows, preset.replay_documents),
    }
    ft_dir = work / "finetuned"
    ft_result, timings["finetune"] = run_stage(
        lambda: start_finetuning(
            backend, base, finetune_config, ft_spec, out_dir=ft_dir, compile=args.compile, progress=not args.quiet
        ),
        ft_dir,
        args.resume and (ft_dir / STATE_FILE).exists(),
        backend,
        args,
        {"steps": args.finetune_steps} if args.finetune_steps else None,
        finetune_recorder,
    )
    tuned = load_checkpoint(ft_dir)
    log(f"fine-tuned: step {tuned.metadata['step']}, {timings['finetune']:.0f} s")
    # What ships: the fine-tuned weights rounded to the storage dtype. Everything below evaluates exactly these.
    shipped = {n: np.asarray(p).astype(args.dtype).astype(np.float32) for n, p in tuned.params.items()}

    # 5. evaluate
    t = time.perf_counter()
    dataset = build_finetune_dataset(preset.finetune_seed, 0.2, preset.stories_per_subject)
    held_qa = list(dataset.held_out_eval)
    train_qa = capital_qa_examples(dataset.split.finetune)
    eval_backend = backend
    perplexity = {
        "base": transformer_perplexity(eval_backend, base.config, base.params, base.tokenizer, held_out).to_dict(),
        "finetuned": transformer_perplexity(eval_backend, tuned.config, shipped, tuned.tokenizer, held_out).to_dict(),
    }
    ngrams = ngram_baselines(corpus, held_out)
    models = {"base": (base.config, base.params, base.tokenizer), "finetuned": (tuned.config, shipped, tuned.tokenizer)}
    qa_runs = {
        "base, bare question": answer_examples(eval_backend, models["base"], held_qa, template=False),
        "base, prompt format": answer_examples(eval_backend, models["base"], held_qa, template=True),
        "fine-tuned, prompt format": answer_examples(eval_backend, models["finetuned"], held_qa, template=True),
        "fine-tuned, training countries": answer_examples(eval_backend, models["finetuned"], train_qa, template=True),
    }
    timings["evaluate"] = time.perf_counter() - t

    # 6. write the model and the results
    metadata = {
        "stage": "finetuned",
        "trained": True,
        "prompt_template": tuned.metadata.get("prompt_template"),
        "response_template": tuned.metadata.get("response_template"),
        "built_by": "scripts/build_default_model.py",
        "preset": preset.name,
        "held_out_countries": [c.name for c in dataset.split.held_out],
        "results": "docs/results/default_model.json",
    }
    if out.exists():
        for child in out.iterdir():
            if child.is_file():
                child.unlink()
    save_checkpoint(out, tuned.config, shipped, tuned.tokenizer, metadata, dtype=args.dtype)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    timings["total"] = time.perf_counter() - build_started

    best_ngram = min(ngrams, key=lambda row: row["word_perplexity"])
    results = {
        "command": "python scripts/build_default_model.py" + (f" --preset {preset.name}" if not is_default else ""),
        "preset": preset.name,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "backend": backend.name,
            "torch_threads": _torch_threads(backend),
        },
        "model": {
            "config": model_config.to_dict(),
            "parameters": int(sum(p.size for p in tuned.params.values())),
            "storage_dtype": args.dtype,
            "files_bytes": size,
        },
        "tokenizer": {"vocab_size": tokenizer.vocab_size, "trained_on_documents": preset.tokenizer_documents},
        "data": {
            "corpus_documents": len(corpus),
            "corpus_tokens": int(sum(len(tokenizer.encode(d)) + 1 for d in corpus)),
            "held_out_documents": len(held_out),
            "finetune_examples": len(dataset.train),
            "held_out_countries": len(dataset.split.held_out),
            "held_out_questions": len(held_qa),
            "replay_rows": preset.replay_rows,
            "replay_documents": preset.replay_documents,
        },
        "training": {
            "pretrain": _stage_summary(base, pre_result, timings["pretrain"]),
            "finetune": _stage_summary(tuned, ft_result, timings["finetune"]),
        },
        "learning": {
            "note": "held-out loss (mean next-token cross-entropy, nats) and greedy samples at recorded steps, "
            "from the weights of that step (scripts/build_default_model.py, LearningRecorder)",
            "record_tokens": RECORD_TOKENS,
            "pretrain": pretrain_recorder.records,
            "finetune": finetune_recorder.records,
        },
        "perplexity": perplexity,
        "ngram": ngrams,
        "best_ngram": best_ngram,
        "qa": {name: qa_summary(answers) for name, answers in qa_runs.items()},
        "samples": {name: [a.__dict__ for a in answers[:6]] for name, answers in qa_runs.items() if "training" not in name},
        "criteria": {
            "finetuned_names_capital_held_out": qa_summary(qa_runs["fine-tuned, prompt format"])["all"]["names_capital"],
            "base_names_capital_held_out": qa_summary(qa_runs["base, bare question"])["all"]["names_capital"],
            "transformer_word_perplexity": perplexity["base"]["word_perplexity"],
            "best_ngram_word_perplexity": best_ngram["word_perplexity"],
        },
        "seconds": timings,
    }
    results["criteria"]["finetuned_at_least_80_percent"] = results["criteria"]["finetuned_names_capital_held_out"] >= 0.8
    results["criteria"]["transformer_beats_best_ngram"] = (
        results["criteria"]["transformer_word_perplexity"] < results["criteria"]["best_ngram_word_perplexity"]
    )
    results_stem.parent.mkdir(parents=True, exist_ok=True)
    Path(str(results_stem) + ".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    Path(str(results_stem) + ".md").write_text(render_markdown(results), encoding="utf-8")
    log(f"wrote {out} ({size / 1e6:.2f} MB) and {results_stem}.json/.md in {timings['total']:.0f} s")
    print(render_markdown(results))
    return 0


def _torch_threads(backend) -> int | None:
    if backend.name != "torch":
        return None
    import torch

    return torch.get_num_threads()


def _stage_summary(checkpoint, result, seconds: float) -> dict:
    state_path = Path(checkpoint.path) / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    losses = state.get("losses", [])
    summary = {
        "steps": checkpoint.metadata.get("step"),
        "config": checkpoint.metadata.get("train_config"),
        "first_loss": losses[0] if losses else None,
        "last_loss": float(np.mean(losses[-20:])) if losses else None,
        "evals": state.get("evals", []),
        "seconds": seconds,
    }
    if result is not None:
        summary["tokens_per_second"] = result.tokens_per_second
    return summary


def _code(text: str) -> str:
    """``text`` as a code span; an empty answer says so (an empty code span renders as a stray pair of backquotes)."""
    if not text.strip():
        return "*(nothing: the model wrote its end-of-text token first)*"
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_markdown(results: dict) -> str:
    r = results
    lines = [
        "# The default model: measured results",
        "",
        f"Written by `{r['command']}` — every number below is measured by that run, none is typed in.",
        "",
        "## The model",
        "",
        f"- {r['model']['parameters']:,} parameters: {r['model']['config']['n_layers']} layers, "
        f"width {r['model']['config']['d_model']}, {r['model']['config']['n_heads']} heads, "
        f"context {r['model']['config']['context_length']}; stored as {r['model']['storage_dtype']} "
        f"({r['model']['files_bytes'] / 1e6:.2f} MB with the tokenizer), computed in float32",
        f"- byte-level BPE, {r['tokenizer']['vocab_size']} tokens",
        f"- pretrained on {r['data']['corpus_documents']:,} generated documents ({r['data']['corpus_tokens']:,} tokens): "
        f"{r['training']['pretrain']['steps']} steps in {r['training']['pretrain']['seconds']:.0f} s",
        f"- fine-tuned on {r['data']['finetune_examples']} examples (+ {r['data']['replay_rows']} windows of pretraining "
        f"text per batch): {r['training']['finetune']['steps']} steps in {r['training']['finetune']['seconds']:.0f} s",
        f"- backend {r['machine']['backend']}"
        + (
            f" ({r['machine']['torch_threads']} thread{'s' if r['machine']['torch_threads'] != 1 else ''})"
            if r["machine"]["torch_threads"]
            else ""
        )
        + f" on {r['machine']['cpus']} CPUs "
        f"(a machine shared with other jobs); whole build {r['seconds']['total']:.0f} s",
        "",
        f"## Does it answer? Capital questions about the {r['data']['held_out_countries']} held-out countries",
        "",
        "Greedy decoding. *names capital*: the response contains the capital's words; "
        "*exact*: the response is exactly the reference answer.",
        "",
        "| model | prompt | examples | names capital | exact |",
        "|---|---|---:|---:|---:|",
    ]
    for name, summary in r["qa"].items():
        model, _, prompt = name.partition(", ")
        a = summary["all"]
        lines.append(f"| {model} | {prompt} | {a['examples']} | {_pct(a['names_capital'])} | {_pct(a['exact_match'])} |")
    lines += ["", "Examples (held-out countries):", ""]
    for name, samples in r["samples"].items():
        for s in samples[:3]:
            lines.append(f"- *{name}*: {_code(s['prompt'])} → {_code(s['response'][:120])}")
    lines += [
        "",
        "## Perplexity on held-out text",
        "",
        f"{r['data']['held_out_documents']} documents the models never saw. Per word: total negative log-likelihood "
        "divided by the number of words (+1 end per document), so transformer and n-grams are comparable.",
        "",
        "| model | per-word perplexity | per-token perplexity |",
        "|---|---:|---:|",
    ]
    for name in ("base", "finetuned"):
        p = r["perplexity"][name]
        lines.append(f"| transformer ({name}) | {p['word_perplexity']:.3f} | {p['token_perplexity']:.3f} |")
    for row in r["ngram"]:
        lines.append(f"| {row['n']}-gram (Witten-Bell) | {row['word_perplexity']:.3f} | — |")
    c = r["criteria"]
    lines += [
        "",
        "## Criteria",
        "",
        f"- fine-tuned model names the held-out capital in {_pct(c['finetuned_names_capital_held_out'])} of cases "
        f"(target ≥ 80%): {'met' if c['finetuned_at_least_80_percent'] else 'NOT met'}",
        f"- base model, bare question: {_pct(c['base_names_capital_held_out'])}",
        f"- transformer per-word perplexity {c['transformer_word_perplexity']:.3f} vs best n-gram "
        f"{c['best_ngram_word_perplexity']:.3f}: {'beats it' if c['transformer_beats_best_ngram'] else 'does NOT beat it'}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
