"""The tokenizer section of the conformance suite: our tokenizers pass it, broken ones are caught, the CLI runs it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from transformer_spec import spec
from transformer_spec.conformance.registry import BACKEND, TOKENIZER, load_all_checks
from transformer_spec.conformance.runner import load_tokenizer_target, render_table, run, run_tokenizer, tokenizer_repro_header
from transformer_spec.conformance.teeth_tokenizers import MUTANTS, REFERENCES
from transformer_spec.spec.tokenizer import COMPONENT
from transformer_spec.tokenizers import ByteLevelBPETokenizer, WordTokenizer

from .conftest import ROOT, run_cli

TOKENIZER_IDS = {inv.id for inv in COMPONENT.invariants}

try:
    import tokenizers  # noqa: F401  (the GPT-2 oracle of tokenizer.gpt2_compatible)

    HAS_ORACLE = True
except ImportError:
    HAS_ORACLE = False

WORDS = (
    "the cat sat on a mat and it was happy because dogs don't like cats . Once upon a time a king asked "
    "what is the capital of Nigeria ? Abuja , she said ! café naïve 1999 42"
).split()


def small_corpus(seed: int = 7, sentences: int = 300) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + rng.choice([".", "!", "\n"]) for _ in range(sentences)
    ]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory) -> Path:
    return ByteLevelBPETokenizer.train(small_corpus(), vocab_size=420).save(tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory) -> Path:
    return WordTokenizer.train(small_corpus()).save(tmp_path_factory.mktemp("word"))


def cli(*args: str, module: str = "transformer_spec.cli") -> subprocess.CompletedProcess:
    return run_cli(*args, module=module, timeout=300)


# ------------------------------------------------------------------ registry


def test_every_tokenizer_invariant_has_a_tokenizer_check_and_backend_runs_skip_them():
    assert set(load_all_checks(TOKENIZER)) == TOKENIZER_IDS
    assert not set(load_all_checks(BACKEND)) & TOKENIZER_IDS
    assert spec.COMPONENTS[0].name == "tokenizer"  # first in pipeline order
    # A backend run selects no tokenizer check: an error that points to --tokenizer, never an empty pass.
    with pytest.raises(ValueError, match="--tokenizer"):
        run("numpy", profile="dev", keyword="tokenizer", seed=0)


# ------------------------------------------------------------------ our tokenizers


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_our_tokenizers_pass(kind, bpe_dir, word_dir):
    from transformer_spec.tokenizers import load_tokenizer

    folder = bpe_dir if kind == "bpe" else word_dir
    seed = int.from_bytes(os.urandom(4), "little")
    report = run_tokenizer(load_tokenizer(folder), str(folder), profile="dev", seed=seed)
    print(f"tokenizer conformance seed {seed}")
    assert report.ok, render_table(report)
    assert {r.id for r in report.results} == TOKENIZER_IDS
    skipped = {r.id for r in report.results if r.status == "skipped"}
    if kind == "bpe":
        assert skipped == {"tokenizer.word_level_roundtrip"} | (set() if HAS_ORACLE else {"tokenizer.gpt2_compatible"})
    else:
        assert skipped == {"tokenizer.roundtrip", "tokenizer.gpt2_compatible"}


def test_gpt2_compatible_is_skipped_with_the_reason_when_the_oracle_is_missing(bpe_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # `import tokenizers` now raises ImportError
    report = run_tokenizer(ByteLevelBPETokenizer.load(bpe_dir), str(bpe_dir), keyword="gpt2", seed=0)
    (result,) = report.results
    assert result.status == "skipped" and "pip install tokenizers" in result.message


# ------------------------------------------------------------------ teeth


def test_catalogue_names_real_invariants():
    assert len(MUTANTS) >= 3
    for mutant in MUTANTS:
        assert mutant.breaks in TOKENIZER_IDS, f"{mutant.__name__} names {mutant.breaks!r}"
        assert mutant.__doc__, f"{mutant.__name__} must say what its bug is"


@pytest.mark.parametrize("reference", REFERENCES, ids=[r.__name__ for r in REFERENCES])
def test_the_references_the_mutants_start_from_pass(reference):
    report = run_tokenizer(
        reference(), f"transformer_spec.conformance.teeth_tokenizers:{reference.__name__}", profile="dev", seed=0
    )
    assert report.ok, render_table(report)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.__name__ for m in MUTANTS])
def test_mutant_is_caught_by_the_invariant_it_breaks(mutant):
    report = run_tokenizer(
        mutant(), f"transformer_spec.conformance.teeth_tokenizers:{mutant.__name__}", profile="dev", seed=0, keyword=mutant.breaks
    )
    assert mutant.breaks in report.failed_ids(), f"{mutant.__name__} slipped through {mutant.breaks}\n{render_table(report)}"


def test_a_tokenizer_failure_has_a_repro_that_reproduces():
    report = run_tokenizer(
        MUTANTS[0](),
        "transformer_spec.conformance.teeth_tokenizers:StreamShowsBrokenCharacters",
        seed=0,
        keyword="tokenizer.stream_matches_decode",
    )
    (result,) = report.results
    assert result.status == "failed" and "broken character" in result.message
    assert result.repro.startswith("import numpy as np\nfrom transformer_spec.conformance.runner import load_tokenizer_target\n")
    table = render_table(report)
    assert "FAILED tokenizer.stream_matches_decode\n" in table
    assert (
        "rerun: tspec conformance --tokenizer transformer_spec.conformance.teeth_tokenizers:StreamShowsBrokenCharacters" in table
    )
    done = subprocess.run(
        [sys.executable, "-c", result.repro],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 1, done.stderr  # the repro ends by replaying the check, which fails again
    assert "\ufffd" in done.stdout  # the broken piece the stream showed
    assert "FAILED tokenizer.stream_matches_decode:" in done.stdout


def test_the_repro_loads_a_folder_with_tspec_and_a_target_with_conformance(bpe_dir):
    assert (
        tokenizer_repro_header(str(bpe_dir))
        == f"from transformer_spec.tokenizers import load_tokenizer\nbe = load_tokenizer({str(bpe_dir)!r})"
    )
    target = "transformer_spec.conformance.teeth_tokenizers:EndOfTextFromText"
    assert tokenizer_repro_header(target).endswith(f"be = load_tokenizer_target({target!r})")
    assert type(load_tokenizer_target(target)).__name__ == "EndOfTextFromText"


# ------------------------------------------------------------------ command line


def test_cli_passes_our_tokenizer_folders_and_writes_a_report(bpe_dir, word_dir, tmp_path):
    report_path = tmp_path / "report.json"
    done = cli("conformance", "--tokenizer", str(bpe_dir), "--seed", "3", "--report", str(report_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"tokenizer {bpe_dir}" in done.stdout and "PASSED" in done.stdout
    data = json.loads(report_path.read_text())
    assert data["subject"] == "tokenizer" and data["seed"] == 3 and {r["id"] for r in data["results"]} == TOKENIZER_IDS
    done = cli("--tokenizer", str(word_dir), "-k", "word_level or stream", "--quiet", module="transformer_spec.conformance")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tokenizer" in done.stdout and "PASSED" in done.stdout


def test_cli_fails_a_broken_tokenizer_and_refuses_bad_arguments(tmp_path):
    done = cli(
        "conformance",
        "--tokenizer",
        "transformer_spec.conformance.teeth_tokenizers:EndOfTextFromText",
        "-k",
        "no_special",
        "--seed",
        "0",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED tokenizer.no_special_from_text" in done.stdout and "repro:" in done.stdout
    done = cli("conformance", "--tokenizer", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "nowhere" in done.stderr
    done = cli("conformance", "--tokenizer", "transformer_spec.conformance.teeth_tokenizers:NoSuchTokenizer")
    assert done.returncode == 2 and "has no attribute" in done.stderr and "Traceback" not in done.stderr
    done = cli(
        "conformance", "--backend", "numpy", "--tokenizer", "transformer_spec.conformance.teeth_tokenizers:ReferenceByteTokenizer"
    )
    assert done.returncode == 2 and "exclude each other" in done.stderr


def test_cli_checks_the_default_model_s_tokenizer():
    try:
        from transformer_spec.checkpoint import default_checkpoint_path

        default_checkpoint_path()
    except Exception as error:  # the shipped model is another part's business
        pytest.skip(f"no default model here: {error}")
    done = cli("conformance", "--tokenizer", "default", "-k", "roundtrip or stream", "--seed", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "default_model" in done.stdout and "PASSED" in done.stdout
