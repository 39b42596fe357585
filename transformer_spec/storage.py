"""Reading safetensors weights memory-mapped: one file or shards, float16 / bfloat16 / float32 / float64.

A ``.safetensors`` file is an 8-byte little-endian header length ``n``, ``n``
bytes of JSON (each tensor's dtype, shape and ``[begin, end)`` byte offsets
into the data that follows, plus an optional ``__metadata__``), then the raw
little-endian data. This module parses the header itself and hands out
:class:`numpy.memmap` views into the file, so a tensor's bytes are read from
disk by the operating system when first touched and are never held twice:
the only copy is the one a backend makes when it converts the weights to its
own arrays (and a float32 file on the NumPy backend needs no copy at all).

NumPy has no bfloat16: it comes from ``ml_dtypes`` (installed with JAX),
whose ``bfloat16`` is a NumPy dtype that ``astype`` converts exactly.

A Hugging Face folder holds ``model.safetensors``, or shards listed in
``model.safetensors.index.json`` (``{"weight_map": {tensor: shard file}}``).
Nothing here ever unpickles: a folder with only ``pytorch_model.bin`` is an
error that says how to convert it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transformer_spec.spec.errors import SpecError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# Headers larger than this are refused before they are read: a corrupt length must not allocate gigabytes.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class StorageError(SpecError):
    """A weights file or shard index is missing, malformed, truncated, or holds a dtype we cannot read."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


def _bfloat16() -> Any:
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes comes with jax, which the extras install
        return None
    return np.dtype(ml_dtypes.bfloat16)


# safetensors dtype codes → NumPy dtypes (little-endian, as the format stores them).
FLOAT_DTYPES: dict[str, Any] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
if _bfloat16() is not None:
    FLOAT_DTYPES["BF16"] = _bfloat16()


