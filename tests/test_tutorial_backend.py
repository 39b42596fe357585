"""The tutorial's backend (docs/tutorial_backend.md) is real: registered, complete, and passing the whole suite.

The backend lives in ``examples/array_api_backend`` and is installed into the
development environment with ``pip install --no-deps -e examples/array_api_backend``.
The page includes its source through snippet markers; these tests check that
every marker the page names exists, run the commands the page shows, and compare
the output the page quotes with what the commands print.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from .conftest import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "array_api_backend"
PAGE = ROOT / "docs" / "tutorial_backend.md"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tspec_array_api") is None or importlib.util.find_spec("array_api_strict") is None,
    reason="the tutorial backend is not installed: pip install --no-deps -e examples/array_api_backend",
)


def tspec(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args)


def test_the_entry_point_is_registered_and_loads():
    from transformer_spec.backends import available_backends, load_backend
    from tspec_array_api import ArrayAPIStrictBackend

    names = {ep.name: ep.value for ep in entry_points(group="transformer_spec.backends")}
    assert names.get("array_api_strict") == "tspec_array_api.backend:ArrayAPIStrictBackend"
    backend = load_backend("array_api_strict")
    assert isinstance(backend, ArrayAPIStrictBackend) and backend.name == "array_api_strict"
    assert "array_api_strict" in available_backends()
    import array_api_strict

    assert isinstance(backend.asarray(np.zeros(3), "float32"), array_api_strict.asarray(0.0).__class__)


def test_every_kernel_is_implemented_and_uses_no_numpy():
    from transformer_spec.backends.base import missing_kernels
    from tspec_array_api.backend import ArrayAPIStrictBackend

    assert missing_kernels(ArrayAPIStrictBackend) == []
    source = (EXAMPLE / "tspec_array_api" / "backend.py").read_text()
    # NumPy appears only at the boundary: converting host data in and out.
    assert sorted(set(re.findall(r"\bnp\.\w+", source))) == ["np.asarray", "np.bool_", "np.from_dlpack"]


def test_the_whole_suite_passes_in_float32_and_float64():
    from transformer_spec.conformance import render_table, run

    report = run("array_api_strict", dtypes=("float32", "float64"), profile="dev")
    print(render_table(report))
    assert report.ok, render_table(report)
    statuses = {r.status for r in report.results if r.component != "gradients"}
    assert statuses == {"passed"}, render_table(report)
    gradients = [r for r in report.results if r.component == "gradients"]
    assert gradients and all(r.status == "skipped" and "supports_autodiff" in r.message for r in gradients)


def test_erfc_from_the_standard_alone_matches_scipy():
    import array_api_strict as xp
    from scipy.special import erfc as scipy_erfc

    from tspec_array_api import erfc

    z = np.concatenate([np.linspace(-27.0, 27.0, 100_001), [0.0, 0.46875, -0.46875, 4.0, -4.0, 1e-300, 40.0, -40.0]])
    got = np.from_dlpack(erfc(xp.asarray(z)))
    expected = scipy_erfc(z)
    normal = expected > np.finfo(np.float64).tiny
    assert np.all(np.abs(got - expected)[normal] <= 1e-13 * expected[normal])  # the page claims 1e-13
    assert np.all(np.abs(got - expected) <= 1e-15 * np.maximum(expected, 1.0))
    got32 = np.from_dlpack(erfc(xp.asarray(z.astype(np.float32)))).astype(np.float64)
    expected32 = scipy_erfc(z.astype(np.float32).astype(np.float64))
    normal32 = expected32 > 1e-30
    assert np.all(np.abs(got32 - expected32)[normal32] <= 1e-6 * expected32[normal32])  # a few float32 ulps
    assert np.all(np.abs(got32 - expected32) <= 2e-7 * np.maximum(expected32, 1.0))


def snippets(page: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r'--8<-- "([^":]+)(?::([\w-]+))?"', page)]


def included_text(path: str, section: str | None) -> str:
    text = (ROOT / path).read_text()
    if section is None:
        return text
    match = re.search(rf"# --8<-- \[start:{section}\]\n(.*?)# --8<-- \[end:{section}\]", text, re.S)
    assert match, f"{path} has no section {section!r} (markers '# --8<-- [start:{section}]' ... '[end:{section}]')"
    return match.group(1)


def test_the_page_includes_the_real_source_and_every_kernel():
    page = PAGE.read_text()
    included = snippets(page)
    assert ("examples/array_api_backend/tspec_array_api/backend.py", "setup") in included
    shown = "".join(included_text(path, section) for path, section in included)
    from transformer_spec.backends.base import KERNELS

    for kernel in KERNELS:
        assert f"def {kernel}(" in shown, f"the tutorial does not show {kernel}"
    backend_source = (EXAMPLE / "tspec_array_api" / "backend.py").read_text()
    sections = set(re.findall(r"# --8<-- \[start:([\w-]+)\]", backend_source))
    assert sections <= {s for p, s in included if p.endswith("backend.py")}, "a section of backend.py is not on the page"


def quoted_output(page: str, command: str) -> list[str]:
    """The lines of the ```text block that follows the ```bash block running ``command`` (``...`` lines skipped)."""
    after = page.split(command, 1)[1]
    block = re.search(r"```text\n(.*?)```", after, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and line.strip() != "..."]


def test_reading_a_failure_shows_what_the_page_quotes_and_the_xfails_file_silences_it():
    page = PAGE.read_text()
    command = "tspec conformance --backend tspec_array_api.first_attempt:FirstAttempt -k softmax --seed 0"
    assert command in page
    done = tspec(*command.split()[1:])
    assert done.returncode == 1, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    for line in quoted_output(page, command):
        assert line in printed, f"the page quotes {line!r}, which the command no longer prints:\n{done.stdout[:3000]}"
    failed = {line.split()[1] for line in printed if line.startswith("FAILED ")}
    listed = {line.split("#")[0].strip() for line in (EXAMPLE / "first_attempt.xfails").read_text().splitlines()} - {""}
    assert (
        failed
        == listed
        == {
            "softmax.sums_to_one",
            "softmax.non_negative",
            "softmax.shift_invariant",
            "softmax.order_preserving",
            "softmax.finite_for_extreme_inputs",
            "softmax.matches_reference",
        }
    )
    assert "(six, for this softmax)" in page
    done = tspec(*command.split()[1:], "--xfails", "examples/array_api_backend/first_attempt.xfails")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"softmax\s+3\s+0\s+0\s+6", done.stdout), done.stdout


def test_the_repro_of_a_failure_runs_and_shows_the_nan():
    from transformer_spec.conformance import run
    from tspec_array_api.first_attempt import FirstAttempt

    report = run(FirstAttempt, dtypes=("float32",), profile="dev", keyword="softmax.sums_to_one", seed=0)
    (result,) = [r for r in report.results if r.bad]
    done = subprocess.run([sys.executable, "-c", result.repro], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stderr  # the repro ends by running the check, which fails while the bug is there
    assert "nan" in done.stdout.lower() and "FAILED softmax.sums_to_one" in done.stdout


def test_a_half_written_backend_is_told_what_is_missing():
    from transformer_spec.backends.base import Backend
    from transformer_spec.conformance import run

    class MyBackend(Backend):
        name = "mine"

        def _softmax(self, x, axis):  # one kernel written so far
            return x

    with pytest.raises(NotImplementedError) as error:
        run(MyBackend, profile="dev")
    # The message the page shows, around the list of kernels it abbreviates with "...".
    shown = re.search(r"error: (.*)\n", PAGE.read_text()).group(1)
    head, tail = shown.split(" ...")
    assert (
        str(error.value).startswith(head)
        and str(error.value).endswith(tail.lstrip(";").lstrip())
        and "; implement" in str(error.value)
    )


def test_the_next_step_crosscheck_agrees_with_numpy():
    done = tspec("crosscheck", "--backends", "numpy,array_api_strict", "--length", "6")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AGREE" in done.stdout
