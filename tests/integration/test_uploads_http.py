"""The upload flow over real HTTP, as a new user tries it with curl: the local server, the
local upload store, the real model.

`POST /api/uploads`, then the form (every field, then the file) to the URL it names, then
`POST /api/classify {"upload": id}`, with urllib: the same client code works against S3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imagerec.core.settings import Settings
from tests.conftest import PHOTOS
from tests.forms import form_data, http, upload_and_classify
from tests.images import phone_sized_jpeg, phone_style
from tests.serving import base_url, in_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Its own upload folder, so other servers' open forms do not count against this one's.
    with serve(Settings.from_env(upload_root=tmp_path_factory.mktemp("uploads"))) as url:
        yield url


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    from imagerec.compose import load_handler

    with in_process(load_handler(settings), settings) as httpd:
        yield base_url(httpd)


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    return phone_sized_jpeg(PHOTOS["coffee"][0])


def test_a_12_mp_12_mb_photo_goes_through_the_upload_flow(base: str, big_photo: bytes) -> None:
    # Given a 12 MP JPEG over the 10 MB direct-request cap
    assert len(big_photo) > 10_000_000
    status, _, text = http(
        "POST", f"{base}/api/classify", big_photo, {"Content-Type": "image/jpeg"}
    )
    assert (status, json.loads(text)["error"]["code"]) == (413, "payload_too_large")
    # When it is uploaded with the returned form and classified by its id
    status, result = upload_and_classify(base, big_photo, top_k=3)
    # Then the model names it, at its full size
    assert status == 200, result
    assert result["predictions"][0]["label"] == PHOTOS["coffee"][1]
    assert (result["image"]["width"], result["image"]["height"]) == (4000, 3000)


def test_a_turned_heic_goes_through_the_upload_flow(base: str) -> None:
    status, result = upload_and_classify(
        base, phone_style(PHOTOS["grace_hopper"][0], "HEIF", turned=True)
    )
    assert status == 200, result
    assert result["image"]["format"] == "HEIF"
    assert result["predictions"][0]["label"] == PHOTOS["grace_hopper"][1]


def test_tampered_forms_and_unknown_ids_are_json_4xx(base: str) -> None:
    # Given a form
    _, _, text = http("POST", f"{base}/api/uploads")
    upload = json.loads(text)["upload"]
    # When its key is changed / Then 403, as JSON
    body, content_type = form_data({**upload["fields"], "key": "uploads/" + "e" * 32}, b"x")
    status, headers, text = http("POST", upload["url"], body, {"Content-Type": content_type})
    assert status == 403
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(text)["error"]["code"] == "upload_form_rejected"
    # When an unknown id is classified / Then 404, as JSON
    request = json.dumps({"upload": "0" * 32}).encode()
    status, _, text = http(
        "POST", f"{base}/api/classify", request, {"Content-Type": "application/json"}
    )
    assert (status, json.loads(text)["error"]["code"]) == (404, "upload_not_found")


def test_the_form_target_takes_the_upload_cap_not_more(base: str) -> None:
    # Given a form / When a body over the upload cap is sent to it
    _, _, text = http("POST", f"{base}/api/uploads")
    upload = json.loads(text)["upload"]
    cap = Settings.from_env().max_upload_body_bytes
    body, content_type = form_data(upload["fields"], b"\xff" * cap)
    status, _, text = http("POST", upload["url"], body, {"Content-Type": content_type})
    # Then the server refuses it before the handler, with the upload cap in the message
    assert status == 413
    assert json.loads(text)["error"]["code"] == "payload_too_large"


def test_a_form_takes_one_upload_over_http(base: str) -> None:
    # Given a form that was used, and its upload classified
    _, _, text = http("POST", f"{base}/api/uploads")
    upload = json.loads(text)["upload"]
    body, content_type = form_data(upload["fields"], PHOTOS["coffee"][0].read_bytes())
    assert http("POST", upload["url"], body, {"Content-Type": content_type})[0] == 204
    request = json.dumps({"upload": upload["id"]}).encode()
    status, _, _ = http(
        "POST", f"{base}/api/classify", request, {"Content-Type": "application/json"}
    )
    assert status == 200
    # When the same form is posted again / Then it is refused, as JSON
    status, _, text = http("POST", upload["url"], body, {"Content-Type": content_type})
    assert (status, json.loads(text)["error"]["code"]) == (403, "upload_already_used")


def test_open_forms_are_capped_with_retry_after_over_http(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given a server whose anonymous callers may hold three open forms
    folder = tmp_path_factory.mktemp("capped")
    with serve(Settings.from_env(upload_root=folder, max_anonymous_uploads=3)) as url:
        # When a fourth is asked for, on either upload route
        answers = [http("POST", f"{url}/api/public/uploads") for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 200]
        status, headers, text = http("POST", f"{url}/api/uploads")
        # Then it is a JSON 429 that says when to retry: when the first form expires
        assert (status, json.loads(text)["error"]["code"]) == (429, "too_many_uploads")
        expires = Settings.from_env().upload_expires_s
        assert 1 <= int(headers["Retry-After"]) <= expires
