"""The handler, called as Lambda calls it, over a stand-in classifier (real intake, no model):
every event file, every encoding, and a corpus of hostile and odd inputs. Client input never
gets a 5xx. The same handler over the real model is tested in test_api_model.py."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagerec.core.settings import Settings
from imagerec.http import api
from imagerec.http.events import LocalContext, http_event
from tests.conftest import EVENTS, event, photo_bytes
from tests.images import (
    BLUE,
    RED,
    animated_coffee_gif,
    coffee,
    encode,
    exif_rotated_coffee,
    png_declaring,
)
from tests.standin import LABELS, StandInClassifier

pytestmark = pytest.mark.unit

CLASSIFIER = StandInClassifier()
HANDLER = api.create_handler(CLASSIFIER, Settings(threads=1))


def solid(colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    return encode(Image.new("RGB", (64, 48), colour), fmt)


def call(raw_event: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    response = HANDLER(raw_event, LocalContext())
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], response.get("headers", {}), body


def post(
    body: bytes,
    content_type: str | None = "image/jpeg",
    target: str = "/api/classify",
    **headers: str,
) -> tuple[int, Any]:
    if content_type:
        headers["content-type"] = content_type
    status, response_headers, text = call(http_event("POST", target, headers, body))
    is_json = response_headers.get("Content-Type", "").startswith("application/json")
    return status, json.loads(text) if is_json else text


# --- the event files ----------------------------------------------------------------------

EXPECTED: dict[str, tuple[int, str | None]] = {
    "classify-jpeg": (200, None),
    "classify-json": (200, None),
    "classify-multipart": (200, None),
    "classify-text": (200, None),
    "health": (200, None),
    "models": (200, None),
    "openapi": (200, None),
    "bad-empty-body": (400, "empty_body"),
    "bad-not-an-image": (415, "unsupported_format"),
    "bad-truncated-jpeg": (400, "corrupt_image"),
    "bad-top-k": (400, "invalid_argument"),
    "bad-base64-json": (400, "invalid_base64"),
    "bad-multipart-no-boundary": (400, "invalid_multipart"),
    "uploads-create": (200, None),
    "bad-upload-unknown": (404, "upload_not_found"),
    "bad-s3-reference-anonymous": (403, "s3_references_disabled"),
    # an authorizer context in the event means nothing to a deployment with Auth=none
    "classify-s3-iam": (403, "s3_references_disabled"),
    "not-found": (404, "not_found"),
    "method-not-allowed": (405, "method_not_allowed"),
}


def test_every_event_file_has_an_expectation() -> None:
    assert {p.stem for p in EVENTS.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_files_get_their_status(name: str) -> None:
    status, _headers, body = call(event(name))
    expected_status, code = EXPECTED[name]
    assert status == expected_status
    if code is not None:
        assert json.loads(body)["error"]["code"] == code
        assert json.loads(body)["error"]["message"]


def test_jpeg_event_answers_with_the_classifier_and_timings() -> None:
    _, _, body = call(event("classify-jpeg"))
    result = json.loads(body)
    assert result["predictions"][0]["label"] in LABELS
    assert result["model"] == {"name": "stand-in", "runtime": "colour"}
    assert result["image"]["format"] == "JPEG"
    assert {"decode", "preprocess", "inference", "total", "parse"} <= set(result["timing_ms"])


def test_multipart_event_gives_one_result_per_file_in_order() -> None:
    _, _, body = call(event("classify-multipart"))
    results = json.loads(body)["results"]
    assert [r["filename"] for r in results] == ["coffee.jpg", "chelsea.jpg"]
    assert all(len(r["predictions"]) == 3 for r in results)


def test_text_event_is_one_line_per_image() -> None:
    _, headers, body = call(event("classify-text"))
    assert headers["Content-Type"].startswith("text/plain")
    assert body.count("\n") == 1
    label, _, percent = body.strip().rpartition(" (")
    assert label
    assert percent.endswith("%)")


def test_health_says_warm_and_names_the_model() -> None:
    _, _, body = call(event("health"))
    assert json.loads(body) == {
        "status": "ok",
        "model": "stand-in",
        "runtime": "colour",
        "warm": True,
    }


def test_openapi_document_lists_every_route() -> None:
    _, _, body = call(event("openapi"))
    document = json.loads(body)
    assert document["openapi"].startswith("3.")
    # (OpenAPI writes a path parameter {name}; Powertools <name>)
    paths = {route.path.replace("<", "{").replace(">", "}"): route for route in api.ROUTES}
    assert set(document["paths"]) == set(paths)
    for path, route in paths.items():
        assert route.method.lower() in document["paths"][path]


# --- real photos, each encoding -------------------------------------------------------------


def multipart(*files: tuple[str, bytes]) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("encoding", ["raw", "multipart", "json"])
def test_each_encoding_reaches_the_classifier_with_the_same_bytes(encoding: str) -> None:
    data = solid(BLUE)
    if encoding == "raw":
        status, result = post(data, "image/png")
    elif encoding == "multipart":
        body, content_type = multipart(("blue.png", data))
        status, result = post(body, content_type)
    else:
        status, result = post(
            json.dumps({"image": base64.b64encode(data).decode()}).encode(), "application/json"
        )
    assert status == 200
    assert result["predictions"][0]["label"] == "blue"
    assert result["image"] == {"width": 64, "height": 48, "format": "PNG"}


def test_top_k_query_parameter() -> None:
    status, result = post(solid(RED), "image/png", "/api/classify?top_k=12")
    assert status == 200
    assert len(result["predictions"]) == 12
    assert result["predictions"][0]["label"] == "red"


def test_several_files_with_one_bad_one_keep_the_good_ones() -> None:
    body, content_type = multipart(
        ("red.png", solid(RED)), ("notes.txt", b"hello"), ("blue.jpg", solid(BLUE, "JPEG"))
    )
    status, result = post(body, content_type)
    assert status == 200
    first, bad, last = result["results"]
    assert first["predictions"][0]["label"] == "red"
    assert bad == {"filename": "notes.txt", "error": bad["error"]}
    assert bad["error"]["code"] == "unsupported_format"
    assert last["predictions"][0]["label"] == "blue"


# --- odd but valid images classify ------------------------------------------------------------


def _sixteen_bit() -> bytes:
    grey = np.asarray(coffee("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


ODD = {
    "cmyk-jpeg": lambda: encode(coffee("CMYK"), "JPEG"),
    "16-bit-png": _sixteen_bit,
    "palette-png": lambda: encode(coffee().quantize(256), "PNG"),
    "palette-transparent-png": lambda: encode(
        coffee().convert("RGBA").quantize(255), "PNG", transparency=0
    ),
    "rgba-webp": lambda: encode(coffee("RGBA"), "WEBP"),
    "animated-gif": animated_coffee_gif,
    "exif-rotated-jpeg": exif_rotated_coffee,
    "bmp": lambda: encode(coffee(), "BMP"),
    "tiff": lambda: encode(coffee(), "TIFF"),
    "1x1": lambda: encode(coffee(size=(1, 1)), "PNG"),
    "4000x10-strip": lambda: encode(coffee(size=(4000, 10)), "PNG"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_images_classify(name: str) -> None:
    status, result = post(ODD[name](), "application/octet-stream")
    assert status == 200, result
    assert len(result["predictions"]) == 5


def test_exif_rotation_reports_the_upright_size() -> None:
    _, result = post(exif_rotated_coffee())
    assert (result["image"]["width"], result["image"]["height"]) == (600, 400)


# --- hostile input gets a 4xx, never a 5xx -----------------------------------------------------


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", photo_bytes("coffee"))
    return out.getvalue()


HOSTILE: dict[str, tuple[bytes, str | None, int, str]] = {
    "empty": (b"", "image/jpeg", 400, "empty_body"),
    "svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "image/svg+xml",
        415,
        "unsupported_format",
    ),
    "pdf": (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
        "application/pdf",
        415,
        "unsupported_format",
    ),
    "html": (
        b"<!doctype html><html><body>hi</body></html>",
        "text/html",
        415,
        "unsupported_format",
    ),
    "zip": (_zip(), "application/zip", 415, "unsupported_format"),
    "gzip": (gzip.compress(b"x" * 1000), "application/gzip", 415, "unsupported_format"),
    "text": (b"a cat sitting on a mat\n", "text/plain", 415, "unsupported_format"),
    "random": (
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
        None,
        415,
        "unsupported_format",
    ),
    "truncated-png": (photo_bytes("coffee")[:5000], "image/png", 400, "corrupt_image"),
    "truncated-jpeg": (photo_bytes("rocket")[:3000], "image/jpeg", 400, "corrupt_image"),
    "pixel-bomb": (png_declaring(10_000, 10_000), "image/png", 413, "image_too_large"),
    "over-byte-cap": (b"\xff\xd8\xff" + b"\0" * 10_000_000, "image/jpeg", 413, "payload_too_large"),
    "json-without-image": (b'{"top_k": 3}', "application/json", 400, "missing_image"),
    "json-invalid": (b'{"image": ', "application/json", 400, "invalid_json"),
    "json-bad-base64": (b'{"image": "***"}', "application/json", 400, "invalid_base64"),
    "json-bad-top-k": (
        b'{"image": "QUFB", "top_k": "lots"}',
        "application/json",
        400,
        "invalid_argument",
    ),
    "multipart-no-boundary": (b"--x--\r\n", "multipart/form-data", 400, "invalid_multipart"),
    "multipart-no-file": (
        b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        400,
        "missing_image",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gets_its_4xx_json_error(name: str) -> None:
    body, content_type, status, code = HOSTILE[name]
    got_status, result = post(body, content_type)
    assert (got_status, result["error"]["code"]) == (status, code)
    assert result["error"]["message"]


@pytest.mark.parametrize("top_k", ["0", "21", "abc", "-1"])
def test_bad_top_k_query_is_400(top_k: str) -> None:
    status, result = post(photo_bytes("coffee"), "image/png", f"/api/classify?top_k={top_k}")
    assert (status, result["error"]["code"]) == (400, "invalid_argument")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/nope", 404), ("DELETE", "/api/health", 405), ("PUT", "/api/classify", 405)],
)
def test_unknown_routes_and_methods(method: str, path: str, status: int) -> None:
    got, headers, body = call(http_event(method, path, {}, b""))
    assert got == status
    assert json.loads(body)["error"]["code"] in {"not_found", "method_not_allowed"}
    if status == 405:
        assert headers["Allow"]


def test_an_unexpected_failure_is_a_500_with_a_request_id_and_no_stack_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a bug deep in the classifier
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(CLASSIFIER, "classify", broken)
    # When a valid request arrives
    raw = http_event("POST", "/api/classify", {"content-type": "image/png"}, photo_bytes("coffee"))
    status, _, body = call(raw)
    # Then it is a 500 that names the request and hides the internals
    error = json.loads(body)["error"]
    assert status == 500
    assert error["code"] == "internal_error"
    assert error["request_id"] == raw["requestContext"]["requestId"]
    assert "secret" not in body
    assert "Traceback" not in body


def test_a_bad_top_k_fails_a_multi_file_request_once_not_per_file() -> None:
    body, content_type = multipart(("a.png", solid(RED)), ("b.png", solid(BLUE)))
    calls = CLASSIFIER.calls
    status, result = post(body, content_type, "/api/classify?top_k=0")
    assert (status, result["error"]["code"]) == (400, "invalid_argument")
    assert CLASSIFIER.calls == calls


def test_importing_the_api_loads_no_model(tmp_path: Path) -> None:
    # Given a cache with no model in it, importing the API still works and loads no runtime:
    # loading is load_handler()'s job, in Lambda's init phase or in serve/invoke.
    code = (
        "import sys, imagerec.http.api; "
        "print(sorted(m for m in ('ai_edge_litert', 'tensorflow') if m in sys.modules))"
    )
    env = {**os.environ, "IMAGEREC_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_models_says_what_classify_accepts() -> None:
    # Given the models route / When called / Then it lists what the intake accepts, and the caps
    status, _, body = call(event("models"))
    accepts = json.loads(body)["accepts"]
    assert status == 200
    assert accepts["formats"][:3] == ["JPEG", "PNG", "WebP"]
    assert "image/tiff" in accepts["media_types"]
    assert len(accepts["formats"]) == len(accepts["media_types"])
    assert accepts["max_bytes"] == Settings().max_bytes
    assert accepts["max_pixels"] == Settings().max_pixels


def test_text_answer_is_the_cli_line_with_every_label_asked_for() -> None:
    # Given a red and a blue file, with a file that is not an image, asking for text and top_k=3
    status, text = post(
        *multipart(
            ("red.png", solid(RED)),
            ("notes.txt", b"not an image"),
            ("blue.png", solid(BLUE)),
        ),
        target="/api/classify?top_k=3",
        accept="text/plain",
    )
    # Then one line per file, as `imagerec classify` prints it: every label asked for
    lines = text.splitlines()
    assert status == 200
    assert lines[0].startswith("red.png: red (")
    assert lines[0].count("%)") == 3
    assert lines[1].startswith("notes.txt: error: The file is not a supported image")
    assert lines[2].startswith("blue.png: blue (")


# --- issue 9: bounded work per request, and every odd body a typed 4xx ------------------------


def _handler_with(**limits: int) -> api.Handler:
    settings = Settings(threads=1, **limits)  # type: ignore[arg-type]
    return api.create_handler(StandInClassifier(settings), settings)


def _post_to(handler: api.Handler, body: bytes, content_type: str) -> tuple[int, Any]:
    raw = http_event("POST", "/api/classify", {"content-type": content_type}, body)
    response = handler(raw, LocalContext())
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return response["statusCode"], json.loads(text)


@pytest.fixture
def pixel_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pixel decode Pillow does during the test."""
    from PIL import ImageFile

    loads: list[str] = []
    original = ImageFile.ImageFile.load

    def recording(self: ImageFile.ImageFile) -> object:
        loads.append(self.format or "?")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording)
    return loads


