"""Turn an HTTP request body into the images it carries: raw bytes, multipart or JSON.

Pure functions over bytes and header values, so the API, the tests and any other front
end share one reading of a request. This is the one parsing layer for client bodies:
whatever bytes and header values arrive, it returns a :class:`ClassifyRequest` or raises
an :class:`~imagerec.core.errors.InvalidInput` (400) or
:class:`~imagerec.core.errors.TooLarge` (413).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from imagerec.core.errors import (
    EmptyInput,
    InvalidArgument,
    InvalidBase64,
    InvalidJson,
    InvalidMultipart,
    InvalidS3Reference,
    InvalidUploadId,
    MissingImage,
    TooManyImages,
    shown,
)

IMAGE_FIELDS = frozenset({"image", "images", "file", "files"})
# Options a form or JSON body may carry besides top_k (Rekognition's names where they fit).
LABEL_OPTIONS = ("min_confidence", "include_categories", "exclude_categories")
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", re.ASCII)
# RFC 2046 §5.1.1: 1–70 characters, not ending in a space. Its alphabet is narrower than
# printable ASCII, but every client seen in the wild fits this and nothing longer parses.
_BOUNDARY = re.compile(r"[ -~]{0,69}[!-~]", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)
# RFC 8187 extended parameter value: charset'language'percent-encoded.
_EXTENDED = re.compile(r"(?P<charset>[A-Za-z0-9!#$&+^`{}~-]*)'[A-Za-z0-9-]*'(?P<value>.*)", re.S)
_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "latin-1"}
_OTHER_FIELDS = 8  # form parts allowed besides the images
# An upload form: S3's presigned-POST fields (under ten) and the file, with room to spare.
_UPLOAD_FORM_PARTS = 32


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
    # LABEL_OPTIONS found in a form or JSON body, as sent; the query string wins over them.
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelOptions:
    """min_confidence and the category filters as a client sent them, parsed, not yet checked."""

    min_confidence: float = 0.0
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()


def body_bytes(body: object, is_base64_encoded: bool) -> bytes:
    """The raw body. Powertools' ``decoded_body`` returns text, which breaks binary bodies."""
    if body is None or body == "":
        return b""
    if not isinstance(body, str):  # only a hand-written event can do this
        raise InvalidArgument(
            f"Expected the event body to be a string, received: {type(body).__name__}"
        )
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
    """The integer a client sent, in ASCII digits; its range is ``check_top_k``'s to check.

    ``int()`` alone would also take "٣", "1_0" and "+3": a query string is not Python.
    """
    if raw is None or raw == "":
        return default
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**9:
        return raw
    text = raw.strip(" \t") if isinstance(raw, str) else None
    if text is None or not _DIGITS.fullmatch(text):
        raise InvalidArgument(
            f"Expected top_k to be a whole number in digits 0-9, received: {shown(raw)}"
        )
    return int(text)


def parse_min_confidence(raw: object) -> float:
    """A number; its range (0-1) is the classifier's to check."""
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InvalidArgument(f"Expected min_confidence to be a number, received: {shown(raw)}")
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(
            f"Expected min_confidence to be a number, received: {shown(raw)}"
        ) from None
    if not math.isfinite(value):
        raise InvalidArgument(f"Expected min_confidence to be a number, received: {shown(raw)}")
    return value


