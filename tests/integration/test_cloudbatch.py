"""`imagerec batch s3://bucket/prefix` against moto's Step Functions and S3, with the real model.

What is real: boto3 calls to moto's CloudFormation (the stack's outputs), S3 (photos, results)
and Step Functions (the state machine created from the real ASL file, start_execution,
describe_execution, list_map_runs), the batch
entry point with the real classifier, and our reading of the ResultWriter's files.

What is faked, because moto lacks it: moto records executions but does not run a Distributed
Map (its optional executor would need Docker to invoke Lambda), so `run_map` below plays
Step Functions' part, following the ASL: list the prefix, select and batch the items (with the
ItemBatcher's BatchInput), build the Lambda payload from the task's Parameters, call the batch
handler per batch (which writes its records to the results bucket itself), write manifest.json
and SUCCEEDED_n/FAILED_n.json as ResultWriter documents, and end the execution with the
Distributed Map's output. The stack whose outputs
`imagerec batch` reads is created by moto's CloudFormation.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.models import stepfunctions_backends

from imagerec.bulk.local import classify_file, read_records
from imagerec.bulk.s3 import create_batch_handler
from imagerec.bulk.stepfunctions import (
    RESULTS_BUCKET_OUTPUT,
    STATE_MACHINE_OUTPUT,
    Clients,
    Progress,
    parse_s3_url,
    progress,
    run,
)
from imagerec.cli import main
from imagerec.core.errors import InvalidArgument
from imagerec.models.classifier import Classifier, load_classifier
from tests.conftest import PHOTOS

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PHOTOS_BUCKET = "holiday-photos"
RESULTS_BUCKET = "imagerec-batchresults-1a2b"
STACK = "imagerec-test"
ASL = Path(__file__).resolve().parents[2] / "statemachines" / "classify_bucket.asl.json"
SUBSTITUTIONS = {
    "ListObjectsArn": "arn:aws:states:::s3:listObjectsV2",
    "LambdaInvokeArn": "arn:aws:states:::lambda:invoke",
    "PutObjectArn": "arn:aws:states:::s3:putObject",
    "BatchFunctionArn": f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:batch",
    "ResultsBucket": RESULTS_BUCKET,
    "ResultsPrefix": "batch-results",
    "MaxConcurrency": "10",
    "BatchSize": "3",
    "ToleratedFailurePercentage": "50",
}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=PHOTOS_BUCKET)
        definition = substituted()
        # The stack's bulk resources and the two outputs `imagerec batch` reads, as moto's
        # CloudFormation creates them (the state machine runs the real ASL file).
        template = {
            "Resources": {
                "BatchResultsBucket": {
                    "Type": "AWS::S3::Bucket",
                    "Properties": {"BucketName": RESULTS_BUCKET},
                },
                "BatchStateMachine": {
                    "Type": "AWS::StepFunctions::StateMachine",
                    "Properties": {
                        "StateMachineName": f"{STACK}-classify-bucket",
                        "DefinitionString": definition,
                        "RoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/batch",
                    },
                },
            },
            "Outputs": {
                STATE_MACHINE_OUTPUT: {"Value": {"Ref": "BatchStateMachine"}},
                RESULTS_BUCKET_OUTPUT: {"Value": {"Ref": "BatchResultsBucket"}},
            },
        }
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        yield Clients(cloudformation=cloudformation, sfn=boto3.client("stepfunctions"), s3=s3)


def run_map(
    clients: Clients,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    *,
    crash_on: str | None = None,
) -> None:
    """Step Functions' part, which moto does not play: run the one RUNNING execution's
    Distributed Map as the ASL describes it, and end the execution with its output."""
    asl = json.loads(substituted())
    (state,) = [s for s in asl["States"].values() if s["Type"] == "Map"]
    (task,) = state["ItemProcessor"]["States"].values()
    backend = stepfunctions_backends[DEFAULT_ACCOUNT_ID][REGION]
    (execution,) = [
        e for machine in backend.state_machines for e in machine.executions if e.status == "RUNNING"
    ]
    given = json.loads(execution.execution_input)
    # ItemReader: s3:listObjectsV2 on the input's bucket and prefix
    listing = clients.s3.list_objects_v2(Bucket=given["bucket"], Prefix=given["prefix"])
    # ItemSelector: "$.x" from the map's input, "$$.Map.Item.Value.X" from the listed object
    selected = []
    for obj in listing.get("Contents", []):
        item = {}
        for field, path in state["ItemSelector"].items():
            source, name = (
                (obj, path.rsplit(".", 1)[1]) if path.startswith("$$") else (given, path[2:])
            )
            item[field.removesuffix(".$")] = source[name]
        selected.append(item)
    size = int(SUBSTITUTIONS["BatchSize"])
    batches = [selected[i : i + size] for i in range(0, len(selected), size)]
    succeeded, failed = [], []
    for index, items in enumerate(batches):
        child_arn = f"{execution.execution_arn}:child-{index}"
        # ItemBatcher: the batch's Items and the fixed BatchInput are the child's input
        child_input = {"Items": items, "BatchInput": state["ItemBatcher"]["BatchInput"]}
        child = {"ExecutionArn": child_arn, "Input": json.dumps(child_input), "Status": "SUCCEEDED"}
        if crash_on is not None and any(item["key"] == crash_on for item in items):
            child.update(Status="FAILED", Error="Lambda.Unknown", Cause="Task timed out")
            failed.append(child)
            continue
        # The task's Payload: "$.x" from the child's input, "$$.Execution.Id" its own ARN;
        # OutputPath $.Payload makes the handler's answer the child's output
        payload = {
            field.removesuffix(".$"): child_arn
            if path == "$$.Execution.Id"
            else child_input[path[2:]]
            for field, path in task["Parameters"]["Payload"].items()
        }
        child["Output"] = json.dumps(handler(payload, None))
        succeeded.append(child)
    # ResultWriter: the child executions by status, and a manifest naming the files
    run_id = str(uuid.uuid4())
    prefix = f"{SUBSTITUTIONS['ResultsPrefix']}/{run_id}"
    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, children in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        if children:
            key = f"{prefix}/{status}_0.json"
            body = json.dumps(children).encode()
            clients.s3.put_object(Bucket=RESULTS_BUCKET, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    map_run_arn = f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:mapRun:x/ClassifyObjects:{run_id}"
    manifest = {"DestinationBucket": RESULTS_BUCKET, "MapRunArn": map_run_arn, "ResultFiles": files}
    clients.s3.put_object(
        Bucket=RESULTS_BUCKET, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode()
    )
    execution.status = "SUCCEEDED"
    execution.output = json.dumps(
        {
            "MapRunArn": map_run_arn,
            "ResultWriterDetails": {"Bucket": RESULTS_BUCKET, "Key": f"{prefix}/manifest.json"},
        }
    )


def substituted() -> str:
    """The ASL as CloudFormation hands it to Step Functions (DefinitionSubstitutions applied)."""
    text = ASL.read_text(encoding="utf-8")
    return re.sub(r"\$\{(\w+)\}", lambda m: SUBSTITUTIONS[m[1]], text)


def upload_photos(s3: Any, prefix: str) -> dict[str, str | None]:
    """Photos, a text file and a broken JPEG under prefix; maps each s3:// name to its label."""
    expected: dict[str, str | None] = {}
    for name, (path, label) in PHOTOS.items():
        key = f"{prefix}{name}{path.suffix}"
        s3.put_object(Bucket=PHOTOS_BUCKET, Key=key, Body=path.read_bytes())
        expected[f"s3://{PHOTOS_BUCKET}/{key}"] = label
    rocket = PHOTOS["rocket"][0].read_bytes()
    for key, body in ((f"{prefix}notes.txt", b"not a photo"), (f"{prefix}cut.jpg", rocket[:999])):
        s3.put_object(Bucket=PHOTOS_BUCKET, Key=key, Body=body)
        expected[f"s3://{PHOTOS_BUCKET}/{key}"] = None
    s3.put_object(Bucket=PHOTOS_BUCKET, Key="elsewhere/rocket.jpg", Body=rocket)
    return expected


