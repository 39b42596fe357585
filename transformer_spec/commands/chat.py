"""``tspec chat``: ask the fine-tuned model questions (answer mode).

The prompt is wrapped in the format the model was fine-tuned with
(``User: <prompt>\\nAssistant:``) and the answer ends at the end-of-text token.
With a prompt, one answer; without, a conversation on standard input (each
line a new question; an empty line or end of input stops).

Examples::

    tspec chat "What is the capital of Nigeria?"
    tspec chat --checkpoint runs/chat --backend torch
    tspec chat --raw "What is the capital of Nigeria?"   # plain continuation, no prompt format
"""

from __future__ import annotations

import argparse
import sys

from transformer_spec.spec.errors import ConfigError

NAME = "chat"
HELP = "answer questions with the fine-tuned model (the prompt format it was trained with)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="*", help="the question (default: read questions from standard input)")
    parser.add_argument("--checkpoint", metavar="DIR", help="checkpoint folder (default: the shipped default model)")
    parser.add_argument("--backend", default="numpy", help="numpy (default), torch or jax")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest answer (tokens)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default) answers greedily")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", action="store_true", help="continue the text as given, without the prompt format")


def run(args: argparse.Namespace) -> int:
    from transformer_spec.backends import load_backend
    from transformer_spec.generate import encode_prompt, generate, native_params
    from transformer_spec.hf import load_checkpoint_source
    from transformer_spec.train.data import PROMPT_TEMPLATE

    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens}, expected an integer >= 1")
    question = " ".join(args.prompt) if args.prompt else None
    if question is not None and not question.strip():
        encode_prompt(None, question, function="chat")  # generate's error for an empty prompt, word for word
    backend = load_backend(args.backend)
    checkpoint = load_checkpoint_source(args.checkpoint)  # our folders and Hugging Face GPT-2 folders, as generate
    path = checkpoint.path
    template = checkpoint.metadata.get("prompt_template") or PROMPT_TEMPLATE
    if not args.raw and checkpoint.metadata.get("stage") != "finetuned":
        print(
            f"note: {path} is not a fine-tuned model (stage {checkpoint.metadata.get('stage')!r}); "
            f"it will probably continue the text rather than answer",
            file=sys.stderr,
        )
    model = (checkpoint.config, native_params(backend, checkpoint.params, "float32"), checkpoint.tokenizer)

    context = checkpoint.config.context_length

    def reply(question: str) -> None:
        text = question if args.raw else template.format(prompt=question)
        prompt_tokens = len(encode_prompt(checkpoint.tokenizer, text, function="chat"))
        stream = sys.stdout.write
        first = []

        def show(piece: str) -> None:
            if not first:  # the answer's leading space belongs to the format, not the answer
                piece = piece.lstrip()
                if not piece:
                    return
                first.append(True)
            stream(piece)
            sys.stdout.flush()

        result = generate(
            backend,
            model,
            text,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            overflow="slide",
            stream=show,
        )
        print()
        if prompt_tokens > context or result.slides:
            # The model only sees its last `context` tokens: once the question slides out, the answer no longer follows it.
            print(
                f"warning: the question ({prompt_tokens} tokens with the prompt format) and answer outgrew the model's "
                f"context of {context} tokens, so the start of the question slid out of it; the answer may not follow "
                f"the question — ask a shorter one{' or lower --max-new-tokens' if prompt_tokens <= context else ''}",
                file=sys.stderr,
            )

    if question is not None:
        reply(question)
        return 0
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or not line.strip():
            return 0
        reply(line.strip())
