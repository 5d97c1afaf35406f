"""The cloud batch's worker: a batch of S3 keys in, one record per key out.

Step Functions' Distributed Map (``statemachines/classify_bucket.asl.json``) lists a bucket and
prefix and calls the batch entry point of the classify image (``batch.batch_handler``) with
``{"Items": [{"bucket", "key", "size", "top_k"}, ...]}``. Each object is read with boto3 and
classified by the same classifier, with the same limits, as the API and the CLI; its record
has the shape of the CLI's ``--output`` records, with ``s3://bucket/key`` as the filename.
A bad object is an error record, never a failed batch: only a crash of the function itself
(time-out, out of memory) fails a batch, and then Step Functions retries or reports it.

The records go to the results bucket as one JSON-lines object per batch (the ItemBatcher's
``BatchInput`` names the bucket and prefix), and the handler returns only its counts and key:
Step Functions caps a state's output at 256 KiB, and 100 records at ``top_k=20`` are more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from imagerec.bulk.local import Record, error_record, is_hidden, payload_too_large
from imagerec.core.errors import ImagerecError, InvalidArgument, PayloadTooLarge
from imagerec.core.text import human_size
from imagerec.models.classifier import Classifier

# S3 error codes that describe the object, not the service: recorded against the key.
_S3_CODES = {
    "NoSuchKey": ("file_not_found", "No such object."),
    "404": ("file_not_found", "No such object."),
    "AccessDenied": ("access_denied", "Access to the object was denied."),
    "403": ("access_denied", "Access to the object was denied."),
    "InvalidObjectState": ("unreadable", "The object is archived; restore it first."),
}


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def skipped_key(key: str) -> bool:
    """Folder markers and hidden files are skipped, as the local walk skips them."""
    return key.endswith("/") or any(is_hidden(part) for part in key.split("/") if part)


def read_object(s3: Any, bucket: str, key: str, size: int | None, max_bytes: int) -> bytes:
    """The object's bytes; too-large objects are refused before any byte is read."""
    from botocore.exceptions import ClientError

    if size is not None and size > max_bytes:
        raise payload_too_large(size, max_bytes)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _S3_CODES:
            raise _ObjectProblem(*_S3_CODES[code]) from None
        raise
    body = response["Body"]
    try:
        # The object may have grown since it was listed: read at most one byte past the cap.
        data: bytes = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file is over the limit of {human_size(max_bytes)}.")
    return data


class _ObjectProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def classify_object(classifier: Classifier, s3: Any, item: Mapping[str, Any]) -> Record:
    return classify_batch(classifier, s3, [item])[0]


def _fetch(classifier: Classifier, s3: Any, item: Mapping[str, Any]) -> tuple[int, bytes]:
    """An item's top_k, checked, and its object's bytes."""
    size = item.get("size")
    top_k = classifier.check_top_k(item.get("top_k", classifier.settings.default_top_k))
    data = read_object(
        s3,
        str(item["bucket"]),
        str(item["key"]),
        size if isinstance(size, int) else None,
        classifier.settings.max_bytes,
    )
    return top_k, data


def classify_batch(
    classifier: Classifier, s3: Any, items: Sequence[Mapping[str, Any]]
) -> list[Record]:
    """The items' records, in order: their objects read, then classified together, one
    interpreter call per ``classifier.batch_size`` objects that share a top_k."""
    records: dict[int, Record] = {}
    wanted: dict[int, list[tuple[int, bytes]]] = {}  # top_k -> (position, bytes)
    for position, item in enumerate(items):
        filename = s3_url(str(item["bucket"]), str(item["key"]))
        try:
            top_k, data = _fetch(classifier, s3, item)
        except (ImagerecError, _ObjectProblem) as error:
            records[position] = error_record(filename, error.code, error.message)
            continue
        wanted.setdefault(top_k, []).append((position, data))
    for top_k, group in wanted.items():
        answers = classifier.classify_many([data for _, data in group], top_k)
        for (position, _), answer in zip(group, answers, strict=True):
            item = items[position]
            filename = s3_url(str(item["bucket"]), str(item["key"]))
            if isinstance(answer, ImagerecError):
                records[position] = error_record(filename, answer.code, answer.message)
            else:
                records[position] = {"filename": filename, **answer.to_dict()}
    return [records[position] for position in range(len(items))]


def classify_objects(
    classifier: Classifier, s3: Any, items: Iterable[Mapping[str, Any]]
) -> list[Record]:
    """One record per item, in order; folder markers and hidden keys get none.

    Objects are read and classified ``classifier.batch_size`` at a time, so a batch holds
    at most that many objects' bytes in memory.
    """
    kept: list[Mapping[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping) or "bucket" not in item or "key" not in item:
            raise InvalidArgument(f"Expected items with a bucket and a key, received: {item!r}")
        if not skipped_key(str(item["key"])):
            kept.append(item)
    records: list[Record] = []
    size = classifier.batch_size
    for start in range(0, len(kept), size):
        records += classify_batch(classifier, s3, kept[start : start + size])
    return records


BatchHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def create_batch_handler(classifier: Classifier, s3: Any = None) -> BatchHandler:
    """The Lambda handler for one Distributed Map batch, over a loaded classifier.

    The S3 client is made once, at init, and reused by every batch of the environment.
    """
    if s3 is None:
        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3",
            config=Config(
                retries={"mode": "standard", "max_attempts": 5},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def batch_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        items = event.get("Items")
        if not isinstance(items, list):
            raise InvalidArgument(
                f"Expected an ItemBatcher event with an Items list, received: {sorted(event)}"
            )
        bucket, key = records_location(event)
        records = classify_objects(classifier, s3, items)
        return write_records(s3, bucket, key, records)

    return batch_handler


def records_location(event: Mapping[str, Any]) -> tuple[str, str]:
    """Where this batch's records go: the BatchInput's bucket and prefix, and a key made from
    the child execution's id, so a retried call overwrites its own file, never another's."""
    given = event.get("BatchInput")
    batch = event.get("batch")
    if (
        not isinstance(given, Mapping)
        or not given.get("results_bucket")
        or not given.get("results_prefix")
        or not isinstance(batch, str)
        or not batch
    ):
        raise InvalidArgument(
            "Expected BatchInput {results_bucket, results_prefix} and the batch's execution id, "
            f"received: {sorted(event)}"
        )
    digest = hashlib.sha256(batch.encode()).hexdigest()[:32]
    prefix = str(given["results_prefix"]).rstrip("/")
    return str(given["results_bucket"]), f"{prefix}/{digest}.jsonl"


def write_records(s3: Any, bucket: str, key: str, records: list[Record]) -> dict[str, Any]:
    """The records as JSON lines (the local ``--output`` format) in one object; the batch's
    output is this summary, whose size does not grow with top_k or the batch size."""
    body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    s3.put_object(
        Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-ndjson"
    )
    failed = sum(1 for record in records if "error" in record)
    return {
        "records_bucket": bucket,
        "records_key": key,
        "count": len(records),
        "failed": failed,
    }
