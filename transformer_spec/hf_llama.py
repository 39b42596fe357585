"""Hugging Face Llama-family folders (Llama, Mistral, Qwen2), to and from the layout of :mod:`transformer_spec.spec.model`.

The three architectures are one block: RMS norm before attention and before
the MLP, rotary positions on q and k, grouped-query attention
(``num_key_value_heads``), a SwiGLU MLP (``down(silu(gate(x)) * up(x))``) and
no biases — except Qwen2, whose q/k/v projections have biases (our
``qkv_bias=True`` with ``bias=False``).

Configuration (``config.json``)
-------------------------------
========================================  =====================================
Hugging Face                              ours
========================================  =====================================
``hidden_size``                           ``d_model``
``num_attention_heads``                   ``n_heads``
``num_key_value_heads`` (None: heads)     ``n_kv_heads``
``num_hidden_layers``                     ``n_layers``
``intermediate_size``                     ``d_ff``
``vocab_size``                            ``vocab_size``
``max_position_embeddings``               ``context_length`` (Mistral: at most ``sliding_window``, see below)
``rms_norm_eps``                          ``norm_eps``
``rope_theta`` / ``rope_parameters``      ``rope_base``
``tie_word_embeddings``                   ``tie_embeddings``
``hidden_act`` = ``silu``                 ``activation = "swiglu"``
========================================  =====================================

Anything that would change the numbers and that we do not compute — rope
scaling, a head width other than ``hidden_size / num_attention_heads``, biases
Llama puts on the output projection only, a sliding window shorter than the
context — is an :class:`HFImportError` naming the field, never silently wrong
logits. A sliding window of ``W`` only hides keys more than ``W - 1`` positions
back, so a model whose context is at most ``W`` never uses it: Mistral's
context is imported as ``min(max_position_embeddings, sliding_window)``.

Weights
-------
``nn.Linear`` stores its weight ``(out, in)``; our ``linear`` takes ``(in, out)``,
so every projection is transposed (a view of the memory-mapped file, no copy).
q, k and v are concatenated along the output axis into our fused
``attn.qkv.weight`` ``(D, (H + 2 Hkv) Dh)`` — the one copy an import makes.

=====================================================  ===================================
Hugging Face (``model.`` prefix)                        ours
=====================================================  ===================================
``embed_tokens.weight`` (V, D)                          ``wte``
``layers.{i}.input_layernorm.weight``                   ``blocks.{i}.ln1.weight``
``layers.{i}.self_attn.{q,k,v}_proj.{weight,bias}``     ``blocks.{i}.attn.qkv.{weight,bias}`` (q | k | v)
``layers.{i}.self_attn.o_proj.weight``                  ``blocks.{i}.attn.proj.weight``
``layers.{i}.post_attention_layernorm.weight``          ``blocks.{i}.ln2.weight``
``layers.{i}.mlp.gate_proj.weight``                     ``blocks.{i}.mlp.gate.weight``
``layers.{i}.mlp.up_proj.weight``                       ``blocks.{i}.mlp.fc.weight``
``layers.{i}.mlp.down_proj.weight``                     ``blocks.{i}.mlp.proj.weight``
``norm.weight``                                         ``ln_f.weight``
``lm_head.weight`` (V, D)                               ``lm_head.weight`` (D, V), absent when tied
=====================================================  ===================================

Rotary layout: Hugging Face's Llama checkpoints rotate pairs ``(i, i + Dh/2)``
(``rotate_half``; Meta's original weights are permuted into that order by the
conversion script), which is exactly our half-split ``rotary``: q and k need no
permutation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import SpecError
from transformer_spec.spec.model import check_parameters, parameter_shapes

from .checkpoint import CONFIG_FILE, Checkpoint, read_config_document
from .hf import HFImportError
from .storage import StorageError, dtype_name, read_folder_weights, to_host_float

ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}
# Fields that change the computation, with the one value we compute (None: absent is fine too). A field not
# listed here and not mapped is ignored: generation defaults, token ids, dropout (zero at inference), dtype.
_REQUIRED_VALUES: dict[str, dict[str, Any]] = {
    "llama": {"pretraining_tp": 1, "rope_scaling": None},
    "mistral": {"rope_scaling": None},
    "qwen2": {"rope_scaling": None, "use_sliding_window": False},
}
_BLOCK = {
    "input_layernorm.weight": "ln1.weight",
    "post_attention_layernorm.weight": "ln2.weight",
    "self_attn.o_proj.weight": "attn.proj.weight",
    "self_attn.o_proj.bias": "attn.proj.bias",
    "mlp.gate_proj.weight": "mlp.gate.weight",
    "mlp.gate_proj.bias": "mlp.gate.bias",
    "mlp.up_proj.weight": "mlp.fc.weight",
    "mlp.up_proj.bias": "mlp.fc.bias",
    "mlp.down_proj.weight": "mlp.proj.weight",
    "mlp.down_proj.bias": "mlp.proj.bias",
}
_QKV = ("q_proj", "k_proj", "v_proj")


# ---------------------------------------------------------------------- configuration


def model_type_of(hf_config: Mapping[str, Any]) -> str | None:
    """The ``model_type`` of a Hugging Face config dict (or None)."""
    value = hf_config.get("model_type")
    return value if isinstance(value, str) else None


def config_from_hf_llama(hf_config: Mapping[str, Any], *, source: str = "config.json") -> ModelConfig:
    """Our ModelConfig for a Hugging Face Llama / Mistral / Qwen2 config (its ``config.json`` as a dict)."""
    kind = model_type_of(hf_config)
    if kind not in ARCHITECTURES:
        raise HFImportError(
            f"{source}: model_type is {hf_config.get('model_type')!r}; supported: "
            f"{', '.join(sorted(ARCHITECTURES))} (Llama family) and 'gpt2' (transformer_spec.hf.import_gpt2)"
        )

    def refuse(field: str, value: Any, expected: str) -> HFImportError:
        return HFImportError(
            f"{source}: {field} = {value!r} is not supported; expected {expected} "
            f"(supported: {', '.join(ARCHITECTURES.values())} with plain rotary positions, SiLU SwiGLU MLP, "
            f"RMS norm, full causal attention)"
        )

    for field, expected in _REQUIRED_VALUES[kind].items():
        value = hf_config.get(field, expected)
        if value != expected:
            raise refuse(field, value, repr(expected))
    rope_base = hf_config.get("rope_theta")
    rope_parameters = hf_config.get("rope_parameters")
    if rope_parameters is not None:  # transformers 5: {"rope_theta": ..., "rope_type": "default"}
        if not isinstance(rope_parameters, dict):
            raise refuse("rope_parameters", rope_parameters, 'an object {"rope_type": "default", "rope_theta": ...}')
        if rope_parameters.get("rope_type", "default") != "default":
            raise refuse("rope_parameters.rope_type", rope_parameters.get("rope_type"), "'default' (no rope scaling)")
        extra = sorted(set(rope_parameters) - {"rope_type", "rope_theta"})
        if extra:
            raise refuse(f"rope_parameters.{extra[0]}", rope_parameters[extra[0]], "only rope_type and rope_theta")
        rope_base = rope_parameters.get("rope_theta", rope_base)
    activation = hf_config.get("hidden_act", "silu")
    if activation != "silu":
        raise refuse("hidden_act", activation, "'silu' (SwiGLU)")
    attention_bias = bool(hf_config.get("attention_bias", False))
    mlp_bias = bool(hf_config.get("mlp_bias", False))
    if attention_bias != mlp_bias:
        # Ours: `bias` governs every linear; Llama's attention_bias alone would bias q/k/v/o and not the MLP.
        raise refuse("attention_bias", attention_bias, f"equal to mlp_bias = {mlp_bias} (both biased or neither)")
    layer_types = hf_config.get("layer_types")
    if layer_types is not None and any(t != "full_attention" for t in layer_types):
        raise refuse("layer_types", sorted(set(layer_types)), "every layer 'full_attention'")
    try:
        d_model = int(hf_config["hidden_size"])
        n_heads = int(hf_config["num_attention_heads"])
        n_kv = hf_config.get("num_key_value_heads")
        head_dim = hf_config.get("head_dim")
        if head_dim is not None and int(head_dim) * n_heads != d_model:
            raise refuse("head_dim", head_dim, f"hidden_size / num_attention_heads = {d_model // max(n_heads, 1)}")
        context = int(hf_config.get("max_position_embeddings", 2048))
        window = hf_config.get("sliding_window") if kind == "mistral" else None
        if window is not None:
            # Within W positions a sliding window hides nothing: cap the context there rather than compute it.
            context = min(context, int(window))
        return ModelConfig(
            vocab_size=int(hf_config["vocab_size"]),
            context_length=context,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=None if n_kv is None else int(n_kv),
            n_layers=int(hf_config["num_hidden_layers"]),
            d_ff=int(hf_config["intermediate_size"]),
            positional="rotary",
            norm="rms",
            activation="swiglu",
            tie_embeddings=bool(hf_config.get("tie_word_embeddings", False)),
            bias=attention_bias,
            qkv_bias=True if kind == "qwen2" else None,  # Qwen2: q/k/v biased, o_proj and the MLP not
            norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
            rope_base=float(10000.0 if rope_base is None else rope_base),
        )
    except KeyError as error:
        raise HFImportError(
            f"{source}: lacks {error.args[0]!r}; expected a {ARCHITECTURES[kind]} config with hidden_size, "
            f"num_attention_heads, num_hidden_layers, intermediate_size and vocab_size"
        ) from None
    except (TypeError, ValueError) as error:
        if isinstance(error, SpecError):
            raise HFImportError(f"{source}: {error}") from None
        raise HFImportError(f"{source}: a config field has the wrong type ({error})") from None


def hf_config_from_config(config: ModelConfig, *, eos_token_id: int | None = None, bos_token_id: int | None = None) -> dict:
    """The ``config.json`` of a Llama (or, with q/k/v-only biases, Qwen2) folder for ``config``."""
    problems = []
    if config.positional != "rotary":
        problems.append(f"positional = {config.positional!r} (expected rotary)")
    if config.norm != "rms":
        problems.append(f"norm = {config.norm!r} (expected rms)")
    if config.activation != "swiglu":
        problems.append(f"activation = {config.activation!r} (expected swiglu)")
    if config.bias and not config.has_qkv_bias:
        problems.append("bias=True with qkv_bias=False (no Llama-family layout)")
    if problems:
        raise HFImportError(f"export_llama: this config has no Llama-family counterpart: {'; '.join(problems)}")
    kind = "qwen2" if config.has_qkv_bias and not config.bias else "llama"
    document: dict[str, Any] = {
        "architectures": [ARCHITECTURES[kind]],
        "model_type": kind,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.context_length,
        "hidden_size": config.d_model,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.kv_heads,
        "num_hidden_layers": config.n_layers,
        "intermediate_size": config.d_ff,
        "hidden_act": "silu",
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_base,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "torch_dtype": "float32",
    }
    if kind == "llama":
        document.update(attention_bias=config.bias, mlp_bias=config.bias, head_dim=config.head_dim)
    else:
        document.update(use_sliding_window=False, sliding_window=None)
    return document


# ---------------------------------------------------------------------- weights


def params_from_hf_llama(
    state: Mapping[str, np.ndarray], config: ModelConfig, *, source: str = "the state dict"
) -> dict[str, np.ndarray]:
    """Our parameter dict from a Llama-family state dict (NumPy arrays, possibly memory-mapped; ``model.`` optional)."""
    params: dict[str, Any] = {}
    qkv: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    unknown: list[str] = []
    for hf_name, value in state.items():
        name = hf_name[len("model.") :] if hf_name.startswith("model.") else hf_name
        if name == "embed_tokens.weight":
            params["wte"] = value
        elif name == "norm.weight":
            params["ln_f.weight"] = value
        elif name == "lm_head.weight":
            if not config.tie_embeddings:
                params["lm_head.weight"] = value.T  # (V, D) → (D, V): a view
        elif name.startswith("layers."):
            index, _, rest = name[len("layers.") :].partition(".")
            if not index.isdigit() or rest.endswith("rotary_emb.inv_freq"):  # a buffer of old versions, not a weight
                if not index.isdigit():
                    unknown.append(hf_name)
                continue
            prefix = f"blocks.{int(index)}."
            module, _, kind = rest.rpartition(".")  # self_attn.q_proj, weight
            if module.startswith("self_attn.") and module[len("self_attn.") :] in _QKV:
                qkv.setdefault((int(index), kind), {})[module[len("self_attn.") :]] = value
            elif rest in _BLOCK:
                ours = prefix + _BLOCK[rest]
                params[ours] = value.T if kind == "weight" and value.ndim == 2 else value  # (out, in) → (in, out)
            else:
                unknown.append(hf_name)
        else:
            unknown.append(hf_name)
    if unknown:
        raise HFImportError(
            f"{source}: tensors with no Llama-family counterpart: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
        )
    for (index, kind), parts in qkv.items():
        missing = [p for p in _QKV if p not in parts]
        if missing:
            raise HFImportError(f"{source}: layer {index} has no self_attn.{missing[0]}.{kind}; expected q, k and v")
        if kind == "weight":
            # q (H Dh, D), k and v (Hkv Dh, D) → (D, (H + 2 Hkv) Dh): columns q | k | v, as split_heads reads them
            params[f"blocks.{index}.attn.qkv.weight"] = np.concatenate([parts[p].T for p in _QKV], axis=1)
        else:
            params[f"blocks.{index}.attn.qkv.bias"] = np.concatenate([parts[p] for p in _QKV], axis=0)  # ((H + 2 Hkv) Dh,)
    try:
        check_parameters(config, {name: tuple(value.shape) for name, value in params.items()})
    except SpecError as error:
        raise HFImportError(f"{source}: {error} (names in our layout; see transformer_spec.hf_llama for the mapping)") from None
    return {name: params[name] for name in parameter_shapes(config)}


def hf_state_from_params(params: Mapping[str, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """The reverse mapping: a ``LlamaForCausalLM`` / ``Qwen2ForCausalLM`` state dict from our parameters (contiguous)."""
    hf_config_from_config(config)
    back = {ours: hf for hf, ours in _BLOCK.items()}
    H, Hkv, Dh = config.n_heads, config.kv_heads, config.head_dim
    state: dict[str, np.ndarray] = {}
    for name, value in params.items():
        array = np.asarray(value)
        if name == "wte":
            state["model.embed_tokens.weight"] = array
        elif name == "ln_f.weight":
            state["model.norm.weight"] = array
        elif name == "lm_head.weight":
            state["lm_head.weight"] = np.ascontiguousarray(array.T)  # (D, V) → (V, D)
        elif name.startswith("blocks."):
            index, _, rest = name[len("blocks.") :].partition(".")
            prefix = f"model.layers.{index}."
            if rest.startswith("attn.qkv."):
                # columns q | k | v: (D, H Dh), (D, Hkv Dh), (D, Hkv Dh); biases likewise along their one axis
                bounds = (0, H * Dh, (H + Hkv) * Dh, (H + 2 * Hkv) * Dh)
                kind = rest.rpartition(".")[2]
                for part, lo, hi in zip(_QKV, bounds, bounds[1:]):
                    piece = array[..., lo:hi]
                    state[f"{prefix}self_attn.{part}.{kind}"] = np.ascontiguousarray(piece.T if kind == "weight" else piece)
            else:
                hf = back[rest]
                state[prefix + hf] = np.ascontiguousarray(array.T if array.ndim == 2 else array)
        else:
            raise HFImportError(f"export_llama: parameter {name!r} has no Llama-family counterpart")
    return state


# ---------------------------------------------------------------------- folders


def read_hf_config(folder: str | Path) -> dict[str, Any] | None:
    """The ``config.json`` of a Hugging Face folder, or None when the folder has none or it is ours."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or "format" in document:
        return None
    return document


