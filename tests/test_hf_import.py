"""Importing a Hugging Face GPT-2 folder: same logits as ``transformers`` on every backend, same token ids.

The model is a randomly initialised ``GPT2LMHeadModel`` (with its weights
perturbed so that layer norms and biases are not the identity and zero) saved
with ``save_pretrained``; the tokenizer is a byte-level BPE trained here by our
trainer, and its ids are checked against the ``tokenizers`` library's
``ByteLevelBPETokenizer`` reading the same files (not ``GPT2TokenizerFast``: see
the pitfalls in DESIGN.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from transformer_spec import load_model
from transformer_spec.backends import load_backend
from transformer_spec.checkpoint import load_checkpoint, save_checkpoint
from transformer_spec.data.corpus import END_OF_TEXT, generate_corpus
from transformer_spec.generate import generate, generate_tokens, native_params
from transformer_spec.hf import (
    HFImportError,
    config_from_hf,
    gpt2_model_from_params,
    hf_state_from_params,
    import_gpt2,
    is_hf_gpt2_folder,
    params_from_hf,
)
from transformer_spec.spec.tolerances import tolerance
from transformer_spec.tokenizers import ByteLevelBPETokenizer

from .conftest import BACKENDS

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed (pip install 'transformer-spec[test]'); the Hugging Face import cannot be compared",
)
torch = pytest.importorskip("torch", reason="torch is not installed; transformers' GPT-2 needs it")

VOCAB_SIZE = 400
TEXTS = [
    "Once upon a time there was a cat who lived in a castle.",
    "What is the capital of Nigeria? Abuja is the capital of Nigeria.",
    "naïve café, 東京, emoji 🙂 and   spaces\nnew lines\t\ttabs",
    "Don't stop: it's 42 o'clock!!",
]


@pytest.fixture(scope="module")
def tokenizer() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer.train(
        generate_corpus(seed=1, n_documents=200), vocab_size=VOCAB_SIZE, special_tokens=(END_OF_TEXT,)
    )


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, tokenizer) -> Path:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        # Hugging Face initialises norms to 1 and biases to 0, which would hide a swapped weight/bias or ln_1/ln_2.
        for name, parameter in model.named_parameters():
            parameter.add_(torch.randn_like(parameter) * (0.2 if parameter.ndim == 1 else 0.05))
    folder = tmp_path_factory.mktemp("hf_gpt2")
    model.save_pretrained(folder)
    tokenizer.save(folder)  # vocab.json + merges.txt, GPT-2's format
    return folder


@pytest.fixture(scope="module")
def hf_model(hf_folder):
    return transformers.GPT2LMHeadModel.from_pretrained(hf_folder).eval()


@pytest.fixture(scope="module")
def imported(hf_folder):
    return import_gpt2(hf_folder)


def _ids(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB_SIZE, size=(2, n))  # (B, L)


def _hf_logits(hf_model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return hf_model(torch.from_numpy(ids)).logits.numpy()  # (B, L, V)


def test_folder_is_recognised(hf_folder) -> None:
    assert is_hf_gpt2_folder(hf_folder)
    assert "model.safetensors" in {p.name for p in hf_folder.iterdir()}


def test_config_mapping(imported) -> None:
    config = imported.config
    assert (config.vocab_size, config.context_length, config.d_model, config.n_heads, config.n_layers, config.d_ff) == (
        VOCAB_SIZE,
        32,
        32,
        4,
        2,
        128,
    )
    assert config.activation == "gelu_tanh" and config.tie_embeddings and config.norm_eps == 1e-5


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_logits_match_transformers(backend_name, imported, hf_model) -> None:
    backend = load_backend(backend_name)
    params = native_params(backend, imported.params, "float32")
    ids = _ids(32)  # the full context
    ours, _ = backend.model_forward(params, imported.config, backend.asarray(ids, "int64"))
    expected = _hf_logits(hf_model, ids)
    # The primitive row (|diff| <= 1e-5 + 1.3e-6 |x|), tighter than a composite needs: the same float32
    # computation in another library differs by under 4e-7 here (logits of magnitude ~1).
    tol = tolerance("float32", "primitive")
    np.testing.assert_allclose(backend.to_numpy(ours), expected, rtol=tol.rtol, atol=tol.atol)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_greedy_continuation_matches_transformers_generate(backend_name, imported, hf_model) -> None:
    backend = load_backend(backend_name)
    prompt = [int(i) for i in _ids(6, seed=5)[0]]
    ours = generate_tokens(
        backend, imported.config, native_params(backend, imported.params), prompt, max_new_tokens=20, temperature=0.0
    )
    with torch.no_grad():
        theirs = hf_model.generate(
            torch.tensor([prompt]), max_new_tokens=20, min_new_tokens=20, do_sample=False, use_cache=True, pad_token_id=0
        )
    assert list(ours.token_ids) == theirs[0, len(prompt) :].tolist()


def test_tokenizer_matches_tokenizers_library(hf_folder, imported) -> None:
    oracle_library = pytest.importorskip("tokenizers", reason="the `tokenizers` library (the GPT-2 oracle) is not installed")
    oracle = oracle_library.ByteLevelBPETokenizer(str(hf_folder / "vocab.json"), str(hf_folder / "merges.txt"))
    for text in TEXTS + generate_corpus(seed=7, n_documents=20):
        assert imported.tokenizer.encode(text) == oracle.encode(text).ids, text
        assert imported.tokenizer.decode(oracle.encode(text).ids) == text


def test_import_then_save_in_our_format(tmp_path, imported, hf_model) -> None:
    folder = save_checkpoint(tmp_path / "ours", imported.config, imported.params, imported.tokenizer, imported.metadata)
    again = load_checkpoint(folder)
    for name, value in imported.params.items():
        assert again.params[name].tobytes() == value.tobytes()
    result = generate("numpy", again, "Once upon a time", max_new_tokens=5, temperature=0)
    assert len(result.token_ids) == 5


def test_load_model_imports_a_hugging_face_folder(hf_folder, hf_model) -> None:
    model = load_model(hf_folder, backend="numpy")
    ids = model.tokenizer.encode(TEXTS[0])[:32]
    tol = tolerance("float32", "primitive")
    np.testing.assert_allclose(
        model.logits(model.tokenizer.decode(ids)), _hf_logits(hf_model, np.asarray([ids]))[0], rtol=tol.rtol, atol=tol.atol
    )


def test_reverse_mapping_round_trips(imported, hf_model) -> None:
    state = hf_state_from_params(imported.params, imported.config)
    theirs = {
        name: value.numpy()
        for name, value in hf_model.state_dict().items()
        if not re.fullmatch(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)", name)
    }
    assert set(state) == set(theirs)
    for name, value in theirs.items():
        assert np.array_equal(state[name], value), name
    rebuilt = gpt2_model_from_params(imported.params, imported.config)
    ids = _ids(8, seed=2)
    assert np.array_equal(_hf_logits(rebuilt, ids), _hf_logits(hf_model, ids))


def test_prefix_free_names_and_buffers_and_untied_head(imported) -> None:
    config = imported.config
    state = {name.removeprefix("transformer."): value for name, value in hf_state_from_params(imported.params, config).items()}
    state["h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32)))  # the causal-mask buffer of older transformers versions
    state["h.0.attn.masked_bias"] = np.array(-1e4)
    assert params_from_hf(state, config).keys() == imported.params.keys()

    from dataclasses import replace

    untied = replace(config, tie_embeddings=False)
    state["lm_head.weight"] = np.arange(VOCAB_SIZE * 32, dtype=np.float32).reshape(VOCAB_SIZE, 32)
    params = params_from_hf(state, untied)
    assert np.array_equal(params["lm_head.weight"], state["lm_head.weight"].T)


def test_bad_folders(tmp_path, hf_folder) -> None:
    with pytest.raises(HFImportError, match="not a folder"):
        import_gpt2(tmp_path / "missing")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((hf_folder / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(HFImportError, match="never loads"):
        import_gpt2(pickled)
    document = json.loads((hf_folder / "config.json").read_text())
    with pytest.raises(HFImportError, match="activation_function = 'swish'"):
        config_from_hf(dict(document, activation_function="swish"))
    with pytest.raises(HFImportError, match="scale_attn_by_inverse_layer_idx"):
        config_from_hf(dict(document, scale_attn_by_inverse_layer_idx=True))
    with pytest.raises(HFImportError, match="n_heads = 5 does not divide"):
        config_from_hf(dict(document, n_head=5))
    with pytest.raises(HFImportError, match="no GPT-2 counterpart"):
        params_from_hf({"h.0.attn.q_proj.weight": np.zeros((2, 2))}, config_from_hf(document))
