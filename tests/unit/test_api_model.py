"""The handler over the real model, built by the composition root as Lambda's init builds it:
the event files and real photos get the reference network's answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagerec.compose import load_handler
from imagerec.core.settings import Settings
from imagerec.http.api import Handler
from imagerec.http.events import LocalContext, http_event
from tests.conftest import event, photo_bytes
from tests.images import animated_coffee_gif, coffee, encode, exif_rotated_coffee

pytestmark = [pytest.mark.unit, pytest.mark.model]

CATS = {"tiger cat", "Egyptian cat", "tabby"}


@pytest.fixture(scope="module")
def handler() -> Handler:
    return load_handler(Settings.from_env())


def answer(handler: Handler, raw_event: dict[str, Any]) -> tuple[int, Any]:
    response = handler(raw_event, LocalContext())
    return response["statusCode"], json.loads(response["body"])


def post(handler: Handler, body: bytes, target: str = "/api/classify") -> tuple[int, Any]:
    headers = {"content-type": "application/octet-stream"}
    return answer(handler, http_event("POST", target, headers, body))


def test_jpeg_event_is_espresso(handler: Handler) -> None:
    status, result = answer(handler, event("classify-jpeg"))
    assert status == 200
    assert result["predictions"][0]["label"] == "espresso"
    assert result["model"] == {"name": "efficientnet_lite0", "runtime": "litert"}


def test_multipart_event_labels_each_file(handler: Handler) -> None:
    _, body = answer(handler, event("classify-multipart"))
    first, second = body["results"]
    assert first["predictions"][0]["label"] == "espresso"
    assert second["predictions"][0]["label"] in CATS


def test_models_route_gives_the_published_top1_and_the_input_contract(
    handler: Handler,
) -> None:
    # Given / When the models route of the real handler
    status, body = answer(handler, event("models"))
    # Then the served model says what it is worth and what it takes
    assert status == 200
    (served,) = body["models"]
    assert served["name"] == body["default"] == "efficientnet_lite0"
    assert served["top1_accuracy"] == 75.1
    assert served["input_size"] == [224, 224, 3]
    assert "latency" in served  # null for an artefact built before latency was measured
    assert {"efficientnet_lite1", "efficientnet_lite2"} <= set(body["buildable"])


def test_health_names_the_warm_model(handler: Handler) -> None:
    _, body = answer(handler, event("health"))
    assert body == {
        "status": "ok",
        "model": "efficientnet_lite0",
        "runtime": "litert",
        "warm": True,
    }


@pytest.mark.parametrize("encoding", ["raw", "json"])
def test_real_photo_in_each_encoding(handler: Handler, encoding: str) -> None:
    data = photo_bytes("chelsea")
    if encoding == "raw":
        status, result = post(handler, data, "/api/classify?top_k=12")
    else:
        document = {"image": base64.b64encode(data).decode(), "top_k": 12}
        raw = http_event(
            "POST",
            "/api/classify",
            {"content-type": "application/json"},
            json.dumps(document).encode(),
        )
        status, result = answer(handler, raw)
    assert status == 200
    assert len(result["predictions"]) == 12
    assert result["predictions"][0]["label"] in CATS


ODD_COLOUR = {
    "cmyk-jpeg": lambda: encode(coffee("CMYK"), "JPEG"),
    "palette-png": lambda: encode(coffee().quantize(256), "PNG"),
    "rgba-webp": lambda: encode(coffee("RGBA"), "WEBP"),
    "animated-gif": animated_coffee_gif,
    "exif-rotated-jpeg": exif_rotated_coffee,
    "bmp": lambda: encode(coffee(), "BMP"),
    "tiff": lambda: encode(coffee(), "TIFF"),
}


@pytest.mark.parametrize("name", sorted(ODD_COLOUR))
def test_odd_colour_photos_are_still_espresso(handler: Handler, name: str) -> None:
    status, result = post(handler, ODD_COLOUR[name]())
    assert status == 200
    assert result["predictions"][0]["label"] == "espresso"
