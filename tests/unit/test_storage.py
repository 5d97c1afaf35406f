"""Upload stores and S3 references: the local HMAC-signed store, and S3 through moto.

The S3 tests make real boto3 calls (presigning, GetObject, DeleteObject) against moto's
in-process S3, and POST the presigned form as a browser would, with ``requests`` (which
moto intercepts: no socket is opened).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from moto import mock_aws

from imagerec.core.errors import (
    BucketNotAllowed,
    EmptyInput,
    ImagerecError,
    InvalidS3Reference,
    InvalidUploadForm,
    InvalidUploadId,
    PayloadTooLarge,
    S3ObjectNotFound,
    TooManyUploads,
    UploadAlreadyUsed,
    UploadExpired,
    UploadFormRejected,
    UploadNotFound,
    UploadStoreFull,
    UploadsUnavailable,
)
from imagerec.core.settings import Settings
from imagerec.http import storage
from imagerec.http.storage import (
    LocalUploadStore,
    S3Objects,
    S3Reference,
    S3UploadStore,
    UnavailableUploadStore,
    UploadForm,
    UploadQuota,
    caller_tag,
    check_upload_id,
    upload_store,
)
from imagerec.http.uploads import FormPart

pytestmark = pytest.mark.unit

BASE = "http://127.0.0.1:8080"
PHOTO = b"\xff\xd8\xff" + bytes(range(256)) * 40  # the store never looks inside
REGION = "eu-west-1"


def policy_of(form: UploadForm) -> dict[str, Any]:
    document = json.loads(base64.b64decode(form.fields["policy"]))
    assert isinstance(document, dict)
    return document


def parts(fields: dict[str, str], data: bytes | None = PHOTO, *after: FormPart) -> list[FormPart]:
    """The form a client sends: every field, then the file, then anything after."""
    form = [FormPart(name, None, value.encode()) for name, value in fields.items()]
    if data is not None:
        form.append(FormPart("file", "photo.jpg", data))
    return [*form, *after]


# ---- the local store -----------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalUploadStore:
    return LocalUploadStore(tmp_path / "uploads", max_bytes=len(PHOTO) + 10, expires_in=300)


def test_local_form_mirrors_a_presigned_post(local: LocalUploadStore) -> None:
    # When a form is asked for
    form = local.create(BASE + "/")
    # Then it posts back to this server, for the key uploads/<id>, signed, expiring
    assert form.url == f"{BASE}/api/uploads/{form.id}"
    assert form.fields["key"] == f"uploads/{form.id}"
    assert set(form.fields) == {"key", "policy", "x-imagerec-signature"}
    policy = policy_of(form)
    assert policy["conditions"] == [
        {"key": f"uploads/{form.id}"},
        ["content-length-range", 1, local.max_bytes],
    ]
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 250 < (expires - datetime.now(UTC)).total_seconds() <= 300
    assert form.to_dict() == {
        "id": form.id,
        "url": form.url,
        "fields": form.fields,
        "expires_in": 300,
    }
    # And ids are never reused
    assert local.create(BASE).id != form.id


def test_local_upload_round_trip(local: LocalUploadStore) -> None:
    # Given a form, filled in as the contract says (fields after the file are ignored)
    form = local.create(BASE)
    local.receive(form.id, parts(form.fields, PHOTO, FormPart("key", None, b"uploads/x")))
    # When it is fetched / Then the bytes are the file's
    assert local.fetch(form.id) == PHOTO
    # And once deleted it is gone
    local.delete(form.id)
    with pytest.raises(UploadNotFound) as caught:
        local.fetch(form.id)
    assert caught.value.code == "upload_not_found"


def _resign_policy(form: UploadForm, change: Any) -> dict[str, str]:
    document = policy_of(form)
    change(document)
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    return {**form.fields, "policy": policy}


@pytest.mark.parametrize(
    "tamper",
    [
        # a bigger size range, with the old signature
        lambda form: _resign_policy(
            form, lambda d: d["conditions"].__setitem__(1, ["content-length-range", 1, 10**9])
        ),
        # a later expiry
        lambda form: _resign_policy(form, lambda d: d.__setitem__("expiration", "2999-01-01")),
        # a forged signature
        lambda form: {**form.fields, "x-imagerec-signature": "0" * 64},
        # another key, under the same signature
        lambda form: {**form.fields, "key": "uploads/" + "a" * 32},
        # a policy and a signature that are not even ASCII
        lambda form: {**form.fields, "policy": "é" + form.fields["policy"]},
        lambda form: {**form.fields, "x-imagerec-signature": "é" * 64},
    ],
)
def test_a_tampered_form_is_refused(local: LocalUploadStore, tamper: Any) -> None:
    # Given a form with one field changed
    form = local.create(BASE)
    # When it is posted / Then it is refused with 403's code, and nothing is stored
    with pytest.raises(UploadFormRejected) as caught:
        local.receive(form.id, parts(tamper(form)))
    assert caught.value.code == "upload_form_rejected"
    with pytest.raises(UploadNotFound):
        local.fetch(form.id)


def test_a_form_posted_to_another_id_is_refused(local: LocalUploadStore) -> None:
    # Given two forms / When the first is posted to the second's URL / Then it is refused
    first, second = local.create(BASE), local.create(BASE)
    with pytest.raises(UploadFormRejected):
        local.receive(second.id, parts(first.fields))


def test_a_form_from_another_store_is_refused(local: LocalUploadStore, tmp_path: Path) -> None:
    # Given a form signed by a store with another key (another machine, another cache dir)
    foreign = LocalUploadStore(tmp_path / "elsewhere", max_bytes=local.max_bytes, expires_in=300)
    form = foreign.create(BASE)
    # When / Then this store refuses it
    with pytest.raises(UploadFormRejected):
        local.receive(form.id, parts(form.fields))


def test_stores_sharing_a_folder_share_the_key(local: LocalUploadStore) -> None:
    # Given a second store on the same folder (another `serve --workers` process)
    other = LocalUploadStore(local.root, max_bytes=local.max_bytes, expires_in=300)
    form = local.create(BASE)
    # When the other receives the form / Then the first can read the upload
    other.receive(form.id, parts(form.fields))
    assert local.fetch(form.id) == PHOTO
    assert (local.root / "signing-key").stat().st_mode & 0o777 == 0o600


def test_an_expired_form_is_refused(tmp_path: Path) -> None:
    # Given a form that expired a minute ago
    store = LocalUploadStore(tmp_path, max_bytes=len(PHOTO), expires_in=-60)
    form = store.create(BASE)
    # When / Then it is refused
    with pytest.raises(UploadFormRejected, match="expired"):
        store.receive(form.id, parts(form.fields))


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda f: parts({k: v for k, v in f.items() if k != "policy"}), InvalidUploadForm),
        (lambda f: parts({k: v for k, v in f.items() if k != "key"}), InvalidUploadForm),
        (lambda f: parts(f, None), InvalidUploadForm),
        (lambda f: parts(f, b""), EmptyInput),
        (lambda f: parts(f, PHOTO + b"x" * 11), PayloadTooLarge),
    ],
)
def test_incomplete_or_oversized_forms(local: LocalUploadStore, build: Any, error: type) -> None:
    form = local.create(BASE)
    with pytest.raises(error):
        local.receive(form.id, build(form.fields))


@pytest.mark.parametrize("bad", ["", "../signing-key", "A" * 32, "0" * 31, 42, None])
def test_malformed_ids_are_refused_before_any_lookup(local: LocalUploadStore, bad: Any) -> None:
    with pytest.raises(InvalidUploadId) as caught:
        local.fetch(bad)
    assert caught.value.code == "invalid_upload_id"


class Clock:
    """Time for a store, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_day_old_upload_is_expired_and_swept(tmp_path: Path) -> None:
    # Given an upload made two days ago
    clock = Clock()
    local = LocalUploadStore(tmp_path, max_bytes=len(PHOTO), expires_in=300, clock=clock)
    clock.now -= 2 * 86400
    old = local.create(BASE)
    local.receive(old.id, parts(old.fields))
    clock.now += 2 * 86400
    # When / Then it is expired (410's code) and deleted
    with pytest.raises(UploadExpired) as caught:
        local.fetch(old.id)
    assert caught.value.code == "upload_expired"
    assert not (local.root / "objects" / old.id).exists()
    # And a fresh one is served
    fresh = local.create(BASE)
    local.receive(fresh.id, parts(fresh.fields))
    assert local.fetch(fresh.id) == PHOTO
    # And asking for a new form, two days on, sweeps anything over a day old
    clock.now += 2 * 86400
    local.create(BASE)
    assert list((local.root / "objects").iterdir()) == []


