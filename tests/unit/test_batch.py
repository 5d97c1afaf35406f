"""Batched inference gives the answers of one image at a time, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import imagerec
from benchmarks.accuracy import eval_dir
from imagerec.core.errors import CorruptImage, ImagerecError
from imagerec.models.classifier import Classification, Classifier
from tests.conftest import ROOT

pytestmark = [pytest.mark.unit, pytest.mark.model]

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))
EVAL_PHOTOS = 40
TOLERANCE = 1e-5


def eval_photos() -> list[Path]:
    folder = eval_dir()
    return sorted(folder.iterdir())[:: 882 // EVAL_PHOTOS][:EVAL_PHOTOS] if folder else []


def real_photos() -> list[bytes]:
    return [path.read_bytes() for path in SAMPLES + eval_photos()]


@pytest.fixture(scope="module")
def litert() -> Classifier:
    return imagerec.load_classifier(runtime="litert", build=False)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    if not eval_photos():
        pytest.skip("the evaluation photos are not here ($IMAGEREC_EVAL_DIR, ../shared/eval)")
    return real_photos()


def assert_same(batched: Classification, single: Classification) -> None:
    assert [p.index for p in batched.predictions] == [p.index for p in single.predictions]
    for b, s in zip(batched.predictions, single.predictions, strict=True):
        assert abs(b.score - s.score) <= TOLERANCE
    assert batched.summary == single.summary
    assert [c.name for c in batched.categories] == [c.name for c in single.categories]
    assert batched.image == single.image


def test_a_batch_gives_each_photo_the_probabilities_it_gets_alone(
    litert: Classifier, photos: list[bytes]
) -> None:
    # Given real photos, prepared as classify prepares them
    tensors = np.stack([litert.prepare(data) for data in photos[:12]])
    # When they go through the interpreter in one call, then one at a time
    together = litert.predict(tensors)
    alone = np.concatenate([litert.predict(tensor[np.newaxis]) for tensor in tensors])
    # Then every probability of every class agrees
    assert together.shape == (12, len(litert.labels))
    assert np.max(np.abs(together - alone)) <= TOLERANCE


def test_classify_many_answers_as_classify_does_on_real_photos(
    litert: Classifier, photos: list[bytes]
) -> None:
    # Given the sample photos and some of the evaluation set
    # When they are classified in batches and one by one
    batched = litert.classify_many(photos, top_k=5)
    # Then each photo has the same top-5, probabilities within 1e-5, summary and categories
    assert len(batched) == len(photos)
    for data, result in zip(photos, batched, strict=True):
        assert isinstance(result, Classification)
        assert_same(result, litert.classify(data, top_k=5))


def test_a_bad_image_in_a_batch_spoils_only_its_own_entry(litert: Classifier) -> None:
    # Given two real photos around a truncated JPEG
    first, second = SAMPLES[0].read_bytes(), SAMPLES[1].read_bytes()
    # When they are classified together
    results = litert.classify_many([first, first[: len(first) // 3], second], top_k=3)
    # Then the broken one is its typed error and the others are their usual answers
    assert isinstance(results[1], CorruptImage)
    for data, result in ((first, results[0]), (second, results[2])):
        assert isinstance(result, Classification)
        assert_same(result, litert.classify(data, top_k=3))


def test_batches_of_any_size_give_the_same_answers(photos: list[bytes]) -> None:
    # Given classifiers whose batches hold 1, 3 and 16 images (chunks and a ragged last one)
    base = imagerec.load_classifier(runtime="litert", build=False)
    sizes = [
        Classifier(base.artefact, base._runtime, base.settings, batch_size=n) for n in (1, 3, 16)
    ]
    some = photos[:7]
    # When each classifies the same photos
    answers = [classifier.classify_many(some) for classifier in sizes]
    # Then they agree with each other, photo by photo
    for results in zip(*answers, strict=True):
        for result in results[1:]:
            assert isinstance(result, Classification)
            assert isinstance(results[0], Classification)
            assert_same(result, results[0])


def test_the_keras_runtime_batches_too() -> None:
    # Given the Keras reference and the sample photos
    keras = imagerec.load_classifier(runtime="keras", build=False)
    photos = [path.read_bytes() for path in SAMPLES]
    # When they are classified in one batch and one by one
    batched = keras.classify_many(photos, top_k=5)
    # Then the answers agree
    for data, result in zip(photos, batched, strict=True):
        assert not isinstance(result, ImagerecError)
        assert_same(result, keras.classify(data, top_k=5))


def test_a_batch_size_must_be_a_positive_integer(litert: Classifier) -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            Classifier(litert.artefact, litert._runtime, litert.settings, batch_size=bad)  # type: ignore[arg-type]


def test_a_multi_image_request_answers_each_photo_as_a_single_request_does() -> None:
    # Given the real handler, as Lambda's init builds it, and six real photos plus a broken one
    import base64
    import json

    from imagerec.compose import load_handler
    from imagerec.core.settings import Settings
    from imagerec.http.events import LocalContext, http_event

    handler = load_handler(Settings.from_env())
    photos = [path.read_bytes() for path in SAMPLES] + [b"not an image"]

    def post(document: dict[str, object]) -> dict[str, object]:
        headers = {"content-type": "application/json"}
        raw = http_event("POST", "/api/classify", headers, json.dumps(document).encode())
        response = handler(raw, LocalContext())
        assert response["statusCode"] == 200
        answer: dict[str, object] = json.loads(response["body"])
        return answer

    encoded = [base64.b64encode(data).decode() for data in photos]
    # When they go in one request, then one request each
    many = post({"images": encoded, "top_k": 5})["results"]
    assert isinstance(many, list)
    # Then each photo's predictions are those of its own request, and the broken one is its error
    assert many[-1]["error"]["code"] == "unsupported_format"
    for item, image in zip(many[:-1], encoded[:-1], strict=True):
        alone = post({"image": image, "top_k": 5})
        assert [p["label"] for p in item["predictions"]] == [
            p["label"] for p in alone["predictions"]
        ]
        scores = [p["score"] for p in alone["predictions"]]
        assert [p["score"] for p in item["predictions"]] == pytest.approx(scores, abs=TOLERANCE)
