"""Hugging Face GPT-2 folders, to and from the layout of :mod:`transformer_spec.spec.model`.

A Hugging Face GPT-2 folder holds ``config.json`` (a ``GPT2Config``),
``model.safetensors`` (or shards listed in ``model.safetensors.index.json``)
and the tokenizer's ``vocab.json`` + ``merges.txt``. The weights map one to one:

=================================  ==================================
Hugging Face (``transformer.`` optional)   ours
=================================  ==================================
``wte.weight`` (V, D)              ``wte``
``wpe.weight`` (C, D)              ``wpe``
``h.{i}.ln_1.{weight,bias}``       ``blocks.{i}.ln1.{weight,bias}``
``h.{i}.attn.c_attn.*`` (D, 3D)    ``blocks.{i}.attn.qkv.*``
``h.{i}.attn.c_proj.*`` (D, D)     ``blocks.{i}.attn.proj.*``
``h.{i}.ln_2.*``                   ``blocks.{i}.ln2.*``
``h.{i}.mlp.c_fc.*`` (D, F)        ``blocks.{i}.mlp.fc.*``
``h.{i}.mlp.c_proj.*`` (F, D)      ``blocks.{i}.mlp.proj.*``
``ln_f.*``                         ``ln_f.*``
``lm_head.weight`` (V, D)          tied to ``wte`` (skipped), else ``lm_head.weight`` transposed (D, V)
=================================  ==================================

GPT-2's ``Conv1D`` stores its weight as (in, out), the orientation of our
``linear``, so no matrix is transposed; the fused ``c_attn`` splits its 3·D
outputs as q | k | v and each into heads, exactly as our ``attn.qkv`` does.
The causal-mask buffers ``attn.bias`` / ``attn.masked_bias`` are not weights and
are skipped. Only ``.safetensors`` files are read (memory-mapped, bfloat16
included; see :mod:`transformer_spec.storage`): a ``pytorch_model.bin`` is a
pickle, which this package never loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import SpecError
from transformer_spec.spec.model import check_parameters, parameter_shapes

from .checkpoint import CONFIG_FILE, Checkpoint, CheckpointError, read_config_document
from .tokenizers import ByteLevelBPETokenizer, load_tokenizer

HF_WEIGHTS_FILE = "model.safetensors"
HF_WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
# Hugging Face activation names → ours. gelu_new, gelu_fast and gelu_pytorch_tanh
# are all 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), written differently.
ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "gelu_python": "gelu",
    "relu": "relu",
}
_ACTIVATIONS_BACK = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
# Per block: Hugging Face module name → our prefix (suffixes .weight / .bias are kept).
_BLOCK_MODULES = {
    "ln_1": "ln1",
    "attn.c_attn": "attn.qkv",
    "attn.c_proj": "attn.proj",
    "ln_2": "ln2",
    "mlp.c_fc": "mlp.fc",
    "mlp.c_proj": "mlp.proj",
}
# The causal-mask buffers of older transformers versions, h.{i}.attn.bias and h.{i}.attn.masked_bias
# (not to be confused with the weight h.{i}.attn.c_attn.bias).
_BUFFER_PATTERN = re.compile(r"(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)")


class HFImportError(CheckpointError):
    """A Hugging Face folder cannot be imported: a missing file, an unsupported option or a tensor that does not fit."""


# ---------------------------------------------------------------------- configuration


def config_from_hf(hf_config: Mapping[str, Any], *, source: str = "config.json") -> ModelConfig:
    """Our ModelConfig for a Hugging Face ``GPT2Config`` (as its ``config.json`` dict)."""
    if hf_config.get("model_type", "gpt2") != "gpt2":
        raise HFImportError(f"{source}: model_type is {hf_config.get('model_type')!r}, expected 'gpt2'")
    # Options that change the computation in ways our GPT-2 layout does not express.
    unsupported = {
        "scale_attn_weights": (hf_config.get("scale_attn_weights", True), True),
        "scale_attn_by_inverse_layer_idx": (hf_config.get("scale_attn_by_inverse_layer_idx", False), False),
        "add_cross_attention": (hf_config.get("add_cross_attention", False), False),
    }
    for name, (value, expected) in unsupported.items():
        if value != expected:
            raise HFImportError(f"{source}: {name} = {value!r} is not supported; expected {expected!r} (plain GPT-2 attention)")
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in ACTIVATIONS:
        raise HFImportError(
            f"{source}: activation_function = {activation!r} is not supported; expected one of {sorted(ACTIVATIONS)}"
        )
    try:
        d_model = int(hf_config["n_embd"])
        n_inner = hf_config.get("n_inner")
        return ModelConfig(
            vocab_size=int(hf_config["vocab_size"]),
            context_length=int(hf_config["n_positions"]),
            d_model=d_model,
            n_heads=int(hf_config["n_head"]),
            n_layers=int(hf_config["n_layer"]),
            d_ff=4 * d_model if n_inner is None else int(n_inner),
            positional="learned",
            norm="layer",
            activation=ACTIVATIONS[activation],
            tie_embeddings=bool(hf_config.get("tie_word_embeddings", True)),
            bias=True,
            norm_eps=float(hf_config.get("layer_norm_epsilon", 1e-5)),
        )
    except KeyError as error:
        raise HFImportError(
            f"{source}: lacks {error.args[0]!r}; expected a GPT2Config with n_embd, n_head, n_layer, n_positions, vocab_size"
        ) from None
    except (TypeError, ValueError) as error:
        if isinstance(error, SpecError):
            raise HFImportError(f"{source}: {error}") from None
        raise HFImportError(f"{source}: a GPT2Config field has the wrong type ({error})") from None


def hf_config_from_config(config: ModelConfig) -> dict[str, Any]:
    """The ``GPT2Config`` keyword arguments for ``config`` (which must be a GPT-2-shaped config)."""
    problems = []
    if config.positional != "learned":
        problems.append(f"positional = {config.positional!r} (GPT-2 has learned positions)")
    if config.norm != "layer" or not config.bias:
        problems.append("norm/bias (GPT-2 has layer norms and linear layers with biases)")
    if config.activation not in _ACTIVATIONS_BACK:
        problems.append(f"activation = {config.activation!r} (expected gelu_tanh, gelu or relu)")
    if problems:
        raise HFImportError(f"hf_config_from_config: this config has no GPT-2 counterpart: {'; '.join(problems)}")
    return {
        "vocab_size": config.vocab_size,
        "n_positions": config.context_length,
        "n_embd": config.d_model,
        "n_head": config.n_heads,
        "n_layer": config.n_layers,
        "n_inner": config.d_ff,
        "activation_function": _ACTIVATIONS_BACK[config.activation],
        "layer_norm_epsilon": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings,
    }


# ---------------------------------------------------------------------- weights


def params_from_hf(
    state: Mapping[str, np.ndarray], config: ModelConfig, *, source: str = "the state dict"
) -> dict[str, np.ndarray]:
    """Our parameter dict from a Hugging Face GPT-2 state dict (NumPy arrays, ``transformer.`` prefix optional)."""
    params: dict[str, np.ndarray] = {}
    unknown: list[str] = []
    for hf_name, value in state.items():
        name = hf_name[len("transformer.") :] if hf_name.startswith("transformer.") else hf_name
        if _BUFFER_PATTERN.fullmatch(name):
            continue
        if name == "lm_head.weight":
            if not config.tie_embeddings:
                params["lm_head.weight"] = np.ascontiguousarray(np.asarray(value).T)  # nn.Linear (V, D) → ours (D, V)
            continue  # tied: the same matrix as wte
        ours = _our_name(name)
        if ours is None:
            unknown.append(hf_name)
            continue
        params[ours] = np.asarray(value)
    if unknown:
        raise HFImportError(f"{source}: tensors with no GPT-2 counterpart: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    try:
        check_parameters(config, {name: tuple(value.shape) for name, value in params.items()})
    except SpecError as error:
        raise HFImportError(f"{source}: {error} (names in our layout; see transformer_spec.hf for the mapping)") from None
    return {name: params[name] for name in parameter_shapes(config)}


def _our_name(name: str) -> str | None:
    for hf_module, ours in (("wte", "wte"), ("wpe", "wpe")):
        if name == f"{hf_module}.weight":
            return ours
    if name.startswith("ln_f."):
        return name
    if name.startswith("h."):
        index, _, rest = name[2:].partition(".")
        module, _, suffix = rest.rpartition(".")
        if index.isdigit() and module in _BLOCK_MODULES and suffix in ("weight", "bias"):
            return f"blocks.{int(index)}.{_BLOCK_MODULES[module]}.{suffix}"
    return None


def hf_state_from_params(params: Mapping[str, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """The reverse mapping: a ``GPT2LMHeadModel`` state dict (``transformer.`` names) from our parameters."""
    hf_config_from_config(config)  # refuses configs GPT-2 cannot express
    back = {ours: hf for hf, ours in _BLOCK_MODULES.items()}
    state: dict[str, np.ndarray] = {}
    for name, value in params.items():
        array = np.asarray(value)
        if name in ("wte", "wpe"):
            state[f"transformer.{name}.weight"] = array
        elif name.startswith("ln_f."):
            state[f"transformer.{name}"] = array
        elif name == "lm_head.weight":
            state["lm_head.weight"] = np.ascontiguousarray(array.T)  # ours (D, V) → nn.Linear (V, D)
        elif name.startswith("blocks."):
            index, _, rest = name[len("blocks.") :].partition(".")
            module, _, suffix = rest.rpartition(".")
            state[f"transformer.h.{index}.{back[module]}.{suffix}"] = array
        else:
            raise HFImportError(f"hf_state_from_params: parameter {name!r} has no GPT-2 counterpart")
    if config.tie_embeddings:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def read_hf_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a Hugging Face folder's safetensors file(s): memory-mapped, float16 / bfloat16 / float32 / float64.

    One ``model.safetensors`` or the shards of ``model.safetensors.index.json``
    (:mod:`transformer_spec.storage`); never a pickle (``pytorch_model.bin`` is
    refused with the command that converts it).
    """
    from .storage import StorageError, read_folder_weights

    try:
        return read_folder_weights(folder)
    except StorageError as error:
        raise HFImportError(str(error), path=error.path) from None