def test_settings_choose_the_store(tmp_path: Path) -> None:
    local = upload_store(Settings(cache_dir=tmp_path))
    assert isinstance(local, LocalUploadStore)
    assert local.root == tmp_path / "uploads"
    assert isinstance(upload_store(Settings(on_lambda=True)), UnavailableUploadStore)
    with pytest.raises(UploadsUnavailable):
        UnavailableUploadStore().create(BASE)
    s3 = upload_store(Settings(upload_bucket="imagerec-up"), client=object())
    assert isinstance(s3, S3UploadStore)
    assert s3.bucket == "imagerec-up"


# ---- S3, through moto ------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = storage.s3_client(Settings())
        for bucket in ("imagerec-up", "photos-allowed", "photos-other"):
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        yield client


def post_form(form: UploadForm, data: bytes) -> requests.Response:
    """What a browser's FormData POST does: every field, then the file, last."""
    files = {"file": ("photo.jpg", data, "image/jpeg")}
    return requests.post(form.url, data=form.fields, files=files, timeout=10)


def test_s3_presigned_post_round_trip(s3: Any) -> None:
    # Given the S3 store
    store = S3UploadStore(s3, "imagerec-up", max_bytes=20_000_000, expires_in=300)
    # When a form is asked for
    form = store.create(BASE)
    # Then it is a SigV4 presigned POST to the bucket's own regional origin
    assert form.url == f"https://imagerec-up.s3.{REGION}.amazonaws.com/"
    assert form.fields["key"] == f"uploads/anonymous/{form.id}"
    assert form.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    # whose policy S3 enforces: this bucket, this key, 1 byte to 20 MB, five minutes
    policy = policy_of(form)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 20_000_000] in conditions
    assert {"bucket": "imagerec-up"} in conditions
    assert {"key": f"uploads/anonymous/{form.id}"} in conditions
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 250 < (expires - datetime.now(UTC)).total_seconds() <= 300
    # When the file is POSTed with the form, as a browser does
    response = post_form(form, PHOTO)
    assert response.status_code == 204
    # Then the store reads it back, and deletes it once done
    assert store.fetch(form.id) == PHOTO
    store.delete(form.id)
    with pytest.raises(UploadNotFound):
        store.fetch(form.id)