def test_batch_waits_and_writes_the_records_of_every_object(
    aws: Clients, classifier: Classifier, tmp_path: Path
) -> None:
    # Given photos and bad files under a prefix of a bucket (and one photo outside it)
    expected = upload_photos(aws.s3, "2026/")
    handler = create_batch_handler(classifier, aws.s3)
    output = tmp_path / "bucket.jsonl"
    err = FakeTerminal()
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # time passes: Step Functions runs the map
        polls.append(seconds)
        run_map(aws, handler)

    # When `imagerec batch s3://holiday-photos/2026/ --output bucket.jsonl` runs
    status = run(
        f"s3://{PHOTOS_BUCKET}/2026/",
        stack_name=STACK,
        top_k=3,
        output=output,
        clients=aws,
        err=err,
        sleep=sleep,
    )
    # Then the execution got the bucket, the prefix and top_k as its input
    (execution,) = aws.sfn.list_executions(
        stateMachineArn=aws.sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    )["executions"]
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "bucket": PHOTOS_BUCKET,
        "prefix": "2026/",
        "top_k": 3,
    }
    assert polls == [5.0]
    # And the output has one record per object under the prefix, the CLI's answer for each
    records = list(read_records(output))
    assert sorted(r["filename"] for r in records) == sorted(expected)
    for record in records:
        label = expected[record["filename"]]
        if label is None:
            assert record["error"]["code"] in {"unsupported_format", "corrupt_image"}
            continue
        name = record["filename"].rsplit("/", 1)[1].split(".")[0]
        local = classify_file(classifier, str(PHOTOS[name][0]), 3)
        assert record["predictions"] == local["predictions"]
    # And the map's result files hold only each batch's counts and records key, not records
    listed = aws.s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="batch-results/")["Contents"]
    (succeeded,) = [o["Key"] for o in listed if o["Key"].endswith("SUCCEEDED_0.json")]
    children = json.loads(aws.s3.get_object(Bucket=RESULTS_BUCKET, Key=succeeded)["Body"].read())
    outputs = [json.loads(child["Output"]) for child in children]
    assert sum(o["count"] for o in outputs) == len(expected)
    assert all(set(o) == {"records_bucket", "records_key", "count", "failed"} for o in outputs)
    # And the run reports its failures and exits non-zero
    assert status == 1
    assert "4 done, 2 failed" in err.getvalue()


