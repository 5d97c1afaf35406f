"""The API's familiar answers over the real model: summary, parents, categories,
min_confidence and the category filters, as Lambda's init builds the handler."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagerec.compose import load_handler
from imagerec.core.settings import Settings
from imagerec.http.api import Handler
from imagerec.http.events import LocalContext, http_event
from tests.conftest import photo_bytes

pytestmark = [pytest.mark.unit, pytest.mark.model]

BOUNDARY = "labelsBoundary42"


@pytest.fixture(scope="module")
def handler() -> Handler:
    return load_handler(Settings.from_env())


def post(
    handler: Handler, body: bytes, content_type: str, target: str = "/api/classify", **headers: str
) -> Any:
    headers["content-type"] = content_type
    response = handler(http_event("POST", target, headers, body), LocalContext())
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    is_json = response.get("headers", {}).get("Content-Type", "").startswith("application/json")
    return response["statusCode"], json.loads(text) if is_json else text


def test_the_cat_photo_answers_cat_with_parents_and_categories(handler: Handler) -> None:
    status, body = post(handler, photo_bytes("chelsea"), "image/png")
    assert status == 200
    assert body["summary"]["label"] == "cat"
    assert body["summary"]["score"] > body["predictions"][0]["score"]
    # The phrase people read comes from the API, so the page has no a/an rule of its own.
    assert body["summary"]["phrase"] == "a cat"
    assert body["predictions"][0]["phrase"] == "a tiger cat"
    for prediction in body["predictions"][:3]:
        assert prediction["parents"][:2] == ["cat", "feline"]
    assert body["categories"][0]["name"] == "animal"
    assert sum(c["score"] for c in body["categories"]) == pytest.approx(1.0, abs=1e-4)


def test_the_query_filters_and_min_confidence_apply(handler: Handler) -> None:
    # When animals are excluded, nothing about the cat is left but the rest of the spread
    status, body = post(
        handler, photo_bytes("chelsea"), "image/png", "/api/classify?exclude_categories=animal"
    )
    assert status == 200
    assert body["summary"] is None
    assert all("animal" not in p["parents"] for p in body["predictions"])
    # When a high min_confidence is asked, only predictions above it are left
    status, body = post(
        handler, photo_bytes("chelsea"), "image/png", "/api/classify?min_confidence=0.3"
    )
    assert status == 200
    assert body["predictions"]
    assert all(p["score"] >= 0.3 for p in body["predictions"])


def test_json_and_form_carry_the_options(handler: Handler) -> None:
    image = base64.b64encode(photo_bytes("coffee")).decode()
    document = {"image": image, "include_categories": ["food"], "min_confidence": 0.01}
    status, body = post(handler, json.dumps(document).encode(), "application/json")
    assert status == 200
    assert [c["name"] for c in body["categories"]] == ["food"]
    assert body["predictions"][0]["label"] == "espresso"
    assert body["predictions"][0]["parents"] == ["coffee", "drink", "food"]

    form = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="image"; filename="cup.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + photo_bytes("coffee")
    form += (
        f"\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="exclude_categories"\r\n\r\nfood\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    status, body = post(handler, form, f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 200
    assert "food" not in {c["name"] for c in body["categories"]}
    assert body["predictions"][0]["label"] != "espresso"


@pytest.mark.parametrize(
    "query",
    [
        "min_confidence=2",
        "min_confidence=high",
        "include_categories=animals",
        "exclude_categories=animal&include_categories=animal",
    ],
)
def test_bad_options_are_a_typed_400(handler: Handler, query: str) -> None:
    status, body = post(handler, photo_bytes("coffee"), "image/png", f"/api/classify?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_argument"
    assert "Expected" in body["error"]["message"]


def test_plain_text_leads_with_a_surer_summary(handler: Handler) -> None:
    status, text = post(handler, photo_bytes("chelsea"), "image/png", **{"accept": "text/plain"})
    assert status == 200
    assert text.startswith("a cat (")
    assert ", most likely a" in text


def test_the_openapi_document_describes_the_answers_and_options(handler: Handler) -> None:
    response = handler(http_event("GET", "/api/openapi.json", {}, b""), LocalContext())
    document = json.loads(response["body"])
    schemas = document["components"]["schemas"]
    assert {"parents", "phrase"} <= set(schemas["Prediction"]["required"])
    assert "phrase" in schemas["Summary"]["required"]
    assert {"summary", "categories"} <= set(schemas["Classification"]["required"])
    assert "IMAGEREC_SUMMARY_THRESHOLD" in schemas["Summary"]["description"]
    parameters = {p["name"]: p for p in document["paths"]["/api/classify"]["post"]["parameters"]}
    assert {"top_k", "min_confidence", "include_categories", "exclude_categories"} <= set(
        parameters
    )
    names = parameters["include_categories"]["schema"]["items"]["enum"]
    assert {"animal", "food", "vehicle", "plant"} <= set(names)