def parse_categories(raw: object, option: str) -> tuple[str, ...]:
    """Category names: a comma-separated string (query, form) or a JSON list of strings."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidArgument(
            f"Expected {option} to be a list of category names, received: {shown(raw)}"
        )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(
                f"Expected {option} to hold category names, received: {shown(item)}"
            )
        if item.strip():
            names.append(item.strip().lower())
    return tuple(names)


def parse_label_options(query: Mapping[str, str], request: ClassifyRequest) -> LabelOptions:
    """min_confidence and the category filters; the query string wins over the body."""

    def raw(name: str) -> object:
        return query[name] if name in query else request.options.get(name)

    return LabelOptions(
        parse_min_confidence(raw("min_confidence")),
        parse_categories(raw("include_categories"), "include_categories"),
        parse_categories(raw("exclude_categories"), "exclude_categories"),
    )


def parse_classify_body(
    content_type: str | None, body: bytes, *, max_images: int | None = None
) -> ClassifyRequest:
    """Read a classify request body; refuse more than ``max_images`` before decoding any."""
    if not body:
        raise EmptyInput("The request body is empty: send an image.")
    media, params = parse_header(content_type or "")
    if media == "multipart/form-data":
        request = _parse_multipart(params.get("boundary"), body, max_images)
    elif media == "application/json" or media.endswith("+json"):
        request = _parse_json(body, max_images)
    else:
        # Anything else is the image itself; its bytes, not its Content-Type, say what it is.
        request = ClassifyRequest([Upload(None, body)])
    return request


def parse_header(value: str) -> tuple[str, dict[str, str]]:
    """A header value and its parameters (RFC 9110 §5.6.6), never raising.

    ``form-data; name="image"; filename="猫.png"`` → ``("form-data", {"name": "image",
    "filename": "猫.png"})``. The value is lower-cased, parameter names too; quoted strings
    are unescaped; ``key*=utf-8''%E7%8C%AB.png`` (RFC 8187) wins over ``key=``, as RFC 6266
    says for file names; the first of a repeated parameter wins.
    """
    segments = _split_params(value)
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for segment in segments[1:]:
        key, equals, raw = segment.partition("=")
        key = key.strip().lower()
        raw = raw.strip()
        if not equals or not key:
            continue
        if key.endswith("*"):
            decoded = _extended_value(raw)
            if decoded is not None:
                extended.setdefault(key[:-1], decoded)
            continue
        params.setdefault(key, _unquote(raw))
    return segments[0].strip().lower(), {**params, **extended}


def _split_params(value: str) -> list[str]:
    """Split on the semicolons that are not inside a quoted string."""
    segments: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            segments.append("".join(current))
            current = []
            continue
        current.append(char)
    segments.append("".join(current))
    return segments


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.S)
    return raw


def _extended_value(raw: str) -> str | None:
    match = _EXTENDED.fullmatch(_unquote(raw))
    charset = _CHARSETS.get(match["charset"].lower()) if match else None
    if match is None or charset is None:
        return None  # an unknown charset: fall back to the plain parameter
    return unquote(match["value"], encoding=charset, errors="replace")


def _check_count(count: int, max_images: int | None) -> None:
    if max_images is not None and count > max_images:
        raise TooManyImages(
            f"The request carries {count} images; the limit is {max_images} per request."
        )


def _parse_json(body: bytes, max_images: int | None) -> ClassifyRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("The request body is not valid JSON.") from None
    except RecursionError:
        raise InvalidJson("The request body nests JSON too deeply.") from None
    if not isinstance(document, dict):
        raise InvalidJson('Expected a JSON object like {"image": "<base64>"}.')
    top_k = document.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, str))):
        raise InvalidArgument(f"Expected top_k to be an integer, received: {shown(top_k)}")
    options = {name: document[name] for name in LABEL_OPTIONS if name in document}
    sources = [name for name in ("image", "images", "upload", "s3") if name in document]
    if len(sources) > 1:
        raise InvalidArgument(
            f"Expected one of image, images, upload or s3, received: {', '.join(sources)}"
        )
    # None would read as "not given" below; the id and the reference are checked in full
    # where they are used (imagerec.http.storage).
    if "upload" in document:
        if document["upload"] is None:
            raise InvalidUploadId('Expected "upload" to be an id from POST /api/uploads.')
        return ClassifyRequest([], top_k, upload=document["upload"], options=options)
    if "s3" in document:
        if document["s3"] is None:
            raise InvalidS3Reference('Expected "s3" to be {"bucket": "...", "key": "..."}.')
        return ClassifyRequest([], top_k, s3=document["s3"], options=options)
    if "images" in document:
        images = document["images"]
        if not isinstance(images, list) or not images:
            raise MissingImage('Expected "images" to be a non-empty list of base64 strings.')
        _check_count(len(images), max_images)  # before any base64 is decoded
        uploads = [_json_image(item, i) for i, item in enumerate(images)]
        return ClassifyRequest(uploads, top_k, many=True, options=options)
    image = document.get("image")
    if not image:
        raise MissingImage(
            'The JSON has no image: send {"image": "<base64>"}, {"upload": "<id>"} '
            'or {"s3": {"bucket": "...", "key": "..."}}.'
        )
    return ClassifyRequest([_json_image(image, None)], top_k, options=options)


def _json_image(item: object, index: int | None) -> Upload:
    name: str | None = None if index is None else f"images[{index}]"
    if isinstance(item, dict):
        given = item.get("filename")
        if given is not None and not isinstance(given, str):
            raise InvalidArgument(f"Expected filename to be a string, received: {shown(given)}")
        name = _clean_filename(given) or name
        item = item.get("data") or item.get("image")
    if not isinstance(item, str) or not item:
        raise MissingImage("Expected each image as a base64 string.")
    return Upload(name, decode_base64(item))


def _clean_filename(name: str | None) -> str | None:
    """A file name as the user chose it, minus control characters (it is echoed back)."""
    if not name:
        return None
    cleaned = "".join(ch for ch in name if unicodedata.category(ch) != "Cc")
    return cleaned or None


def _header_text(raw: bytes) -> str:
    """Form part headers are UTF-8 in browsers and curl (RFC 7578); older clients Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _TooManyParts(Exception):
    pass