def test_thousands_of_images_are_refused_before_any_decoding(pixel_loads: list[str]) -> None:
    # Given a 3,000-image JSON body, each a real PNG
    one = base64.b64encode(solid(RED)).decode()
    body = json.dumps({"images": [one] * 3000}).encode()
    # When posted / Then one 413 with its own code, and no pixel was decoded
    status, result = _post_to(HANDLER, body, "application/json")
    assert status == 413
    assert result["error"]["code"] == "too_many_images"
    assert pixel_loads == []


def test_images_adding_up_past_the_pixel_cap_are_refused_before_any_decoding(
    pixel_loads: list[str],
) -> None:
    # Given a handler allowing 8,000 pixels per request, and three 64×48 images (9,216)
    handler = _handler_with(max_request_pixels=8_000)
    three, content_type = multipart(*[(f"{n}.png", solid(BLUE)) for n in range(3)])
    one, _ = multipart(("0.png", solid(BLUE)))
    # When posted / Then 413 too_many_pixels, with nothing decoded
    status, result = _post_to(handler, three, content_type)
    assert (status, result["error"]["code"]) == (413, "too_many_pixels")
    assert pixel_loads == []
    # And one image fits
    status, result = _post_to(handler, one, content_type)
    assert status == 200
    assert pixel_loads  # (the spy sees Pillow's own repeated load() calls too)