# ---------------------------------------------------------------------- the folder


def is_hf_gpt2_folder(folder: str | Path) -> bool:
    """Whether ``folder`` looks like a Hugging Face GPT-2 folder (its config.json says model_type gpt2)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("model_type") == "gpt2" and "format" not in document


def import_gpt2(folder: str | Path, *, tokenizer: Any = None, dtype: str = "float32") -> Checkpoint:
    """A Hugging Face GPT-2 folder as a :class:`~transformer_spec.checkpoint.Checkpoint` (weights cast to ``dtype``).

    The tokenizer is read from the folder's ``vocab.json`` + ``merges.txt``
    unless ``tokenizer`` is given. Save the result in our format with
    ``save_checkpoint(dir, ck.config, ck.params, ck.tokenizer, ck.metadata)``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HFImportError(
            f"import_gpt2: {folder} is not a folder; expected a Hugging Face GPT-2 folder (save_pretrained)", path=folder
        )
    if dtype not in ("float16", "float32", "float64"):
        raise HFImportError(f"import_gpt2: dtype = {dtype!r}, expected float16, float32 or float64")
    config_path = folder / CONFIG_FILE
    hf_config = read_config_document(config_path)
    config = config_from_hf(hf_config, source=str(config_path))
    params = params_from_hf(read_hf_weights(folder), config, source=str(folder))
    params = {name: value.astype(dtype, copy=False) for name, value in params.items()}
    if tokenizer is None:
        if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
            raise HFImportError(
                f"{folder}: no vocab.json + merges.txt; expected GPT-2's tokenizer files there, "
                f"or pass tokenizer= (e.g. ByteLevelBPETokenizer.load(other_folder))",
                path=folder,
            )
        tokenizer = load_tokenizer(folder)
    if not isinstance(tokenizer, ByteLevelBPETokenizer) and not hasattr(tokenizer, "encode"):
        raise HFImportError(f"import_gpt2: tokenizer is a {type(tokenizer).__name__}, expected a tspec tokenizer")
    if tokenizer.vocab_size > config.vocab_size:
        raise HFImportError(
            f"{folder}: the tokenizer has {tokenizer.vocab_size} ids but the model vocab_size = {config.vocab_size}",
            path=folder,
        )
    metadata = {"source": "huggingface-gpt2", "imported_from": str(folder)}
    return Checkpoint(config=config, params=params, tokenizer=tokenizer, metadata=metadata, path=folder)


