"""``tspec eval``: perplexity on held-out text and question/answer accuracy of a checkpoint, beside n-gram baselines.

Perplexity is reported per BPE token and per word (comparable with the word
n-gram models, trained on the same training text and scored on the same
held-out text). Question answering: greedy answers to the capital questions
of the countries that fine-tuning held out, scored by exact match and by
whether the answer names the capital.

Examples::

    tspec eval                                   # the shipped default model
    tspec eval --checkpoint runs/chat --backend torch --json results.json
    tspec eval --checkpoint runs/book --text val.txt --train-text book.txt --no-qa
"""

from __future__ import annotations

import argparse
import json

from transformer_spec.spec.errors import ConfigError

NAME = "eval"
HELP = "perplexity (vs n-gram baselines) and question/answer accuracy of a checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", metavar="DIR", help="checkpoint folder (default: the shipped default model)")
    parser.add_argument("--backend", default="numpy", help="numpy (default), torch or jax")
    parser.add_argument("--text", metavar="FILE", help="held-out text (default: held-out generated documents)")
    parser.add_argument("--train-text", metavar="FILE", help="the n-grams' training text (default: the generated corpus)")
    parser.add_argument("--held-out-documents", type=int, default=400, help="generated held-out documents (default 400)")
    parser.add_argument("--held-out-seed", type=int, default=None, help="seed of the held-out documents (default: the preset's)")
    parser.add_argument(
        "--corpus-documents",
        type=int,
        default=None,
        help="generated training documents for the n-grams (default: the checkpoint's corpus)",
    )
    parser.add_argument("--ngram-orders", default="1,2,3,4,5", help="comma-separated n-gram orders; empty for none")
    parser.add_argument("--qa-data", metavar="FILE", help="JSONL questions (default: the built-in set's held-out countries)")
    parser.add_argument("--data-seed", type=int, default=0, help="built-in set seed (which countries are held out)")
    parser.add_argument("--no-qa", action="store_true", help="skip question answering")
    parser.add_argument("--no-perplexity", action="store_true", help="skip perplexity and n-grams")
    parser.add_argument("--bare", action="store_true", help="ask the bare question (no fine-tuning prompt format)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="longest answer (tokens)")
    parser.add_argument("--show", type=int, default=5, help="print this many example answers")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def _orders(text: str) -> list[int]:
    if not text.strip():
        return []
    try:
        orders = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--ngram-orders {text!r}, expected comma-separated integers like 1,2,3") from None
    if any(n < 1 for n in orders):
        raise ConfigError(f"--ngram-orders {text!r}, expected orders >= 1")
    return orders


def run(args: argparse.Namespace) -> int:
    from transformer_spec.backends import load_backend
    from transformer_spec.data import build_finetune_dataset, generate_corpus, read_jsonl
    from transformer_spec.hf import load_checkpoint_source
    from transformer_spec.outputs import check_output_file, write_text_atomically
    from transformer_spec.train.config import DEFAULT
    from transformer_spec.train.data import read_text_file
    from transformer_spec.train.evaluate import answer_examples, ngram_baselines, qa_summary, transformer_perplexity

    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens}, expected an integer >= 1")
    if args.held_out_documents < 1:
        raise ConfigError(f"--held-out-documents {args.held_out_documents}, expected an integer >= 1")
    orders = _orders(args.ngram_orders)
    if args.json:
        check_output_file(args.json, "--json")  # before any work: the results must not be lost at the end
    backend = load_backend(args.backend)
    checkpoint = load_checkpoint_source(args.checkpoint)  # our folders and Hugging Face GPT-2 folders, as generate
    path = checkpoint.path
    model = (checkpoint.config, checkpoint.params, checkpoint.tokenizer)
    results: dict = {"checkpoint": str(path), "backend": backend.name, "stage": checkpoint.metadata.get("stage")}
    print(
        f"checkpoint {path} ({checkpoint.metadata.get('stage', 'unknown stage')}, "
        f"{checkpoint.parameter_count:,} parameters), backend {backend.name}"
    )

    if not args.no_perplexity:
        spec = checkpoint.metadata.get("data") or {}
        if args.text:
            held_out = read_text_file(args.text)
        else:
            seed = args.held_out_seed if args.held_out_seed is not None else spec.get("held_out_seed", DEFAULT.held_out_seed)
            held_out = generate_corpus(int(seed), args.held_out_documents)
        perplexity = transformer_perplexity(backend, checkpoint.config, checkpoint.params, checkpoint.tokenizer, held_out)
        results["perplexity"] = perplexity.to_dict()
        print(f"\nheld-out text: {perplexity.documents} documents, {perplexity.tokens:,} tokens, {perplexity.words:,} words")
        print(f"{'model':<28}{'per-word ppl':>14}{'per-token ppl':>15}")
        print(f"{'transformer':<28}{perplexity.word_perplexity:>14.3f}{perplexity.token_perplexity:>15.3f}")
        if orders:
            if args.train_text:
                train_documents = read_text_file(args.train_text)
            else:
                documents = args.corpus_documents or int(spec.get("documents", DEFAULT.corpus_documents))
                train_documents = generate_corpus(int(spec.get("seed", DEFAULT.corpus_seed)), documents)
            rows = ngram_baselines(train_documents, held_out, orders)
            results["ngram"] = rows
            for row in rows:
                print(f"{str(row['n']) + '-gram (Witten-Bell)':<28}{row['word_perplexity']:>14.3f}{'—':>15}")

    if not args.no_qa:
        if args.qa_data:
            examples = read_jsonl(args.qa_data)
        else:
            examples = list(build_finetune_dataset(args.data_seed).held_out_eval)
        template = not args.bare
        answers = answer_examples(backend, model, examples, template=template, max_new_tokens=args.max_new_tokens)
        summary = qa_summary(answers)
        results["qa"] = {"template": template, "summary": summary, "answers": [a.__dict__ for a in answers]}
        print(f"\nquestion answering ({len(answers)} questions, {'prompt format' if template else 'bare question'}, greedy)")
        print(f"{'kind':<14}{'examples':>9}{'names capital':>15}{'exact':>9}")
        for kind, row in summary.items():
            print(f"{kind:<14}{row['examples']:>9}{100 * row['names_capital']:>14.1f}%{100 * row['exact_match']:>8.1f}%")
        for a in answers[: args.show]:
            print(f"  {a.prompt!r} -> {a.response!r}")

    if args.json:
        write_text_atomically(args.json, json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
