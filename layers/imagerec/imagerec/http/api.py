"""The HTTP API: a Powertools resolver over one classifier, its routes, and the one place
errors become HTTP.

Importing this module loads nothing. ``imagerec.compose.load_handler`` is the composition
root: settings → the built model, warmed → ``create_handler``. Lambda
(``functions/classify/app.py``, at module scope, so the init phase does the loading),
``imagerec serve`` and ``imagerec invoke`` all call it: one path through the code. Tests pass
``create_handler`` a small stand-in classifier.
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from imagerec.core.errors import (
    AuthorizationRequired,
    Forbidden,
    Gone,
    ImagerecError,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    RetryLater,
    S3ReferencesDisabled,
    TooLarge,
    TooManyPixels,
    TooManyRequests,
    UnsupportedFormat,
)
from imagerec.core.hierarchy import LabelFilter
from imagerec.core.intake import ImageHeader, format_names, media_types
from imagerec.core.settings import Settings
from imagerec.core.text import result_line
from imagerec.http.openapi import openapi_document
from imagerec.http.storage import (
    S3Objects,
    S3Reference,
    UploadStore,
    check_upload_id,
    s3_objects,
    upload_store,
)
from imagerec.http.uploads import (
    ClassifyRequest,
    Upload,
    body_bytes,
    parse_classify_body,
    parse_form,
    parse_label_options,
    parse_top_k,
)
from imagerec.models.classifier import Classification, Span
from imagerec.models.registry import REGISTRY

SERVICE = "imagerec"
JSON = "application/json"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ImageClassifier(Protocol):
    """What the API needs of a classifier (``imagerec.models.classifier.Classifier`` is one)."""

    name: str
    warm: bool

    @property
    def runtime(self) -> str: ...

    @property
    def categories(self) -> tuple[str, ...]: ...

    def check_top_k(self, top_k: int) -> int: ...

    def check_filter(
        self,
        min_confidence: float = ...,
        include: tuple[str, ...] | frozenset[str] = ...,
        exclude: tuple[str, ...] | frozenset[str] = ...,
    ) -> LabelFilter: ...

    def probe(self, data: bytes, *, max_bytes: int | None = ...) -> ImageHeader: ...

    def classify(
        self,
        data: bytes,
        top_k: int = 5,
        *,
        label_filter: LabelFilter = ...,
        span: Span = ...,
        max_bytes: int | None = ...,
    ) -> Classification: ...

    def classify_many(
        self,
        images: Sequence[bytes],
        top_k: int = 5,
        *,
        label_filter: LabelFilter = ...,
        span: Span = ...,
        max_bytes: int | None = ...,
    ) -> list[Classification | ImagerecError]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    view: str  # the name of the Api method that answers it


# The one routing table: the resolver is built from it, 405s read it, and the template's
# HTTP API routes are tested against it.
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/classify", "classify"),
    Route("GET", "/api/health", "health"),
    Route("GET", "/api/models", "models"),
    Route("GET", "/api/openapi.json", "openapi"),
    Route("POST", "/api/uploads", "create_upload"),
    # The local store's form target; in the cloud forms go to S3 and this answers 404.
    Route("POST", "/api/uploads/<upload_id>", "receive_upload"),
    # The page's routes: the same views, never behind an authorizer, so anonymous photo drops
    # keep working when Auth is iam or jwt (unless the operator refuses them). Their callers
    # are anonymous, so they can never name an S3 object.
    Route("POST", "/api/public/classify", "classify"),
    Route("POST", "/api/public/uploads", "create_upload"),
)
# The routes API Gateway puts its authorizer on when Auth is iam or jwt (template.yaml).
AUTHORIZED_PATHS = frozenset({"/api/classify", "/api/uploads"})

# Client-input error families and their status; anything else is our fault (500).
STATUS_BY_ERROR: tuple[tuple[type[ImagerecError], HTTPStatus], ...] = (
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (TooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (UnsupportedFormat, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Gone, HTTPStatus.GONE),
    (TooManyRequests, HTTPStatus.TOO_MANY_REQUESTS),
    (InsufficientStorage, HTTPStatus.INSUFFICIENT_STORAGE),
)

# Health, models and errors publish no timing metrics; that is expected, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE, stream=sys.stderr)
tracer = Tracer(service=SERVICE)


def _pattern(path: str) -> re.Pattern[str]:
    """A route's path as a regex: ``<name>`` (Powertools' parameter syntax) is one segment."""
    return re.compile(re.sub(r"<\w+>", "[^/]+", re.escape(path)))


def allowed_methods(path: str) -> tuple[str, ...]:
    path = path.rstrip("/") or "/"
    return tuple(route.method for route in ROUTES if _pattern(route.path).fullmatch(path))


def caller_of(event: dict[str, Any], auth: str) -> str | None:
    """The principal API Gateway's authorizer vouched for, or None (anonymous).

    Only API Gateway writes ``requestContext``: a client cannot forge it. With Auth=iam it
    holds ``authorizer.iam`` (SigV4: the caller's ARN), with jwt ``authorizer.jwt.claims``
    (the token's issuer and subject). Routes without an authorizer carry neither, and with
    Auth=none any context is ignored: that deployment has no authorized callers.
    """
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    if auth == "none" or not isinstance(authorizer, dict):
        return None
    if auth == "iam":
        iam = authorizer.get("iam")
        if isinstance(iam, dict):
            principal = iam.get("userArn") or iam.get("callerId")
            if isinstance(principal, str) and principal:
                return f"iam:{principal}"
        return None
    jwt = authorizer.get("jwt")
    claims = jwt.get("claims") if isinstance(jwt, dict) else None
    if isinstance(claims, dict):
        subject = claims.get("sub") or claims.get("client_id")
        if isinstance(subject, str) and subject:
            return f"jwt:{claims.get('iss', '')}|{subject}"
    return None


def http_status(error: ImagerecError) -> HTTPStatus:
    for family, status in STATUS_BY_ERROR:
        if isinstance(error, family):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def is_ours(error: ImagerecError) -> bool:
    """Our failure (500), not the client's: every mapped family is theirs, 507 included."""
    return http_status(error) == HTTPStatus.INTERNAL_SERVER_ERROR


def error_body(code: str, message: str, **extra: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def json_response(status: int, body: dict[str, Any], **headers: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers or None,
    )


def text_line(result: dict[str, Any]) -> str:
    """One result as the ``Accept: text/plain`` line, as ``imagerec classify`` prints it:
    ``name: label (94.5%), label (2.1%)``, every label asked for."""
    return result_line(result, result.get("filename"))


@contextmanager
def _subsegment(name: str) -> Iterator[object]:
    with tracer.provider.in_subsegment(f"## {name}") as subsegment:
        yield subsegment


@contextmanager
def _no_subsegment(name: str) -> Iterator[None]:
    yield


def _span() -> Span:
    """X-Ray subsegments per stage when tracing is on; off Lambda (or with tracing
    disabled) nothing, rather than the SDK's dummy segments (~0.5 ms a request)."""
    return _no_subsegment if tracer.disabled else _subsegment


class Api:
    """The routes and error handlers, over one classifier and one set of settings."""

    def __init__(
        self,
        app: APIGatewayHttpResolver,
        classifier: ImageClassifier,
        settings: Settings,
        metrics: Metrics,
        uploads: UploadStore,
        s3: S3Objects,
    ) -> None:
        self.app = app
        self.classifier = classifier
        self.settings = settings
        self.metrics = metrics
        self.uploads = uploads
        self.s3 = s3

    # -- errors -----------------------------------------------------------------------

    def imagerec_error(self, error: ImagerecError) -> Response[str]:
        status = http_status(error)
        if is_ours(error):
            return self.unexpected(error)
        self.metrics.add_metric(name=f"Error.{error.code}", unit=MetricUnit.Count, value=1)
        logger.info("client error", extra={"code": error.code, "status": int(status)})
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RetryLater) else {}
        return json_response(status, error_body(error.code, error.message), **headers)

    def unexpected(self, error: Exception) -> Response[str]:
        request_id = self._request_id()
        logger.exception("unexpected failure", extra={"request_id": request_id})
        self.metrics.add_metric(name="Error.internal_error", unit=MetricUnit.Count, value=1)
        body = error_body(
            "internal_error",
            "Something went wrong on our side; the request id helps us find it.",
            request_id=request_id,
        )
        return json_response(HTTPStatus.INTERNAL_SERVER_ERROR, body)

    def not_found(self, error: NotFoundError) -> Response[str]:
        path = self.app.current_event.path
        allowed = allowed_methods(path)
        if allowed:
            method = self.app.current_event.request_context.http.method
            message = f"{method} is not allowed on {path}; use {', '.join(allowed)}."
            return json_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                error_body("method_not_allowed", message),
                Allow=", ".join(allowed),
            )
        return json_response(
            HTTPStatus.NOT_FOUND, error_body("not_found", f"There is no route {path}.")
        )

    def _request_id(self) -> str:
        try:
            return str(self.app.current_event.request_context.request_id)
        except (AttributeError, KeyError):
            return "unknown"

    # -- routes -----------------------------------------------------------------------

    def _caller(self) -> str | None:
        """Who calls, checked against the deployment's choice for anonymous callers."""
        caller = caller_of(self.app.current_event.raw_event, self.settings.auth)
        if caller is None and not self.settings.anonymous:
            raise AuthorizationRequired(
                "This deployment serves authorized callers only: call POST /api/classify "
                "or POST /api/uploads with credentials (see docs/deploy.md, Authorization)."
            )
        return caller

    def _check_s3_allowed(self, caller: str | None) -> None:
        """S3 references are the operator's own power: authorized callers only, and never
        with Auth=none. Checked before the reference is even read, so S3 sees no request."""
        if self.settings.auth == "none":
            raise S3ReferencesDisabled(
                "S3 references are turned off on this deployment (Auth=none): send the "
                "image itself, or upload it through POST /api/uploads."
            )
        if caller is None:
            raise AuthorizationRequired(
                "S3 references need an authorized caller: call POST /api/classify with "
                "SigV4 credentials (Auth=iam) or a bearer token (Auth=jwt)."
            )

    def classify(self) -> Response[str]:
        event = self.app.current_event
        caller = self._caller()
        start = time.perf_counter()
        body = body_bytes(event.body, bool(event.is_base64_encoded))
        query = event.query_string_parameters or {}
        default = self.settings.default_top_k
        # Checked once, before any image: a bad top_k fails the request, not each file. The
        # query's first, so a bad one is a 400 whatever the body holds.
        if "top_k" in query:
            self.classifier.check_top_k(parse_top_k(query["top_k"], default=default))
        request = parse_classify_body(
            event.headers.get("content-type"), body, max_images=self.settings.max_images
        )
        if request.s3 is not None:
            self._check_s3_allowed(caller)
        top_k = self.classifier.check_top_k(
            parse_top_k(query.get("top_k", request.top_k), default=default)
        )
        options = parse_label_options(query, request)
        label_filter = self.classifier.check_filter(
            options.min_confidence, options.include_categories, options.exclude_categories
        )
        # Every header read and the request's budget checked before any pixel is decoded.
        admitted = self._admit(request.uploads)
        parse_ms = round((time.perf_counter() - start) * 1000, 3)

        if request.upload is not None or request.s3 is not None:
            result = self._classify_stored(request, top_k, label_filter, caller).to_dict()
            result["timing_ms"]["parse"] = parse_ms
            results = [result]
        elif not request.many:
            if isinstance(admitted[0], ImagerecError):
                raise admitted[0]
            result = self._classify_one(request.uploads[0].data, top_k, label_filter).to_dict()
            result["timing_ms"]["parse"] = parse_ms
            results = [result]
        else:
            items = self._classify_many(request.uploads, admitted, top_k, label_filter)
            results = [
                {"filename": upload.filename, **item}
                for upload, item in zip(request.uploads, items, strict=True)
            ]

        classified = sum("error" not in result for result in results)
        self.metrics.add_metric(name="ClassifiedImages", unit=MetricUnit.Count, value=classified)
        if self._wants_text():
            text = "".join(text_line(result) + "\n" for result in results)
            return Response(HTTPStatus.OK, "text/plain; charset=utf-8", text)
        return json_response(HTTPStatus.OK, {"results": results} if request.many else results[0])

    def _classify_stored(
        self,
        request: ClassifyRequest,
        top_k: int,
        label_filter: LabelFilter,
        caller: str | None,
    ) -> Classification:
        """An image named by the request: an upload (deleted once classified) or an S3 object.

        Both may be up to ``max_upload_bytes``, the cap of the upload form.
        """
        cap = self.settings.max_upload_bytes
        if request.s3 is not None:
            self._check_s3_allowed(caller)  # checked once already; this is where it matters
            start = time.perf_counter()
            data = self.s3.read(S3Reference.parse(request.s3))
            self._admit_stored(data)
            result = self._classify_one(data, top_k, label_filter, max_bytes=cap)
            result.timing_ms["fetch"] = round((time.perf_counter() - start) * 1000, 3)
            return result
        upload_id = check_upload_id(request.upload)
        start = time.perf_counter()
        data = self.uploads.fetch(upload_id, caller)
        fetched = round((time.perf_counter() - start) * 1000, 3)
        try:
            self._admit_stored(data)
            result = self._classify_one(data, top_k, label_filter, max_bytes=cap)
        except ImagerecError as error:
            # A bad image stays bad: nothing to retry, so it goes too. Our own failure keeps
            # it, so the client can try again.
            if not is_ours(error):
                self.uploads.delete(upload_id, caller)
            raise
        self.uploads.delete(upload_id, caller)
        result.timing_ms["fetch"] = fetched
        return result

    def create_upload(self) -> Response[str]:
        """A form for one file up to ``max_upload_bytes``, S3's presigned-POST contract."""
        caller = self._caller()
        headers = self.app.current_event.headers
        scheme = (headers.get("x-forwarded-proto") or "http").split(",")[0].strip()
        host = headers.get("host") or "127.0.0.1"
        form = self.uploads.create(f"{scheme}://{host}", caller)
        body = {"upload": form.to_dict(), "max_bytes": self.uploads.max_bytes}
        # The fields are a credential for one upload: keep them out of every cache.
        return json_response(HTTPStatus.OK, body, **{"Cache-Control": "no-store"})

    def receive_upload(self, upload_id: str) -> Response[str]:
        """The local store's form POST: checks the signature, keeps the file (S3 answers 204)."""
        event = self.app.current_event
        body = body_bytes(event.body, bool(event.is_base64_encoded))
        parts = parse_form(event.headers.get("content-type"), body)
        self.uploads.receive(upload_id, parts)
        return Response(HTTPStatus.NO_CONTENT, None, "")

    def _admit(self, uploads: list[Upload]) -> list[ImageHeader | ImagerecError]:
        """Each upload's header, or the client error that refuses it; the request is refused
        whole (413 ``too_many_pixels``) when the images it would decode add up past the cap.
        """
        admitted: list[ImageHeader | ImagerecError] = []
        for upload in uploads:
            try:
                admitted.append(self.classifier.probe(upload.data))
            except ImagerecError as error:
                if is_ours(error):
                    raise
                admitted.append(error)
        self._check_request_pixels(
            sum(h.decoded_pixels for h in admitted if isinstance(h, ImageHeader))
        )
        return admitted

    def _check_request_pixels(self, total: int) -> None:
        limit = self.settings.max_request_pixels
        if total > limit:
            raise TooManyPixels(
                f"The images in this request would decode to {total / 1e6:.1f} megapixels; "
                f"the limit is {limit / 1e6:.1f} megapixels per request."
            )

    def _admit_stored(self, data: bytes) -> None:
        """A stored image's header, against the per-image limits (its byte cap the upload
        cap) and the request's pixel budget, before any pixel is decoded."""
        header = self.classifier.probe(data, max_bytes=self.settings.max_upload_bytes)
        self._check_request_pixels(header.decoded_pixels)

    def health(self) -> Response[str]:
        classifier = self.classifier
        body = {
            "status": "ok",
            "model": classifier.name,
            "runtime": classifier.runtime,
            "warm": classifier.warm,
        }
        return json_response(HTTPStatus.OK, body)

    def models(self) -> Response[str]:
        body = {
            "default": self.classifier.name,
            "models": [self.classifier.describe()],
            "buildable": sorted(REGISTRY),
            # What POST /api/classify takes; the page lists these and sizes its uploads by them.
            "accepts": {
                "formats": format_names(),
                "media_types": media_types(),
                "max_bytes": self.settings.max_bytes,
                "max_pixels": self.settings.max_pixels,
            },
        }
        return json_response(HTTPStatus.OK, body)

    def openapi(self) -> Response[str]:
        return json_response(
            HTTPStatus.OK, openapi_document(self.settings, self.classifier.categories)
        )

    def _classify_one(
        self,
        data: bytes,
        top_k: int,
        label_filter: LabelFilter,
        *,
        max_bytes: int | None = None,
    ) -> Classification:
        result = self.classifier.classify(
            data, top_k, label_filter=label_filter, span=_span(), max_bytes=max_bytes
        )
        self._add_timing_metrics(result)
        return result

    def _add_timing_metrics(self, result: Classification) -> None:
        for stage in ("decode", "inference", "total"):
            self.metrics.add_metric(
                name=f"{stage.capitalize()}Time",
                unit=MetricUnit.Milliseconds,
                value=result.timing_ms[stage],
            )

    def _classify_many(
        self,
        uploads: list[Upload],
        admitted: list[ImageHeader | ImagerecError],
        top_k: int,
        label_filter: LabelFilter,
    ) -> list[dict[str, Any]]:
        """The admitted images in batches (one interpreter call each), the refused ones as
        their error; each item as the response carries it."""
        wanted = [
            u.data for u, h in zip(uploads, admitted, strict=True) if isinstance(h, ImageHeader)
        ]
        answers = iter(
            self.classifier.classify_many(wanted, top_k, label_filter=label_filter, span=_span())
        )
        items: list[dict[str, Any]] = []
        for header in admitted:
            outcome = header if isinstance(header, ImagerecError) else next(answers)
            if isinstance(outcome, ImagerecError):
                if is_ours(outcome):
                    raise outcome
                self.metrics.add_metric(
                    name=f"Error.{outcome.code}", unit=MetricUnit.Count, value=1
                )
                items.append(error_body(outcome.code, outcome.message))
            else:
                self._add_timing_metrics(outcome)
                items.append(outcome.to_dict())
        return items

    def _wants_text(self) -> bool:
        accept = self.app.current_event.headers.get("accept") or ""
        first = accept.split(",")[0].split(";")[0].strip().lower()
        return first == "text/plain"


def create_handler(
    classifier: ImageClassifier,
    settings: Settings,
    *,
    uploads: UploadStore | None = None,
    s3: S3Objects | None = None,
) -> Handler:
    """The Lambda handler over this classifier: a resolver with every route of ``ROUTES``.

    The upload store and the S3 reader come from the settings unless given.
    """
    app = APIGatewayHttpResolver()
    metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)
    api = Api(
        app,
        classifier,
        settings,
        metrics,
        uploads if uploads is not None else upload_store(settings),
        s3 if s3 is not None else s3_objects(settings),
    )
    for route in ROUTES:
        app.route(route.path, route.method)(getattr(api, route.view))
    app.exception_handler(NotFoundError)(api.not_found)
    app.exception_handler(ImagerecError)(api.imagerec_error)
    app.exception_handler(Exception)(api.unexpected)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    # Off Lambda the cold-start metric would be printed to stdout, among the responses.
    @metrics.log_metrics(capture_cold_start_metric=settings.on_lambda)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    # The Powertools decorators are untyped; the wrapped function keeps its signature.
    wrapped: Handler = handler
    return wrapped