def is_hf_llama_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a Hugging Face Llama / Mistral / Qwen2 ``config.json``."""
    document = read_hf_config(folder)
    return document is not None and model_type_of(document) in ARCHITECTURES


def import_llama(folder: str | Path, *, tokenizer: Any = None, dtype: str | None = None) -> Checkpoint:
    """A Hugging Face Llama / Mistral / Qwen2 folder as a :class:`~transformer_spec.checkpoint.Checkpoint`.

    Weights are memory-mapped from ``model.safetensors`` or its shards; they keep
    their stored dtype (bfloat16 included, through ml_dtypes) unless ``dtype`` is
    given. The tokenizer is the folder's ``tokenizer.json`` (byte-level BPE)
    unless ``tokenizer`` is given.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HFImportError(
            f"import_llama: {folder} is not a folder; expected a Hugging Face folder (save_pretrained)", path=folder
        )
    if dtype not in (None, "bfloat16", "float16", "float32", "float64"):
        raise HFImportError(f"import_llama: dtype = {dtype!r}, expected None, bfloat16, float16, float32 or float64")
    config_path = folder / CONFIG_FILE
    hf_config = read_config_document(config_path)
    config = config_from_hf_llama(hf_config, source=str(config_path))
    try:
        state = read_folder_weights(folder)
    except StorageError as error:
        raise HFImportError(str(error), path=error.path) from None
    params = params_from_hf_llama(state, config, source=str(folder))
    stored = sorted({dtype_name(value) for value in params.values()})
    if dtype is None and len(stored) > 1:
        dtype = "float32"  # a folder mixing dtypes is computed in float32, which holds all of them
    params = {name: to_host_float(value, dtype) for name, value in params.items()}
    if tokenizer is None:
        from .tokenizers.hf_json import HF_TOKENIZER_FILE, load_hf_tokenizer

        if not (folder / HF_TOKENIZER_FILE).is_file():
            raise HFImportError(
                f"{folder}: no {HF_TOKENIZER_FILE}; expected the model's tokenizer there, or pass tokenizer=",
                path=folder,
            )
        tokenizer = load_hf_tokenizer(folder, hf_config=hf_config)
    if tokenizer.vocab_size > config.vocab_size:
        raise HFImportError(
            f"{folder}: the tokenizer has {tokenizer.vocab_size} ids but the model vocab_size = {config.vocab_size}",
            path=folder,
        )
    metadata = {"source": f"huggingface-{model_type_of(hf_config)}", "imported_from": str(folder), "stored_dtypes": stored}
    return Checkpoint(config=config, params=params, tokenizer=tokenizer, metadata=metadata, path=folder)


