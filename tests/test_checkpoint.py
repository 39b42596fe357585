"""Checkpoints: a bit-exact round trip, the shipped default model, and every kind of bad folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from transformer_spec.checkpoint import (
    COMMIT_DIR,
    CONFIG_FILE,
    SCRATCH_PREFIX,
    WEIGHTS_FILE,
    Checkpoint,
    CheckpointError,
    default_checkpoint_path,
    load_checkpoint,
    recover_folder,
    save_checkpoint,
)
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import SpecError
from transformer_spec.spec.model import init_parameters, parameter_shapes
from transformer_spec.tokenizers import ByteLevelBPETokenizer, WordTokenizer

CONFIG = ModelConfig(vocab_size=300, context_length=16, d_model=16, n_heads=2, n_layers=2, d_ff=32)
TEXTS = ["the cat sat on the mat.", "the dog ate the apple!", "Once upon a time there was a king."] * 3


@pytest.fixture(scope="module")
def bpe() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer.train(TEXTS, vocab_size=CONFIG.vocab_size)


@pytest.fixture()
def saved(tmp_path: Path, bpe: ByteLevelBPETokenizer) -> Path:
    return save_checkpoint(tmp_path / "ck", CONFIG, init_parameters(CONFIG, seed=3), bpe, {"trained": False, "note": "test"})


def test_round_trip_is_bit_exact(saved: Path, bpe: ByteLevelBPETokenizer) -> None:
    params = init_parameters(CONFIG, seed=3)
    loaded = load_checkpoint(saved)
    assert isinstance(loaded, Checkpoint)
    assert loaded.config == CONFIG
    assert list(loaded.params) == list(parameter_shapes(CONFIG))
    for name, value in params.items():
        assert loaded.params[name].dtype == np.float32
        assert loaded.params[name].tobytes() == value.tobytes(), name
    assert dict(loaded.metadata) == {"trained": False, "note": "test"}
    assert loaded.tokenizer.encode("the cat ate a king") == bpe.encode("the cat ate a king")
    assert loaded.dtype == "float32" and loaded.path == saved


def test_config_json_layout(saved: Path) -> None:
    document = json.loads((saved / CONFIG_FILE).read_text())
    assert document["format"] == "transformer-spec" and document["version"] == 1
    assert document["model"] == CONFIG.to_dict()
    assert document["dtype"] == "float32" and document["tokenizer"] == "bpe"


def test_float64_and_float16_storage(tmp_path: Path, bpe: ByteLevelBPETokenizer) -> None:
    params = init_parameters(CONFIG, seed=1, dtype="float64")
    for dtype in ("float64", "float16"):
        folder = save_checkpoint(tmp_path / dtype, CONFIG, params, bpe, dtype=dtype)
        loaded = load_checkpoint(folder)
        assert loaded.dtype == dtype
        for name, value in params.items():
            assert loaded.params[name].tobytes() == value.astype(dtype).tobytes()


def test_word_tokenizer_replaces_bpe_files_when_saving_over(saved: Path) -> None:
    words = WordTokenizer.train(TEXTS)
    save_checkpoint(saved, CONFIG, init_parameters(CONFIG, seed=3), words)
    assert not (saved / "vocab.json").exists() and not (saved / "merges.txt").exists()
    loaded = load_checkpoint(saved)
    assert isinstance(loaded.tokenizer, WordTokenizer)
    assert loaded.metadata == {}  # the old metadata went with the old config.json


def test_default_model_loads_and_is_marked() -> None:
    folder = default_checkpoint_path()
    assert folder.is_dir() and (folder / WEIGHTS_FILE).is_file()
    checkpoint = load_checkpoint(folder)
    assert "trained" in checkpoint.metadata
    assert checkpoint.tokenizer.vocab_size <= checkpoint.config.vocab_size


# ---------------------------------------------------------------------- bad checkpoints


def _error(folder: Path) -> CheckpointError:
    with pytest.raises(SpecError) as caught:
        load_checkpoint(folder)
    return caught.value


def test_truncated_weights(saved: Path) -> None:
    path = saved / WEIGHTS_FILE
    data = path.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, 40, 3):
        path.write_bytes(data[:cut])
        error = _error(saved)
        assert isinstance(error, CheckpointError)
        assert WEIGHTS_FILE in str(error) and "truncated or corrupt" in str(error)


def test_garbage_weights(saved: Path) -> None:
    (saved / WEIGHTS_FILE).write_bytes(b"\x00" * 200)
    assert "truncated or corrupt" in str(_error(saved))


def _rewrite_weights(folder: Path, edit) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / WEIGHTS_FILE))
    edit(tensors)
    save_file(tensors, str(folder / WEIGHTS_FILE))


def test_renamed_tensor_names_both(saved: Path) -> None:
    def rename(tensors):
        tensors["blocks.0.attn.qkv.w"] = tensors.pop("blocks.0.attn.qkv.weight")

    _rewrite_weights(saved, rename)
    message = str(_error(saved))
    assert "missing ['blocks.0.attn.qkv.weight']" in message
    assert "unexpected ['blocks.0.attn.qkv.w']" in message


def test_missing_tensor(saved: Path) -> None:
    _rewrite_weights(saved, lambda tensors: tensors.pop("ln_f.bias"))
    assert "missing ['ln_f.bias']" in str(_error(saved))


def test_extra_tensor(saved: Path) -> None:
    _rewrite_weights(saved, lambda tensors: tensors.update(extra=np.zeros(3, np.float32)))
    assert "unexpected ['extra']" in str(_error(saved))


def test_wrong_shape_names_tensor_and_expected_shape(saved: Path) -> None:
    def reshape(tensors):
        tensors["blocks.1.mlp.fc.weight"] = np.zeros((16, 33), np.float32)

    _rewrite_weights(saved, reshape)
    message = str(_error(saved))
    assert "'blocks.1.mlp.fc.weight'" in message and "(16, 33)" in message and "expected (16, 32)" in message


def test_mixed_dtypes(saved: Path) -> None:
    _rewrite_weights(saved, lambda tensors: tensors.update(wte=tensors["wte"].astype(np.float64)))
    assert "mix dtypes" in str(_error(saved))


def test_nan_weights(saved: Path) -> None:
    def poison(tensors):
        tensors["wpe"][3, 4] = np.nan

    _rewrite_weights(saved, poison)
    assert "'wpe' holds NaN" in str(_error(saved))


def test_malformed_json_names_file_and_line(saved: Path) -> None:
    path = saved / CONFIG_FILE
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(",", "")  # line 5: drop the comma after a field
    path.write_text("\n".join(lines) + "\n")
    error = _error(saved)
    assert isinstance(error, CheckpointError) and error.line is not None
    assert f"{CONFIG_FILE} line {error.line}" in str(error) and "malformed JSON" in str(error)
    assert error.line in (5, 6)  # json reports where it noticed: the end of line 5 or the start of line 6


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d.update(format="other"), "\"format\" is 'other'"),
        (lambda d: d.update(version=2), "reads version 1"),
        (lambda d: d["model"].update(n_heads=3), "n_heads = 3 does not divide d_model = 16"),
        (lambda d: d["model"].update(colour="blue"), "unknown field(s) ['colour']"),
        (lambda d: d.update(model=[1, 2]), '"model" is list'),
        (lambda d: d["model"].update(d_ff=64), "'blocks.0.mlp.fc.weight' has shape (16, 32), expected (16, 64)"),
    ],
)
def test_bad_config_values(saved: Path, edit, expected: str) -> None:
    path = saved / CONFIG_FILE
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    assert expected in str(_error(saved))


def test_missing_files(saved: Path, tmp_path: Path) -> None:
    assert "not a folder" in str(_error(tmp_path / "nowhere"))
    for name, expected in ((WEIGHTS_FILE, "no such file"), (CONFIG_FILE, "no such file"), ("merges.txt", "merges.txt")):
        copy = tmp_path / f"without-{name}"
        shutil.copytree(saved, copy)
        (copy / name).unlink()
        message = str(_error(copy))
        assert expected in message and name in message


def test_tokenizer_larger_than_model(tmp_path: Path, bpe: ByteLevelBPETokenizer) -> None:
    small = ModelConfig(vocab_size=100, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    with pytest.raises(CheckpointError, match=r"tokenizer has \d+ ids but the model only vocab_size = 100"):
        save_checkpoint(tmp_path / "x", small, init_parameters(small, seed=0), bpe)


def test_save_rejects_bad_input(tmp_path: Path, bpe: ByteLevelBPETokenizer) -> None:
    params = init_parameters(CONFIG, seed=0)
    with pytest.raises(SpecError, match="missing"):
        save_checkpoint(tmp_path / "a", CONFIG, {k: v for k, v in params.items() if k != "wte"}, bpe)
    with pytest.raises(CheckpointError, match="reserved key"):
        save_checkpoint(tmp_path / "b", CONFIG, params, bpe, {"model": 1})
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "c", CONFIG, params, bpe, {"when": object()})
    with pytest.raises(CheckpointError, match="dtype = 'int8'"):
        save_checkpoint(tmp_path / "d", CONFIG, params, bpe, dtype="int8")
    bad = dict(params, wte=np.full_like(params["wte"], np.inf))
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        save_checkpoint(tmp_path / "e", CONFIG, bad, bpe)
    assert not (tmp_path / "e" / WEIGHTS_FILE).exists()  # nothing half-written


def test_failed_save_leaves_old_checkpoint_intact(saved: Path, bpe: ByteLevelBPETokenizer) -> None:
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    class Exploding(ByteLevelBPETokenizer):
        def save(self, directory):
            raise OSError("disk full")

    exploding = Exploding(bpe.vocab, bpe.merges)
    with pytest.raises(OSError):
        save_checkpoint(saved, CONFIG, init_parameters(CONFIG, seed=9), exploding)
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before


# ---------------------------------------------------------------------- atomic saves


class FolderSnapshots:
    """Copies of a folder taken just before every rename, replace, unlink and rmdir: what `kill -9` could leave."""

    def __init__(self, folder: Path, into: Path) -> None:
        self.folder, self.into, self.taken = folder, into, []

    def take(self) -> None:
        copy = self.into / f"cut{len(self.taken):03d}"
        shutil.copytree(self.folder, copy, symlinks=True)
        self.taken.append(copy)

    def install(self, monkeypatch) -> None:
        import os

        for name in ("rename", "replace", "unlink", "rmdir"):
            real = getattr(os, name)

            def wrapped(*args, _real=real, **kwargs):
                self.take()
                return _real(*args, **kwargs)

            monkeypatch.setattr(os, name, wrapped)


def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint(
    tmp_path: Path, bpe: ByteLevelBPETokenizer, monkeypatch
) -> None:
    old, new = init_parameters(CONFIG, seed=1), init_parameters(CONFIG, seed=2)
    folder = save_checkpoint(tmp_path / "ck", CONFIG, old, bpe, {"step": 1}, extra_files={"state.json": b'{"step": 1}'})
    snapshots = FolderSnapshots(folder, tmp_path)
    snapshots.install(monkeypatch)
    save_checkpoint(folder, CONFIG, new, bpe, {"step": 2}, extra_files={"state.json": b'{"step": 2}'})
    monkeypatch.undo()
    snapshots.take()  # and after the save returned
    assert len(snapshots.taken) >= 10  # every file's move is a moment the process could die at
    seen = set()
    for cut in snapshots.taken:
        loaded = load_checkpoint(cut)  # completes a commit cut short, then reads
        step = loaded.metadata["step"]
        expected = old if step == 1 else new
        assert all(np.array_equal(loaded.params[n], expected[n]) for n in expected), cut.name
        assert json.loads((cut / "state.json").read_text())["step"] == step, cut.name  # the extra file is from the same save
        seen.add(step)
        assert not (cut / COMMIT_DIR).exists()
    assert seen == {1, 2}


def test_recover_folder_removes_scratch_of_killed_saves(saved: Path) -> None:
    before = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    (saved / (SCRATCH_PREFIX + "abc")).mkdir()
    (saved / (SCRATCH_PREFIX + "abc") / WEIGHTS_FILE).write_bytes(b"half")
    (saved / ".tspec-probe-x").write_bytes(b"")
    assert recover_folder(saved) == [".tspec-probe-x", SCRATCH_PREFIX + "abc"]
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    load_checkpoint(saved)


def test_extra_files_may_not_replace_the_checkpoints_own(tmp_path: Path, bpe: ByteLevelBPETokenizer) -> None:
    params = init_parameters(CONFIG, seed=0)
    for name in (CONFIG_FILE, "vocab.json", "../x", ".hidden", ""):
        with pytest.raises(CheckpointError, match="extra file name"):
            save_checkpoint(tmp_path / "a", CONFIG, params, bpe, extra_files={name: b"x"})
    with pytest.raises(CheckpointError, match="expected bytes"):
        save_checkpoint(tmp_path / "a", CONFIG, params, bpe, extra_files={"notes.txt": "text"})
    assert not (tmp_path / "a" / WEIGHTS_FILE).exists()


def test_a_reader_waits_while_a_save_is_moved_into_place(saved: Path) -> None:
    """Writers move files under an exclusive flock on the folder; a reader takes a shared one, so it never reads a mixture."""
    import os
    import threading

    fcntl = pytest.importorskip("fcntl")
    writer = os.open(saved, os.O_RDONLY)
    fcntl.flock(writer, fcntl.LOCK_EX)
    loaded = threading.Event()
    reader = threading.Thread(target=lambda: (load_checkpoint(saved), loaded.set()), daemon=True)
    reader.start()
    try:
        assert not loaded.wait(0.3)  # blocked while the "writer" holds the folder
    finally:
        os.close(writer)
    assert loaded.wait(30)
    reader.join()