def load_checkpoint_source(source: str | Path | None, *, dtype: str = "float32") -> Checkpoint:
    """A checkpoint from any source the commands accept, with the same errors everywhere.

    ``None``: the model shipped with the package; a folder of ours (:func:`~transformer_spec.checkpoint.load_checkpoint`);
    a Hugging Face GPT-2 folder (:func:`import_gpt2`, weights cast to ``dtype``; a pickle-only folder is told how
    to convert); or a Hugging Face Llama / Mistral / Qwen2 folder (:func:`transformer_spec.hf_llama.import_llama`). ``generate``, ``chat``, ``eval``, ``finetune --checkpoint`` and ``train --init`` all read their
    checkpoint through this function (or :func:`transformer_spec.api.load_model`, which dispatches the same way).
    """
    from .checkpoint import default_checkpoint_path, load_checkpoint

    if source is None:
        return load_checkpoint(default_checkpoint_path())
    if is_hf_gpt2_folder(source):
        return import_gpt2(source, dtype=dtype)
    if is_hf_folder(source):
        from .hf_llama import import_llama

        return import_llama(source, dtype=dtype)  # Llama / Mistral / Qwen2; any other model_type is named and refused
    return load_checkpoint(source)


def is_hf_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a Hugging Face ``config.json`` (a ``model_type`` and none of our ``format``)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "model_type" in document and "format" not in document


def gpt2_model_from_params(params: Mapping[str, Any], config: ModelConfig) -> Any:
    """A ``transformers.GPT2LMHeadModel`` (eval mode, float32) holding our parameters — for comparisons and benchmarks."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    # No special-token ids: ours live in the tokenizer, and GPT-2's default 50256 may not exist in a small vocabulary.
    model = GPT2LMHeadModel(GPT2Config(**hf_config_from_config(config), bos_token_id=None, eos_token_id=None))
    state = {
        name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in hf_state_from_params(params, config).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not _BUFFER_PATTERN.fullmatch(name)]
    if missing or unexpected:
        raise HFImportError(
            f"gpt2_model_from_params: transformers expected other tensors: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if config.tie_embeddings:
        model.tie_weights()
    return model.eval()


__all__ = [
    "ACTIVATIONS",
    "HFImportError",
    "config_from_hf",
    "gpt2_model_from_params",
    "hf_config_from_config",
    "hf_state_from_params",
    "import_gpt2",
    "is_hf_folder",
    "is_hf_gpt2_folder",
    "load_checkpoint_source",
    "params_from_hf",
    "read_hf_weights",
]
