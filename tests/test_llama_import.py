"""Hugging Face Llama / Mistral / Qwen2 folders: import, logits and greedy tokens against ``transformers``, export, storage.

Every model is a tiny random-weight one made by ``transformers`` from a config in a
temporary folder, with a tokenizer trained by ``tokenizers`` (tests/llama_helpers.py):
nothing downloads.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from transformer_spec.backends import load_backend
from transformer_spec.generate import generate_tokens, native_params
from transformer_spec.hf import HFImportError, load_checkpoint_source
from transformer_spec.hf_llama import config_from_hf_llama, export_llama, import_llama, is_hf_llama_folder
from transformer_spec.spec.tolerances import tolerance
from transformer_spec.storage import StorageError, open_safetensors, read_folder_weights

from .conftest import BACKENDS, run_cli
from .llama_helpers import make_hf_folder

transformers = pytest.importorskip("transformers", reason="transformers is not installed; the Llama import cannot be compared")
torch = pytest.importorskip("torch", reason="torch is not installed; transformers' Llama needs it")

ARCHITECTURES = ("llama", "mistral", "qwen2")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """arch → (folder, the transformers model that wrote it)."""
    made = {}
    for seed, arch in enumerate(ARCHITECTURES):
        folder = tmp_path_factory.mktemp(arch)
        made[arch] = (folder, make_hf_folder(folder, arch, seed=seed))
    return made


def _ids(vocab: int, n: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=(2, n))  # (B, L)


def _hf_logits(model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(ids)).logits.float().numpy()  # (B, L, V)


def _our_logits(backend_name: str, checkpoint, ids: np.ndarray) -> np.ndarray:
    backend = load_backend(backend_name)
    params = native_params(backend, checkpoint.params, "float32")
    logits, _ = backend.model_forward(params, checkpoint.config, backend.asarray(ids, "int64"))
    return backend.to_numpy(logits)


def _assert_close(ours: np.ndarray, expected: np.ndarray) -> None:
    tol = tolerance("float32", "primitive")
    np.testing.assert_allclose(ours, expected, rtol=tol.rtol, atol=tol.atol)


def test_config_mapping(folders) -> None:
    for arch, (folder, model) in folders.items():
        assert is_hf_llama_folder(folder)
        config = import_llama(folder).config
        hf = model.config
        assert (config.d_model, config.n_heads, config.kv_heads, config.n_layers, config.d_ff) == (32, 4, 2, 2, 48)
        assert config.vocab_size == hf.vocab_size
        assert config.rope_base == 500.0 and config.norm_eps == 1e-5
        assert (config.positional, config.norm, config.activation) == ("rotary", "rms", "swiglu")
        assert config.tie_embeddings == (arch == "qwen2")
        assert config.has_qkv_bias == (arch == "qwen2") and not config.bias
        assert config.context_length == 64  # Mistral: min(max_position_embeddings, sliding_window 4096)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_logits_match_transformers(arch, backend_name, folders) -> None:
    folder, model = folders[arch]
    checkpoint = import_llama(folder)
    ids = _ids(checkpoint.config.vocab_size)
    _assert_close(_our_logits(backend_name, checkpoint, ids), _hf_logits(model, ids))


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_greedy_tokens_match_transformers_generate(arch, backend_name, folders) -> None:
    folder, model = folders[arch]
    checkpoint = import_llama(folder)
    backend = load_backend(backend_name)
    prompt = checkpoint.tokenizer.encode("Once upon a time 東京 🙂")
    ours = generate_tokens(
        backend,
        checkpoint.config,
        native_params(backend, checkpoint.params, "float32"),
        prompt,
        max_new_tokens=16,
        temperature=0.0,
    )
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=16,
            eos_token_id=None,
            pad_token_id=0,
        )
    assert list(ours.token_ids) == output[0, len(prompt) :].tolist()


def test_export_writes_a_folder_transformers_loads(tmp_path, folders) -> None:
    for arch, (folder, model) in folders.items():
        checkpoint = import_llama(folder)
        target = export_llama(tmp_path / arch, checkpoint.config, checkpoint.params, checkpoint.tokenizer, max_shard_bytes=20_000)
        assert (target / "model.safetensors.index.json").is_file()  # sharded: the index path is exercised too
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(target).eval()
        ids = _ids(checkpoint.config.vocab_size, seed=1)
        _assert_close(_hf_logits(reloaded, ids), _hf_logits(model, ids))
        again = import_llama(target)
        assert again.config == checkpoint.config
        assert again.tokenizer.encode("a café 🙂") == checkpoint.tokenizer.encode("a café 🙂")
        for name, value in checkpoint.params.items():
            np.testing.assert_array_equal(np.asarray(again.params[name]), np.asarray(value), err_msg=name)


@pytest.mark.parametrize("stored", ["bfloat16", "float16"])
def test_half_precision_folders_load_on_every_backend(tmp_path, folders, stored) -> None:
    folder, _ = folders["llama"]
    checkpoint = import_llama(folder)
    target = export_llama(tmp_path / stored, checkpoint.config, checkpoint.params, checkpoint.tokenizer, dtype=stored)
    half = import_llama(target)
    assert half.dtype == stored  # kept as stored (memory-mapped), converted once per backend
    torch_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[stored]
    reference = transformers.AutoModelForCausalLM.from_pretrained(target, dtype=torch_dtype).float().eval()
    ids = _ids(half.config.vocab_size, seed=2)
    expected = _hf_logits(reference, ids)  # the same rounded weights, computed in float32
    for backend_name in BACKENDS:
        _assert_close(_our_logits(backend_name, half, ids), expected)


def test_weights_are_memory_mapped_not_copied(folders) -> None:
    folder, _ = folders["llama"]
    checkpoint = import_llama(folder)

    def mapped(array) -> bool:
        while array is not None:
            if isinstance(array, np.memmap):
                return True
            array = array.base
        return False

    # Every tensor but the fused q|k|v (one concatenation) is a view of the mapped file.
    assert all(mapped(v) for name, v in checkpoint.params.items() if "attn.qkv" not in name)
    native = native_params(load_backend("numpy"), checkpoint.params, "float32")
    assert np.shares_memory(native["wte"], checkpoint.params["wte"])  # float32 on NumPy: no copy at all


def test_storage_errors(tmp_path, folders) -> None:
    folder, _ = folders["llama"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(StorageError, match="is it truncated"):
        open_safetensors(copy / "model.safetensors")
    (copy / "model.safetensors").unlink()
    (copy / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(StorageError, match=r"pytorch_model\.bin, a pickle, which tspec never loads.*safe_serialization=True"):
        read_folder_weights(copy)
    with pytest.raises(HFImportError, match="never loads"):
        import_llama(copy)
    (copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "gone.safetensors"}}))
    with pytest.raises(StorageError, match="gone.safetensors: listed in model.safetensors.index.json but missing"):
        read_folder_weights(copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rope_scaling": {"type": "linear", "factor": 2.0}}, r"rope_scaling = .* is not supported"),
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, r"rope_parameters\.rope_type = 'yarn'"),
        ({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "factor": 2}}, r"rope_parameters\.factor"),
        ({"model_type": "gemma"}, r"model_type is 'gemma'; supported: llama, mistral, qwen2"),
        ({"hidden_act": "gelu"}, r"hidden_act = 'gelu' is not supported; expected 'silu'"),
        ({"head_dim": 16}, r"head_dim = 16 is not supported"),
        ({"attention_bias": True}, r"attention_bias = True is not supported; expected equal to mlp_bias"),
        ({"pretraining_tp": 2}, r"pretraining_tp = 2"),
        ({"layer_types": ["sliding_attention", "full_attention"]}, r"layer_types"),
    ],
)
def test_unsupported_config_fields_are_named(change, message) -> None:
    base = {
        "model_type": "llama",
        "hidden_size": 32,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "intermediate_size": 48,
        "vocab_size": 100,
    }
    config_from_hf_llama(base)  # the base is fine
    with pytest.raises(HFImportError, match=message):
        config_from_hf_llama({**base, **change})


def test_qwen2_sliding_window_is_refused_and_mistral_window_caps_the_context() -> None:
    base = {"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 48, "vocab_size": 100}
    with pytest.raises(HFImportError, match="use_sliding_window = True is not supported"):
        config_from_hf_llama({**base, "model_type": "qwen2", "use_sliding_window": True, "sliding_window": 16})
    config = config_from_hf_llama({**base, "model_type": "mistral", "max_position_embeddings": 4096, "sliding_window": 16})
    assert config.context_length == 16  # positions past the window are refused by the context check, never miscomputed


def test_cli_generates_from_a_llama_folder(folders) -> None:
    folder, model = folders["llama"]
    checkpoint = load_checkpoint_source(folder)
    prompt = "Once upon a time"
    ids = checkpoint.tokenizer.encode(prompt)
    with torch.no_grad():
        expected = model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=False,
            max_new_tokens=6, eos_token_id=None, pad_token_id=0,
        )[0, len(ids):].tolist()  # fmt: skip
    result = run_cli(
        "generate", prompt, "--checkpoint", str(folder), "--temperature", "0", "--max-new-tokens", "6", "--ignore-eos",
        "--no-echo", "--backend", "numpy", env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == checkpoint.tokenizer.decode(expected, skip_special=True) + "\n"


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_computing_in_half_precision(backend_name, folders) -> None:
    from transformer_spec import load_model

    folder, _ = folders["llama"]
    text = "Once upon a time 東京"
    reference = load_model(folder, backend="numpy").logits(text)
    backend = load_backend(backend_name)
    for dtype in ("bfloat16", "float16"):
        if dtype not in backend.dtypes:
            continue
        model = load_model(folder, backend=backend_name, dtype=dtype)
        tol = tolerance(dtype, "composite")
        np.testing.assert_allclose(model.logits(text).astype(np.float32), reference, rtol=tol.rtol, atol=tol.atol)
