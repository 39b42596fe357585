"""transformer_spec.outputs: output paths checked before any work, without creating or changing anything."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from transformer_spec.outputs import OutputPathError, check_output_file, check_output_folder, write_text_atomically
from transformer_spec.spec.errors import SpecError


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_file_path_that_can_be_written_is_accepted_and_nothing_is_created(tmp_path):
    existing = tmp_path / "results.json"
    existing.write_text("old\n")
    before = existing.stat().st_mtime_ns
    assert check_output_file(existing, "--json") == existing
    assert existing.read_text() == "old\n" and existing.stat().st_mtime_ns == before  # probed, not touched
    assert check_output_file(tmp_path / "new" / "deeper" / "results.json", "--json").name == "results.json"
    assert listing(tmp_path) == ["results.json"]  # the missing folders are creatable, and were not created


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: root, "is a folder; expected a file name"),
        (lambda root: (root / "f").write_text("x") and root / "f" / "results.json", "is a file, not a folder"),
        (lambda root: Path("/proc/tspec-results.json"), "cannot be created in /proc"),
        (lambda root: Path("/proc/self/tspec/results.json"), "cannot be created"),
    ],
    ids=["a folder", "under a file", "a place the kernel refuses", "missing folders in a refusing place"],
)
def test_a_file_path_that_cannot_be_written_is_one_clear_error(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(OutputPathError, match=expected) as caught:
        check_output_file(path, "--json")
    assert isinstance(caught.value, SpecError)  # the CLI prints it as one line, exit status 2
    assert str(caught.value).startswith("--json ") and "\n" not in str(caught.value)


def test_a_folder_path(tmp_path):
    assert check_output_folder(tmp_path / "run", "--out") == tmp_path / "run"
    assert not (tmp_path / "run").exists()  # a run refused later must leave no empty folder
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", "--out")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "a_file", "--out")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "a_file" / "run", "--out")
    with pytest.raises(OutputPathError, match="cannot be created in /proc"):
        check_output_folder("/proc/tspec-run", "--out")


def test_a_folder_holding_files_needs_overwrite_and_the_message_lists_them(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.json", "notes.txt", ".tspec-save-x1"):  # our own scratch never counts
        (folder / name).write_text("x")
    with pytest.raises(OutputPathError, match=r"already holds config\.json, notes\.txt; pass --overwrite"):
        check_output_folder(folder, "--out")
    check_output_folder(folder, "--out", overwrite=True)
    check_output_folder(folder, "--out", allowed=("config.json", "notes.txt"))
    for i in range(8):
        (folder / f"f{i}").write_text("x")
    with pytest.raises(OutputPathError, match=r"config\.json, f0, f1, f2, f3, f4 and 4 more;"):
        check_output_folder(folder, "--out")


def test_write_text_atomically_replaces_whole_files_readable_as_the_umask_allows(tmp_path):
    target = tmp_path / "deep" / "results.json"
    write_text_atomically(target, "first\n")
    write_text_atomically(target, "second\n")
    assert target.read_text() == "second\n"
    assert listing(tmp_path) == ["deep", "deep/results.json"]  # no scratch left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
