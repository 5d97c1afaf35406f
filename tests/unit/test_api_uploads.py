"""Uploads and S3 references through the handler, as Lambda calls it (stand-in classifier).

The local store is a temporary folder; the S3 store and S3 references are real boto3 calls
against moto's in-process S3, with the presigned form POSTed as a browser would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from imagerec.core.settings import Settings
from imagerec.http import api, storage
from imagerec.http.events import LocalContext, http_event
from imagerec.http.storage import LocalUploadStore, S3Objects, S3UploadStore
from tests.authorizers import IAM_ALICE
from tests.conftest import photo_bytes
from tests.forms import form_data
from tests.standin import StandInClassifier

pytestmark = pytest.mark.unit

# A direct-request cap below the photo's size, and an upload cap above it.
SETTINGS = Settings(threads=1, max_bytes=50_000, max_upload_bytes=2_000_000)
# The same behind an IAM authorizer (Auth=iam): S3 references for authorized callers.
IAM = replace(SETTINGS, auth="iam")
PHOTO = photo_bytes("chelsea")  # a ~200 kB PNG
HOST = "imagerec.example:8080"
REGION = "eu-west-1"


def never() -> Any:
    raise AssertionError("no S3 client may be made here")


class Client:
    """Calls one handler the way API Gateway would, on a route with this authorizer context
    (None: a route without an authorizer, an anonymous caller)."""

    def __init__(self, handler: api.Handler, authorizer: dict[str, Any] | None = None) -> None:
        self.handler = handler
        self.authorizer = authorizer

    def call(
        self, method: str, target: str, body: bytes = b"", **headers: str
    ) -> tuple[int, dict[str, str], Any]:
        headers.setdefault("host", HOST)
        event = http_event(method, target, headers, body, authorizer=self.authorizer)
        response = self.handler(event, LocalContext())
        text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        kind = response.get("headers", {}).get("Content-Type", "")
        value = json.loads(text) if kind.startswith("application/json") else text
        return response["statusCode"], response.get("headers", {}), value

    def classify_json(self, document: dict[str, Any]) -> tuple[int, Any]:
        body = json.dumps(document).encode()
        status, _, value = self.call(
            "POST", "/api/classify", body, **{"content-type": "application/json"}
        )
        return status, value

    def new_form(self) -> dict[str, Any]:
        status, headers, value = self.call("POST", "/api/uploads")
        assert status == 200, value
        assert headers["Cache-Control"] == "no-store"
        form: dict[str, Any] = value["upload"]
        return form

    def post_form(self, form: dict[str, Any], data: bytes, **changes: str) -> tuple[int, Any]:
        body, content_type = form_data({**form["fields"], **changes}, data)
        path = form["url"].removeprefix(f"http://{HOST}")
        status, _, value = self.call("POST", path, body, **{"content-type": content_type})
        return status, value


@pytest.fixture
def local(tmp_path: Path) -> Client:
    store = LocalUploadStore(tmp_path, max_bytes=SETTINGS.max_upload_bytes, expires_in=300)
    s3 = S3Objects(["photos-allowed"], SETTINGS.max_upload_bytes, client_factory=never)
    return Client(api.create_handler(StandInClassifier(SETTINGS), SETTINGS, uploads=store, s3=s3))


# ---- the local flow --------------------------------------------------------------------------


def test_a_photo_over_the_direct_cap_is_classified_through_an_upload(local: Client) -> None:
    # Given a photo the direct route refuses as too large
    status, _, value = local.call("POST", "/api/classify", PHOTO, **{"content-type": "image/png"})
    assert (status, value["error"]["code"]) == (413, "payload_too_large")
    # When a form is asked for
    status, _, value = local.call("POST", "/api/uploads")
    # Then it points back at this host, and says the upload cap
    assert status == 200
    form = value["upload"]
    assert value["max_bytes"] == SETTINGS.max_upload_bytes
    assert form["url"] == f"http://{HOST}/api/uploads/{form['id']}"
    assert form["expires_in"] == 300
    # When the photo is POSTed with the form / Then 204, as S3 answers
    assert local.post_form(form, PHOTO) == (204, "")
    # When it is classified by id
    status, result = local.classify_json({"upload": form["id"], "top_k": 3})
    # Then it is classified like any photo, with the fetch timed
    assert status == 200, result
    assert len(result["predictions"]) == 3
    assert result["image"] == {"width": 451, "height": 300, "format": "PNG"}
    assert result["timing_ms"]["fetch"] >= 0
    # And the upload is gone once classified
    status, result = local.classify_json({"upload": form["id"]})
    assert (status, result["error"]["code"]) == (404, "upload_not_found")


def test_a_tampered_form_is_a_json_403(local: Client) -> None:
    form = local.new_form()
    status, value = local.post_form(form, PHOTO, key="uploads/" + "f" * 32)
    assert status == 403
    assert value["error"]["code"] == "upload_form_rejected"
    status, value = local.post_form(form, PHOTO, **{"x-imagerec-signature": "00"})
    assert (status, value["error"]["code"]) == (403, "upload_form_rejected")


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ({"upload": "0" * 32}, 404, "upload_not_found"),
        ({"upload": "../../etc/passwd"}, 400, "invalid_upload_id"),
        ({"upload": 7}, 400, "invalid_upload_id"),
        ({"upload": None}, 400, "invalid_upload_id"),
        ({"upload": {"id": "x"}}, 400, "invalid_upload_id"),
        ({"s3": None}, 400, "invalid_s3_reference"),
        ({"upload": "0" * 32, "image": "aGk="}, 400, "invalid_argument"),
        ({"top_k": 3}, 400, "missing_image"),
        # Auth=none: any S3 reference, well-formed or not, is refused before it is read
        ({"s3": []}, 403, "s3_references_disabled"),
        ({"s3": {"bucket": "photos-allowed", "key": "cat.jpg"}}, 403, "s3_references_disabled"),
    ],
)
def test_bad_references_are_json_4xx(
    local: Client, document: dict[str, Any], status: int, code: str
) -> None:
    answer, value = local.classify_json(document)
    assert (answer, value["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ({"s3": []}, 400, "invalid_s3_reference"),
        ({"s3": {"bucket": "photos-allowed", "key": ""}}, 400, "invalid_s3_reference"),
        ({"s3": {"bucket": "photos-other", "key": "cat.jpg"}}, 403, "bucket_not_allowed"),
        ({"s3": "s3://photos-allowed/cat.jpg"}, 400, "invalid_s3_reference"),
        ({"s3": {"bucket": "photos-allowed", "key": "a/../b.jpg"}}, 400, "invalid_s3_reference"),
    ],
)
def test_bad_references_of_an_authorized_caller_are_json_4xx(
    tmp_path: Path, document: dict[str, Any], status: int, code: str
) -> None:
    store = LocalUploadStore(tmp_path, max_bytes=IAM.max_upload_bytes, expires_in=300)
    s3 = S3Objects(["photos-allowed"], IAM.max_upload_bytes, client_factory=never)
    handler = api.create_handler(StandInClassifier(IAM), IAM, uploads=store, s3=s3)
    answer, value = Client(handler, IAM_ALICE).classify_json(document)
    assert (answer, value["error"]["code"]) == (status, code)


def test_an_upload_that_is_not_an_image_is_refused_and_deleted(local: Client) -> None:
    form = local.new_form()
    assert local.post_form(form, b"%PDF-1.7 not a photo")[0] == 204
    status, value = local.classify_json({"upload": form["id"]})
    assert (status, value["error"]["code"]) == (415, "unsupported_format")
    status, value = local.classify_json({"upload": form["id"]})
    assert (status, value["error"]["code"]) == (404, "upload_not_found")


def test_an_upload_over_the_request_pixel_budget_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    # Given a request pixel budget under the photo's 451×300
    limits = Settings(**{**vars(SETTINGS), "max_request_pixels": 451 * 300 - 1})
    classifier = StandInClassifier(limits)
    store = LocalUploadStore(tmp_path, max_bytes=limits.max_upload_bytes, expires_in=300)
    s3 = S3Objects([], limits.max_upload_bytes, client_factory=never)
    client = Client(api.create_handler(classifier, limits, uploads=store, s3=s3))
    form = client.new_form()
    assert client.post_form(form, PHOTO)[0] == 204
    # When it is classified by id
    status, value = client.classify_json({"upload": form["id"]})
    # Then the budget refuses it from its header, as for a photo in the body, and it is deleted
    assert (status, value["error"]["code"]) == (413, "too_many_pixels")
    assert classifier.calls == 0
    status, value = client.classify_json({"upload": form["id"]})
    assert (status, value["error"]["code"]) == (404, "upload_not_found")


def test_a_file_over_the_upload_cap_is_a_413(local: Client) -> None:
    form = local.new_form()
    status, value = local.post_form(form, b"\xff" * (SETTINGS.max_upload_bytes + 1))
    assert (status, value["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [("GET", "/api/uploads", "POST"), ("GET", f"/api/uploads/{'0' * 32}", "POST")],
)
def test_upload_routes_answer_405_with_allow(
    local: Client, method: str, target: str, allow: str
) -> None:
    status, headers, value = local.call(method, target)
    assert (status, headers["Allow"], value["error"]["code"]) == (405, allow, "method_not_allowed")


def test_a_form_post_that_is_not_multipart_is_a_400(local: Client) -> None:
    status, _, value = local.call(
        "POST", f"/api/uploads/{'0' * 32}", b"{}", **{"content-type": "application/json"}
    )
    assert (status, value["error"]["code"]) == (400, "invalid_multipart")


# ---- S3: presigned POST and references, through moto ----------------------------------------


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = storage.s3_client(Settings())
        for bucket in ("imagerec-uploads-test", "photos-allowed", "photos-other"):
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        store = S3UploadStore(
            client, "imagerec-uploads-test", max_bytes=SETTINGS.max_upload_bytes, expires_in=300
        )
        s3 = S3Objects(["photos-allowed"], IAM.max_upload_bytes, client_factory=lambda: client)
        handler = api.create_handler(StandInClassifier(IAM), IAM, uploads=store, s3=s3)
        yield Client(handler, IAM_ALICE), client


def test_s3_upload_flow_through_the_handler(cloud: tuple[Client, Any]) -> None:
    client, s3 = cloud
    # Given a presigned form from the handler
    form = client.new_form()
    assert form["url"] == f"https://imagerec-uploads-test.s3.{REGION}.amazonaws.com/"
    # When the photo is POSTed to S3 with it, as the page does
    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("cat.png", PHOTO)}, timeout=10
    )
    assert response.status_code == 204
    # Then classifying by id reads it from S3, and deletes it
    status, result = client.classify_json({"upload": form["id"]})
    assert status == 200, result
    assert result["image"]["format"] == "PNG"
    assert s3.list_objects_v2(Bucket="imagerec-uploads-test").get("KeyCount") == 0
    # And this API is not the form's target in the cloud
    status, value = client.post_form({**form, "url": f"/api/uploads/{form['id']}"}, PHOTO)
    assert (status, value["error"]["code"]) == (404, "uploads_unavailable")


def test_s3_references_through_the_handler(cloud: tuple[Client, Any]) -> None:
    client, s3 = cloud
    s3.put_object(Bucket="photos-allowed", Key="cats/chelsea.png", Body=PHOTO)
    s3.put_object(Bucket="photos-other", Key="cats/chelsea.png", Body=PHOTO)
    # An allowed bucket: classified (over the direct cap: the upload cap applies)
    status, result = client.classify_json(
        {"s3": {"bucket": "photos-allowed", "key": "cats/chelsea.png"}, "top_k": 2}
    )
    assert status == 200, result
    assert len(result["predictions"]) == 2
    # A missing key: 404; another bucket: 403 even though the object exists
    status, result = client.classify_json({"s3": {"bucket": "photos-allowed", "key": "nope"}})
    assert (status, result["error"]["code"]) == (404, "s3_object_not_found")
    status, result = client.classify_json(
        {"s3": {"bucket": "photos-other", "key": "cats/chelsea.png"}}
    )
    assert (status, result["error"]["code"]) == (403, "bucket_not_allowed")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_NAMED = st.fixed_dictionaries(
    {},
    optional={
        "upload": _JSON | st.just("0" * 32),
        "s3": _JSON
        | st.fixed_dictionaries(
            {"bucket": st.sampled_from(["photos-allowed", "x"]) | _JSON, "key": _JSON},
            optional={"version": _JSON},
        ),
        "top_k": _JSON,
    },
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_NAMED)
def test_any_upload_or_s3_document_gets_a_json_4xx_never_a_5xx(
    local: Client, document: dict[str, Any]
) -> None:
    status, value = local.classify_json(document)
    assert 400 <= status < 500, value
    assert value["error"]["code"] != "internal_error"