def test_an_image_over_the_memory_budget_is_a_413(pixel_loads: list[str]) -> None:
    handler = _handler_with(max_decode_bytes=1_000_000)
    status, result = _post_to(handler, solid(RED), "image/png")
    assert (status, result["error"]["code"]) == (413, "image_too_large")
    assert "MB" in result["error"]["message"]
    assert pixel_loads == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="\xe7\x8c\xab.png"'
            b"\r\n\r\n" + solid(RED) + b"\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            200,
            None,
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="im\xc3\xa1ge\xe2\x86\x92"\r\n\r\n'
            b"x\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            400,
            "missing_image",
        ),
        (b"--x\r\n\r\n", "multipart/form-data; boundary=" + "x" * 300, 400, "invalid_multipart"),
        (b"[" * 1000 + b"]" * 1000, "application/json", 400, "invalid_json"),
        (b'{"image": ' + b"[" * 100_000 + b"}", "application/json", 400, "invalid_json"),
        (b'{"image": "QUFB", "top_k": "\xd9\xa3"}', "application/json", 400, "invalid_argument"),
    ],
    ids=["utf8-filename", "utf8-field", "long-boundary", "deep-json", "deeper-json", "top-k"],
)
def test_each_case_of_issue_9_is_a_typed_answer(
    body: bytes, content_type: str, status: int, code: str | None
) -> None:
    got_status, result = _post_to(HANDLER, body, content_type)
    assert got_status == status
    if code is None:
        assert result["filename"] if "filename" in result else result["predictions"]
    else:
        assert result["error"]["code"] == code


