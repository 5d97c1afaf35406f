"""Both functions as Lambda starts them: the image's contents (its final stage's pins in a fresh
venv, the exported model, its task root), started by the runtime interface client
(``python -m awslambdaric HANDLER``) with the handler strings of the Dockerfile's CMD and the
template's ImageConfig, against a Runtime API served here on loopback. Events go in through
``/invocation/next`` and answers come back through ``/response`` and ``/error``, as on Lambda;
an import-time failure comes back through ``/init/error``. Init time (process start to the
first ``/next``) and peak RSS are reported, never asserted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from imagerec.core.errors import ModelNotBuilt
from tests.conftest import PHOTOS, ROOT, event
from tests.function_image import (
    FunctionVenv,
    function_command,
    function_environment,
    function_properties,
    image_environment,
    image_python,
    parameter_default,
)
from tests.runtime_api import LambdaProcess, Outcome, lambda_reserved_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLASSIFY = "ClassifyFunction"
BATCH = "BatchFunction"
REGION = "us-east-1"
BUCKET = "holiday-photos"
# The stack's results bucket, where each batch writes its records (issue 21).
RESULTS = "batch-results-bucket"
# Where the image keeps the exported model (COPY --from=build /opt/models /opt/models).
IMAGE_MODELS = "/opt/models"
INIT_TIMEOUT_S = 180
CATS = {"tiger cat", "Egyptian cat", "tabby"}
MEASUREMENTS = ROOT / "test-artifacts" / "lambda-runtime.json"


def handler_of(logical_id: str) -> str:
    command = function_command(logical_id)
    assert len(command) == 1, command
    return command[0]


@dataclass(frozen=True)
class Image:
    """The image's contents, assembled by tests/integration/conftest.py."""

    venv: FunctionVenv
    task_root: Path
    runtime_dir: Path
    models: Path


@pytest.fixture(scope="module")
def image(
    function_venv: FunctionVenv, task_root: Path, runtime_client: Path, exported_models: Path
) -> Image:
    return Image(function_venv, task_root, runtime_client, exported_models)


def function_env(image: Image, logical_id: str) -> dict[str, str]:
    """What the function's process sees on Lambda: Lambda's own variables, the image's ENV
    (its model folder here instead of /opt/models), then the template's literal variables."""
    image_env = {
        name: value.replace(IMAGE_MODELS, str(image.models))
        for name, value in image_environment().items()
    }
    memory = function_properties(logical_id)["MemorySize"]
    memory_mb = parameter_default(memory["Ref"]) if isinstance(memory, dict) else memory
    reserved = lambda_reserved_environment(
        f"imagerec-{logical_id}",
        int(memory_mb),
        REGION,
        image.task_root,
        image.runtime_dir,
        image_python(),
    )
    return {**reserved, **image_env, **function_environment(logical_id)}


def start(image: Image, logical_id: str, log_path: Path, **overrides: str) -> LambdaProcess:
    """The function's environment, ready to start (a context manager)."""
    return LambdaProcess(
        image.venv.python,
        handler_of(logical_id),
        image.task_root,
        {**function_env(image, logical_id), **overrides},
        log_path,
        function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:imagerec-{logical_id}",
        timeout_s=float(function_properties(logical_id)["Timeout"]),
    )


def report(name: str, function: LambdaProcess, record_property: Any) -> dict[str, float]:
    """Init time and peak RSS, printed, recorded in the JUnit report, and kept in
    test-artifacts/lambda-runtime.json for a person to read."""
    figures = {
        "init_s": round(function.init_seconds, 3),
        "peak_rss_mib": round(function.peak_rss_mib(), 1),
    }
    for key, value in figures.items():
        record_property(f"{name}_{key}", value)
    print(f"{name} ({function.handler}) under awslambdaric: {figures}")
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    MEASUREMENTS.write_text(json.dumps({**known, name: figures}, indent=2) + "\n")
    return figures


def api_response(outcome: Outcome) -> tuple[int, dict[str, str], Any]:
    """An HTTP answer is the function's successful return value, whatever its status: a 4xx
    that came back through /error would reach the client as API Gateway's 502."""
    assert outcome.kind == "response", outcome.body[:2000]
    assert outcome.headers["content-type"] == "application/json"
    payload = outcome.json()
    return payload["statusCode"], payload["headers"], json.loads(payload["body"])


