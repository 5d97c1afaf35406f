"""Preprocessing: validation, centre crop, TF1-exact resizes, normalisation, real photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagerec.core.preprocess import (
    Preprocessing,
    center_crop,
    normalize,
    preprocess,
    resize_bilinear,
    resize_tf1_bicubic,
    resize_weights,
)

pytestmark = pytest.mark.unit


def _skimage_photo(name: str) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / name


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- the spec --------------------------------------------------------------------------------


def test_default_spec_is_the_efficientnet_lite_recipe_and_describes_itself_as_json() -> None:
    # Given the default spec
    spec = Preprocessing()
    # When it is described
    described = spec.describe()
    # Then it is the Lite0 recipe and survives a JSON round trip
    assert described == {
        "size": 224,
        "crop_fraction": 0.875,
        "resize": "tf1_bicubic",
        "mode": "lite",
    }
    assert json.loads(json.dumps(described)) == described


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": 2.5},
        {"crop_fraction": 0.0},
        {"crop_fraction": 1.5},
        {"resize": "nearest"},
        {"mode": "imagenet"},
    ],
)
def test_spec_refuses_invalid_fields(kwargs: dict[str, Any]) -> None:
    # Given / When an invalid field, Then construction fails with an "Expected" message
    with pytest.raises(ValueError, match=r"^Expected .*received: "):
        Preprocessing(**kwargs)


# --- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 1), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        [[[0, 0, 0]]],
    ],
    ids=["gray", "rgba", "one-channel", "empty", "float", "list"],
)
def test_preprocess_refuses_anything_but_uint8_rgb(bad: Any) -> None:
    # Given an input that is not a uint8 H×W×3 array
    # When / Then preprocess says what it expected and what it got
    with pytest.raises(ValueError, match=r"^Expected .*received: "):
        preprocess(bad, Preprocessing())


def test_a_crop_that_rounds_to_nothing_keeps_one_pixel() -> None:
    # Given a 1-pixel-high strip whose crop side int(0.5 × 1) rounds to 0
    strip = np.zeros((1, 50, 3), np.uint8)
    strip[0, 24] = 255  # the pixel at offset (W - 1 + 1) // 2 = 25 - 1
    strip[0, 25] = 200
    # When cropped and preprocessed
    cropped = center_crop(strip, 0.5)
    tensor = preprocess(strip, Preprocessing(crop_fraction=0.5, mode="none"))
    # Then the central pixel is kept and fills the whole input
    assert cropped.shape == (1, 1, 3)
    assert cropped[0, 0, 0] == 200
    assert tensor.shape == (224, 224, 3)
    assert np.allclose(tensor, 200.0)


def test_normalize_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="Expected mode"):
        normalize(np.zeros((2, 2, 3), np.float32), "imagenet")  # type: ignore[arg-type]


# --- centre crop -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fraction", "expected_side", "expected_offsets"),
    [
        ((480, 640), 0.875, 420, (30, 110)),
        ((640, 480), 0.875, 420, (110, 30)),
        ((5, 8), 1.0, 5, (0, 2)),  # odd margin: the extra pixel goes before the crop
        ((7, 7), 0.5, 3, (2, 2)),
    ],
)
def test_center_crop_is_a_central_square_view(
    shape: tuple[int, int],
    fraction: float,
    expected_side: int,
    expected_offsets: tuple[int, int],
) -> None:
    # Given an image whose pixels encode their own coordinates
    height, width = shape
    rows, cols = np.mgrid[:height, :width]
    img = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    # When it is centre-cropped
    crop = center_crop(img, fraction)
    # Then the crop is the expected square, at the expected place, without a copy
    assert crop.shape == (expected_side, expected_side, 3)
    assert (int(crop[0, 0, 0]), int(crop[0, 0, 1])) == expected_offsets
    assert np.shares_memory(crop, img)


# --- resize ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tf1_bicubic", "bilinear"])
@pytest.mark.parametrize(("in_size", "out_size"), [(420, 224), (37, 224), (224, 224), (9, 4)])
def test_resize_weight_rows_sum_to_one(method: Any, in_size: int, out_size: int) -> None:
    # Given / When one axis's weight matrix
    matrix = resize_weights(in_size, out_size, method)
    # Then it has the right shape and preserves constants (rows sum to 1)
    assert matrix.shape == (out_size, in_size)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)


def test_resize_keeps_a_constant_image_constant() -> None:
    # Given a flat grey image
    img = np.full((300, 200, 3), 77, np.uint8)
    # When it is resized either way
    # Then it stays flat grey, as float32 224×224×3
    for out in (resize_tf1_bicubic(img, 224), resize_bilinear(img, 224)):
        assert out.shape == (224, 224, 3)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, 77.0, atol=1e-4)


_TF_CASES = [
    (420, 420, 224),  # the 640×480 centre crop, downscaled
    (2625, 2625, 224),  # the 4000×3000 centre crop
    (100, 80, 224),  # upscaled, not square
    (37, 53, 224),
    (3, 5, 224),  # tiny: every tap clamps at an edge
    (500, 300, 17),
    (224, 224, 224),  # identity
]


@pytest.mark.slow
@pytest.mark.parametrize(("height", "width", "size"), _TF_CASES)
def test_resize_tf1_bicubic_matches_tensorflow(height: int, width: int, size: int) -> None:
    tf = pytest.importorskip("tensorflow")
    # Given a random image
    img = _random_rgb(height, width, seed=height * 7 + width)
    # When it is resized by us and by TF1's legacy resize_bicubic
    ours = resize_tf1_bicubic(img, size)
    theirs = tf.compat.v1.image.resize_bicubic(
        img[None].astype(np.float32), (size, size), align_corners=False, half_pixel_centers=False
    ).numpy()[0]
    # Then they agree to float32 rounding on the 0–255 scale
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("height", "width", "size"), _TF_CASES)
def test_resize_bilinear_matches_tensorflow(height: int, width: int, size: int) -> None:
    tf = pytest.importorskip("tensorflow")
    # Given a random image
    img = _random_rgb(height, width, seed=height * 7 + width)
    # When it is resized by us and by TF1's legacy resize_bilinear
    ours = resize_bilinear(img, size)
    theirs = tf.compat.v1.image.resize_bilinear(
        img[None].astype(np.float32), (size, size), align_corners=False, half_pixel_centers=False
    ).numpy()[0]
    # Then they agree to float32 rounding on the 0–255 scale
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


# --- normalisation ---------------------------------------------------------------------------


def test_normalize_maps_each_mode_to_its_range() -> None:
    # Given the pixel values black, mid-grey and white in every channel, plus one red pixel
    x = np.array([[[0, 0, 0], [127, 127, 127], [255, 255, 255], [255, 0, 0]]], np.float32)
    # When / Then each mode maps them as its model expects
    np.testing.assert_allclose(normalize(x, "lite")[0, :3, 0], [-127 / 128, 0.0, 1.0])
    np.testing.assert_allclose(normalize(x, "tf")[0, :3, 0], [-1.0, 127 / 127.5 - 1, 1.0])
    np.testing.assert_allclose(
        normalize(x, "torch")[0, 2], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225]
    )
    # Caffe: RGB → BGR, so red lands in the last channel, then BGR means are subtracted
    np.testing.assert_allclose(normalize(x, "caffe")[0, 3], [-103.939, -116.779, 255 - 123.68])
    np.testing.assert_array_equal(normalize(x, "none"), x)
    assert all(normalize(x, m).dtype == np.float32 for m in ("lite", "tf", "torch", "caffe"))


def test_normalize_never_aliases_its_input() -> None:
    # Given a float32 array
    x = np.ones((2, 2, 3), np.float32)
    # When it is normalised with the identity mode
    out = normalize(x, "none")
    # Then the caller's array cannot be changed through the result
    assert not np.shares_memory(out, x)


# --- the whole pipeline on real photos -------------------------------------------------------


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png", "rocket.jpg"])
def test_preprocess_real_photos(name: str) -> None:
    # Given a real photo decoded from its file by Pillow
    rgb = _load_rgb(_skimage_photo(name))
    # When it is preprocessed for EfficientNet-Lite
    x = preprocess(rgb, Preprocessing())
    # Then it is a 224×224×3 float32 tensor around [-1, 1] (bicubic may overshoot slightly)
    assert x.shape == (224, 224, 3)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    assert -1.2 < float(x.min()) < -0.3
    assert 0.3 < float(x.max()) < 1.2


def test_preprocess_grace_hopper_with_every_mode() -> None:
    from matplotlib import cbook

    # Given matplotlib's sample photo, decoded from its JPEG file
    rgb = _load_rgb(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    # When it is preprocessed with each normalisation and resize
    for resize in ("tf1_bicubic", "bilinear"):
        for mode in ("lite", "tf", "torch", "caffe", "none"):
            x = preprocess(rgb, Preprocessing(resize=resize, mode=mode))  # type: ignore[arg-type]
            # Then the output is always a finite 224×224×3 float32 tensor
            assert x.shape == (224, 224, 3)
            assert x.dtype == np.float32
            assert np.isfinite(x).all()
