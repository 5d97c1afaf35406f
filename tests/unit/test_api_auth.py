"""Who may call what, through the handler (issue 20): each kind of event, with the authorizer
context API Gateway adds (``requestContext.authorizer.iam`` / ``.jwt``) or without it.

S3 is moto's in-process S3, reached by real boto3 calls; where no S3 call may happen, the
client is a spy that records every call, so "no call" is asserted, not assumed.
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
from moto import mock_aws

from imagerec.core.settings import Settings
from imagerec.http import api, storage
from imagerec.http.api import caller_of
from imagerec.http.events import LocalContext, http_event
from imagerec.http.storage import LocalUploadStore, S3Objects, S3UploadStore, UploadQuota
from tests.authorizers import ALICE_ARN, IAM_ALICE, IAM_BOB, ISSUER, JWT_CAROL
from tests.conftest import photo_bytes
from tests.images import encode, red_blue
from tests.standin import StandInClassifier

pytestmark = pytest.mark.unit

SETTINGS = Settings(threads=1, max_bytes=50_000, max_upload_bytes=2_000_000)
PHOTO = photo_bytes("chelsea")
REGION = "eu-west-1"
HOST = "imagerec.example"
BUCKETS = ("imagerec-uploads-test", "photos-allowed", "photos-other")
REFERENCE = {"s3": {"bucket": "photos-allowed", "key": "cats/chelsea.png"}}


class Spy:
    """An S3 client that records each call and makes none."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"S3 was called: {name}")

        return call


def call(
    handler: api.Handler,
    method: str,
    path: str,
    document: dict[str, Any] | None = None,
    authorizer: dict[str, Any] | None = None,
) -> tuple[int, dict[str, str], Any]:
    body = json.dumps(document).encode() if document is not None else b""
    headers = {"host": HOST, "content-type": "application/json"}
    event = http_event(method, path, headers, body, authorizer=authorizer)
    response = handler(event, LocalContext())
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return response["statusCode"], response.get("headers", {}), json.loads(text) if text else None


def handler_with(
    settings: Settings, s3_client: Any, tmp_path: Path, uploads: Any = None
) -> api.Handler:
    store = uploads or LocalUploadStore(
        tmp_path, max_bytes=settings.max_upload_bytes, expires_in=60
    )
    s3 = S3Objects(["photos-allowed"], settings.max_upload_bytes, client_factory=lambda: s3_client)
    return api.create_handler(StandInClassifier(settings), settings, uploads=store, s3=s3)


# ---- reading the authorizer context ----------------------------------------------------------


def test_the_caller_is_the_principal_the_authorizer_vouched_for() -> None:
    def event(authorizer: Any) -> dict[str, Any]:
        return http_event("POST", "/api/classify", {}, b"", authorizer=authorizer)

    # IAM: the signer's ARN; JWT: the token's issuer and subject
    assert caller_of(event(IAM_ALICE), "iam") == f"iam:{ALICE_ARN}"
    assert caller_of(event(JWT_CAROL), "jwt") == f"jwt:{ISSUER}|5f1c1a1e-carol"
    # No context (a route without an authorizer): anonymous
    assert caller_of(http_event("POST", "/api/classify", {}, b""), "iam") is None
    # The other mode's context, an empty one, or junk: anonymous
    assert caller_of(event(JWT_CAROL), "iam") is None
    assert caller_of(event(IAM_ALICE), "jwt") is None
    assert caller_of(event({"iam": {"userArn": ""}}), "iam") is None
    assert caller_of(event({"jwt": {"claims": "sub"}}), "jwt") is None
    assert caller_of(event({"jwt": {"claims": {"sub": 7}}}), "jwt") is None
    # Auth=none: whatever the event says, nobody is authorized
    assert caller_of(event(IAM_ALICE), "none") is None
    assert caller_of(event(JWT_CAROL), "none") is None


# ---- Auth=none: S3 references are off, and S3 is never asked ---------------------------------


@pytest.mark.parametrize("authorizer", [None, IAM_ALICE, JWT_CAROL])
@pytest.mark.parametrize("path", ["/api/classify", "/api/public/classify"])
@pytest.mark.parametrize(
    "reference",
    [
        REFERENCE["s3"],
        {"bucket": "photos-other", "key": "secret.png"},
        {"bucket": "imagerec-uploads-test", "key": "uploads/anonymous/" + "0" * 32},
        {"bucket": "photos-allowed", "key": "../photos-other/secret.png"},
        "s3://photos-allowed/cats/chelsea.png",
    ],
)
def test_none_refuses_every_s3_reference_without_any_s3_call(
    tmp_path: Path, authorizer: Any, path: str, reference: Any
) -> None:
    # Given Auth=none, and an S3 client that records any call
    spy = Spy()
    handler = handler_with(SETTINGS, spy, tmp_path)
    # When any caller, even one whose event claims an authorizer, names any object
    status, _, body = call(handler, "POST", path, {"s3": reference}, authorizer)
    # Then it is a typed 403, and S3 saw nothing
    assert (status, body["error"]["code"]) == (403, "s3_references_disabled")
    assert spy.calls == []
    assert "photos" not in body["error"]["message"]  # nothing about the bucket leaks


