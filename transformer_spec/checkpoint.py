"""Checkpoints: one folder holding a model's weights, its configuration and its tokenizer.

Layout of a checkpoint folder::

    model.safetensors   the weights, one tensor per name of transformer_spec.spec.model.parameter_shapes(config)
    config.json         {"format": "transformer-spec", "version": 1, "model": {...ModelConfig...},
                         "dtype": "float32", "tokenizer": "bpe", ...metadata}
    vocab.json + merges.txt (+ special_tokens_map.json)   a byte-level BPE tokenizer, or
    tokenizer.json                                         a word tokenizer

Weights are read with :mod:`safetensors` (a header of names, dtypes and shapes,
then raw bytes): nothing is ever unpickled, so loading a checkpoint from an
untrusted source cannot run code. Everything is checked before a single weight
is used: the header must name exactly the tensors of the config, each with the
config's shape, in one float dtype; the data must cover the header (a truncated
file is caught); the weights must be finite. Each problem is a
:class:`CheckpointError` naming the file and the tensor or line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import SpecError
from transformer_spec.spec.model import check_parameters, parameter_shapes

from .tokenizers import ByteLevelBPETokenizer, WordTokenizer, load_tokenizer

FORMAT_NAME = "transformer-spec"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Every file a tokenizer of this package may write: removed before saving a new
# checkpoint over an old one, so a stale tokenizer of the other kind cannot win
# when load_tokenizer tells the kinds apart by their files.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "special_tokens_map.json")
# Keys of config.json that this module writes; metadata may not overwrite them.
RESERVED_KEYS = ("format", "version", "model", "dtype", "tokenizer")
# Float dtypes NumPy can hold and safetensors can store (NumPy has no bfloat16).
STORABLE_DTYPES = ("float16", "float32", "float64")
_SAFETENSORS_DTYPES = {"F16": "float16", "F32": "float32", "F64": "float64"}
DEFAULT_MODEL_PACKAGE_PATH = ("assets", "default_model")


class CheckpointError(SpecError):
    """A checkpoint folder or one of its files is missing, malformed, or disagrees with its config."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None  # the offending file or folder
        self.line = line  # 1-based line in that file, where one can be named


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: everything needed to run the model.

    ``params`` maps each name of :func:`transformer_spec.spec.model.parameter_shapes` to a NumPy
    array (all one float dtype); ``metadata`` is the rest of ``config.json``
    (for example ``{"trained": false}`` or training statistics).
    """

    config: ModelConfig
    params: Mapping[str, np.ndarray] = field(repr=False)
    tokenizer: WordTokenizer | ByteLevelBPETokenizer
    metadata: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the folder it was loaded from (None when built in memory)

    @property
    def dtype(self) -> str:
        """The float dtype of the weights ("float32", ...)."""
        return str(next(iter(self.params.values())).dtype)

    @property
    def parameter_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))


# ---------------------------------------------------------------------- saving


def save_checkpoint(
    directory: str | Path,
    config: ModelConfig,
    params: Mapping[str, Any],
    tokenizer: WordTokenizer | ByteLevelBPETokenizer,
    metadata: Mapping[str, Any] | None = None,
    *,
    dtype: str = "float32",
) -> Path:
    """Write ``config``, ``params`` and ``tokenizer`` as one checkpoint folder; returns the folder.

    ``params`` are NumPy arrays (or anything ``numpy.asarray`` converts: call
    ``backend.to_numpy`` on native arrays first), stored as ``dtype``.
    ``metadata`` is any JSON-serialisable mapping, merged into ``config.json``.
    Saving over an existing checkpoint replaces its files; other files in the
    folder are left alone.
    """
    if not isinstance(config, ModelConfig):
        raise CheckpointError(
            f"save_checkpoint: config is a {type(config).__name__}, expected a transformer_spec.spec.config.ModelConfig"
        )
    if dtype not in STORABLE_DTYPES:
        raise CheckpointError(f"save_checkpoint: dtype = {dtype!r}, expected one of {', '.join(STORABLE_DTYPES)}")
    if not hasattr(tokenizer, "save") or not hasattr(tokenizer, "vocab_size"):
        raise CheckpointError(
            f"save_checkpoint: tokenizer is a {type(tokenizer).__name__}, expected a tspec tokenizer "
            f"(WordTokenizer or ByteLevelBPETokenizer)"
        )
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"save_checkpoint: the tokenizer has {tokenizer.vocab_size} ids but the model only "
            f"vocab_size = {config.vocab_size}; expected tokenizer.vocab_size <= config.vocab_size"
        )
    arrays = _numpy_params(params, dtype)
    check_parameters(config, {name: array.shape for name, array in arrays.items()})
    document = _config_document(config, dtype, tokenizer, metadata)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Write everything into a scratch folder first, then move the files in: a
    # failure half-way (disk full, a bad tensor) leaves the old checkpoint intact.
    with tempfile.TemporaryDirectory(prefix=".tspec-save-", dir=directory) as scratch_name:
        scratch = Path(scratch_name)
        from safetensors.numpy import save

        ordered = {name: np.ascontiguousarray(arrays[name]) for name in parameter_shapes(config)}
        # save() + write_bytes rather than save_file, which creates its file with mode 0600:
        # a shipped or shared checkpoint must be readable by everyone the umask allows.
        (scratch / WEIGHTS_FILE).write_bytes(save(ordered, metadata={"format": FORMAT_NAME}))
        (scratch / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tokenizer.save(scratch)
        written = sorted(child.name for child in scratch.iterdir())
        for stale in TOKENIZER_FILES:
            if stale not in written and (directory / stale).exists():
                (directory / stale).unlink()
        for name in written:
            os.replace(scratch / name, directory / name)
    return directory


def _numpy_params(params: Mapping[str, Any], dtype: str) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise CheckpointError(f"save_checkpoint: params is a {type(params).__name__}, expected a dict from name to array")
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        try:
            array = np.asarray(value)
        except Exception as error:  # a tensor that needs .detach() or lives on a GPU
            raise CheckpointError(
                f"save_checkpoint: params[{name!r}] ({type(value).__name__}) cannot be converted to NumPy ({error}); "
                f"expected NumPy arrays: convert native arrays with backend.to_numpy(x)"
            ) from None
        if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
            raise CheckpointError(f"save_checkpoint: params[{name!r}] has dtype {array.dtype}, expected a float array")
        array = array.astype(dtype)
        if not np.isfinite(array).all():
            raise CheckpointError(
                f"save_checkpoint: params[{name!r}] holds NaN or infinity (as {dtype}); expected finite weights"
            )
        arrays[name] = array
    return arrays


def _config_document(config: ModelConfig, dtype: str, tokenizer: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": config.to_dict(),
        "dtype": dtype,
        "tokenizer": "word" if isinstance(tokenizer, WordTokenizer) else "bpe",
    }
    if metadata is None:
        return document
    if not isinstance(metadata, Mapping):
        raise CheckpointError(f"save_checkpoint: metadata is a {type(metadata).__name__}, expected a dict (or None)")
    clashes = sorted(set(metadata) & set(RESERVED_KEYS))
    if clashes:
        raise CheckpointError(
            f"save_checkpoint: metadata uses the reserved key(s) {clashes}; expected other names "
            f"({', '.join(RESERVED_KEYS)} are written by save_checkpoint itself)"
        )
    try:
        json.dumps(dict(metadata))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"save_checkpoint: metadata is not JSON-serialisable ({error}); expected str keys and JSON values"
        ) from None
    document.update(metadata)
    return document


# ---------------------------------------------------------------------- loading


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read and check the checkpoint folder ``directory`` (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"load_checkpoint: {directory} is not a folder; expected a checkpoint folder holding "
            f"{CONFIG_FILE}, {WEIGHTS_FILE} and the tokenizer's files",
            path=directory,
        )
    document = read_config_document(directory / CONFIG_FILE)
    config = _model_config(document, directory / CONFIG_FILE)
    params = read_weights(directory / WEIGHTS_FILE, config)
    tokenizer = load_tokenizer(directory)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} ids but the model has vocab_size = "
            f"{config.vocab_size}; expected tokenizer.vocab_size <= vocab_size (were the files mixed from two checkpoints?)",
            path=directory,
        )
    metadata = {key: value for key, value in document.items() if key not in RESERVED_KEYS}
    return Checkpoint(config=config, params=params, tokenizer=tokenizer, metadata=metadata, path=directory)


def read_config_document(path: Path) -> dict[str, Any]:
    """The parsed ``config.json``: a missing file or malformed JSON names the file (and line)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected the checkpoint's {CONFIG_FILE}", path=path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CheckpointError(
            f"{path} line {line}: not valid UTF-8 ({error.reason}); expected JSON text", path=path, line=line
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{path} line {error.lineno} column {error.colno}: malformed JSON ({error.msg}); "
            f'expected {{"format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, "model": {{...}}, ...}}',
            path=path,
            line=error.lineno,
        ) from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: holds a JSON {type(document).__name__}, expected an object", path=path)
    return document


