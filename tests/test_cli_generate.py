"""``tspec generate`` as a user runs it: a real process, streamed text on stdout, stats on stderr,
and exit status 2 with one line and no traceback for every kind of bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transformer_spec import load_model
from transformer_spec.checkpoint import WEIGHTS_FILE, default_checkpoint_path

from .conftest import ROOT

PROMPT = "Once upon a time"


def _start(*arguments: str) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TSPEC_BACKEND="numpy", PYTHONIOENCODING="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "transformer_spec.cli", "generate", *arguments],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    # Bytes, decoded here: text mode would turn a generated "\r" into "\n" and break the comparison.
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout.decode("utf-8"), stderr.decode("utf-8")


@pytest.fixture(scope="module")
def broken_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(default_checkpoint_path(), folder)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    return folder


BAD_INPUTS = {
    "top_p above one": (["--top-p", "1.5"], "top_p = 1.5"),
    "top_p zero": (["--top-p", "0"], "top_p = 0.0"),
    "top_k zero": (["--top-k", "0"], "top_k = 0"),
    "top_k not a number": (["--top-k", "many"], "--top-k 'many': expected an integer"),
    "negative temperature": (["--temperature", "-1"], "temperature = -1.0"),
    "zero new tokens": (["--max-new-tokens", "0"], "max_new_tokens = 0"),
    "new tokens not a number": (["--max-new-tokens", "ten"], "--max-new-tokens 'ten': expected an integer"),
    "negative seed": (["--seed", "-4"], "seed = -4"),
    "unknown overflow": (["--overflow", "wrap"], "overflow = 'wrap'"),
    "unknown backend": (["--backend", "abacus"], "unknown backend 'abacus'"),
    "backend module missing": (["--backend", "no_such_module:Backend"], "cannot import module 'no_such_module'"),
    "dtype the backend lacks": (["--dtype", "bfloat16"], "does not support bfloat16"),
    "missing checkpoint": (["--checkpoint", "/no/such/folder"], "/no/such/folder is not a folder"),
}


@pytest.fixture(scope="module")
def bad_runs(broken_checkpoint) -> dict[str, tuple[int, str, str]]:
    """Every bad invocation, started at once (each is a fresh interpreter), then collected."""
    cases = {name: [PROMPT, *arguments] for name, (arguments, _) in BAD_INPUTS.items()}
    cases["empty prompt"] = [""]
    cases["prompt longer than any context"] = ["word " * 5000]
    cases["truncated weights"] = [PROMPT, "--checkpoint", str(broken_checkpoint)]
    processes = {name: _start(*arguments) for name, arguments in cases.items()}
    return {name: _finish(process) for name, process in processes.items()}


EXPECTED = {name: message for name, (_, message) in BAD_INPUTS.items()}
EXPECTED["empty prompt"] = "is empty"
EXPECTED["prompt longer than any context"] = "tokens and the context is"
EXPECTED["truncated weights"] = "truncated or corrupt"


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_is_one_line_and_status_2(bad_runs, case) -> None:
    status, stdout, stderr = bad_runs[case]
    assert status == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert EXPECTED[case] in lines[0]
    assert stdout == ""  # nothing echoed before the input was checked


def test_generate_streams_text_and_reports_stats() -> None:
    streamed, whole = (
        _start(PROMPT, "--max-new-tokens", "8", "--seed", "3"),
        _start(PROMPT, "--max-new-tokens", "8", "--seed", "3", "--no-stream"),
    )
    quiet = _start(PROMPT, "--max-new-tokens", "8", "--seed", "3", "--no-echo")
    (status, stdout, stderr), (status2, stdout2, _), (status3, stdout3, _) = _finish(streamed), _finish(whole), _finish(quiet)
    assert status == status2 == status3 == 0, stderr
    expected = load_model(backend="numpy").generate(PROMPT, max_new_tokens=8, seed=3)
    assert stdout == expected.full_text + "\n"
    assert stdout2 == stdout and stdout3 == expected.text + "\n"
    assert "Traceback" not in stderr
    stats = stderr.strip().splitlines()[-1]
    assert "prompt tokens" in stats and "new tokens" in stats and "tokens/s" in stats and "numpy" in stats