def test_an_anonymous_caller_of_none_mode_cannot_read_any_bucket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given real buckets, each holding a photo, and a deployment whose role could read them
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = storage.s3_client(Settings())
        for bucket in BUCKETS:
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            client.put_object(Bucket=bucket, Key="cats/chelsea.png", Body=PHOTO)
        handler = handler_with(SETTINGS, client, tmp_path)
        # When an anonymous caller asks for each, on each route
        for bucket in BUCKETS:
            for path in ("/api/classify", "/api/public/classify"):
                document = {"s3": {"bucket": bucket, "key": "cats/chelsea.png"}}
                status, _, body = call(handler, "POST", path, document)
                # Then each is refused alike: no labels, no size, no format, no existence
                assert (status, body["error"]["code"]) == (403, "s3_references_disabled")
                assert set(body) == {"error"}


# ---- Auth=iam / jwt: only authorized callers name S3 objects ---------------------------------


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = storage.s3_client(Settings())
        for bucket in BUCKETS:
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        client.put_object(Bucket="photos-allowed", Key="cats/chelsea.png", Body=PHOTO)
        yield client


@pytest.mark.parametrize(("auth", "context"), [("iam", IAM_ALICE), ("jwt", JWT_CAROL)])
def test_an_authorized_caller_classifies_an_s3_object(
    cloud: Any, tmp_path: Path, auth: str, context: dict[str, Any]
) -> None:
    handler = handler_with(replace(SETTINGS, auth=auth), cloud, tmp_path)  # type: ignore[arg-type]
    status, _, body = call(handler, "POST", "/api/classify", REFERENCE, context)
    assert status == 200, body
    assert body["image"]["format"] == "PNG"


@pytest.mark.parametrize("auth", ["iam", "jwt"])
@pytest.mark.parametrize("path", ["/api/classify", "/api/public/classify"])
def test_without_an_authorizer_context_s3_references_are_refused_before_s3(
    tmp_path: Path, auth: str, path: str
) -> None:
    # Given Auth=iam or jwt, and an event without authorizer context: the page's route, or
    # any event API Gateway did not authorize
    spy = Spy()
    handler = handler_with(replace(SETTINGS, auth=auth), spy, tmp_path)  # type: ignore[arg-type]
    status, _, body = call(handler, "POST", path, REFERENCE)
    # Then S3 references need an authorized caller, and S3 saw nothing
    assert (status, body["error"]["code"]) == (403, "authorization_required")
    assert spy.calls == []


@pytest.mark.parametrize(
    "path",
    ["/api/classify/", "/api/classify\n", "/api//classify", "/API/classify", "/api/classify/."],
)
def test_path_variants_on_the_open_fallback_never_reach_s3(tmp_path: Path, path: str) -> None:
    # Given Auth=iam: API Gateway sends any path it does not match exactly to the open
    # /api/{proxy+} fallback, without authorizer context
    spy = Spy()
    handler = handler_with(replace(SETTINGS, auth="iam"), spy, tmp_path)
    # When a variant of the authorized route names an S3 object
    status, _, body = call(handler, "POST", path, REFERENCE)
    # Then it is refused as a route or as anonymous, and S3 saw nothing
    assert status in {403, 404, 405}, body
    assert spy.calls == []


@pytest.mark.parametrize(("auth", "context"), [("iam", IAM_ALICE), ("jwt", JWT_CAROL)])
def test_anonymous_drops_work_beside_authorized_callers(
    tmp_path: Path, auth: str, context: dict[str, Any]
) -> None:
    # Given Auth=iam or jwt with anonymous drops allowed (the default)
    handler = handler_with(replace(SETTINGS, auth=auth), Spy(), tmp_path)  # type: ignore[arg-type]
    document = {"image": base64.b64encode(_small_png()).decode()}
    # When an anonymous caller and an authorized one send a photo
    for authorizer in (None, context):
        status, _, body = call(handler, "POST", "/api/public/classify", document, authorizer)
        # Then both are classified
        assert status == 200, body
    # And the anonymous caller gets an upload form on the page's route
    status, _, body = call(handler, "POST", "/api/public/uploads")
    assert status == 200, body