def test_a_failed_batch_still_gives_one_error_record_per_object(
    aws: Clients, classifier: Classifier, tmp_path: Path
) -> None:
    # Given a batch whose Lambda call fails for good (a time-out, past the retries)
    expected = upload_photos(aws.s3, "in/")
    handler = create_batch_handler(classifier, aws.s3)
    output = tmp_path / "bucket.csv"
    # When the run completes and is written as CSV
    status = run(
        f"s3://{PHOTOS_BUCKET}/in/",
        stack_name=STACK,
        output=output,
        clients=aws,
        err=FakeTerminal(),
        sleep=lambda _: run_map(aws, handler, crash_on="in/coffee.png"),
    )
    # Then every object of the failed batch has an error record naming the failure
    records = {r["filename"]: r for r in read_records(output)}
    assert sorted(records) == sorted(expected)
    crashed = [r for r in records.values() if r.get("error", {}).get("code") == "batch_failed"]
    assert len(crashed) == int(SUBSTITUTIONS["BatchSize"])
    assert f"s3://{PHOTOS_BUCKET}/in/coffee.png" in {r["filename"] for r in crashed}
    assert all("Task timed out" in r["error"]["message"] for r in crashed)
    assert status == 1


def test_without_wait_it_prints_the_execution_and_returns(aws: Clients) -> None:
    # Given / When started without --wait or --output
    out, err = FakeTerminal(), FakeTerminal()
    status = run(f"s3://{PHOTOS_BUCKET}/x/", stack_name=STACK, clients=aws, out=out, err=err)
    # Then the execution ARN is printed and the execution is left running
    arn = out.getvalue().strip()
    assert status == 0
    assert arn.startswith("arn:aws:states:")
    assert aws.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://b", "b", ""), ("s3://b/", "b", ""), ("s3://b/2026/06/", "b", "2026/06/")],
)
def test_s3_urls(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["photos/", "s3:///x", "https://b.s3.amazonaws.com/x"])
def test_bad_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument, match="Expected s3://bucket/prefix"):
        parse_s3_url(url)


def test_progress_comes_from_the_map_runs_item_counts() -> None:
    # Given a Step Functions client answering list_map_runs and describe_map_run
    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution = f"arn:aws:states:{REGION}:111111111111:execution:m:e"
    map_run = f"arn:aws:states:{REGION}:111111111111:mapRun:m/ClassifyObjects:r"
    counts = {
        "pending": 10,
        "running": 5,
        "succeeded": 80,
        "failed": 3,
        "timedOut": 1,
        "aborted": 1,
        "total": 100,
        "resultsWritten": 80,
    }
    with Stubber(sfn) as stub:
        stub.add_response(
            "list_map_runs",
            {
                "mapRuns": [
                    {
                        "executionArn": execution,
                        "mapRunArn": map_run,
                        "stateMachineArn": f"arn:aws:states:{REGION}:111111111111:stateMachine:m",
                        "startDate": "2026-11-25T00:00:00Z",
                    }
                ]
            },
        )
        stub.add_response(
            "describe_map_run",
            {
                "mapRunArn": map_run,
                "executionArn": execution,
                "status": "RUNNING",
                "startDate": "2026-11-25T00:00:00Z",
                "maxConcurrency": 10,
                "toleratedFailurePercentage": 5,
                "toleratedFailureCount": 0,
                "itemCounts": counts,
                "executionCounts": {**counts, "total": 5},
            },
        )
        # When the progress is read, then it counts items, failures of every kind together
        assert progress(sfn, execution) == Progress(
            total=100, succeeded=80, failed=5, pending=10, running=5
        )


def test_cli_without_a_stack_name_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SAM_STACK_NAME", raising=False)
    assert main(["batch", "s3://photos/2026/"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "AWS_SAM_STACK_NAME" in err


class FakeTerminal:
    """A text stream that says it is not a terminal, and keeps what was written."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self._parts)
