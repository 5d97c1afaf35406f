"""Turn an HTTP request body into the images it carries: raw bytes, multipart or JSON.

Pure functions over bytes and header values, so the API, the tests and any other front
end share one reading of a request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from imagerec.errors import (
    EmptyInput,
    InvalidArgument,
    InvalidBase64,
    InvalidJson,
    InvalidMultipart,
    InvalidS3Reference,
    InvalidUploadId,
    MissingImage,
)

IMAGE_FIELDS = frozenset({"image", "images", "file", "files"})
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", re.ASCII)


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class ClassifyRequest:
    uploads: list[Upload]
    # A form or JSON body may carry top_k too; the query string wins over it.
    top_k: str | int | None = None
    # Several files (multipart or a JSON list) answer with {"results": [...]}.
    many: bool = False
    # JSON may name the image instead: {"upload": "<id>"} or {"s3": {"bucket", "key"}}.
    upload: object = None
    s3: object = None


def body_bytes(body: str | None, is_base64_encoded: bool) -> bytes:
    """The raw body. Powertools' ``decoded_body`` returns text, which breaks binary bodies."""
    if not body:
        return b""
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidBase64("The event body is marked base64 but is not.") from None
    return body.encode("utf-8", "surrogateescape")


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional, an optional data: URL prefix."""
    cleaned = _DATA_URL.sub("", text.strip(), count=1)
    cleaned = "".join(cleaned.split())
    cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64("The image is not valid base64.") from None


def parse_top_k(raw: str | int | None, *, default: int) -> int:
    """The integer a client sent; its range is the classifier's to check (``check_top_k``)."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise InvalidArgument(f"Expected top_k to be an integer, received: {raw!r}")
    try:
        return int(raw) if isinstance(raw, int) else int(str(raw).strip(), 10)
    except ValueError:
        raise InvalidArgument(f"Expected top_k to be an integer, received: {raw!r}") from None


def parse_classify_body(content_type: str | None, body: bytes) -> ClassifyRequest:
    if not body:
        raise EmptyInput("The request body is empty: send an image.")
    media_type, params = parse_options_header(content_type or "")
    media = media_type.decode("latin-1").lower()
    if media == "multipart/form-data":
        return _parse_multipart(params.get(b"boundary"), body)
    if media == "application/json" or media.endswith("+json"):
        return _parse_json(body)
    # Anything else is the image itself; its bytes, not its Content-Type, say what it is.
    return ClassifyRequest([Upload(None, body)])


def _parse_json(body: bytes) -> ClassifyRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidJson('Expected a JSON object like {"image": "<base64>"}.')
    top_k = document.get("top_k")
    if top_k is not None and not isinstance(top_k, (int, str)):
        raise InvalidArgument(f"Expected top_k to be an integer, received: {top_k!r}")
    sources = [name for name in ("image", "images", "upload", "s3") if name in document]
    if len(sources) > 1:
        raise InvalidArgument(
            f"Expected one of image, images, upload or s3, received: {', '.join(sources)}"
        )
    # None would read as "not given" below; the id and the reference are checked in full
    # where they are used (imagerec.storage).
    if "upload" in document:
        if document["upload"] is None:
            raise InvalidUploadId('Expected "upload" to be an id from POST /api/uploads.')
        return ClassifyRequest([], top_k, upload=document["upload"])
    if "s3" in document:
        if document["s3"] is None:
            raise InvalidS3Reference('Expected "s3" to be {"bucket": "...", "key": "..."}.')
        return ClassifyRequest([], top_k, s3=document["s3"])
    if "images" in document:
        images = document["images"]
        if not isinstance(images, list) or not images:
            raise MissingImage('Expected "images" to be a non-empty list of base64 strings.')
        return ClassifyRequest([_json_image(item, i) for i, item in enumerate(images)], top_k, True)
    image = document.get("image")
    if not image:
        raise MissingImage(
            'The JSON has no image: send {"image": "<base64>"}, {"upload": "<id>"} '
            'or {"s3": {"bucket": "...", "key": "..."}}.'
        )
    return ClassifyRequest([_json_image(image, None)], top_k)


def _json_image(item: object, index: int | None) -> Upload:
    name: str | None = None if index is None else f"images[{index}]"
    if isinstance(item, dict):
        name = str(item.get("filename") or name)
        item = item.get("data") or item.get("image")
    if not isinstance(item, str) or not item:
        raise MissingImage("Expected each image as a base64 string.")
    return Upload(name, decode_base64(item))


class _Parts:
    """Collects form parts from python-multipart's streaming callbacks."""

    def __init__(self) -> None:
        self.parts: list[tuple[dict[str, str], bytearray]] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()

    def on_part_begin(self) -> None:
        self.parts.append(({}, bytearray()))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.parts[-1][0][self._field.decode("latin-1").lower()] = self._value.decode(
            "utf-8", "replace"
        )
        self._field.clear()
        self._value.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1][1].extend(data[start:end])

    def on_end(self) -> None:
        self.ended = True


@dataclass(frozen=True)
class FormPart:
    name: str
    filename: str | None
    data: bytes


def parse_form(content_type: str | None, body: bytes) -> list[FormPart]:
    """Every part of a ``multipart/form-data`` body, in order (an upload form's fields)."""
    media_type, params = parse_options_header(content_type or "")
    if media_type.decode("latin-1").lower() != "multipart/form-data":
        raise InvalidMultipart("Expected a multipart/form-data body.")
    parts = []
    for headers, data in _form_parts(params.get(b"boundary"), body):
        _, options = parse_options_header(headers.get("content-disposition", ""))
        filename = options.get(b"filename")
        parts.append(
            FormPart(
                options.get(b"name", b"").decode("utf-8", "replace"),
                filename.decode("utf-8", "replace") if filename is not None else None,
                bytes(data),
            )
        )
    return parts


def _form_parts(boundary: bytes | None, body: bytes) -> list[tuple[dict[str, str], bytearray]]:
    if not boundary:
        raise InvalidMultipart("The multipart body has no boundary in its Content-Type.")
    parts = _Parts()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": parts.on_part_begin,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_part_data": parts.on_part_data,
            "on_end": parts.on_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError):
        raise InvalidMultipart("The multipart body is malformed.") from None
    if not parts.ended:
        raise InvalidMultipart("The multipart body is incomplete (no closing boundary).")
    return parts.parts


def _parse_multipart(boundary: bytes | None, body: bytes) -> ClassifyRequest:
    uploads: list[Upload] = []
    top_k: str | None = None
    for headers, data in _form_parts(boundary, body):
        _, options = parse_options_header(headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name in IMAGE_FIELDS:
            uploads.append(
                Upload(filename.decode("utf-8", "replace") if filename else None, bytes(data))
            )
        elif name == "top_k":
            top_k = data.decode("utf-8", "replace")
    if not uploads:
        raise MissingImage('The form has no file in its "image" field.')
    return ClassifyRequest(uploads, top_k, many=len(uploads) > 1)
