"""The HTTP API: one Powertools resolver, its routes, and the one place errors become HTTP.

Importing this module is the Lambda init phase: it reads the settings, loads the model and
runs one warm-up inference, so a provisioned-concurrency environment answers its first
request warm. Lambda (``functions/classify/app.py``), ``imagerec serve`` and
``imagerec invoke`` all call ``handler`` below: one path through the code.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from imagerec.classifier import Classification, Classifier, load_classifier
from imagerec.errors import ImagerecError, InvalidInput, TooLarge, UnsupportedFormat
from imagerec.models import REGISTRY
from imagerec.openapi import openapi_document
from imagerec.settings import Settings
from imagerec.uploads import body_bytes, parse_classify_body, parse_top_k

SERVICE = "imagerec"
JSON = "application/json"

# Client-input error families and their status; anything else is our fault (500).
STATUS_BY_ERROR: tuple[tuple[type[ImagerecError], HTTPStatus], ...] = (
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (TooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (UnsupportedFormat, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
)
ROUTES: dict[str, tuple[str, ...]] = {
    "/api/classify": ("POST",),
    "/api/health": ("GET",),
    "/api/models": ("GET",),
    "/api/openapi.json": ("GET",),
}

# Health, models and errors publish no timing metrics; that is expected, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

settings = Settings.from_env()
logger = Logger(service=SERVICE, stream=sys.stderr)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Imagerec"))
tracer = Tracer(service=SERVICE)
app = APIGatewayHttpResolver()

_init_start = time.perf_counter()
# Off Lambda, a missing artefact is built here once; on Lambda it is baked into the image.
classifier: Classifier = load_classifier(settings=settings, build=not settings.on_lambda)
classifier.warm_up()
logger.info(
    "model ready",
    extra={
        "model": classifier.name,
        "runtime": classifier.runtime,
        "threads": settings.threads,
        "init_ms": round((time.perf_counter() - _init_start) * 1000, 1),
    },
)


def http_status(error: ImagerecError) -> HTTPStatus:
    for family, status in STATUS_BY_ERROR:
        if isinstance(error, family):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_body(code: str, message: str, **extra: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def json_response(status: int, body: dict[str, Any], **headers: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers or None,
    )


def _request_id() -> str:
    try:
        return str(app.current_event.request_context.request_id)
    except (AttributeError, KeyError):
        return "unknown"


@app.exception_handler(ImagerecError)
def handle_imagerec_error(error: ImagerecError) -> Response[str]:
    status = http_status(error)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return _internal_error(error)
    metrics.add_metric(name=f"Error.{error.code}", unit=MetricUnit.Count, value=1)
    logger.info("client error", extra={"code": error.code, "status": int(status)})
    return json_response(status, error_body(error.code, error.message))


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response[str]:
    return _internal_error(error)


def _internal_error(error: Exception) -> Response[str]:
    request_id = _request_id()
    logger.exception("unexpected failure", extra={"request_id": request_id})
    metrics.add_metric(name="Error.internal_error", unit=MetricUnit.Count, value=1)
    body = error_body(
        "internal_error",
        "Something went wrong on our side; the request id helps us find it.",
        request_id=request_id,
    )
    return json_response(HTTPStatus.INTERNAL_SERVER_ERROR, body)


@app.exception_handler(NotFoundError)
def handle_not_found(error: NotFoundError) -> Response[str]:
    path = app.current_event.path
    allowed = ROUTES.get(path.rstrip("/") or "/")
    if allowed:
        method = app.current_event.request_context.http.method
        message = f"{method} is not allowed on {path}; use {', '.join(allowed)}."
        return json_response(
            HTTPStatus.METHOD_NOT_ALLOWED,
            error_body("method_not_allowed", message),
            Allow=", ".join(allowed),
        )
    return json_response(
        HTTPStatus.NOT_FOUND, error_body("not_found", f"There is no route {path}.")
    )


@contextmanager
def _subsegment(name: str) -> Iterator[object]:
    with tracer.provider.in_subsegment(f"## {name}") as subsegment:
        yield subsegment


def _wants_text() -> bool:
    accept = app.current_event.headers.get("accept") or ""
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first == "text/plain"


def _record(result: Classification) -> None:
    for stage in ("decode", "inference", "total"):
        metrics.add_metric(
            name=f"{stage.capitalize()}Time",
            unit=MetricUnit.Milliseconds,
            value=result.timing_ms[stage],
        )


def _classify_one(data: bytes, top_k: int) -> Classification:
    result = classifier.classify(data, top_k, span=_subsegment)
    _record(result)
    return result


def _text_line(result: dict[str, Any]) -> str:
    prefix = f"{result['filename']}: " if result.get("filename") else ""
    if "error" in result:
        return f"{prefix}error: {result['error']['message']}"
    best = result["predictions"][0]
    return f"{prefix}{best['label']} ({best['score'] * 100:.1f}%)"


@app.post("/api/classify")
def classify() -> Response[str]:
    event = app.current_event
    start = time.perf_counter()
    body = body_bytes(event.body, bool(event.is_base64_encoded))
    request = parse_classify_body(event.headers.get("content-type"), body)
    query = event.query_string_parameters or {}
    # Checked once, before any image: a bad top_k fails the request, not each file.
    top_k = classifier.check_top_k(
        parse_top_k(query.get("top_k", request.top_k), default=settings.default_top_k)
    )
    parse_ms = round((time.perf_counter() - start) * 1000, 3)

    if not request.many:
        result = _classify_one(request.uploads[0].data, top_k).to_dict()
        result["timing_ms"]["parse"] = parse_ms
        results = [result]
    else:
        results = []
        for upload in request.uploads:
            try:
                item = _classify_one(upload.data, top_k).to_dict()
            except ImagerecError as error:
                if http_status(error) >= HTTPStatus.INTERNAL_SERVER_ERROR:
                    raise
                metrics.add_metric(name=f"Error.{error.code}", unit=MetricUnit.Count, value=1)
                item = error_body(error.code, error.message)
            results.append({"filename": upload.filename, **item})

    classified = sum("error" not in result for result in results)
    metrics.add_metric(name="ClassifiedImages", unit=MetricUnit.Count, value=classified)
    if _wants_text():
        text = "".join(_text_line(result) + "\n" for result in results)
        return Response(HTTPStatus.OK, "text/plain; charset=utf-8", text)
    return json_response(HTTPStatus.OK, {"results": results} if request.many else results[0])


@app.get("/api/health")
def health() -> Response[str]:
    return json_response(
        HTTPStatus.OK,
        {
            "status": "ok",
            "model": classifier.name,
            "runtime": classifier.runtime,
            "warm": classifier.warm,
        },
    )


@app.get("/api/models")
def models() -> Response[str]:
    return json_response(
        HTTPStatus.OK,
        {
            "default": classifier.name,
            "models": [classifier.describe()],
            "buildable": sorted(REGISTRY),
        },
    )


@app.get("/api/openapi.json")
def openapi() -> Response[str]:
    return json_response(HTTPStatus.OK, openapi_document(settings))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
# Off Lambda the cold-start metric would be printed to stdout, among the responses.
@metrics.log_metrics(capture_cold_start_metric=settings.on_lambda)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
