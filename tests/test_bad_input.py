"""The bad-input catalogue: every way a user can hold the CLI wrong, and what it must answer.

Each case runs the command (in this process, through ``transformer_spec.cli.main``: the
same code path without an interpreter's start-up) and checks:

* the exit status (2 for bad input);
* stderr is exactly one line, ``error: ...``, naming the problem (a fragment of it is given);
* no traceback;
* no file that existed before was changed, and no refused run created its output folder.

A few cases run again in fresh interpreters (``python -m transformer_spec.cli``) to
show the same from a user's shell. Cases need no training: the one trained run
they share has two steps of a tiny model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from transformer_spec.checkpoint import COMMIT_DIR, MANIFEST_FILE
from transformer_spec.spec.model import init_parameters

from .conftest import ROOT


def cli(*args: str) -> tuple[int, str, str]:
    """``tspec ARGS`` in this process: (exit status, stdout, stderr)."""
    from transformer_spec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's own errors
            code = exit.code
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------- the files the cases point at


@dataclass(frozen=True)
class World:
    """A folder of inputs, shared by every case; ``never`` is a path no refused command may create."""

    root: Path

    def __getattr__(self, name: str) -> str:
        return str(self.root / name)


def tiny_tokenizer():
    from transformer_spec.train.pipeline import pretraining_documents, train_tokenizer

    documents, _ = pretraining_documents({"kind": "corpus", "seed": 0, "documents": 40, "held_out_documents": 0})
    return train_tokenizer(documents, 300)


def write_hf_gpt2_folder(folder: Path, tokenizer, *, pickle_only: bool = False) -> Path:
    """A tiny Hugging Face GPT-2 folder (config.json with model_type gpt2, model.safetensors in HF names, the tokenizer)."""
    from safetensors.numpy import save_file

    from transformer_spec.hf import hf_config_from_config, hf_state_from_params
    from transformer_spec.train.config import SMOKE

    config = replace(SMOKE.model, vocab_size=tokenizer.vocab_size)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", **hf_config_from_config(config)}))
    tokenizer.save(folder)
    if pickle_only:
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    else:
        state = hf_state_from_params(init_parameters(config, 5), config)
        state.pop("lm_head.weight")  # tied: save_pretrained does not store it twice
        save_file({name: np.ascontiguousarray(a, np.float32) for name, a in state.items()}, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("catalogue")
    code, _, stderr = cli(
        "train", "--preset", "smoke", "--documents", "40", "--steps", "2", "--out", str(root / "run"), "--quiet", "--threads", "1"
    )
    assert code == 0, stderr
    from transformer_spec.checkpoint import load_checkpoint, save_checkpoint

    run = load_checkpoint(root / "run")
    save_checkpoint(root / "checkpoint", run.config, run.params, run.tokenizer, {"stage": "pretrained"})
    # A run killed after its first save's commit point, before any file was moved into place.
    commit = root / "run_cut_short" / COMMIT_DIR
    commit.mkdir(parents=True)
    names = sorted(p.name for p in (root / "run").iterdir() if p.is_file())
    for name in names:
        shutil.copy(root / "run" / name, commit / name)
    (commit / MANIFEST_FILE).write_text(json.dumps({"files": names, "remove": []}))
    (root / "users_folder").mkdir()
    (root / "users_folder" / "config.json").write_text('{"mine": true}\n')
    (root / "users_folder" / "notes.txt").write_text("my notes\n")
    tokenizer = tiny_tokenizer()
    write_hf_gpt2_folder(root / "hf_pickle", tokenizer, pickle_only=True)
    (root / "a_file").write_text("a regular file\n")
    (root / "a_folder").mkdir()
    (root / "empty.txt").write_text("   \n")
    (root / "latin1.txt").write_bytes("fine line\nsecond line caf\xe9\n".encode("latin-1"))
    (root / "story.txt").write_text("Once upon a time there was a cat. " * 40)
    (root / "bad.jsonl").write_text('{"prompt": "a", "response": "b", "kind": "qa"}\n{"prompt": "a", "response": \n')
    (root / "missing_field.jsonl").write_text('\n{"prompt": "a", "kind": "qa"}\n')
    (root / "empty.jsonl").write_text("")
    (root / "results.json").write_text('{"earlier": "results"}\n')
    return World(root)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` → a hash of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------------- the catalogue
#
# (id, arguments with {name} standing for a path in the world, fragment of the one-line message, exit status)

SMOKE = ["--preset", "smoke", "--documents", "40", "--threads", "1"]
TRAIN = ["train", *SMOKE]
TUNE = ["finetune", "--preset", "smoke", "--threads", "1", "--checkpoint", "{run}"]
GEN = ["generate", "Once upon a time", "--backend", "numpy"]

CASES: list[tuple[str, list[str], str, int]] = [
    # --- output paths, checked before any work (issue 11, item 1)
    ("train --out is a regular file", [*TRAIN, "--out", "{a_file}"], "is a file, not a folder", 2),
    ("train --out under a regular file", [*TRAIN, "--out", "{a_file}/run"], "is a file, not a folder", 2),
    ("train --out cannot be created", [*TRAIN, "--out", "/proc/tspec-run"], "cannot be created", 2),
    ("finetune --out is a regular file", [*TUNE, "--out", "{a_file}"], "is a file, not a folder", 2),
    ("finetune --out cannot be created", [*TUNE, "--out", "/proc/tspec-run"], "cannot be created", 2),
    ("eval --json is a folder", ["eval", "--json", "{a_folder}"], "is a folder", 2),
    ("eval --json under a regular file", ["eval", "--json", "{a_file}/results.json"], "is a file, not a folder", 2),
    ("eval --json cannot be created", ["eval", "--json", "/proc/results.json"], "cannot be created", 2),
    # --- a non-empty output folder is never overwritten silently (item 2)
    (
        "train --out holds a checkpoint",
        [*TRAIN, "--out", "{checkpoint}"],
        "already holds config.json, merges.txt, model.safetensors",
        2,
    ),
    ("train --out holds the user's files", [*TRAIN, "--out", "{users_folder}"], "already holds config.json, notes.txt", 2),
    ("finetune --out holds the user's files", [*TUNE, "--out", "{users_folder}"], "pass --overwrite", 2),
    ("train --out holds a run", [*TRAIN, "--out", "{run}"], "already holds a training run (step 2)", 2),
    ("train --out holds a run cut short", [*TRAIN, "--out", "{run_cut_short}"], "already holds a training run (step 2)", 2),
    ("finetune --out holds a run", [*TUNE, "--out", "{run}"], "resume it with --resume", 2),
    # --- consistency (item 6): chat follows generate; every command reads the same checkpoint sources
    ("chat empty question", ["chat", "--checkpoint", "{run}", ""], "the prompt '' is empty", 2),
    ("chat blank question", ["chat", "--checkpoint", "{run}", "   "], "is empty", 2),
    ("generate pickle-only HF folder", [*GEN, "--checkpoint", "{hf_pickle}"], "a pickle, which tspec never loads", 2),
    ("eval pickle-only HF folder", ["eval", "--checkpoint", "{hf_pickle}", "--no-qa"], "a pickle, which tspec never loads", 2),
    ("chat pickle-only HF folder", ["chat", "--checkpoint", "{hf_pickle}", "hi"], "a pickle, which tspec never loads", 2),
    ("finetune pickle-only HF folder", [*TUNE[:-1], "{hf_pickle}", "--out", "{never}"], "a pickle, which tspec never loads", 2),
    (
        "train --init pickle-only HF folder",
        [*TRAIN, "--init", "{hf_pickle}", "--out", "{never}"],
        "a pickle, which tspec never loads",
        2,
    ),
    ("train --init missing folder", [*TRAIN, "--init", "{nope}", "--out", "{never}"], "is not a folder", 2),
    ("eval missing checkpoint", ["eval", "--checkpoint", "{nope}"], "is not a folder", 2),
    ("chat missing checkpoint", ["chat", "--checkpoint", "{nope}", "hi"], "is not a folder", 2),
    # --- training data and options (already behaved; kept from tests/test_train.py)
    ("train empty text", [*TRAIN, "--out", "{never}", "--text", "{empty.txt}"], "empty", 2),
    ("train text not UTF-8", [*TRAIN, "--out", "{never}", "--text", "{latin1.txt}"], "line 2", 2),
    ("train text missing", [*TRAIN, "--out", "{never}", "--text", "{nope.txt}"], "no such file", 2),
    ("train text is a folder", [*TRAIN, "--out", "{never}", "--text", "{a_folder}"], "is a directory", 2),
    ("train held-out text without text", [*TRAIN, "--out", "{never}", "--held-out-text", "{story.txt}"], "needs --text", 2),
    ("train batch size 0", [*TRAIN, "--out", "{never}", "--batch-size", "0"], "batch size", 2),
    (
        "train context beyond the model",
        [*TRAIN, "--out", "{never}", "--context-length", "4096"],
        "exceeds the model's context",
        2,
    ),
    ("train lr 0", [*TRAIN, "--out", "{never}", "--lr", "0"], "learning rate", 2),
    ("train lr negative", [*TRAIN, "--out", "{never}", "--lr", "-0.001"], "learning rate", 2),
    ("train steps 0", [*TRAIN, "--out", "{never}", "--steps", "0"], "steps", 2),
    ("train warm-up beyond steps", [*TRAIN, "--out", "{never}", "--steps", "3", "--warmup", "9"], "exceeds --steps", 2),
    ("train documents 0", [*TRAIN, "--out", "{never}", "--documents", "0"], "--documents 0", 2),
    ("train threads 0", [*TRAIN, "--out", "{never}", "--threads", "0"], "--threads 0", 2),
    ("train numpy backend", [*TRAIN, "--out", "{never}", "--backend", "numpy"], "no automatic differentiation", 2),
    ("train --init with a model option", [*TRAIN, "--out", "{never}", "--init", "{run}", "--d-model", "8"], "--init takes", 2),
    ("train tokenizer folder missing", [*TRAIN, "--out", "{never}", "--tokenizer", "{nope}"], "nope", 2),
    ("train neither out nor resume", TRAIN, "exactly one of --out", 2),
    ("train both out and resume", [*TRAIN, "--out", "{never}", "--resume", "{run}"], "exactly one of --out", 2),
    ("train resume an empty place", ["train", "--resume", "{nope}"], "trainer_state.json", 2),
    ("train resume a plain checkpoint", ["train", "--resume", "{checkpoint}"], "use it with --init instead", 2),
    ("train resume changing batch size", ["train", "--resume", "{run}", "--batch-size", "8"], "cannot change when resuming", 2),
    ("train resume a finished run", ["train", "--resume", "{run}"], "pass --steps", 2),
    ("train resume a file", ["train", "--resume", "{a_file}"], "trainer_state.json", 2),
    # --- fine-tuning data and options
    ("finetune malformed JSONL", [*TUNE, "--out", "{never}", "--data", "{bad.jsonl}"], "line 2", 2),
    ("finetune JSONL lacks a field", [*TUNE, "--out", "{never}", "--data", "{missing_field.jsonl}"], "line 2", 2),
    ("finetune empty JSONL", [*TUNE, "--out", "{never}", "--data", "{empty.jsonl}"], "empty", 2),
    ("finetune JSONL missing", [*TUNE, "--out", "{never}", "--data", "{nope.jsonl}"], "no such file", 2),
    ("finetune eval data without data", [*TUNE, "--out", "{never}", "--eval-data", "{bad.jsonl}"], "needs --data", 2),
    ("finetune batch size 0", [*TUNE, "--out", "{never}", "--batch-size", "0"], "batch size", 2),
    (
        "finetune context beyond the model",
        [*TUNE, "--out", "{never}", "--context-length", "65"],
        "exceeds the model's context",
        2,
    ),
    ("finetune replay rows negative", [*TUNE, "--out", "{never}", "--replay-rows", "-1"], "--replay-rows -1", 2),
    ("finetune replay text missing", [*TUNE, "--out", "{never}", "--replay-text", "{nope.txt}"], "no such file", 2),
    ("finetune checkpoint missing", [*TUNE[:-1], "{nope}", "--out", "{never}"], "is not a folder", 2),
    ("finetune without checkpoint", ["finetune", "--preset", "smoke", "--out", "{never}"], "--checkpoint", 2),
    ("finetune numpy backend", [*TUNE, "--out", "{never}", "--backend", "numpy"], "no automatic differentiation", 2),
    ("finetune resume with data", ["finetune", "--resume", "{run}", "--data", "{bad.jsonl}"], "drop --checkpoint", 2),
    # --- eval, chat, generate, crosscheck options
    ("eval n-gram orders not numbers", ["eval", "--checkpoint", "{run}", "--ngram-orders", "x"], "ngram-orders", 2),
    ("eval n-gram order 0", ["eval", "--checkpoint", "{run}", "--ngram-orders", "0,1"], "orders >= 1", 2),
    ("eval max new tokens 0", ["eval", "--checkpoint", "{run}", "--max-new-tokens", "0"], "--max-new-tokens 0", 2),
    ("eval held-out documents 0", ["eval", "--checkpoint", "{run}", "--held-out-documents", "0"], "--held-out-documents 0", 2),
    ("eval unknown backend", ["eval", "--checkpoint", "{run}", "--backend", "abacus"], "unknown backend 'abacus'", 2),
    ("eval text missing", ["eval", "--checkpoint", "{run}", "--no-qa", "--text", "{nope.txt}"], "no such file", 2),
    ("eval QA data malformed", ["eval", "--checkpoint", "{run}", "--no-perplexity", "--qa-data", "{bad.jsonl}"], "line 2", 2),
    ("chat max new tokens 0", ["chat", "--checkpoint", "{run}", "--max-new-tokens", "0", "hi"], "max-new-tokens", 2),
    ("chat unknown backend", ["chat", "--checkpoint", "{run}", "--backend", "abacus", "hi"], "unknown backend 'abacus'", 2),
    ("generate empty prompt", ["generate", "", "--backend", "numpy"], "is empty", 2),
    ("generate top-p above one", [*GEN, "--top-p", "1.5"], "top_p = 1.5", 2),
    ("generate top-k not a number", [*GEN, "--top-k", "many"], "expected an integer", 2),
    ("generate negative temperature", [*GEN, "--temperature", "-1"], "temperature = -1.0", 2),
    ("generate unknown overflow", [*GEN, "--overflow", "wrap"], "overflow = 'wrap'", 2),
    ("generate unknown backend", ["generate", "hi", "--backend", "abacus"], "unknown backend 'abacus'", 2),
    ("generate missing checkpoint", [*GEN, "--checkpoint", "{nope}"], "is not a folder", 2),
    ("crosscheck one backend", ["crosscheck", "--backends", "numpy"], "expected at least two", 2),
    ("crosscheck batch 0", ["crosscheck", "--backends", "numpy,numpy", "--batch", "0"], "--batch = 0", 2),
]


def resolve(arguments: list[str], world: World) -> list[str]:
    out = []
    for argument in arguments:
        if argument.startswith("{") and "}" in argument:
            name, _, rest = argument[1:].partition("}")
            argument = str(world.root / name) + rest
        out.append(argument)
    return out


def check_answer(case: str, code: int, stderr: str, fragment: str, status: int) -> str:
    assert "Traceback" not in stderr, (case, stderr)
    assert code == status, (case, code, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, stderr)
    assert fragment in lines[0], (case, fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize("case, arguments, fragment, status", CASES, ids=[case[0] for case in CASES])
def test_bad_input(world, case, arguments, fragment, status):
    before = snapshot(world.root)
    code, _, stderr = cli(*resolve(arguments, world))
    check_answer(case, code, stderr, fragment, status)
    assert snapshot(world.root) == before, case  # no file that existed was changed, and no file appeared
    assert not Path(world.never).exists()


def test_the_catalogue_names_each_case_once():
    names = [case[0] for case in CASES]
    assert len(names) == len(set(names))


def test_every_command_refuses_a_pickle_only_folder_with_generates_words(world):
    """eval, chat, finetune and train --init read checkpoints as generate does: the same message, word for word."""
    messages = set()
    for case, arguments, _, _ in CASES:
        if case.endswith("pickle-only HF folder"):
            _, _, stderr = cli(*resolve(arguments, world))
            messages.add(stderr.strip())
    assert len(messages) == 1, messages


def test_a_few_cases_from_a_fresh_interpreter(world):
    """As a user's shell runs them: exit status 2, one line, no traceback (started together, then collected)."""
    chosen = ["train --out is a regular file", "eval --json is a folder", "chat empty question", "train --out holds a checkpoint"]
    cases = {case[0]: case for case in CASES}
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    before = snapshot(world.root)
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "transformer_spec.cli", *resolve(cases[name][1], world)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for name in chosen
    }
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=180)
        check_answer(name, process.returncode, stderr, cases[name][2], cases[name][3])
    assert snapshot(world.root) == before
