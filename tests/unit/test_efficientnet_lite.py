"""EfficientNet-Lite0 in Keras: structure, strict weight loading, and golden outputs.

The golden file holds outputs of the upstream PyTorch implementation
(efficientnet-lite-pytorch 0.1.0 on torch 2.13.0 CPU) for the same preprocessed tensors,
so this test needs no torch: photos are preprocessed here exactly as they were there.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagerec.efficientnet_lite import build_efficientnet_lite0, same_padding
from imagerec.errors import ModelError
from imagerec.labels import imagenet_labels
from imagerec.preprocess import Preprocessing, preprocess
from imagerec.weights import default_weights_path, read_torch_state_dict

pytestmark = pytest.mark.unit

GOLDEN = json.loads(
    (Path(__file__).parents[1] / "data" / "golden_efficientnet_lite0.json").read_text("utf-8")
)
TOLERANCE = GOLDEN["tolerance"]


def _photo_path(source: str, name: str) -> Path:
    if source == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / name
    from matplotlib import cbook

    return Path(cbook.get_sample_data(name, asfileobj=False))


def _photo_tensor(source: str, name: str) -> np.ndarray:
    with Image.open(_photo_path(source, name)) as image:
        rgb = np.asarray(image.convert("RGB"))
    spec = Preprocessing(**{k: v for k, v in GOLDEN["preprocessing"].items() if k != "decode"})
    return preprocess(rgb, spec)


def _random_tensor(case: Mapping[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(case["seed"])
    return rng.uniform(case["low"], case["high"], tuple(case["shape"])).astype(np.float32)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return read_torch_state_dict(default_weights_path())


@pytest.fixture(scope="module")
def model(state_dict: dict[str, np.ndarray]) -> Any:
    return build_efficientnet_lite0(state_dict)


# --- fast checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 3, 2, (0, 1)),  # stem: the odd pixel goes bottom/right, as TF "SAME"
        (56, 5, 2, (1, 2)),
        (14, 5, 2, (1, 2)),
        (112, 3, 1, (1, 1)),
        (7, 1, 1, (0, 0)),
        (7, 3, 2, (1, 1)),  # odd input
    ],
)
def test_same_padding_matches_tf(
    size: int, kernel: int, stride: int, expected: tuple[int, int]
) -> None:
    # Given / When / Then
    assert same_padding(size, kernel, stride) == expected


def test_importing_the_module_does_not_import_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an interpreter where importing TensorFlow or Keras would fail
    for name in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules blocks the import
    monkeypatch.delitem(sys.modules, "imagerec.efficientnet_lite")
    # When the model module is imported afresh
    module = importlib.import_module("imagerec.efficientnet_lite")
    # Then the import succeeds: Keras is only needed once a model is built
    assert callable(module.build_efficientnet_lite0)


# --- building (seconds each) -----------------------------------------------------------------


@pytest.mark.slow
def test_architecture_has_the_lite0_shape(model: Any, state_dict: dict[str, np.ndarray]) -> None:
    # Given the built model
    # Then it maps a 224×224×3 image to 1000 probabilities
    assert tuple(model.input_shape) == (None, 224, 224, 3)
    assert tuple(model.output_shape) == (None, 1000)
    # And has one weight per state-dict value except BN's training counters
    counters = sum(1 for k in state_dict if k.endswith(".num_batches_tracked"))
    loaded = sum(v.size for k, v in state_dict.items() if not k.endswith(".num_batches_tracked"))
    assert counters == 49
    assert model.count_params() == loaded == 4_694_024
    # And its 16 MBConv blocks add a residual exactly when stride 1 keeps the width
    names = [layer.name for layer in model.layers]
    assert sum(name.endswith("_project_conv") for name in names) == 16
    adds = sorted(name for name in names if name.endswith("_add"))
    assert adds == [
        "block2b_add",
        "block3b_add",
        "block4b_add",
        "block4c_add",
        "block5b_add",
        "block5c_add",
        "block6b_add",
        "block6c_add",
        "block6d_add",
    ]
    # And no expand conv in the first stage (expansion 1)
    assert "block1a_expand_conv" not in names
    assert "block2a_expand_conv" in names


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", "Expected '_blocks.7._bn1.running_var' in the state dict"),
        ("extra", "unused: \\['_blocks.99.weight'\\]"),
        ("reshape", "Expected '_fc.bias' to have shape"),
    ],
)
def test_loading_fails_loudly_on_mismatched_state_dicts(
    state_dict: dict[str, np.ndarray], change: str, message: str
) -> None:
    # Given a state dict with a missing key, an extra key or a wrong shape
    broken = dict(state_dict)
    if change == "drop":
        del broken["_blocks.7._bn1.running_var"]
    elif change == "extra":
        broken["_blocks.99.weight"] = np.zeros(3, np.float32)
    else:
        broken["_fc.bias"] = np.zeros(999, np.float32)
    # When / Then building from it raises the typed error naming the key
    with pytest.raises(ModelError, match=message):
        build_efficientnet_lite0(broken)


@pytest.mark.slow
@pytest.mark.parametrize(
    "photo", GOLDEN["photos"], ids=[photo["file"] for photo in GOLDEN["photos"]]
)
def test_photos_match_the_pytorch_reference(model: Any, photo: Mapping[str, Any]) -> None:
    # Given a real photo, decoded from its file and preprocessed with the Lite0 recipe
    x = _photo_tensor(photo["source"], photo["file"])
    # When the Keras model classifies it
    probs = model.predict(x[None], verbose=0)[0]
    # Then the top five classes are those of the PyTorch reference, in order
    expected = photo["top5"]
    top5 = np.argsort(-probs)[:5]
    labels = imagenet_labels()
    assert [labels[i] for i in top5] == [entry["label"] for entry in expected]
    assert [int(i) for i in top5] == [entry["index"] for entry in expected]
    # And the probabilities agree within the tolerance
    for entry in expected:
        assert abs(float(probs[entry["index"]]) - entry["score"]) < TOLERANCE, entry
    assert abs(float(probs.sum()) - 1.0) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", GOLDEN["random_inputs"], ids=[case["name"] for case in GOLDEN["random_inputs"]]
)
def test_random_tensors_match_the_pytorch_reference(model: Any, case: Mapping[str, Any]) -> None:
    # Given a seeded random input tensor (regenerated here, not stored)
    x = _random_tensor(case)
    # When the Keras model classifies it
    probs = model.predict(x[None], verbose=0)[0]
    # Then all 1000 probabilities agree with the reference within the tolerance
    reference = np.asarray(case["probs"])
    assert np.abs(probs - reference).max() < TOLERANCE
    assert [int(i) for i in np.argsort(-probs)[:5]] == [e["index"] for e in case["top5"]]


@pytest.mark.slow
def test_golden_headline_values(model: Any) -> None:
    # Given the four photos the project quotes in its docs
    quoted = {
        "chelsea.png": [("tiger cat", 0.414), ("Egyptian cat", 0.341), ("tabby", 0.164)],
        "coffee.png": [("espresso", 0.945), ("cup", 0.017)],
        "rocket.jpg": [("missile", 0.253), ("projectile", 0.134)],
        "grace_hopper.jpg": [
            ("military uniform", 0.285),
            ("academic gown", 0.177),
            ("mortarboard", 0.168),
        ],
    }
    sources = {photo["file"]: photo["source"] for photo in GOLDEN["photos"]}
    batch = np.stack([_photo_tensor(sources[name], name) for name in quoted])
    # When they are classified in one batch
    probs = model.predict(batch, verbose=0)
    # Then the quoted labels and rounded scores come out
    labels = imagenet_labels()
    for row, (name, expected) in zip(probs, quoted.items(), strict=True):
        top = np.argsort(-row)[: len(expected)]
        assert [(labels[i], round(float(row[i]), 3)) for i in top] == expected, name