def test_s3_unknown_and_malformed_ids(s3: Any) -> None:
    store = S3UploadStore(s3, "imagerec-up", max_bytes=100, expires_in=300)
    with pytest.raises(UploadNotFound):
        store.fetch("0" * 32)
    with pytest.raises(InvalidUploadId):
        store.fetch("../secrets")
    with pytest.raises(UploadsUnavailable):
        store.receive("0" * 32, [])


def test_s3_old_upload_is_expired(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an upload, and a retention already over (S3's lifecycle rule runs late)
    store = S3UploadStore(s3, "imagerec-up", max_bytes=20_000_000, expires_in=300)
    form = store.create(BASE)
    assert post_form(form, PHOTO).status_code == 204
    monkeypatch.setattr(storage, "RETENTION_S", -1)
    # When / Then it is expired, not served
    with pytest.raises(UploadExpired):
        store.fetch(form.id)


def test_s3_oversized_object_is_refused(s3: Any) -> None:
    store = S3UploadStore(s3, "imagerec-up", max_bytes=100, expires_in=300)
    form = store.create(BASE)
    s3.put_object(Bucket="imagerec-up", Key=form.fields["key"], Body=b"x" * 101)
    with pytest.raises(PayloadTooLarge):
        store.fetch(form.id)


# ---- S3 references -------------------------------------------------------------------------


def never() -> Any:
    raise AssertionError("no S3 client may be made for a bucket that is not allowed")


def test_a_bucket_not_allowed_is_refused_before_any_s3_call() -> None:
    objects = S3Objects(["photos-allowed"], 100, client_factory=never)
    with pytest.raises(BucketNotAllowed) as caught:
        objects.read(S3Reference("photos-other", "cat.jpg"))
    assert caught.value.code == "bucket_not_allowed"
    # An empty list (the default) allows none
    with pytest.raises(BucketNotAllowed):
        S3Objects([], 100, client_factory=never).read(S3Reference("photos-allowed", "cat.jpg"))


def test_s3_references_read_allowed_objects_and_versions(s3: Any) -> None:
    # Given a versioned allowed bucket holding two versions of one key
    s3.put_bucket_versioning(Bucket="photos-allowed", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="photos-allowed", Key="a/cat.jpg", Body=b"first")["VersionId"]
    s3.put_object(Bucket="photos-allowed", Key="a/cat.jpg", Body=b"second")
    objects = S3Objects(["photos-allowed"], 100, client_factory=lambda: s3)
    # When / Then the latest, or the version asked for, is read
    assert objects.read(S3Reference("photos-allowed", "a/cat.jpg")) == b"second"
    assert objects.read(S3Reference("photos-allowed", "a/cat.jpg", first)) == b"first"
    # and a missing key is a 404's code
    with pytest.raises(S3ObjectNotFound) as caught:
        objects.read(S3Reference("photos-allowed", "a/dog.jpg"))
    assert caught.value.message == "There is no object 's3://photos-allowed/a/dog.jpg'."


def test_s3_reference_over_the_cap_is_refused(s3: Any) -> None:
    s3.put_object(Bucket="photos-allowed", Key="big.jpg", Body=b"x" * 101)
    objects = S3Objects(["photos-allowed"], 100, client_factory=lambda: s3)
    with pytest.raises(PayloadTooLarge):
        objects.read(S3Reference("photos-allowed", "big.jpg"))


@pytest.mark.parametrize(
    "value",
    [
        "s3://photos/cat.jpg",
        {"bucket": "photos"},
        {"key": "cat.jpg"},
        {"bucket": "", "key": "cat.jpg"},
        {"bucket": "photos", "key": 7},
        {"bucket": "photos", "key": "k" * 1025},
        {"bucket": "photos", "key": "cat.jpg", "version": 3},
    ],
)
def test_malformed_s3_references(value: Any) -> None:
    with pytest.raises(InvalidS3Reference):
        S3Reference.parse(value)


def test_s3_reference_parse() -> None:
    assert S3Reference.parse({"bucket": "b", "key": "k", "version": "v"}) == S3Reference(
        "b", "k", "v"
    )


# ---- forms are single-use, counted, and the local store is bounded (issue 20) ----------------


def test_a_local_form_takes_one_upload_only(local: LocalUploadStore) -> None:
    # Given a form whose upload was received
    form = local.create(BASE)
    local.receive(form.id, parts(form.fields))
    # When the same form is posted again, before or after its upload is classified (deleted)
    with pytest.raises(UploadAlreadyUsed) as caught:
        local.receive(form.id, parts(form.fields, b"another file"))
    assert caught.value.code == "upload_already_used"
    assert local.fetch(form.id) == PHOTO  # the first upload stands
    local.delete(form.id)
    # Then it is refused, and nothing is stored again
    with pytest.raises(UploadAlreadyUsed):
        local.receive(form.id, parts(form.fields))
    with pytest.raises(UploadNotFound):
        local.fetch(form.id)
    assert list((local.root / "objects").iterdir()) == []


def test_local_forms_are_capped_with_a_retry_after(tmp_path: Path) -> None:
    # Given room for two open forms among anonymous callers, one per known caller
    clock = Clock()
    quota = UploadQuota(per_caller=1, anonymous=2)
    store = LocalUploadStore(tmp_path, max_bytes=100, expires_in=300, quota=quota, clock=clock)
    first = store.create(BASE)
    store.create(BASE)
    # When a third is asked for / Then a typed 429 says when the first form expires
    with pytest.raises(TooManyUploads) as caught:
        store.create(BASE)
    assert caught.value.code == "too_many_uploads"
    assert caught.value.retry_after == 300
    # And a known caller has a quota of their own
    store.create(BASE, caller="iam:alice")
    with pytest.raises(TooManyUploads):
        store.create(BASE, caller="iam:alice")
    # When a form is used and its upload classified, its slot frees at once
    store.receive(first.id, parts(first.fields, b"x"))
    store.delete(first.id)
    store.create(BASE)
    # And an unused form frees its slot when it expires
    clock.now += 301
    store.create(BASE)


def test_the_local_store_refuses_past_its_bytes_with_507_and_retry_after(tmp_path: Path) -> None:
    # Given a store that may hold 2.5 files of the cap
    clock = Clock()
    quota = UploadQuota(per_caller=10, anonymous=10, store_bytes=250)
    store = LocalUploadStore(tmp_path, max_bytes=100, expires_in=300, quota=quota, clock=clock)
    forms = [store.create(BASE) for _ in range(3)]
    for form in forms[:2]:
        store.receive(form.id, parts(form.fields, b"x" * 100))
    # When a third file would pass the bound / Then it is refused, nothing is written
    with pytest.raises(UploadStoreFull) as caught:
        store.receive(forms[2].id, parts(forms[2].fields, b"x" * 100))
    assert caught.value.code == "upload_store_full"
    assert caught.value.retry_after == 86400  # the oldest upload's day runs out
    assert len(list((tmp_path / "objects").iterdir())) == 2
    # And no new form is handed out while a whole file would not fit
    with pytest.raises(UploadStoreFull):
        store.create(BASE)
    # When one is classified (deleted) / Then there is room again
    store.delete(forms[0].id)
    store.receive(forms[2].id, parts(forms[2].fields, b"x" * 100))


def test_the_sweep_never_walks_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store holding many uploads, all over a day old
    clock = Clock()
    quota = UploadQuota(anonymous=1000)
    store = LocalUploadStore(tmp_path, max_bytes=10, expires_in=300, quota=quota, clock=clock)
    old = [store.create(BASE) for _ in range(3 * storage.SWEEP_BATCH)]
    for form in old:
        store.receive(form.id, parts(form.fields, b"x"))
    clock.now += 2 * 86400
    objects = tmp_path / "objects"

    # When forms are asked for, with listing the folder made impossible
    def no_listing(*args: object) -> None:
        raise AssertionError("the store listed its folder")

    monkeypatch.setattr(Path, "iterdir", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(os, "listdir", no_listing)
    store.create(BASE)
    monkeypatch.undo()
    # Then each request forgets a bounded batch, found through the index, whatever the store holds
    assert len(list(objects.iterdir())) == len(old) - storage.SWEEP_BATCH
    store.create(BASE)
    store.create(BASE)
    assert list(objects.iterdir()) == []


def test_ids_end_where_their_digits_end() -> None:
    good = "0123456789abcdef" * 2
    assert check_upload_id(good) == good
    # "$" also matches before a final newline; a full match does not
    for bad in (good + "\n", good + "\r\n", "\n" + good, good.upper()):
        with pytest.raises(InvalidUploadId):
            check_upload_id(bad)


def test_echoed_values_are_cut_to_a_short_prefix() -> None:
    huge = "x" * 100_000
    for attempt in (
        lambda: check_upload_id(huge),
        lambda: S3Reference.parse({"bucket": [huge], "key": "k"}),
        lambda: S3Reference.parse({"bucket": "b", "key": "../" + huge}),
        lambda: S3Objects(["a"], 1, client_factory=never).read(S3Reference(huge, "k")),
    ):
        with pytest.raises(ImagerecError) as caught:
            attempt()
        assert len(caught.value.message) < 300, caught.value.message[:80]
        assert "…" in caught.value.message


@pytest.mark.parametrize("key", ["..", ".", "a/../b.jpg", "../b.jpg", "a/./b.jpg", "a/..", "a/b/."])
def test_keys_with_dot_segments_are_refused(key: str) -> None:
    with pytest.raises(InvalidS3Reference, match="segments"):
        S3Reference.parse({"bucket": "photos", "key": key})


def test_keys_with_dots_inside_names_are_fine() -> None:
    for key in ("a/.hidden.jpg", "a/..b.jpg", "a...jpg", "a/b../c.jpg"):
        assert S3Reference.parse({"bucket": "photos", "key": key}).key == key


class LyingBody:
    """A streaming body longer than the ContentLength S3 claimed; records how much is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_sizes: list[int | None] = []

    def read(self, amount: int | None = None) -> bytes:
        self.read_sizes.append(amount)
        return b"x" * (self.size if amount is None else min(amount, self.size))

    def close(self) -> None:
        pass


class OneObject:
    """An S3 client whose get_object answers a small ContentLength over a big body."""

    def __init__(self, body: LyingBody) -> None:
        self.body = body

    def get_object(self, **request: Any) -> dict[str, Any]:
        return {"Body": self.body, "ContentLength": 10, "LastModified": datetime.now(UTC)}

    def head_object(self, **request: Any) -> dict[str, Any]:
        return {}


def test_s3_reads_are_bounded_by_the_cap_not_by_content_length() -> None:
    # Given objects whose length S3 reports as 10 bytes, while their bodies hold 10 MB
    cap = 100
    for read in (
        lambda client: S3Objects(["b"], cap, client_factory=lambda: client).read(
            S3Reference("b", "k")
        ),
        lambda client: S3UploadStore(client, "up", max_bytes=cap, expires_in=60).fetch("1" * 32),
    ):
        body = LyingBody(10_000_000)
        # When read / Then it is too large, and at most the cap plus one byte was read
        with pytest.raises(PayloadTooLarge):
            read(OneObject(body))
        assert body.read_sizes == [cap + 1]


def test_a_second_upload_through_a_used_s3_form_is_refused_and_deleted(s3: Any) -> None:
    # Given an S3 form whose upload was classified (fetched, then deleted)
    store = S3UploadStore(s3, "imagerec-up", max_bytes=20_000_000, expires_in=300)
    form = store.create(BASE)
    assert post_form(form, PHOTO).status_code == 204
    assert store.fetch(form.id) == PHOTO
    store.delete(form.id)
    # When the same form, still unexpired, uploads again (S3 cannot revoke a presigned POST)
    assert post_form(form, b"second").status_code == 204
    # Then the upload is refused, and deleted
    with pytest.raises(UploadAlreadyUsed) as caught:
        store.fetch(form.id)
    assert caught.value.code == "upload_already_used"
    assert s3.list_objects_v2(Bucket="imagerec-up").get("KeyCount") == 0


def test_s3_forms_are_counted_per_caller_and_free_when_they_expire(s3: Any) -> None:
    clock = Clock()
    quota = UploadQuota(per_caller=2, anonymous=1)
    store = S3UploadStore(
        s3, "imagerec-up", max_bytes=100, expires_in=300, quota=quota, clock=clock
    )
    store.create(BASE, caller="jwt:carol")
    store.create(BASE, caller="jwt:carol")
    with pytest.raises(TooManyUploads) as caught:
        store.create(BASE, caller="jwt:carol")
    assert caught.value.retry_after == 300
    store.create(BASE)  # anonymous callers have their own, shared, count
    with pytest.raises(TooManyUploads):
        store.create(BASE)
    # No principal's text reaches a key: a digest stands for it
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="imagerec-up")["Contents"]]
    assert not any("carol" in key for key in keys)
    assert {key.split("/")[1] for key in keys} == {caller_tag("jwt:carol"), "anonymous"}
    # When the forms expire unused / Then their slots are free, though the markers remain
    clock.now += 301
    store.create(BASE, caller="jwt:carol")
    store.create(BASE)
