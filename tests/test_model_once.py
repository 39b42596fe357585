"""The model written once: every backend runs backends/model.py through its hooks, and a backend that
implements only the kernels gets all of it (issue: "One model, written once, that every backend can compile")."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from transformer_spec.backends import load_backend, model
from transformer_spec.backends.base import KERNELS, Backend
from transformer_spec.backends.numpy import NumpyBackend
from transformer_spec.conformance.runner import run
from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import ConfigError
from transformer_spec.spec.model import init_parameters

from .conftest import BACKENDS, ROOT, run_cli

CONFIG = ModelConfig(vocab_size=32, context_length=16, d_model=16, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=32,
                     positional="rotary", norm="rms", activation="swiglu", tie_embeddings=False)  # fmt: skip


class KernelsOnlyBackend(Backend):
    """What a third party writes from the tutorial: the kernels, nothing else (here on NumPy, by delegation)."""

    name = "kernels-only"
    array_type = np.ndarray
    dtypes = ("float32", "float64")

    def __init__(self) -> None:
        self._numpy = NumpyBackend()


for _kernel in KERNELS:  # each kernel forwards to the NumPy reference's: no hook, no composite is defined
    setattr(KernelsOnlyBackend, _kernel, lambda self, *args, _k=_kernel: getattr(self._numpy, _k)(*args))


def forward(backend: Backend, config: ModelConfig = CONFIG, length: int = 5):
    params = {name: backend.asarray(p) for name, p in init_parameters(config, 0).items()}
    ids = backend.asarray(np.arange(length).reshape(1, length) % config.vocab_size, "int64")
    return params, ids, backend.model_forward(params, config, ids)


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_computes_with_the_shared_model(name, monkeypatch):
    """Counting calls of backends/model.py's block: each backend's forward runs it once per layer (at trace time
    for a compiling backend, so its jit is off here to trace afresh)."""
    calls = []
    shared_block = model.block
    monkeypatch.setattr(model, "block", lambda *args: calls.append(args[4]) or shared_block(*args))
    backend = load_backend(name) if name != "jax" else load_backend("jax").__class__(jit=False)
    forward(backend)
    assert calls == [f"blocks.{i}." for i in range(CONFIG.n_layers)]


def test_a_backend_with_only_kernels_runs_the_whole_model_and_passes_the_composite_checks():
    backend = KernelsOnlyBackend()
    reference = NumpyBackend()
    _, _, (logits, cache) = forward(backend)
    _, _, (expected, _) = forward(reference)
    np.testing.assert_array_equal(logits, expected)
    assert cache.length == 5
    report = run(backend, components=("multihead_attention", "feedforward", "block", "model", "loss"), seed=0)
    failed = [result.id for result in report.results if result.bad]
    assert len(report.results) >= 10 and not failed, failed


def test_a_hook_returning_the_wrong_kind_of_object_is_named():
    class CompileReturnsNothing(KernelsOnlyBackend):
        def compile(self, fn, static=(), donate=()):
            return None

    class CacheWithoutMethods(KernelsOnlyBackend):
        def init_cache(self, config, batch_size=1):
            return {"keys": []}

    with pytest.raises(ConfigError, match=r"CompileReturnsNothing\.compile returned a NoneType .* expected a callable"):
        forward(CompileReturnsNothing())
    with pytest.raises(ConfigError, match=r"CacheWithoutMethods\.init_cache returned a dict, which lacks positions"):
        forward(CacheWithoutMethods())


@pytest.mark.parametrize("name", BACKENDS)
def test_a_compiling_backend_compiles_a_shape_once(name):
    backend = load_backend(name)
    params, ids, (_, cache) = forward(backend)
    backend.model_forward(params, CONFIG, ids[:, :1], cache)  # the first decoding step: a new signature
    before = backend.trace_counts().get("model_forward", 0)
    _, _, (_, cache) = forward(backend)  # the same shapes again
    backend.model_forward(params, CONFIG, ids[:, :1], cache)
    after = backend.trace_counts().get("model_forward", 0)
    if backend.compiles:
        assert after == before, f"{name}: a second call with the same shapes compiled again"
    else:  # op by op, the model's Python runs on every call
        assert after == before + 2


def test_overriding_a_composite_of_the_old_interface_warns():
    with pytest.warns(FutureWarning, match="overrides _block: since transformer-spec 0.2 the model is written once"):

        class OldStyle(KernelsOnlyBackend):
            def _block(self, params, config, x, prefix, past, positions):
                return super()._block(params, config, x, prefix, past, positions)


def test_help_shows_the_spec():
    doc = NumpyBackend.attention.__doc__
    assert "From transformer_spec.spec.attention" in doc and "$$" in doc and "Errors" in doc


def test_the_application_never_asks_a_backend_its_name():
    """Capabilities, not names: no module of the application compares a backend's name to a built-in one."""
    name_test = re.compile(
        r"""(==|!=|\bin)\s*[(\[]?["'](numpy|torch|jax)["']|["'](numpy|torch|jax)["']\s*(==|!=)|backend\w*\.name\s*(==|!=|in)\s"""
    )
    offenders = []
    for path in (ROOT / "transformer_spec").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if name_test.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


def test_a_decoding_step_is_the_last_position_of_the_forward():
    backend = NumpyBackend()
    params, ids, (logits, _) = forward(backend)
    _, cache = backend.model_forward(params, CONFIG, ids[:, :4])
    step_logits, cache = model.decode_step(backend.ops, params, CONFIG, ids[:, 4:], cache)
    np.testing.assert_allclose(step_logits, logits[:, -1], rtol=1e-5, atol=1e-6)
    assert step_logits.shape == (1, CONFIG.vocab_size) and cache.length == 5


def test_importing_and_constructing_backends_changes_no_process_wide_setting(tmp_path):
    """TF32 stays as the process set it; JAX's compilation cache stays off until someone asks for it."""
    script = """
import torch, jax
torch.backends.cuda.matmul.allow_tf32 = True
from transformer_spec.backends import load_backend
for name in ("numpy", "torch", "jax"):
    load_backend(name)
assert torch.backends.cuda.matmul.allow_tf32 is True, "constructing the torch backend switched TF32 off"
assert not jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_dir
print("untouched")
"""
    if not {"torch", "jax"} <= set(BACKENDS):
        pytest.skip("needs torch and jax")
    env = {k: v for k, v in os.environ.items() if k != "TSPEC_JAX_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and "untouched" in done.stdout, done.stderr[-2000:]


def test_a_rotary_kernel_of_the_old_contract_serves_a_padded_batch():
    """Batched generation passes per-row positions; a kernel that only takes (L,) positions gets one row at a time."""
    old, reference = KernelsOnlyBackend(), NumpyBackend()
    assert not old.rotary_positions_per_row and reference.rotary_positions_per_row
    outputs = []
    for backend in (old, reference):
        params = {name: backend.asarray(p) for name, p in init_parameters(CONFIG, 0).items()}
        ids = backend.asarray(np.array([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]]), "int64")  # row 0 has two slots of padding
        cache = backend.init_padded_cache(CONFIG, (2, 0))
        logits, _ = backend.model_forward(params, CONFIG, ids, cache)
        outputs.append(backend.to_numpy(logits))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_the_conformance_header_lists_the_hooks():
    done = run_cli("conformance", "--backend", "numpy", "-k", "softmax.sums_to_one", "--seed", "0")
    assert done.returncode == 0, done.stderr
    assert "hooks: compile: none (op by op) · kv cache: KVCache · autodiff: none" in done.stdout.splitlines()[2]