class _Parts:
    """Collects form parts from python-multipart's streaming callbacks."""

    def __init__(self, max_parts: int | None) -> None:
        self.max_parts = max_parts
        self.parts: list[tuple[dict[str, str], bytearray]] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()

    def on_part_begin(self) -> None:
        # Stop a form of thousands of tiny parts early: its headers are parsed byte by byte.
        if self.max_parts is not None and len(self.parts) >= self.max_parts:
            raise _TooManyParts
        self.parts.append(({}, bytearray()))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        name = _header_text(bytes(self._field)).strip().lower()
        self.parts[-1][0].setdefault(name, _header_text(bytes(self._value)))
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
    media, params = parse_header(content_type or "")
    if media != "multipart/form-data":
        raise InvalidMultipart("Expected a multipart/form-data body.")
    try:
        found = _form_parts(params.get("boundary"), body, _UPLOAD_FORM_PARTS)
    except _TooManyParts:
        raise InvalidMultipart(
            f"The upload form has more than {_UPLOAD_FORM_PARTS} parts."
        ) from None
    parts = []
    for headers, data in found:
        _, options = parse_header(headers.get("content-disposition", ""))
        parts.append(FormPart(options.get("name", ""), options.get("filename"), bytes(data)))
    return parts


def _form_parts(
    boundary: str | None, body: bytes, max_parts: int | None
) -> list[tuple[dict[str, str], bytearray]]:
    """A form's parts (headers, data), at most ``max_parts`` (else :class:`_TooManyParts`)."""
    if not boundary:
        raise InvalidMultipart("The multipart body has no boundary in its Content-Type.")
    if not _BOUNDARY.fullmatch(boundary):
        raise InvalidMultipart(
            "Expected a multipart boundary of 1-70 printable ASCII characters, received: "
            f"{shown(boundary)}"
        )
    parts = _Parts(max_parts)
    try:
        parser = MultipartParser(
            boundary.encode("ascii"),
            {
                "on_part_begin": parts.on_part_begin,
                "on_header_field": parts.on_header_field,
                "on_header_value": parts.on_header_value,
                "on_header_end": parts.on_header_end,
                "on_part_data": parts.on_part_data,
                "on_end": parts.on_end,
            },
        )
        parser.write(body)
        parser.finalize()
    except FormParserError:  # MultipartParseError and the constructor's own checks
        raise InvalidMultipart("The multipart body is malformed.") from None
    if not parts.ended:
        raise InvalidMultipart("The multipart body is incomplete (no closing boundary).")
    return parts.parts


def _parse_multipart(boundary: str | None, body: bytes, max_images: int | None) -> ClassifyRequest:
    # Room for a few other fields (top_k) besides the images.
    max_parts = None if max_images is None else max_images + _OTHER_FIELDS
    try:
        parts = _form_parts(boundary, body, max_parts)
    except _TooManyParts:
        raise TooManyImages(
            f"The form has more than {max_parts} parts; the limit is {max_images} "
            "images per request."
        ) from None
    uploads: list[Upload] = []
    top_k: str | None = None
    fields: dict[str, object] = {}
    for headers, data in parts:
        _, options = parse_header(headers.get("content-disposition", ""))
        name = options.get("name", "")
        if name in IMAGE_FIELDS:
            uploads.append(Upload(_clean_filename(options.get("filename")), bytes(data)))
        elif name == "top_k" and top_k is None:
            top_k = _header_text(bytes(data))
        elif name in LABEL_OPTIONS:
            value = _header_text(bytes(data))
            # A category field may repeat: "-F include_categories=animal -F ...=food".
            previous = fields.get(name)
            fields[name] = f"{previous},{value}" if previous and name != "min_confidence" else value
    if not uploads:
        raise MissingImage('The form has no file in its "image" field.')
    _check_count(len(uploads), max_images)
    return ClassifyRequest(uploads, top_k, many=len(uploads) > 1, options=fields)
