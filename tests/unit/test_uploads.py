"""Unit tests for imagerec.http.uploads: request bodies in, images out."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagerec.core.errors import (
    EmptyInput,
    ImagerecError,
    InvalidArgument,
    InvalidBase64,
    InvalidJson,
    InvalidMultipart,
    MissingImage,
    TooManyImages,
)
from imagerec.http import uploads
from imagerec.http.uploads import (
    LabelOptions,
    body_bytes,
    decode_base64,
    parse_classify_body,
    parse_header,
    parse_label_options,
    parse_top_k,
)

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


def one_part(disposition: bytes, boundary: str = BOUNDARY) -> bytes:
    """A form of one part whose Content-Disposition is exactly these bytes."""
    return (
        f"--{boundary}\r\nContent-Disposition: ".encode()
        + disposition
        + f"\r\n\r\nAAA\r\n--{boundary}--\r\n".encode()
    )


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


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
    ("raw", "expected"), [(None, 5), ("", 5), ("1", 1), (" 20 ", 20), (3, 3), (-1, -1)]
)
def test_top_k_parses(raw: str | int | None, expected: int) -> None:
    assert parse_top_k(raw, default=5) == expected


@pytest.mark.parametrize(
    "raw",
    # Python's int() takes all of the last six; a query string is not Python.
    ["abc", "2.5", True, "1e3", "x1", "-1", "+3", "1_0", "\u0663", "\uff13", "3\n", "9" * 5000],
)
def test_top_k_that_is_not_ascii_digits_is_refused(raw: str | int) -> None:
    with pytest.raises(InvalidArgument, match="top_k") as caught:
        parse_top_k(raw, default=5)
    # The bad value is echoed, but never at length
    assert len(caught.value.message) < 120


def test_a_huge_json_integer_top_k_is_refused_with_a_short_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_top_k(10**4000, default=5)
    assert len(caught.value.message) < 120


# --- the cases of issue 9: every one a typed 4xx, or a 200 where the input is valid ------


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('form-data; name="image"; filename="猫.png"'.encode(), "猫.png"),
        # RFC 8187's extended form wins over the plain one (RFC 6266)
        (
            b'form-data; name="image"; filename="cat.png"; filename*=UTF-8\'\'%E7%8C%AB.png',
            "猫.png",
        ),
        (b"form-data; name=image; filename*=iso-8859-1'fr'caf%E9.png", "café.png"),
        # An unknown charset: the plain parameter stands
        (b"form-data; name=image; filename=a.png; filename*=koi8-r''%C1", "a.png"),
        # Latin-1 from an old client, quoted specials, a semicolon inside quotes
        (b'form-data; name="image"; filename="caf\xe9.png"', "café.png"),
        (b'form-data; name="image"; filename="a \\"b\\";c.png"', 'a "b";c.png'),
        # Control characters are not echoed back
        (b'form-data; name="image"; filename="a\tb.png"', "ab.png"),
    ],
    ids=["utf8", "rfc8187", "rfc8187-latin1", "unknown-charset", "latin1", "quoted", "control"],
)
def test_multipart_file_names_in_any_encoding_are_read(disposition: bytes, filename: str) -> None:
    # Given a form whose file name is not plain ASCII (curl and browsers send UTF-8)
    # When parsed
    request = parse_classify_body(MULTIPART, one_part(disposition))
    # Then the name is the one the user chose, and the file is there
    assert [(u.filename, u.data) for u in request.uploads] == [(filename, b"AAA")]


def test_a_non_ascii_field_name_is_just_another_field() -> None:
    body = one_part('form-data; name="imáge→"; filename="a.png"'.encode())
    with pytest.raises(MissingImage):
        parse_classify_body(MULTIPART, body)


@pytest.mark.parametrize(
    "boundary",
    ["a" * 71, "a" * 300, "é", "a\x00b", "trailing "],
    ids=["71", "300", "utf8", "nul", "space"],
)
def test_a_boundary_outside_rfc_2046_is_a_400(boundary: str) -> None:
    body = one_part(b'form-data; name="image"', boundary=boundary)
    with pytest.raises(InvalidMultipart, match="boundary"):
        parse_classify_body(f'multipart/form-data; boundary="{boundary}"', body)


def test_a_70_character_boundary_is_fine() -> None:
    boundary = "b" * 70
    body = one_part(b'form-data; name="image"', boundary=boundary)
    assert parse_classify_body(f"multipart/form-data; boundary={boundary}", body).uploads


def test_a_non_ascii_part_header_name_is_a_400() -> None:
    body = f"--{BOUNDARY}\r\nCönt: x\r\n\r\nAAA\r\n--{BOUNDARY}--\r\n".encode()
    with pytest.raises(InvalidMultipart):
        parse_classify_body(MULTIPART, body)


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"image": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001],
    ids=["array", "object"],
)
def test_deeply_nested_json_is_a_400(body: bytes) -> None:
    with pytest.raises(InvalidJson, match="deep"):
        parse_classify_body("application/json", body)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"image": "QUFB", "top_k": ' + b"9" * 5000 + b"}", InvalidJson),  # over int()'s limit
        (b'{"image": "QUFB", "top_k": true}', InvalidArgument),
        (b'{"images": [{"filename": [[1]], "data": "QUFB"}]}', InvalidArgument),
        (b'{"images": "QUFB"}', MissingImage),
        (b'{"images": [{"filename": "a.png"}]}', MissingImage),
        (b"\xff\xfe{}", InvalidJson),
    ],
    ids=["huge-int", "bool-top-k", "filename-not-text", "images-not-list", "no-data", "bad-utf"],
)
def test_odd_json_is_a_typed_client_error(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_classify_body("application/json", body)


def test_json_file_names_are_kept() -> None:
    one = base64.b64encode(b"one").decode()
    body = json.dumps({"images": [{"filename": "猫.png", "data": one}, {"data": one}]}).encode()
    request = parse_classify_body("application/json", body)
    assert [u.filename for u in request.uploads] == ["猫.png", "images[1]"]


def test_thousands_of_json_images_are_refused_before_any_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 3,000 tiny images in one JSON body, and a record of base64 decoding
    decoded: list[str] = []
    original = uploads.decode_base64

    def recording(text: str) -> bytes:
        decoded.append(text)
        return original(text)

    monkeypatch.setattr(uploads, "decode_base64", recording)
    body = json.dumps({"images": ["QUFB"] * 3000}).encode()
    # When parsed with the default limit of 16
    with pytest.raises(TooManyImages) as caught:
        parse_classify_body("application/json", body, max_images=16)
    # Then it is refused, naming both numbers, and nothing was decoded
    assert caught.value.code == "too_many_images"
    assert "3000" in caught.value.message
    assert "16" in caught.value.message
    assert decoded == []


def test_the_image_limit_is_inclusive() -> None:
    body = json.dumps({"images": ["QUFB"] * 16}).encode()
    assert len(parse_classify_body("application/json", body, max_images=16).uploads) == 16
    with pytest.raises(TooManyImages):
        parse_classify_body("application/json", body, max_images=15)


def test_a_form_with_too_many_files_or_parts_is_refused() -> None:
    files = form(*[("image", f"{i}.png", b"x") for i in range(17)])
    with pytest.raises(TooManyImages, match="17 images"):
        parse_classify_body(MULTIPART, files, max_images=16)
    # Thousands of tiny non-file parts stop the parser early
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n'
    chaff = part.encode() * 100_000 + f"--{BOUNDARY}--\r\n".encode()
    with pytest.raises(TooManyImages, match="parts"):
        parse_classify_body(MULTIPART, chaff, max_images=16)


def test_non_string_event_bodies_are_client_errors() -> None:
    with pytest.raises(InvalidArgument):
        body_bytes(["not", "a", "body"], False)


def test_parse_header_reads_parameters() -> None:
    assert parse_header('Multipart/Form-Data; Boundary="a;b"; charset=utf-8') == (
        "multipart/form-data",
        {"boundary": "a;b", "charset": "utf-8"},
    )
    assert parse_header("") == ("", {})
    assert parse_header('x; name="unterminated') == ("x", {"name": '"unterminated'})


# --- the whole layer, fuzzed: only typed errors come out ----------------------------------

_CONTENT_TYPES = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.builds(lambda b: f"multipart/form-data; boundary={b}", st.text(max_size=300)),
    st.sampled_from(["application/json", "application/ld+json", "image/png", MULTIPART]),
)
_DISPOSITIONS = st.one_of(
    st.binary(max_size=120),
    st.builds(
        lambda name, filename: b"form-data; name=" + name + b"; filename=" + filename,
        st.binary(max_size=30),
        st.binary(max_size=30),
    ),
)


@settings(max_examples=150, deadline=None)
@given(content_type=_CONTENT_TYPES, body=st.binary(max_size=400))
def test_any_body_gives_a_request_or_a_typed_error(content_type: str | None, body: bytes) -> None:
    with contextlib.suppress(ImagerecError):
        parse_classify_body(content_type, body, max_images=4)


@settings(max_examples=150, deadline=None)
@given(disposition=_DISPOSITIONS, data=st.binary(max_size=40))
def test_any_part_header_gives_a_request_or_a_typed_error(disposition: bytes, data: bytes) -> None:
    body = (
        f"--{BOUNDARY}\r\nContent-Disposition: ".encode()
        + disposition
        + b"\r\n\r\n"
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    try:
        request = parse_classify_body(MULTIPART, body, max_images=4)
    except ImagerecError:
        return
    assert all(isinstance(u.filename, str | None) for u in request.uploads)


@settings(max_examples=200, deadline=None)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["image", "images", "top_k", "filename", "data", "x"]),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_document_gives_a_request_or_a_typed_error(document: object) -> None:
    with contextlib.suppress(ImagerecError):
        parse_classify_body("application/json", json.dumps(document).encode(), max_images=4)


def test_label_options_come_from_a_form() -> None:
    # Given a form with a file, a threshold and a category field given twice
    body = form(
        ("image", "a.jpg", PAYLOAD),
        ("min_confidence", None, b"0.25"),
        ("include_categories", None, b"animal"),
        ("include_categories", None, b"Food"),
    )
    request = parse_classify_body(f"multipart/form-data; boundary={BOUNDARY}", body)
    # Then they are read, names folded to lower case
    assert parse_label_options({}, request) == LabelOptions(0.25, ("animal", "food"), ())


def test_label_options_come_from_json_and_the_query_wins() -> None:
    document = {
        "image": base64.b64encode(PAYLOAD).decode(),
        "min_confidence": 0.5,
        "exclude_categories": ["person", " vehicle "],
        "include_categories": "animal,plant",
    }
    request = parse_classify_body("application/json", json.dumps(document).encode())
    assert parse_label_options({}, request) == LabelOptions(
        0.5, ("animal", "plant"), ("person", "vehicle")
    )
    query = {"min_confidence": "0.1", "include_categories": "food"}
    assert parse_label_options(query, request) == LabelOptions(
        0.1, ("food",), ("person", "vehicle")
    )


def test_no_label_options_mean_no_filter() -> None:
    request = parse_classify_body("image/png", PAYLOAD)
    assert parse_label_options({}, request) == LabelOptions()
    assert parse_label_options({"min_confidence": "", "include_categories": ""}, request) == (
        LabelOptions()
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"min_confidence": "high"}, "min_confidence to be a number"),
        ({"min_confidence": "inf"}, "min_confidence to be a number"),
        ({"min_confidence": "nan"}, "min_confidence to be a number"),
    ],
)
def test_a_min_confidence_that_is_not_a_number_is_refused(
    query: dict[str, str], message: str
) -> None:
    request = parse_classify_body("image/png", PAYLOAD)
    with pytest.raises(InvalidArgument, match=message):
        parse_label_options(query, request)


@pytest.mark.parametrize(
    "document",
    [
        {"min_confidence": True},
        {"min_confidence": [0.5]},
        {"include_categories": {"animal": 1}},
        {"exclude_categories": ["animal", 3]},
    ],
)
def test_json_options_of_the_wrong_type_are_refused(document: dict[str, object]) -> None:
    body = json.dumps({"image": base64.b64encode(PAYLOAD).decode(), **document}).encode()
    request = parse_classify_body("application/json", body)
    with pytest.raises(InvalidArgument, match="Expected"):
        parse_label_options({}, request)