def dtype_name(array: np.ndarray) -> str:
    """Our dtype name of a NumPy (or ml_dtypes) array: "bfloat16", "float16", "float32", ..."""
    return "bfloat16" if array.dtype.name == "bfloat16" else str(array.dtype)


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's header (without ``__metadata__``) and the byte offset where its data starts."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise StorageError(
                    f"{path}: {len(prefix)} bytes, too short for a safetensors header; is it truncated?", path=path
                )
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise StorageError(f"{path}: header length {length} bytes is implausible; not a safetensors file?", path=path)
            raw = handle.read(length)
    except FileNotFoundError:
        raise StorageError(f"{path}: no such file; expected a safetensors weights file there", path=path) from None
    if len(raw) < length:
        raise StorageError(f"{path}: the header is cut short ({len(raw)} of {length} bytes); is the file truncated?", path=path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StorageError(f"{path}: the safetensors header is not JSON ({error}); is the file corrupt?", path=path) from None
    if not isinstance(header, dict):
        raise StorageError(f"{path}: the safetensors header is a JSON {type(header).__name__}, expected an object", path=path)
    header.pop("__metadata__", None)
    return header, 8 + length


def open_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of one ``.safetensors`` file as a memory-mapped (copy-on-write) NumPy array; no data is read yet.

    Each entry is checked before any data is touched: a float dtype we can hold,
    offsets that match its shape and lie inside the file (a truncated file is
    an error here, not a crash later).
    """
    path = Path(path)
    header, data_start = read_header(path)
    size = path.stat().st_size
    data_bytes = size - data_start
    tensors: dict[str, np.ndarray] = {}
    # Copy-on-write ("c"): reads come from the file; a caller that updates a weight in place (an optimizer on the
    # NumPy backend) gets private pages instead of an error, and the file never changes.
    file_map = np.memmap(path, dtype=np.uint8, mode="c", offset=data_start, shape=(data_bytes,)) if data_bytes > 0 else None
    for name, entry in header.items():
        try:
            code, shape, (begin, end) = entry["dtype"], tuple(int(n) for n in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise StorageError(
                f"{path}: header entry {name!r} is {entry!r}; expected dtype, shape and data_offsets", path=path
            ) from None
        if code not in FLOAT_DTYPES:
            raise StorageError(
                f"{path}: tensor {name!r} is stored as {code}; expected one of {', '.join(sorted(FLOAT_DTYPES))} "
                f"(float16, bfloat16, float32, float64)",
                path=path,
            )
        dtype = FLOAT_DTYPES[code]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or begin < 0:
            raise StorageError(
                f"{path}: tensor {name!r} spans bytes [{begin}, {end}), expected {expected} bytes for shape {list(shape)} "
                f"of {code}; is the file corrupt?",
                path=path,
            )
        if end > data_bytes:
            raise StorageError(
                f"{path}: tensor {name!r} ends at byte {end} of the data but the file holds {data_bytes}; is it truncated?",
                path=path,
            )
        if expected == 0 or file_map is None:
            tensors[name] = np.zeros(shape, dtype=dtype)
            continue
        # A view of the mapped file: (bytes,) → dtype → shape; nothing is copied or read here.
        tensors[name] = file_map[begin:end].view(dtype).reshape(shape)
    return tensors


def shard_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face folder: ``model.safetensors``, or the shards its index lists."""
    single, index = folder / SINGLE_FILE, folder / INDEX_FILE
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            document = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StorageError(f"{index}: not readable JSON ({error}); expected the shard index", path=index) from None
        weight_map = document.get("weight_map") if isinstance(document, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise StorageError(
                f'{index}: has no "weight_map" object of tensor → file; expected the shard index written by save_pretrained',
                path=index,
            )
        files = []
        for name in sorted(set(weight_map.values())):
            shard = folder / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise StorageError(f"{index}: shard {name!r} is outside the folder; expected a file name", path=index)
            if not shard.is_file():
                raise StorageError(f"{shard}: listed in {INDEX_FILE} but missing", path=shard)
            files.append(shard)
        return files
    pickles = [name for name in PICKLE_FILES if (folder / name).is_file()] or sorted(p.name for p in folder.glob("*.bin"))
    hint = (
        f" It has {', '.join(pickles)}, a pickle, which tspec never loads (unpickling can run code): convert it once "
        f"with transformers, AutoModelForCausalLM.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)."
        if pickles
        else ""
    )
    raise StorageError(f"{folder}: no {SINGLE_FILE} (nor {INDEX_FILE}).{hint}", path=folder)


def read_folder_weights(folder: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a Hugging Face folder's safetensors file(s), memory-mapped; a name in two shards is an error."""
    folder = Path(folder)
    state: dict[str, np.ndarray] = {}
    where: dict[str, Path] = {}
    for path in shard_files(folder):
        for name, array in open_safetensors(path).items():
            if name in state:
                raise StorageError(f"{path}: tensor {name!r} is also in {where[name].name}; expected each once", path=path)
            state[name], where[name] = array, path
    return state


def to_host_float(array: np.ndarray, dtype: str | None) -> np.ndarray:
    """``array`` in NumPy ``dtype`` (None: keep its own); a no-op view when it already is (a memmap stays mapped)."""
    if dtype is None or dtype_name(array) == dtype:
        return array
    target = _bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    return array.astype(target)


def as_backend_input(array: Any) -> Any:
    """What a backend's ``asarray`` can take: bfloat16 NumPy arrays (ml_dtypes) become float32, exactly.

    Backends convert NumPy arrays by their dtype kind, and ml_dtypes' bfloat16
    is not a kind every array library knows; every bfloat16 value is a float32
    value, so widening first loses nothing, whatever dtype the backend computes in.
    """
    if isinstance(array, np.ndarray) and array.dtype.name == "bfloat16":
        return array.astype(np.float32)
    return array


def safetensors_bytes(tensors: Mapping[str, np.ndarray]) -> int:
    """Total data bytes of ``tensors`` (for reports)."""
    return int(sum(a.nbytes for a in tensors.values()))


__all__ = [
    "FLOAT_DTYPES",
    "INDEX_FILE",
    "SINGLE_FILE",
    "StorageError",
    "as_backend_input",
    "dtype_name",
    "open_safetensors",
    "read_folder_weights",
    "read_header",
    "shard_files",
    "to_host_float",
]