# --- the HTTP API's function -------------------------------------------------------------------


@pytest.fixture(scope="module")
def classify_function(
    image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LambdaProcess]:
    """One execution environment of ClassifyFunction, warm across this module's events."""
    log = tmp_path_factory.mktemp("classify") / "function.log"
    with start(image, CLASSIFY, log) as fn:
        fn.wait_for_init(INIT_TIMEOUT_S)
        assert fn.api.init_error is None, fn.api.init_error.body
        assert fn.running, fn.log()
        yield fn


def test_the_api_function_classifies_a_jpeg_event_through_the_runtime_api(
    classify_function: LambdaProcess,
) -> None:
    # Given the started function, when API Gateway's event for a JPEG upload is handed to it
    status, headers, body = api_response(classify_function.invoke(event("classify-jpeg")))
    # Then the answer posted back is the classification, by LiteRT, of the image's model
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["predictions"][0]["label"] == "espresso"
    assert body["model"] == {
        "name": function_environment(CLASSIFY)["IMAGEREC_MODEL"],
        "runtime": image_environment()["IMAGEREC_RUNTIME"],
    }


def test_the_api_function_classifies_a_multipart_event(classify_function: LambdaProcess) -> None:
    status, _, body = api_response(classify_function.invoke(event("classify-multipart")))
    assert status == 200
    coffee, chelsea = body["results"]
    assert (coffee["filename"], chelsea["filename"]) == ("coffee.jpg", "chelsea.jpg")
    assert coffee["predictions"][0]["label"] == "espresso"
    # Chelsea is a tabby; ImageNet splits cats over several classes, and her JPEG here is
    # smaller than the PNG that PHOTOS labels.
    assert chelsea["predictions"][0]["label"] in CATS


def test_health_says_warm_once_init_is_done(classify_function: LambdaProcess) -> None:
    status, _, body = api_response(classify_function.invoke(event("health")))
    assert status == 200
    assert body == {
        "status": "ok",
        "model": function_environment(CLASSIFY)["IMAGEREC_MODEL"],
        "runtime": image_environment()["IMAGEREC_RUNTIME"],
        "warm": True,
    }


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("bad-top-k", 400, "invalid_argument"),
        ("bad-truncated-jpeg", 400, "corrupt_image"),
        ("bad-not-an-image", 415, "unsupported_format"),
        ("not-found", 404, "not_found"),
        ("method-not-allowed", 405, "method_not_allowed"),
    ],
)
def test_bad_requests_are_typed_http_errors_not_function_errors(
    classify_function: LambdaProcess, name: str, status: int, code: str
) -> None:
    # Given a bad request, the function returns its typed JSON error as a normal answer
    got, headers, body = api_response(classify_function.invoke(event(name)))
    assert (got, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]
    assert headers["Content-Type"].startswith("application/json")


def test_the_api_function_reports_init_time_and_memory(
    classify_function: LambdaProcess, record_property: Any
) -> None:
    # At least one classification has run in this environment, so the peak includes inference
    status, _, _ = api_response(classify_function.invoke(event("classify-jpeg")))
    assert status == 200
    # Reported, never asserted: they depend on the machine and its load
    report("classify", classify_function, record_property)


# --- the batch function, against moto's S3 served on loopback -----------------------------------


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_server: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket=RESULTS)
    for name, (path, _) in PHOTOS.items():
        client.put_object(Bucket=BUCKET, Key=f"2026/{name}{path.suffix}", Body=path.read_bytes())
    client.put_object(Bucket=BUCKET, Key="2026/notes.txt", Body=b"not a photo")
    return client


@pytest.fixture(scope="module")
def batch_function(
    image: Image, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LambdaProcess]:
    """One execution environment of BatchFunction, its boto3 pointed at the S3 server."""
    log = tmp_path_factory.mktemp("batch") / "function.log"
    with start(image, BATCH, log, AWS_ENDPOINT_URL_S3=s3_server) as fn:
        fn.wait_for_init(INIT_TIMEOUT_S)
        assert fn.api.init_error is None, fn.api.init_error.body
        assert fn.running, fn.log()
        yield fn


