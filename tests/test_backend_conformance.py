"""Every built-in backend passes the whole conformance suite in every dtype it declares — no xfails."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transformer_spec.backends import available_backends, load_backend
from transformer_spec.conformance.runner import render_table, run

COMPILED = [name for name in ("torch", "jax") if name in available_backends()]


@pytest.mark.parametrize("name", COMPILED)
def test_backend_passes_every_invariant_in_every_declared_dtype(name):
    backend = load_backend(name)
    seed = int.from_bytes(os.urandom(4), "little")
    report = run(name, dtypes=tuple(backend.dtypes), profile="dev", seed=seed)
    print(f"{name}: conformance seed {seed}")
    assert report.ok, render_table(report)
    assert not [r for r in report.results if r.status == "xfailed"]
    if backend.supports_autodiff:  # the gradient checks ran rather than skipped
        assert any(r.component == "gradients" and r.status == "passed" for r in report.results), render_table(report)


@pytest.mark.skipif("jax" not in available_backends(), reason="jax is not installed: pip install 'transformer-spec[jax]'")
def test_jax_float64_under_x64():
    done = subprocess.run(
        [sys.executable, "-m", "transformer_spec.cli", "conformance", "--backend", "jax", "--dtype", "float64", "--quiet"],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "JAX_ENABLE_X64": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "PASSED" in done.stdout


@pytest.mark.skipif("jax" not in available_backends(), reason="jax is not installed: pip install 'transformer-spec[jax]'")
def test_jax_float64_without_x64_is_a_clear_error():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from transformer_spec.backends import load_backend; load_backend('jax').asarray([1.0], 'float64')",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"},
    )
    assert done.returncode != 0 and "JAX_ENABLE_X64" in done.stderr
