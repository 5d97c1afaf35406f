"""The cloud batch's entry point with the real model against moto's S3: the same answers as the
CLI, one record per object, errors as records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imagerec.bulk.local import classify_file
from imagerec.bulk.s3 import create_batch_handler
from imagerec.models.classifier import Classifier, load_classifier
from tests.conftest import PHOTOS

pytestmark = pytest.mark.integration

BUCKET = "holiday-photos"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def items(s3: Any, prefix: str, top_k: int = 5) -> list[dict[str, Any]]:
    """What the Distributed Map's ItemSelector makes of each listed object."""
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    return [
        {"bucket": BUCKET, "key": obj["Key"], "size": obj["Size"], "top_k": top_k}
        for obj in listing
    ]


def test_batch_handler_classifies_objects_as_the_cli_classifies_files(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given the sample photos uploaded under a prefix
    for name, (path, _) in PHOTOS.items():
        s3.put_object(Bucket=BUCKET, Key=f"2026/{name}{path.suffix}", Body=path.read_bytes())
    handler = create_batch_handler(classifier, s3)
    # When one batch of their keys reaches the batch entry point
    result = handler({"Items": items(s3, "2026/", top_k=3)}, lambda_context)
    records = result["records"]
    # Then each object has one record, named s3://bucket/key, with the CLI's answer for its file
    assert len(records) == len(PHOTOS)
    for record in records:
        name = record["filename"].rsplit("/", 1)[1].split(".")[0]
        path, label = PHOTOS[name]
        assert record["filename"] == f"s3://{BUCKET}/2026/{name}{path.suffix}"
        assert record["predictions"][0]["label"] == label
        local = classify_file(classifier, str(path), 3)
        assert record["predictions"] == local["predictions"]
        assert record["image"] == local["image"]


def test_bad_objects_are_error_records_and_markers_and_hidden_keys_are_skipped(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given a photo, a text file, a truncated JPEG, an empty object, a folder marker, a hidden
    # file, and a key listed but deleted before its batch ran
    rocket = PHOTOS["rocket"][0].read_bytes()
    objects = {
        "in/rocket.jpg": rocket,
        "in/notes.txt": b"not a photo",
        "in/broken.jpg": rocket[:2000],
        "in/empty.png": b"",
        "in/sub/": b"",
        "in/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "in/gone.jpg": rocket,
    }
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    batch = items(s3, "in/")
    s3.delete_object(Bucket=BUCKET, Key="in/gone.jpg")
    # And one object too big for the limits, as the listing reports its size
    batch.append({"bucket": BUCKET, "key": "in/huge.jpg", "size": 10**9, "top_k": 5})
    # When the batch is classified
    records = create_batch_handler(classifier, s3)({"Items": batch}, lambda_context)["records"]
    # Then every object but the marker and the hidden file has exactly one record
    codes = {r["filename"].rsplit("/", 1)[1]: r.get("error", {}).get("code") for r in records}
    assert codes == {
        "rocket.jpg": None,
        "notes.txt": "unsupported_format",
        "broken.jpg": "corrupt_image",
        "empty.png": "empty_body",
        "gone.jpg": "file_not_found",
        "huge.jpg": "payload_too_large",
    }
    assert len(records) == len(codes)


def test_a_malformed_event_fails_the_batch_loudly(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given an event that is not an ItemBatcher batch, the call fails (Step Functions retries
    # and, past the tolerated percentage, fails the run) rather than returning no records
    handler = create_batch_handler(classifier, s3)
    with pytest.raises(Exception, match="Items"):
        handler({"Key": "in/rocket.jpg"}, lambda_context)