def item_batch(s3: Any, prefix: str, top_k: int) -> dict[str, Any]:
    """What the Distributed Map's ItemSelector and ItemBatcher make of a listing
    (statemachines/classify_bucket.asl.json): the Items, the BatchInput naming where records
    go, and the child execution's id."""
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    items = [
        {"bucket": BUCKET, "key": o["Key"], "size": o["Size"], "top_k": top_k} for o in listing
    ]
    return {
        "Items": items,
        "BatchInput": {"results_bucket": RESULTS, "results_prefix": "batch-results/records"},
        "batch": f"arn:aws:states:us-east-1:111111111111:express:m/Classify:run:{prefix}{top_k}",
    }


def batch_records(outcome: Outcome, s3: Any) -> list[dict[str, Any]]:
    """One record per object of a batch: the function writes them to the results bucket as
    JSON lines and returns where, with counts that must agree."""
    assert outcome.kind == "response", outcome.body[:2000]
    summary = outcome.json()
    assert summary["records_bucket"] == RESULTS
    body = s3.get_object(Bucket=RESULTS, Key=summary["records_key"])["Body"].read()
    records = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    assert summary["count"] == len(records)
    assert summary["failed"] == sum(1 for record in records if "error" in record)
    return records


def test_the_batch_function_classifies_a_distributed_map_batch_from_s3(
    batch_function: LambdaProcess, s3: Any
) -> None:
    # Given the sample photos and a text file under a prefix, when one ItemBatcher batch of
    # their keys is handed to the batch function
    outcome = batch_function.invoke(item_batch(s3, "2026/", top_k=3))
    # Then each object has one record, named s3://bucket/key, with its photo's label, and the
    # text file is an error record, not a failed batch
    records = {r["filename"]: r for r in batch_records(outcome, s3)}
    expected = {
        f"s3://{BUCKET}/2026/{name}{path.suffix}": label for name, (path, label) in PHOTOS.items()
    }
    assert set(records) == {*expected, f"s3://{BUCKET}/2026/notes.txt"}
    for filename, label in expected.items():
        assert records[filename]["predictions"][0]["label"] == label
        assert len(records[filename]["predictions"]) == 3
    assert records[f"s3://{BUCKET}/2026/notes.txt"]["error"]["code"] == "unsupported_format"


def test_a_malformed_batch_is_a_function_error_and_the_environment_lives_on(
    batch_function: LambdaProcess, s3: Any
) -> None:
    # Given an event that is no ItemBatcher batch, the invocation fails through /error, with the
    # exception's type (Step Functions retries it, then fails the run past the tolerance)
    failed = batch_function.invoke({"Key": "2026/rocket.jpg"})
    assert failed.kind == "error"
    error = failed.json()
    assert error["errorType"] == "InvalidArgument"
    assert "Items" in error["errorMessage"]
    # And the same environment still answers the next batch
    records = batch_records(batch_function.invoke(item_batch(s3, "2026/rocket", top_k=1)), s3)
    assert [r["predictions"][0]["label"] for r in records] == [PHOTOS["rocket"][1]]


def test_the_batch_function_reports_init_time_and_memory(
    batch_function: LambdaProcess, s3: Any, record_property: Any
) -> None:
    records = batch_records(batch_function.invoke(item_batch(s3, "2026/", top_k=5)), s3)
    assert len(records) == len(PHOTOS) + 1
    report("batch", batch_function, record_property)


# --- a failed init, as Lambda would show it -----------------------------------------------------


def test_an_import_time_failure_is_posted_to_init_error_and_the_process_exits(
    image: Image, tmp_path: Path
) -> None:
    # Given the API function configured for a model the image does not contain
    missing = "efficientnet_lite2"
    assert not list(image.models.glob(f"{missing}*"))
    with start(image, CLASSIFY, tmp_path / "function.log", IMAGEREC_MODEL=missing) as fn:
        # When the runtime client imports the handler's module
        fn.wait_for_init(INIT_TIMEOUT_S)
        # Then the failure is posted to /init/error with its type and message, the client never
        # asks for an event, and the process exits non-zero (Lambda reports Runtime.ExitError)
        assert fn.api.init_error is not None, fn.log()
        error = fn.api.init_error.json()
        assert error["errorType"] == ModelNotBuilt.__name__
        assert fn.api.init_error.headers["lambda-runtime-function-error-type"] == error["errorType"]
        assert missing in error["errorMessage"]
        assert fn.api.first_next_at is None
        assert fn.exit_code() != 0
