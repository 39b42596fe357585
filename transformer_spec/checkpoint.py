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

Saving is atomic (:func:`commit_folder`): everything is written to a scratch
folder, fsynced, and committed by one rename; the previous save stays whole
until then, so a process killed at any moment leaves a folder that loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.errors import SpecError
from transformer_spec.spec.model import check_parameters, parameter_shapes

from .outputs import INTERNAL_PREFIX
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
# The atomic save's own names (all hidden, all under INTERNAL_PREFIX; see commit_folder).
SCRATCH_PREFIX = INTERNAL_PREFIX + "save-"  # a save being written; deleted on the next start if its process died
COMMIT_DIR = INTERNAL_PREFIX + "commit"  # a complete save whose files are being moved into place
MANIFEST_FILE = "MANIFEST.json"  # inside COMMIT_DIR: which files the save holds, which it removes
PROBE_PREFIXES = (INTERNAL_PREFIX + "probe-", INTERNAL_PREFIX + "write-")  # transformer_spec.outputs' scratch files


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
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``config``, ``params`` and ``tokenizer`` as one checkpoint folder; returns the folder.

    ``params`` are NumPy arrays (or anything ``numpy.asarray`` converts: call
    ``backend.to_numpy`` on native arrays first), stored as ``dtype``.
    ``metadata`` is any JSON-serialisable mapping, merged into ``config.json``.
    ``extra_files`` (name → bytes) are committed with it: a trainer's optimizer
    and step state, so a run folder never holds weights of one step and state of
    another. Saving over an existing checkpoint replaces its files; other files
    in the folder are left alone. The save is atomic (see :func:`commit_folder`):
    killed at any moment, the folder holds the previous save or the new one.
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

    extras = _extra_files(extra_files)

    def write(scratch: Path) -> None:
        from safetensors.numpy import save

        ordered = {name: np.ascontiguousarray(arrays[name]) for name in parameter_shapes(config)}
        # save() + write_bytes rather than save_file, which creates its file with mode 0600:
        # a shipped or shared checkpoint must be readable by everyone the umask allows.
        (scratch / WEIGHTS_FILE).write_bytes(save(ordered, metadata={"format": FORMAT_NAME}))
        (scratch / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tokenizer.save(scratch)
        for name, data in extras.items():
            (scratch / name).write_bytes(data)

    # A stale tokenizer of the other kind must not survive the save: load_tokenizer tells the kinds apart by their files.
    return commit_folder(directory, write, replaces=TOKENIZER_FILES)


def _extra_files(extra_files: Mapping[str, bytes] | None) -> dict[str, bytes]:
    if extra_files is None:
        return {}
    if not isinstance(extra_files, Mapping):
        raise CheckpointError(f"save_checkpoint: extra_files is a {type(extra_files).__name__}, expected a dict name -> bytes")
    own = {WEIGHTS_FILE, CONFIG_FILE, *TOKENIZER_FILES}
    for name, data in extra_files.items():
        if not isinstance(name, str) or not name or "/" in name or name.startswith((".", INTERNAL_PREFIX)) or name in own:
            raise CheckpointError(
                f"save_checkpoint: extra file name {name!r}; expected a plain file name other than the checkpoint's own "
                f"({', '.join(sorted(own))})"
            )
        if not isinstance(data, bytes | bytearray):
            raise CheckpointError(f"save_checkpoint: extra_files[{name!r}] is a {type(data).__name__}, expected bytes")
    return dict(extra_files)


# ---------------------------------------------------------------------- committing a folder atomically
#
# A save is committed as a whole. Every file is written into a scratch folder
# (SCRATCH_PREFIX + random) inside the target folder and fsynced; the scratch
# folder, holding a MANIFEST of its files, is then renamed to COMMIT_DIR. That
# rename is the commit point: before it, the folder's files are the previous
# complete save, untouched; after it, COMMIT_DIR holds the new complete save and
# its files are moved into place one by one ("rolled forward"). A process killed
# while rolling forward leaves COMMIT_DIR behind, and whoever opens the folder
# next finishes the move before reading (as a database replays its journal), so
# a reader never mixes files of two saves. Scratch folders of saves that never
# reached the commit point are deleted when a run starts or resumes there.
#
# The roll-forward holds an exclusive flock on the folder itself; readers hold a
# shared one while they read, so a checkpoint loaded while a trainer saves into
# the same folder is the old save or the new one, never a mixture. (A lock on the
# folder rather than a lock file: no extra file lands in every checkpoint, the
# shipped one included, and a reader needs no write permission.)


def commit_folder(directory: str | Path, write: Callable[[Path], None], *, replaces: Iterable[str] = ()) -> Path:
    """Run ``write(scratch)`` to fill a scratch folder, then move its files into ``directory`` as one commit.

    Files of ``directory`` that ``write`` did not produce are left alone, except those named in ``replaces``,
    which are removed in the same commit (files the new save must not be mixed with). If ``write`` fails, nothing
    in ``directory`` changes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=directory))
    try:
        write(scratch)
        names = sorted(child.name for child in scratch.iterdir())
        manifest = {"files": names, "remove": sorted(set(replaces) - set(names))}
        (scratch / MANIFEST_FILE).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        for name in [*names, MANIFEST_FILE]:
            _fsync_path(scratch / name)
        _fsync_path(scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    with _folder_lock(directory, exclusive=True):
        if (directory / COMMIT_DIR).exists():
            _roll_forward(directory)  # an earlier commit whose process was killed: it came first
        os.rename(scratch, directory / COMMIT_DIR)  # the commit point
        _fsync_path(directory)
        _roll_forward(directory)
    return directory


def settle_folder(directory: str | Path) -> None:
    """Finish a commit that a killed process left half-moved, so the folder holds one complete save."""
    directory = Path(directory)
    if not (directory / COMMIT_DIR).exists():
        return
    try:
        with _folder_lock(directory, exclusive=True):
            if (directory / COMMIT_DIR).exists():  # another process may have finished it while we waited
                _roll_forward(directory)
    except OSError as error:
        raise CheckpointError(
            f"{directory}: holds a save that was cut short ({COMMIT_DIR}) and it cannot be completed ({error.strerror}); "
            f"expected a writable folder — make it writable and try again",
            path=directory,
        ) from None


def recover_folder(directory: str | Path) -> list[str]:
    """Before a run writes into ``directory``: finish a cut-short commit and delete scratch left by killed saves.

    Returns the names removed. Call it only where no other process is saving into the folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    settle_folder(directory)
    removed = []
    for child in directory.iterdir():
        if child.name.startswith(SCRATCH_PREFIX) or child.name.startswith(PROBE_PREFIXES):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child.name)
    if removed:
        _fsync_path(directory)
    return sorted(removed)


