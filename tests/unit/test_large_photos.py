"""Large photos decode no more pixels than the model needs, with the answers of a full decode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import imagerec
from imagerec.core.intake import decode_image, probe_image
from imagerec.core.preprocess import preprocess
from imagerec.models.classifier import Classifier
from tests.conftest import PHOTOS
from tests.images import encode

pytestmark = [pytest.mark.unit, pytest.mark.model]


@pytest.fixture(scope="module")
def litert() -> Classifier:
    return imagerec.load_classifier(runtime="litert", build=False)


def heic_with_thumbnail(name: str, box: int) -> tuple[bytes, tuple[int, int]]:
    """A sample photo as HEIC with an embedded thumbnail whose longer side is ``box``."""
    with Image.open(PHOTOS[name][0]) as im:
        photo = im.convert("RGB")
    out = io.BytesIO()
    photo.save(out, "HEIF", quality=90, thumbnails=[box])
    return out.getvalue(), photo.size


@pytest.fixture(scope="module")
def heic_coffee() -> tuple[bytes, tuple[int, int]]:
    return heic_with_thumbnail("coffee", 400)


def test_a_heic_thumbnail_big_enough_is_decoded_instead_of_the_photo(
    heic_coffee: tuple[bytes, tuple[int, int]],
) -> None:
    # Given a 600×400 HEIC carrying a 400×266 thumbnail
    data, (width, height) = heic_coffee
    # When it is decoded for a model that needs a shorter side of 256, then of 300
    small = decode_image(data, min_side=256)
    whole = decode_image(data, min_side=300)
    # Then the first comes from the thumbnail, the second from the photo; both report the
    # photo's own size, and the probe budgets the whole photo either way
    assert small.pixels.shape == (266, 400, 3)
    assert whole.pixels.shape == (height, width, 3)
    assert (small.width, small.height) == (whole.width, whole.height) == (width, height)
    assert probe_image(data, min_side=256).decoded_pixels == width * height


def test_the_heic_thumbnail_gives_the_answer_of_the_full_decode(
    litert: Classifier, heic_coffee: tuple[bytes, tuple[int, int]]
) -> None:
    # Given the HEIC and the model's input contract
    data, _ = heic_coffee
    spec = litert.preprocessing
    # When it is classified from its thumbnail and from the whole photo
    thumb, full = litert.predict(
        np.stack(
            [
                preprocess(decode_image(data, min_side=256).pixels, spec),
                preprocess(decode_image(data).pixels, spec),
            ]
        )
    )
    # Then the top-1 is the same (espresso) and no class moves by more than a few points
    assert np.argmax(thumb) == np.argmax(full)
    assert litert.labels[int(np.argmax(full))] == PHOTOS["coffee"][1]
    assert float(np.max(np.abs(thumb - full))) < 0.05


def test_a_12_mp_jpeg_decodes_at_the_smallest_scale_that_keeps_what_the_crop_needs(
    litert: Classifier,
) -> None:
    # Given a 4000×3000 JPEG
    with Image.open(PHOTOS["coffee"][0]) as im:
        big = encode(im.convert("RGB").resize((4000, 3000)), "JPEG", quality=90)
    # When the classifier's intake decodes it
    image = decode_image(big, min_side=litert.draft_min_side)
    # Then its shorter side is at least the draft minimum, and halving once more would not be
    shorter = min(image.pixels.shape[:2])
    assert litert.draft_min_side <= shorter < 2 * litert.draft_min_side
    assert (image.width, image.height) == (4000, 3000)