@pytest.mark.parametrize(("auth", "context"), [("iam", IAM_ALICE), ("jwt", JWT_CAROL)])
def test_refused_anonymous_drops_need_an_authorized_caller_everywhere(
    tmp_path: Path, auth: str, context: dict[str, Any]
) -> None:
    settings = replace(SETTINGS, auth=auth, anonymous=False)  # type: ignore[arg-type]
    handler = handler_with(settings, Spy(), tmp_path)
    document = {"image": base64.b64encode(_small_png()).decode()}
    for path in ("/api/classify", "/api/public/classify"):
        status, _, body = call(handler, "POST", path, document)
        assert (status, body["error"]["code"]) == (403, "authorization_required"), path
    status, _, body = call(handler, "POST", "/api/public/uploads")
    assert (status, body["error"]["code"]) == (403, "authorization_required")
    # An authorized caller is served, and health stays open to all
    assert call(handler, "POST", "/api/classify", document, context)[0] == 200
    assert call(handler, "GET", "/api/health")[0] == 200


def test_settings_refuse_a_deployment_nobody_could_call() -> None:
    from imagerec.core.errors import ConfigError

    with pytest.raises(ConfigError, match="IMAGEREC_ANONYMOUS=refused needs"):
        Settings.from_env({"IMAGEREC_ANONYMOUS": "refused"})
    with pytest.raises(ConfigError, match="IMAGEREC_AUTH"):
        Settings.from_env({"IMAGEREC_AUTH": "cognito"})
    settings = Settings.from_env({"IMAGEREC_AUTH": "jwt", "IMAGEREC_ANONYMOUS": "refused"})
    assert (settings.auth, settings.anonymous) == ("jwt", False)


def _small_png() -> bytes:
    return encode(red_blue(), "PNG")


# ---- uploads: per caller when known, one shared cap for anonymous callers ---------------------


def test_upload_forms_are_capped_per_caller_on_s3(cloud: Any, tmp_path: Path) -> None:
    # Given Auth=iam, 2 open forms per caller and 3 for all anonymous callers together
    settings = replace(SETTINGS, auth="iam")
    quota = UploadQuota(per_caller=2, anonymous=3)
    store = S3UploadStore(
        cloud, "imagerec-uploads-test", max_bytes=2_000_000, expires_in=300, quota=quota
    )
    handler = handler_with(settings, cloud, tmp_path, uploads=store)

    def ask(path: str, who: dict[str, Any] | None) -> tuple[int, dict[str, str], Any]:
        return call(handler, "POST", path, None, who)

    # When Alice asks for three forms
    assert [ask("/api/uploads", IAM_ALICE)[0] for _ in range(2)] == [200, 200]
    status, headers, body = ask("/api/uploads", IAM_ALICE)
    # Then the third is a typed 429 that says when to retry (when her first form expires)
    assert (status, body["error"]["code"]) == (429, "too_many_uploads")
    assert 1 <= int(headers["Retry-After"]) <= 300
    # And Bob is not affected by Alice's forms
    assert ask("/api/uploads", IAM_BOB)[0] == 200
    # And anonymous callers share their own cap
    assert [ask("/api/public/uploads", None)[0] for _ in range(4)] == [200, 200, 200, 429]
    # When Bob uses a form and classifies the upload, his slot frees
    status, _, body = ask("/api/uploads", IAM_BOB)
    form = body["upload"]
    response = requests.post(
        form["url"], data=form["fields"], files={"file": ("cat.png", PHOTO)}, timeout=10
    )
    assert response.status_code == 204
    # (an open form that was used counts, and so does its upload, until it is classified)
    assert ask("/api/uploads", IAM_BOB)[0] == 429
    # (an upload is Bob's: Alice cannot classify it, not even knowing its id)
    status, _, body = call(handler, "POST", "/api/classify", {"upload": form["id"]}, IAM_ALICE)
    assert (status, body["error"]["code"]) == (404, "upload_not_found")
    status, _, body = call(handler, "POST", "/api/classify", {"upload": form["id"]}, IAM_BOB)
    assert status == 200, body
    assert ask("/api/uploads", IAM_BOB)[0] == 200


def test_the_iam_event_file_reads_s3_on_an_iam_deployment(cloud: Any, tmp_path: Path) -> None:
    # Given events/classify-s3-iam.json (what `sam local invoke` and `imagerec invoke` send),
    # an IAM deployment that may read my-photos, and the object there
    from tests.conftest import event

    cloud.create_bucket(
        Bucket="my-photos", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    cloud.put_object(Bucket="my-photos", Key="cat.jpg", Body=PHOTO)
    settings = replace(SETTINGS, auth="iam")
    s3 = S3Objects(["my-photos"], settings.max_upload_bytes, client_factory=lambda: cloud)
    store = LocalUploadStore(tmp_path, max_bytes=settings.max_upload_bytes, expires_in=60)
    handler = api.create_handler(StandInClassifier(settings), settings, uploads=store, s3=s3)
    # When it is handled / Then the object is classified
    response = handler(event("classify-s3-iam"), LocalContext())
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["image"]["format"] == "PNG"
