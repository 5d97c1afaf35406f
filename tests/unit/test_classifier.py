"""Unit tests for the classifier, on the real embedded model and real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import imagerec
from imagerec.core.errors import InvalidArgument, ModelNotBuilt, UnknownModel, UnsupportedFormat
from imagerec.core.preprocess import preprocess
from imagerec.core.settings import Settings
from imagerec.models.classifier import Classifier, built_artefact, top_k_predictions
from imagerec.models.registry import (
    LATENCY_RUNS,
    LATENCY_WARMUP,
    MATCH_TOLERANCE,
    Manifest,
    compare_outputs,
    get_spec,
    measure_latency,
)
from tests.conftest import PHOTOS, photo_bytes

pytestmark = [pytest.mark.unit, pytest.mark.model]


@pytest.fixture(scope="module")
def litert() -> Classifier:
    return imagerec.load_classifier(runtime="litert", build=False)


@pytest.fixture(scope="module")
def keras_classifier() -> Classifier:
    return imagerec.load_classifier(runtime="keras", build=False)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photos_get_the_reference_top_1(litert: Classifier, name: str) -> None:
    result = litert.classify(photo_bytes(name), top_k=5)
    assert result.predictions[0].label == PHOTOS[name][1]
    scores = [p.score for p in result.predictions]
    assert scores == sorted(scores, reverse=True)
    assert 0 < sum(scores) <= 1.0001
    assert result.model == "efficientnet_lite0"
    assert set(result.timing_ms) == {"decode", "preprocess", "inference", "total"}


def test_the_default_runtime_is_litert_and_matches_keras_on_real_photos(
    litert: Classifier, keras_classifier: Classifier
) -> None:
    # Given the default runtime and the Keras reference
    default = imagerec.load_classifier(build=False)
    assert default.runtime == "litert"
    # When both see the same preprocessed real photos
    from PIL import Image

    batch = []
    for path, _ in PHOTOS.values():
        with Image.open(path) as im:
            batch.append(preprocess(np.asarray(im.convert("RGB")), default.preprocessing))
    tensor = np.stack(batch)
    fast, reference = default.predict(tensor), keras_classifier.predict(tensor)
    # Then the top-5 are identical and the probabilities agree within 1e-4
    check = compare_outputs(reference, fast)
    assert check["top5_equal"]
    assert check["max_abs_diff"] <= MATCH_TOLERANCE


def test_predict_takes_a_preprocessed_batch(litert: Classifier) -> None:
    batch = np.zeros((3, 224, 224, 3), dtype=np.float32)
    probabilities = litert.predict(batch)
    assert probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="Expected a batch of shape"):
        litert.predict(np.zeros((224, 224, 3), dtype=np.float32))


def test_prepared_batches_answer_as_classify_does(litert: Classifier) -> None:
    # Given two photos prepared for the model and stacked
    names = ["coffee", "chelsea"]
    batch = np.stack([litert.prepare(photo_bytes(name)) for name in names])
    assert batch.shape == (2, 224, 224, 3)
    assert batch.dtype == np.float32
    # When predicted as one batch / Then each row agrees with classify on that photo
    probabilities = litert.predict(batch)
    for row, name in zip(probabilities, names, strict=True):
        best = litert.classify(photo_bytes(name), top_k=1).predictions[0]
        assert litert.labels[int(row.argmax())] == best.label == PHOTOS[name][1]
        assert abs(float(row.max()) - best.score) < 1e-5
    with pytest.raises(UnsupportedFormat):
        litert.prepare(b"not an image")


@pytest.mark.parametrize("top_k", [0, 21, -3, True])
def test_top_k_is_validated(litert: Classifier, top_k: int) -> None:
    with pytest.raises(InvalidArgument):
        litert.classify(photo_bytes("coffee"), top_k=top_k)


def test_bad_bytes_raise_typed_errors(litert: Classifier) -> None:
    with pytest.raises(UnsupportedFormat):
        litert.classify(b"<svg xmlns='http://www.w3.org/2000/svg'/>")


def test_top_k_predictions_break_ties_by_index() -> None:
    probabilities = np.array([0.1, 0.3, 0.3, 0.2, 0.1], dtype=np.float32)
    labels = ("a", "b", "c", "d", "e")
    assert [p.index for p in top_k_predictions(probabilities, labels, 4)] == [1, 2, 3, 0]


def test_top_k_predictions_filter_and_carry_parents() -> None:
    probabilities = np.array([0.5, 0.3, 0.15, 0.05])
    labels = ("a", "b", "c", "d")
    parents = (("x",), ("y", "x"), (), ())
    allowed = np.array([False, True, True, True])
    got = top_k_predictions(
        probabilities, labels, 4, allowed=allowed, min_confidence=0.1, parents=parents
    )
    assert [(p.label, p.parents) for p in got] == [("b", ("y", "x")), ("c", ())]


# What a person should read for each photo (None: the model is not sure of anything).
SUMMARIES = {"chelsea": "cat", "coffee": "espresso", "grace_hopper": "clothing", "rocket": None}


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photos_get_a_familiar_summary_and_parents(litert: Classifier, name: str) -> None:
    result = litert.classify(photo_bytes(name), top_k=5)
    expected = SUMMARIES[name]
    if expected is None:
        assert result.summary is None
    else:
        assert result.summary is not None
        assert result.summary.label == expected
        # Summed confidence is at least the top class's, and reaches the model's bar.
        assert result.summary.score >= max(
            result.predictions[0].score, litert.summary_thresholds.top_class
        )
        assert result.to_dict()["summary"]["phrase"] in {"a cat", "an espresso", "clothing"}
    # The top class has parents, none of them an abstraction.
    assert result.predictions[0].parents
    assert not {"entity", "object", "artifact", "whole"} & {
        parent for p in result.predictions for parent in p.parents
    }
    assert result.categories[0].score >= result.categories[-1].score
    assert sum(c.score for c in result.categories) == pytest.approx(1.0, abs=1e-4)
    document = result.to_dict()
    assert document["predictions"][0]["parents"] == list(result.predictions[0].parents)
    assert document["predictions"][0]["phrase"].endswith(result.predictions[0].label)


def test_the_summary_and_filters_follow_the_request(litert: Classifier) -> None:
    # Given the cat photo, whose classes are all animals
    data = photo_bytes("chelsea")
    # When animals are excluded, no cat is reported and no summary reaches the threshold
    result = litert.classify(data, 5, label_filter=litert.check_filter(exclude=("animal",)))
    assert all("animal" not in p.parents for p in result.predictions)
    assert "animal" not in {c.name for c in result.categories}
    assert result.summary is None or result.summary.label != "cat"
    # When only animals are kept with a high min_confidence, weak guesses are dropped
    strict = litert.check_filter(min_confidence=0.3, include=("animal",))
    result = litert.classify(data, 5, label_filter=strict)
    assert result.predictions
    assert all(p.score >= 0.3 for p in result.predictions)
    assert [c.name for c in result.categories] == ["animal"]


@pytest.mark.parametrize(
    "kwargs",
    [{"min_confidence": 2.0}, {"include": ("animals",)}, {"exclude": ("",)}],
)
def test_bad_filters_are_typed_errors(litert: Classifier, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        litert.check_filter(**kwargs)  # type: ignore[arg-type]


def test_describe_reports_the_input_contract(litert: Classifier) -> None:
    described = litert.describe()
    assert described["input_size"] == [224, 224, 3]
    assert described["num_labels"] == 1000
    assert described["preprocessing"]["resize"] == "tf1_bicubic"
    # And what it is worth: the published top-1 (latency only if the build measured it)
    assert described["top1_accuracy"] == 75.1
    assert "latency" in described


@pytest.mark.parametrize(
    ("name", "top1"), [("efficientnet_lite1", 76.7), ("EfficientNet-Lite2", 77.6)]
)
def test_the_larger_lite_models_are_registered_with_their_accuracy(name: str, top1: float) -> None:
    assert get_spec(name).top1_accuracy == top1


def test_latency_is_measured_on_single_images_after_a_warm_up() -> None:
    # Given a stand-in runtime that records what it is asked to run
    calls: list[tuple[int, ...]] = []

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return np.zeros((batch.shape[0], 3), np.float32)

    # When latency is measured
    latency = measure_latency(predict, np.zeros((8, 8, 3), np.float32), threads=1)
    # Then every call is one image, warm-ups first, and the figures say how they were taken
    assert calls == [(1, 8, 8, 3)] * (LATENCY_WARMUP + LATENCY_RUNS)
    assert latency["runs"] == LATENCY_RUNS
    assert (latency["runtime"], latency["threads"], latency["batch"]) == ("litert", 1, 1)
    assert 0 <= latency["p50_ms"] <= latency["p90_ms"]
    assert 0 <= latency["wall_p50_ms"] <= latency["wall_p90_ms"]
    assert latency["cpu"]


def test_latency_refuses_a_bad_thread_count() -> None:
    with pytest.raises(ValueError, match="Expected a positive thread count"):
        measure_latency(lambda b: b, np.zeros((2, 2, 3), np.float32), threads=0)


def test_a_manifest_written_before_latency_was_measured_still_loads() -> None:
    # Given a manifest as builds wrote it before (no latency key)
    text = (
        '{"name": "m", "preprocessing": {"size": 8}, "num_classes": 3, "files": {}, '
        '"litert_check": {}, "built_with": {}, "version": 1}'
    )
    # When / Then it loads, with no latency
    manifest = Manifest.from_json(text)
    assert manifest.latency == {}


@pytest.mark.parametrize("name", ["MobileNetV2", "mobilenet-v2", "mobilenet_v2"])
def test_keras_application_names_resolve(name: str) -> None:
    assert get_spec(name).name == "mobilenet_v2"


def test_unknown_model_names_are_refused_before_any_build() -> None:
    with pytest.raises(UnknownModel, match="efficientnet_lite0"):
        imagerec.load_classifier("not_a_model")


@pytest.mark.parametrize(
    ("on_lambda", "fix"),
    [
        (False, "build it with `imagerec build-model efficientnet_lite2`."),
        (True, "rebuild the image with the build argument IMAGEREC_MODEL=efficientnet_lite2."),
    ],
)
def test_a_missing_model_says_how_to_get_it_where_it_runs(
    tmp_path: Path, on_lambda: bool, fix: str
) -> None:
    # Given an empty model cache, on a laptop or in a function image
    settings = Settings(model="efficientnet_lite2", cache_dir=tmp_path, on_lambda=on_lambda)
    # When the built artefact is looked up, then the one line says the fix that applies there
    with pytest.raises(ModelNotBuilt) as raised:
        built_artefact(settings)
    assert str(raised.value).endswith(fix)


def test_large_jpegs_decode_at_the_crops_need_and_answer_as_the_photo_as_taken(
    litert: Classifier,
) -> None:
    # Given a photo and its 12 MP upscale as a JPEG
    from PIL import Image

    from tests.images import encode

    with Image.open(PHOTOS["chelsea"][0]) as im:
        taken = encode(im.convert("RGB"), "JPEG", quality=95)
        big = encode(im.convert("RGB").resize((4000, 2660), Image.Resampling.BICUBIC), "JPEG")
    # When the 12 MP one is classified (drafted to 1/4: the shorter side stays >= 512)
    assert litert.draft_min_side == 512
    result = litert.classify(big, top_k=3)
    # Then it reports the full size and the answer of the photo as taken
    assert (result.image.width, result.image.height) == (4000, 2660)
    assert result.predictions[0].label == litert.classify(taken).predictions[0].label
    assert result.predictions[0].label == PHOTOS["chelsea"][1]
