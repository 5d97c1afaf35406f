"""The cloud batch's entry point with the real model against moto's S3: the same answers as the
CLI, one record per object, errors as records, written to the results bucket; and the batch's
output, which Step Functions caps at 256 KiB, stays small at the template's largest batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imagerec.bulk.local import classify_file
from imagerec.bulk.s3 import create_batch_handler
from imagerec.core.settings import Settings
from imagerec.models.classifier import Classifier, load_classifier
from tests.conftest import PHOTOS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "classify_bucket.asl.json"
BUCKET = "holiday-photos"
RESULTS = "imagerec-batchresults-1a2b"
# Step Functions' cap on a state's input or output (UTF-8 bytes of its JSON).
STATE_PAYLOAD_LIMIT = 256 * 1024
# S3's longest key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


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
        client.create_bucket(Bucket=RESULTS)
        yield client


def items(s3: Any, prefix: str, top_k: int = 5) -> list[dict[str, Any]]:
    """What the Distributed Map's ItemSelector makes of each listed object."""
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    return [
        {"bucket": BUCKET, "key": obj["Key"], "size": obj["Size"], "top_k": top_k}
        for obj in listing
    ]


def event(batch: list[dict[str, Any]], child: str = "child-0") -> dict[str, Any]:
    """A child workflow's Lambda payload, as the ASL builds it: the batch's Items, the
    ItemBatcher's BatchInput (the stack's results bucket and prefix) and the child's id."""
    asl = json.loads(ASL.read_text(encoding="utf-8"))
    (state,) = [s for s in asl["States"].values() if s["Type"] == "Map"]
    given = state["ItemBatcher"]["BatchInput"]
    batch_input = {
        "results_bucket": given["results_bucket"].replace("${ResultsBucket}", RESULTS),
        "results_prefix": given["results_prefix"].replace("${ResultsPrefix}", "batch-results"),
    }
    execution = f"arn:aws:states:us-east-1:111111111111:express:m/ClassifyObjects:run:{child}"
    return {"Items": batch, "BatchInput": batch_input, "batch": execution}


def written(s3: Any, output: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a batch wrote, read back from the object its output names."""
    assert output["records_bucket"] == RESULTS
    body = s3.get_object(Bucket=RESULTS, Key=output["records_key"])["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines()]


def test_batch_handler_classifies_objects_as_the_cli_classifies_files(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given the sample photos uploaded under a prefix
    for name, (path, _) in PHOTOS.items():
        s3.put_object(Bucket=BUCKET, Key=f"2026/{name}{path.suffix}", Body=path.read_bytes())
    handler = create_batch_handler(classifier, s3)
    # When one batch of their keys reaches the batch entry point
    result = handler(event(items(s3, "2026/", top_k=3)), lambda_context)
    records = written(s3, result)
    # Then the batch returns only counts and the key of the records it wrote to the results
    # bucket, under the records prefix the BatchInput names
    assert result["records_key"].startswith("batch-results/records/")
    assert result["records_key"].endswith(".jsonl")
    assert {k: v for k, v in result.items() if k not in {"records_bucket", "records_key"}} == {
        "count": len(PHOTOS),
        "failed": 0,
    }
    # And each object has one record, named s3://bucket/key, with the CLI's answer for its file
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
    result = create_batch_handler(classifier, s3)(event(batch), lambda_context)
    records = written(s3, result)
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
    assert (result["count"], result["failed"]) == (6, 5)


def test_a_retried_batch_overwrites_its_own_records_and_no_other_batchs(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given two batches, the first of which Step Functions calls twice (a retry)
    rocket, coffee = PHOTOS["rocket"][0].read_bytes(), PHOTOS["coffee"][0].read_bytes()
    s3.put_object(Bucket=BUCKET, Key="a/rocket.jpg", Body=rocket)
    s3.put_object(Bucket=BUCKET, Key="b/coffee.png", Body=coffee)
    handler = create_batch_handler(classifier, s3)
    first = handler(event(items(s3, "a/"), child="child-0"), lambda_context)
    again = handler(event(items(s3, "a/"), child="child-0"), lambda_context)
    second = handler(event(items(s3, "b/"), child="child-1"), lambda_context)
    # Then the retry wrote the same key, and the other batch its own
    assert again["records_key"] == first["records_key"] != second["records_key"]
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix="batch-results/records/")["Contents"]
    assert len(listed) == 2
    assert [r["filename"] for r in written(s3, second)] == [f"s3://{BUCKET}/b/coffee.png"]


def test_the_largest_batch_at_the_largest_top_k_returns_far_less_than_the_state_limit(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given the template's largest batch (BatchSize's MaxValue) of photos under S3's longest
    # keys, classified at the largest top_k: the case that overflowed when records came back
    # inline (about 3 KB a record at top_k=20)
    from tests.integration.test_template import sam_template

    batch_size = int(sam_template()["Parameters"]["BatchSize"]["MaxValue"])
    top_k = Settings.max_top_k
    photo = PHOTOS["chelsea"][0]
    batch = []
    for index in range(batch_size):
        stem = f"{index:04d}/"
        key = stem + "k" * (MAX_KEY_BYTES - len(stem) - len(photo.suffix)) + photo.suffix
        s3.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
        batch.append({"bucket": BUCKET, "key": key, "size": photo.stat().st_size, "top_k": top_k})
    # And a long child execution id (the record object's key does not grow with it)
    payload = event(batch, child="c" * 1800)
    # When the real handler classifies it
    output = create_batch_handler(classifier, s3)(payload, lambda_context)
    records = written(s3, output)
    # Then every object was classified at that top_k, into the results bucket
    assert len(records) == batch_size
    assert all(len(r["predictions"]) == top_k for r in records)
    # And the batch's output (the child workflow's output, OutputPath $.Payload) is a few
    # hundred bytes whatever the batch holds, while its records would not have fitted
    size = len(json.dumps(output, separators=(",", ":")).encode("utf-8"))
    inline = len(json.dumps({"records": records}, separators=(",", ":")).encode("utf-8"))
    assert size < 1024 < STATE_PAYLOAD_LIMIT, size
    assert inline > STATE_PAYLOAD_LIMIT, inline
    # And the batch's input (the Lambda payload the ASL builds) fits the same limit
    assert len(json.dumps(payload, separators=(",", ":")).encode("utf-8")) < STATE_PAYLOAD_LIMIT


def test_a_malformed_event_fails_the_batch_loudly(
    s3: Any, classifier: Classifier, lambda_context: Any
) -> None:
    # Given an event that is not an ItemBatcher batch, the call fails (Step Functions retries
    # and, past the tolerated percentage, fails the run) rather than returning no records
    handler = create_batch_handler(classifier, s3)
    with pytest.raises(Exception, match="Items"):
        handler({"Key": "in/rocket.jpg"}, lambda_context)
    # And so does a batch without the results location the ASL gives it
    with pytest.raises(Exception, match="BatchInput"):
        handler({"Items": []}, lambda_context)