def _model_config(document: dict[str, Any], path: Path) -> ModelConfig:
    if document.get("format") != FORMAT_NAME:
        hint = ""
        if document.get("model_type") == "gpt2":
            hint = " — this is a Hugging Face GPT-2 folder: import it with transformer_spec.hf.import_gpt2(folder)"
        raise CheckpointError(f'{path}: "format" is {document.get("format")!r}, expected {FORMAT_NAME!r}{hint}', path=path)
    if document.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f'{path}: "version" is {document.get("version")!r}; this code reads version {FORMAT_VERSION}', path=path
        )
    model = document.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f'{path}: "model" is {type(model).__name__}, expected an object of ModelConfig fields', path=path)
    try:
        return ModelConfig.from_dict(model)
    except SpecError as error:
        raise CheckpointError(f'{path}: "model": {error}', path=path) from None
    except TypeError as error:
        raise CheckpointError(f'{path}: "model": {error}', path=path) from None


def read_weights(path: Path, config: ModelConfig) -> dict[str, np.ndarray]:
    """The tensors of ``path`` as NumPy arrays, checked against ``config`` before any data is read."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected the checkpoint's weights ({WEIGHTS_FILE})", path=path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = {name: handle.get_slice(name) for name in handle.keys()}
            shapes = {name: tuple(piece.get_shape()) for name, piece in header.items()}
            dtypes = {name: piece.get_dtype() for name, piece in header.items()}
            try:
                check_parameters(config, shapes)
            except SpecError as error:
                raise CheckpointError(f"{path}: {error}", path=path) from None
            for name, stored in dtypes.items():
                if stored not in _SAFETENSORS_DTYPES:
                    raise CheckpointError(
                        f"{path}: tensor {name!r} is stored as {stored}; expected one of "
                        f"{', '.join(_SAFETENSORS_DTYPES)} ({', '.join(STORABLE_DTYPES)})",
                        path=path,
                    )
            if len(set(dtypes.values())) > 1:
                raise CheckpointError(
                    f"{path}: tensors mix dtypes {sorted(set(dtypes.values()))}; expected one float dtype for all", path=path
                )
            params = {name: handle.get_tensor(name) for name in parameter_shapes(config)}
    except SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a readable safetensors file — truncated or corrupt ({error}); expected the weights "
            f"written by save_checkpoint",
            path=path,
        ) from None
    for name, array in params.items():
        if not np.isfinite(array).all():
            raise CheckpointError(
                f"{path}: tensor {name!r} holds NaN or infinity; expected finite weights (is the file corrupt?)", path=path
            )
    return params


# ---------------------------------------------------------------------- the shipped model


def default_checkpoint_path() -> Path:
    """The folder of the model shipped inside the package (``transformer_spec/assets/default_model``)."""
    resource = resources.files("transformer_spec").joinpath(*DEFAULT_MODEL_PACKAGE_PATH)
    if not isinstance(resource, Path):
        # A zipped install has no folder to hand out; extracting it would leak a temporary copy.
        raise CheckpointError(
            f"the default model is inside a zipped package ({resource}); expected tspec installed as files "
            f"(pip install without zipping), or pass a checkpoint folder explicitly",
        )
    if not resource.is_dir():
        raise CheckpointError(
            f"the default model is missing from the installed package (expected the folder {resource}); "
            f"reinstall transformer-spec, or pass a checkpoint folder explicitly",
            path=resource,
        )
    return resource


def load_default_checkpoint() -> Checkpoint:
    """The shipped default model (see :func:`default_checkpoint_path`)."""
    return load_checkpoint(default_checkpoint_path())


__all__ = [
    "CONFIG_FILE",
    "Checkpoint",
    "CheckpointError",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "default_checkpoint_path",
    "load_checkpoint",
    "load_default_checkpoint",
    "save_checkpoint",
]
