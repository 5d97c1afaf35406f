"""Building artefacts: a user's own .keras model with its labels, served by both runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import imagerec
from imagerec.errors import ModelError
from imagerec.models import MANIFEST, build_artefact, find_artefact
from imagerec.settings import Settings
from tests.conftest import photo_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    folder = tmp_path_factory.mktemp("custom")
    path = folder / "shapes.keras"
    keras.Model(inputs, outputs).save(path)
    labels = folder / "labels.txt"
    labels.write_text("circle\nsquare\ntriangle\n")
    return path, labels


def test_a_custom_keras_model_builds_and_serves_with_its_labels(
    custom_model: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given a user's .keras file and labels
    model_path, labels = custom_model
    # When it is built into a fresh cache
    artefact = build_artefact(str(model_path), tmp_path, labels_file=labels)
    # Then the manifest records its input size and that LiteRT matched Keras
    manifest = json.loads((artefact.directory / MANIFEST).read_text())
    assert manifest["name"] == "shapes"
    assert manifest["preprocessing"]["size"] == 96
    assert manifest["litert_check"]["ok"]
    assert find_artefact(tmp_path, str(model_path)) is not None
    # And both runtimes classify a photo with the user's labels, agreeing
    settings = Settings.from_env({"IMAGEREC_CACHE_DIR": str(tmp_path)})
    results = {}
    for runtime in ("litert", "keras"):
        classifier = imagerec.load_classifier(
            str(model_path), runtime=runtime, settings=settings, build=False
        )
        results[runtime] = classifier.classify(photo_bytes("coffee"), top_k=3)
    assert {p.label for p in results["litert"].predictions} == {"circle", "square", "triangle"}
    np.testing.assert_allclose(
        [p.score for p in results["litert"].predictions],
        [p.score for p in results["keras"].predictions],
        atol=1e-4,
    )


def test_a_custom_model_without_labels_is_refused(
    custom_model: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="labels"):
        build_artefact(str(custom_model[0]), tmp_path)


def test_labels_that_do_not_match_the_outputs_are_refused(
    custom_model: tuple[Path, Path], tmp_path: Path
) -> None:
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    with pytest.raises(ModelError, match="Expected 3 labels"):
        build_artefact(str(custom_model[0]), tmp_path, labels_file=two)


def test_an_unbuilt_model_is_not_built_when_serving(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMAGEREC_CACHE_DIR": str(tmp_path)})
    with pytest.raises(ModelError, match="build-model"):
        imagerec.load_classifier(settings=settings, build=False)
