"""Unit tests for imagerec.uploads: request bodies in, images out."""

from __future__ import annotations

import base64
import json

import pytest

from imagerec.errors import (
    EmptyInput,
    InvalidArgument,
    InvalidBase64,
    InvalidJson,
    InvalidMultipart,
    MissingImage,
)
from imagerec.uploads import body_bytes, decode_base64, parse_classify_body, parse_top_k

pytestmark = pytest.mark.unit

BOUNDARY = "XyZ123"
PAYLOAD = bytes(range(256)) * 4


def form(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_raw_body_is_the_image_whatever_its_content_type() -> None:
    # Given binary bytes labelled as text, octet-stream, or nothing
    for content_type in ("image/jpeg", "application/octet-stream", "text/plain", None):
        # When parsed / Then the bytes come back untouched, as one upload
        request = parse_classify_body(content_type, PAYLOAD)
        assert [u.data for u in request.uploads] == [PAYLOAD]
        assert not request.many


def test_base64_event_bodies_decode_to_the_exact_bytes() -> None:
    assert body_bytes(base64.b64encode(PAYLOAD).decode(), True) == PAYLOAD
    assert body_bytes("héllo", False) == "héllo".encode()
    assert body_bytes(None, True) == b""
    with pytest.raises(InvalidBase64):
        body_bytes("not*base64", True)


def test_empty_body_is_refused() -> None:
    with pytest.raises(EmptyInput):
        parse_classify_body("image/png", b"")


def test_multipart_gives_each_file_in_order_and_the_top_k_field() -> None:
    body = form(("image", "a.jpg", b"AAA"), ("top_k", None, b"3"), ("image", "b.png", PAYLOAD))
    request = parse_classify_body(f'multipart/form-data; boundary="{BOUNDARY}"', body)
    assert [(u.filename, u.data) for u in request.uploads] == [
        ("a.jpg", b"AAA"),
        ("b.png", PAYLOAD),
    ]
    assert request.top_k == "3"
    assert request.many


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("multipart/form-data", form(("image", "a", b"x")), InvalidMultipart),
        (f"multipart/form-data; boundary={BOUNDARY}", form(("note", None, b"hi")), MissingImage),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            form(("image", "a", b"x"))[:-12],
            InvalidMultipart,
        ),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            b"garbage with no boundary at all",
            InvalidMultipart,
        ),
    ],
    ids=["no-boundary", "no-file", "unterminated", "garbage"],
)
def test_bad_multipart_is_a_client_error(
    content_type: str, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_classify_body(content_type, body)


def test_json_with_base64_image_and_top_k() -> None:
    body = json.dumps({"image": base64.b64encode(PAYLOAD).decode(), "top_k": 7}).encode()
    request = parse_classify_body("application/json; charset=utf-8", body)
    assert request.uploads[0].data == PAYLOAD
    assert request.top_k == 7


def test_json_accepts_data_urls_url_safe_alphabet_and_missing_padding() -> None:
    encoded = base64.urlsafe_b64encode(PAYLOAD[:100]).decode().rstrip("=")
    assert decode_base64(f"data:image/png;base64,{encoded}") == PAYLOAD[:100]


def test_json_image_list_answers_many() -> None:
    one = base64.b64encode(b"one").decode()
    body = json.dumps({"images": [one, {"filename": "two.jpg", "data": one}]}).encode()
    request = parse_classify_body("application/json", body)
    assert request.many
    assert [u.filename for u in request.uploads] == ["images[0]", "two.jpg"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", InvalidJson),
        (b"[1, 2]", InvalidJson),
        (b"{}", MissingImage),
        (b'{"image": ""}', MissingImage),
        (b'{"image": "@@@not base64@@@"}', InvalidBase64),
        (b'{"image": "QUFB", "top_k": [1]}', InvalidArgument),
        (b'{"images": []}', MissingImage),
    ],
)
def test_bad_json_is_a_client_error(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_classify_body("application/json", body)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 5), ("", 5), ("1", 1), (" 20 ", 20), (3, 3), ("-1", -1)]
)
def test_top_k_parses(raw: str | int | None, expected: int) -> None:
    assert parse_top_k(raw, default=5) == expected


@pytest.mark.parametrize("raw", ["abc", "2.5", True, "1e3", "x1"])
def test_top_k_that_is_not_an_integer_is_refused(raw: str | int) -> None:
    with pytest.raises(InvalidArgument, match="top_k"):
        parse_top_k(raw, default=5)
