"""``imagerec batch s3://bucket/prefix``: classify a bucket on the deployed stack.

Starts an execution of the stack's Distributed Map state machine (its ARN and the results
bucket come from the stack's Outputs), follows the map run's item counts, and, once it has
finished, reads what the map's ResultWriter left in the results bucket (a ``manifest.json``
naming ``SUCCEEDED_n.json`` and ``FAILED_n.json`` files of child executions) and turns it back
into the records of the local ``--output``: one per object. Each succeeded batch's output names
the JSON-lines object its function wrote the records to (bulk/s3.py); a batch whose Lambda
call failed after its retries still gives one error record per object it held.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from imagerec.bulk.local import (
    Record,
    Summary,
    error_record,
    open_writer,
    output_format,
    succeeded,
    text_line,
)
from imagerec.bulk.s3 import s3_url
from imagerec.core.errors import ImagerecError, InvalidArgument
from imagerec.core.settings import Settings

STATE_MACHINE_OUTPUT = "BatchStateMachineArn"
RESULTS_BUCKET_OUTPUT = "BatchResultsBucketName"
RUNNING = "RUNNING"
MAX_CAUSE = 500


class BatchError(ImagerecError):
    """The stack or the execution cannot give results (not one object's problem)."""

    code = "batch_error"


@dataclass(frozen=True)
class Stack:
    state_machine_arn: str
    results_bucket: str


@dataclass(frozen=True)
class Progress:
    total: int
    succeeded: int
    failed: int
    pending: int
    running: int

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    if not url.startswith("s3://"):
        raise InvalidArgument(f"Expected s3://bucket/prefix, received: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidArgument(f"Expected s3://bucket/prefix, received: {url!r}")
    return bucket, prefix


def find_stack(cloudformation: Any, stack_name: str) -> Stack:
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise BatchError(f"Cannot read the stack {stack_name!r}: {_aws_message(error)}") from None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    missing = [
        name for name in (STATE_MACHINE_OUTPUT, RESULTS_BUCKET_OUTPUT) if name not in outputs
    ]
    if missing:
        raise BatchError(
            f"The stack {stack_name!r} has no {', '.join(missing)} output; deploy this version "
            "of template.yaml first (make deploy)."
        )
    return Stack(outputs[STATE_MACHINE_OUTPUT], outputs[RESULTS_BUCKET_OUTPUT])


def start(sfn: Any, stack: Stack, bucket: str, prefix: str, top_k: int) -> str:
    execution = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn,
        input=json.dumps({"bucket": bucket, "prefix": prefix, "top_k": top_k}),
    )
    arn: str = execution["executionArn"]
    return arn


def progress(sfn: Any, execution_arn: str) -> Progress | None:
    """The map run's item counts, or None before the map run has started."""
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    if not runs:
        return None
    counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
    return Progress(
        total=int(counts.get("total", 0)),
        succeeded=int(counts.get("succeeded", 0)),
        failed=int(counts.get("failed", 0))
        + int(counts.get("timedOut", 0))
        + int(counts.get("aborted", 0)),
        pending=int(counts.get("pending", 0)),
        running=int(counts.get("running", 0)),
    )


def wait(
    sfn: Any,
    execution_arn: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the execution ends; returns its description."""
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if on_progress is not None:
            counts = progress(sfn, execution_arn)
            if counts is not None:
                on_progress(counts)
        if execution["status"] != RUNNING:
            return execution
        sleep(poll_seconds)


def manifest_location(execution: dict[str, Any], results_bucket: str) -> tuple[str, str]:
    """Where the ResultWriter put the manifest, from the execution's output."""
    try:
        output = json.loads(execution.get("output") or "{}")
        details = output["ResultWriterDetails"]
        return str(details.get("Bucket") or results_bucket), str(details["Key"])
    except (ValueError, KeyError, TypeError, AttributeError):
        status = execution.get("status", "?")
        cause = (execution.get("cause") or execution.get("error") or "").strip()
        raise BatchError(
            f"The execution ended {status} without results"
            + (f": {cause[:MAX_CAUSE]}" if cause else ".")
        ) from None


def _json_object(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def records_from_results(s3: Any, bucket: str, manifest_key: str) -> Iterator[Record]:
    """Every record the map run wrote: the succeeded batches' records, then error records
    for each object of a batch that failed (its child execution's Error and Cause)."""
    manifest = _json_object(s3, bucket, manifest_key)
    files = manifest.get("ResultFiles", {})
    for entry in files.get("SUCCEEDED", []):
        for child in _json_object(s3, bucket, entry["Key"]):
            output = json.loads(child.get("Output") or "{}")
            yield from _batch_records(s3, output)
    for status in ("FAILED", "PENDING"):
        for entry in files.get(status, []):
            for child in _json_object(s3, bucket, entry["Key"]):
                yield from _failed_batch_records(child, status)


def _batch_records(s3: Any, output: dict[str, Any]) -> Iterator[Record]:
    """The records a succeeded batch wrote, from the object its output names."""
    try:
        bucket, key = str(output["records_bucket"]), str(output["records_key"])
    except (KeyError, TypeError):
        raise BatchError(
            f"A batch's output names no records object, received: {str(output)[:MAX_CAUSE]}"
        ) from None
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    for line in body.splitlines():
        if line.strip():
            yield json.loads(line)


def _failed_batch_records(child: dict[str, Any], status: str) -> Iterator[Record]:
    try:
        items = json.loads(child.get("Input") or "{}").get("Items", [])
    except (ValueError, AttributeError):
        items = []
    error = child.get("Error") or status.lower()
    cause = (child.get("Cause") or "").strip()
    message = f"The batch holding this object {status.lower()}: {error}"
    if cause:
        message += f" ({cause[:MAX_CAUSE]})"
    for item in items:
        if isinstance(item, dict) and "bucket" in item and "key" in item:
            yield error_record(s3_url(item["bucket"], item["key"]), "batch_failed", message)


def _aws_message(error: Any) -> str:
    details = getattr(error, "response", {}).get("Error", {})
    return str(details.get("Message") or details.get("Code") or error)


@dataclass(frozen=True)
class Clients:
    cloudformation: Any
    sfn: Any
    s3: Any

    @classmethod
    def create(cls, region: str | None = None) -> Clients:
        import boto3

        session = boto3.session.Session(region_name=region)
        return cls(
            session.client("cloudformation"), session.client("stepfunctions"), session.client("s3")
        )


def run(
    url: str,
    *,
    stack_name: str | None,
    top_k: int = 5,
    output: Path | None = None,
    wait_for_results: bool = False,
    clients: Clients | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The whole ``imagerec batch`` command; returns the exit status.

    Without ``--wait`` (and without ``--output``, which needs the results) it prints the
    execution ARN and returns at once.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    bucket, prefix = parse_s3_url(url)
    if output is not None:
        output_format(output)  # a bad extension fails before the execution starts
    if not stack_name:
        raise InvalidArgument(
            "Expected --stack NAME or AWS_SAM_STACK_NAME (the deployed stack), received: neither"
        )
    if not 1 <= top_k <= Settings.max_top_k:
        raise InvalidArgument(
            f"Expected top_k between 1 and {Settings.max_top_k}, received: {top_k}"
        )
    clients = clients or Clients.create()
    stack = find_stack(clients.cloudformation, stack_name)
    execution_arn = start(clients.sfn, stack, bucket, prefix, top_k)
    print(f"imagerec: started {execution_arn}", file=err, flush=True)
    if output is None and not wait_for_results:
        print(execution_arn, file=out, flush=True)
        return 0

    bar = _Bar(err)
    started = time.perf_counter()
    try:
        execution = wait(
            clients.sfn, execution_arn, on_progress=bar.show, poll_seconds=poll_seconds, sleep=sleep
        )
    finally:
        bar.close()
    results_bucket, manifest_key = manifest_location(execution, stack.results_bucket)
    summary = Summary()
    writer = open_writer(output) if output is not None else None
    try:
        for record in records_from_results(clients.s3, results_bucket, manifest_key):
            if writer is not None:
                writer.write(record)
            if succeeded(record):
                summary.done += 1
                if writer is None:
                    print(text_line(record), file=out)
            else:
                summary.failed += 1
                print(text_line(record), file=err)
    finally:
        if writer is not None:
            writer.close()
    summary.seconds = time.perf_counter() - started
    print(summary.line(), file=err)
    status_ok = execution["status"] == "SUCCEEDED"
    if not status_ok:
        print(f"imagerec: the execution ended {execution['status']}", file=err)
    return 0 if status_ok and not summary.failed else 1


class _Bar:
    """A tqdm bar of the map run's finished items, on a terminal only."""

    def __init__(self, err: IO[str]) -> None:
        self._err = err
        self._bar: Any = None

    def show(self, counts: Progress) -> None:
        if not self._err.isatty():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=counts.total, unit="img", file=self._err, leave=False)
        self._bar.total = counts.total
        self._bar.n = counts.finished
        self._bar.set_postfix(failed=counts.failed, running=counts.running, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
