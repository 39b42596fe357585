"""Honest verdicts of ``tspec conformance``: input that would check nothing is exit 2 with one line that
lists what exists, never PASSED; a kernel that never returns is a failure named by its invariant."""

from __future__ import annotations

import time

import pytest

from transformer_spec.backends.numpy import NumpyBackend
from transformer_spec.conformance import cli

from .conftest import run_cli


class HangingBackend(NumpyBackend):
    """softmax never returns (a kernel stuck in a loop, a deadlocked device)."""

    def _softmax(self, x, axis):
        time.sleep(3600)


def _bad_input(capsys, *argv: str) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one line on stderr and nothing that says PASSED."""
    try:
        status = cli.main(list(argv))
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    captured = capsys.readouterr()
    assert status == 2, captured.out + captured.err
    assert "PASSED" not in captured.out and "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):  # argparse: the usage block, then its one error line
        lines = [line for line in lines if ": error: " in line]
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--dtype", "banana"], ["unknown dtype 'banana'", "float32", "float16"]),
        (["--dtype", ","], ["no dtype given", "float32"]),
        (["--dtype", ""], ["no dtype given", "float32"]),
        (["--dtype", "bfloat16"], ["does not support bfloat16", "float32"]),
        (["--dtype", "float32,int64"], ["unknown dtype 'int64'"]),
        (["-k", "no_such_invariant"], ["selects no invariant", "softmax", "sampling"]),
        (["-k", "softmax (causal)"], ["not a valid expression", "missing 'and' or 'or'"]),
        (["-k", "softmax and"], ["not a valid expression", "nothing after 'and'"]),
        (["-k", "(softmax"], ["not a valid expression"]),
        (["--profile", "nosuch"], ["invalid choice", "dev", "thorough"]),
        (["--timeout", "0"], ["--timeout", "positive"]),
        (["--backend", "nosuch"], ["available: numpy"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and value and value[0].startswith("-") else None,
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    line = _bad_input(capsys, *argv)
    for text in expected:
        assert text in line, line


def test_unknown_profile_in_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("TSPEC_PROFILE", "fast")
    line = _bad_input(capsys, "-k", "softmax")
    assert "TSPEC_PROFILE='fast'" in line and "dev" in line


def test_binary_and_unreadable_xfails_files(capsys, tmp_path):
    binary = tmp_path / "xfails.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert "not UTF-8 text" in _bad_input(capsys, "-k", "softmax", "--xfails", str(binary))
    nul = tmp_path / "xfails.nul"
    nul.write_bytes(b"softmax.sums_to_one\x00\x00")
    assert "is binary" in _bad_input(capsys, "-k", "softmax", "--xfails", str(nul))
    assert "cannot read --xfails" in _bad_input(capsys, "-k", "softmax", "--xfails", str(tmp_path))
    assert "cannot read --xfails" in _bad_input(capsys, "-k", "softmax", "--xfails", str(tmp_path / "missing.txt"))


def test_report_path_is_checked_before_any_work(capsys, tmp_path):
    assert "is a directory" in _bad_input(capsys, "-k", "softmax", "--report", str(tmp_path))
    assert "does not exist" in _bad_input(capsys, "-k", "softmax", "--report", str(tmp_path / "no" / "r.json"))


def test_unknown_xfail_ids_are_named(capsys, tmp_path):
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("softmax.no_such_thing\n")
    assert cli.main(["-k", "softmax.sums_to_one", "--xfails", str(xfails), "--seed", "0"]) == 0
    assert "softmax.no_such_thing" in capsys.readouterr().out


def test_header_first_and_a_hung_kernel_fails_by_its_invariant():
    done = run_cli(
        "conformance",
        "--backend",
        "tests.test_conformance_cli:HangingBackend",
        "-k",
        "softmax.sums_to_one or linear",
        "--timeout",
        "3",
        "--seed",
        "0",
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("transformer-spec conformance: backend tests.test_conformance_cli:HangingBackend")
    assert "FAILED softmax.sums_to_one [float32]" in done.stdout and "timed out" in done.stdout
    assert "ABORTED: softmax.sums_to_one [float32] did not return within 3 s" in done.stdout
    assert "PASSED" not in done.stdout


def test_signature_count_is_reported(capsys):
    assert cli.main(["-k", "softmax.sums_to_one", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "distinct call signatures" in out and "from covering sets" in out