def test_the_utf8_file_name_comes_back() -> None:
    body = (
        '--b\r\nContent-Disposition: form-data; name="image"; filename="猫.png"\r\n\r\n'.encode()
        + solid(RED)
        + b"\r\n--b\r\nContent-Disposition: form-data; name=image; "
        + b"filename*=UTF-8''%E7%8A%AC.png\r\n\r\n"
        + solid(BLUE)
        + b"\r\n--b--\r\n"
    )
    status, result = _post_to(HANDLER, body, "multipart/form-data; boundary=b")
    assert status == 200
    assert [r["filename"] for r in result["results"]] == ["猫.png", "犬.png"]
    assert [r["predictions"][0]["label"] for r in result["results"]] == ["red", "blue"]


@pytest.mark.parametrize("top_k", ["%D9%A3", "1_0", "%2B3", "3.0", "9" * 50])
def test_top_k_must_be_ascii_digits(top_k: str) -> None:
    status, result = post(solid(RED), "image/png", f"/api/classify?top_k={top_k}")
    assert (status, result["error"]["code"]) == (400, "invalid_argument")


def test_the_document_names_every_error_code_the_code_can_raise() -> None:
    from imagerec.core import errors
    from imagerec.http.openapi import ERROR_CODES
    from imagerec.http.server import ERROR_CODES as SERVER_CODES

    raised = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.ImagerecError)
        and not api.is_ours(cls("x"))
    }
    # The base classes (by status) are never raised themselves.
    bases = {"invalid_input", "too_large", "forbidden", "gone"}
    bases |= {"too_many_requests", "insufficient_storage"}
    assert raised - bases <= set(ERROR_CODES)
    assert set(SERVER_CODES.values()) <= set(ERROR_CODES)


# --- familiar answers and label options (the real model's are in test_api_labels.py) -------


def test_every_answer_has_summary_parents_and_categories_fields() -> None:
    status, body = post(solid(RED), "image/png")
    assert status == 200
    # The stand-in's colours have no categories, as a custom labels file has none.
    assert body["categories"] == []
    assert all(p["parents"] == [] for p in body["predictions"])
    assert body["summary"] is None or body["summary"]["label"] == "red"


def test_min_confidence_drops_weak_predictions() -> None:
    _, everything = post(solid(RED), "image/png", "/api/classify?top_k=20")
    status, body = post(solid(RED), "image/png", "/api/classify?top_k=20&min_confidence=0.05")
    assert status == 200
    assert 0 < len(body["predictions"]) < len(everything["predictions"])
    assert all(p["score"] >= 0.05 for p in body["predictions"])


@pytest.mark.parametrize(
    "query",
    ["min_confidence=1.01", "min_confidence=x", "include_categories=animal"],
)
def test_bad_label_options_are_a_400_before_any_image(query: str) -> None:
    calls = CLASSIFIER.calls
    status, body = post(solid(RED), "image/png", f"/api/classify?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_argument"
    assert CLASSIFIER.calls == calls