def export_llama(
    folder: str | Path,
    config: ModelConfig,
    params: Mapping[str, Any],
    tokenizer: Any = None,
    *,
    dtype: str = "float32",
    max_shard_bytes: int | None = None,
) -> Path:
    """Write a folder that ``transformers`` loads (``AutoModelForCausalLM.from_pretrained``).

    ``dtype``: float32, float16 or bfloat16 on disk. ``max_shard_bytes``: split
    the weights into shards of at most that many bytes (one tensor may exceed
    it) with a ``model.safetensors.index.json``, as ``save_pretrained`` does.
    The tokenizer is written when it can save itself as a ``tokenizer.json``.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    eos = getattr(tokenizer, "eos_id", None)
    bos = getattr(tokenizer, "bos_id", None)
    document = hf_config_from_config(config, eos_token_id=eos, bos_token_id=bos)
    document["torch_dtype"] = dtype
    state = {name: to_host_float(np.asarray(value), dtype) for name, value in hf_state_from_params(params, config).items()}
    if max_shard_bytes is None:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        shards: list[dict[str, np.ndarray]] = [{}]
        size = 0
        for name, array in state.items():
            if shards[-1] and size + array.nbytes > max_shard_bytes:
                shards.append({})
                size = 0
            shards[-1][name] = array
            size += array.nbytes
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            file_name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(folder / file_name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, file_name))
        index = {"metadata": {"total_size": int(sum(a.nbytes for a in state.values()))}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    (folder / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if tokenizer is not None and hasattr(tokenizer, "save_hf"):
        tokenizer.save_hf(folder)
    return folder


def llama_model_from_params(params: Mapping[str, Any], config: ModelConfig) -> Any:
    """A ``transformers`` Llama / Qwen2 model (eval mode, float32) holding our parameters — for comparisons and benchmarks."""
    import torch
    import transformers

    document = hf_config_from_config(config)
    kind = document.pop("model_type")
    document.pop("architectures")
    config_class = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}[kind]
    model_class = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}[kind]
    model = model_class(config_class(**document)).eval()
    state = {
        name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in hf_state_from_params(params, config).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not (config.tie_embeddings and name == "lm_head.weight")]
    if missing or unexpected:
        raise HFImportError(
            f"llama_model_from_params: transformers expected other tensors: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if config.tie_embeddings:
        model.tie_weights()
    return model


__all__ = [
    "ARCHITECTURES",
    "HFImportError",
    "config_from_hf_llama",
    "export_llama",
    "hf_config_from_config",
    "hf_state_from_params",
    "import_llama",
    "is_hf_llama_folder",
    "llama_model_from_params",
    "params_from_hf_llama",
]