def _roll_forward(directory: Path) -> None:
    commit = directory / COMMIT_DIR
    manifest_path = commit / MANIFEST_FILE
    if not manifest_path.is_file():  # every file was moved and the manifest removed; only the empty folder is left
        shutil.rmtree(commit)
        _fsync_path(directory)
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for name in manifest["remove"]:
        (directory / name).unlink(missing_ok=True)
    for name in manifest["files"]:
        if (commit / name).exists():  # absent: moved before the process that committed was killed
            os.replace(commit / name, directory / name)
    _fsync_path(directory)
    manifest_path.unlink()
    commit.rmdir()
    _fsync_path(directory)


def _fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk, so a power cut cannot reorder the commit."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return  # a platform that cannot open folders (Windows): renames there are as durable as they get
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename order still holds
    finally:
        os.close(handle)


@contextlib.contextmanager
def _folder_lock(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """An flock on the folder ``directory`` (none where flock or opening folders is not possible)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; single-writer use is still atomic per commit
        yield
        return
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)  # closing releases the lock


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
    settle_folder(directory)  # a save cut short by kill -9 is completed first: never read half of one
    with _folder_lock(directory, exclusive=False):
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
    except SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a readable safetensors file — truncated or corrupt ({error}); expected the weights "
            f"written by save_checkpoint",
            path=path,
        ) from None
    from .storage import StorageError, open_safetensors

    try:
        # Memory-mapped views (copy-on-write), not copies: the backend's conversion is the one copy a load makes.
        mapped = open_safetensors(path)
    except StorageError as error:
        raise CheckpointError(str(error), path=path) from None
    params = {name: mapped[name] for name in parameter_shapes(config)}
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
    "commit_folder",
    "default_checkpoint_path",
    "load_checkpoint",
    "load_default_checkpoint",
    "recover_folder",
    "save_checkpoint",
    "settle_folder",
]
