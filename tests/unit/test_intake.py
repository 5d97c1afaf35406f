"""Unit tests for imagerec.core.intake: untrusted bytes in, upright RGB array out.

Every input is built here with Pillow (nothing binary is committed). Lossless formats are
checked pixel for pixel; lossy ones (JPEG, lossy WebP) within a small tolerance.
"""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zipfile
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageFile

from imagerec.core import intake
from imagerec.core.errors import (
    CorruptImage,
    EmptyInput,
    ImagerecError,
    ImageTooLarge,
    PayloadTooLarge,
    UnsupportedFormat,
)
from imagerec.core.intake import SUPPORTED_FORMATS, DecodedImage, decode_image, sniff_format
from tests.images import encode, png_declaring, red_blue

pytestmark = pytest.mark.unit

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
WHITE = (255, 255, 255)
ACCEPTED = "Send a JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF."


# --- builders ------------------------------------------------------------------------------


def grey(mode: str, values: list[float], dtype: str) -> Image.Image:
    """A 1-row image of the given single-band mode holding exactly ``values``."""
    array = np.array([values], dtype=dtype)
    return Image.frombytes(mode, (len(values), 1), array.tobytes())


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small valid JPEG with its SOF0 size fields rewritten to width×height."""
    data = bytearray(encode(red_blue(16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    """A minimal GIF with a width×height logical screen and a 1×1 frame."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x4c\x01\x00;"
    )


def pixel(decoded: DecodedImage, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in decoded.pixels[y, x])


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> None:
    diff = max(abs(a - e) for a, e in zip(actual, expected, strict=True))
    assert diff <= tolerance, f"{actual} is not within {tolerance} of {expected}"


def assert_contract(decoded: DecodedImage) -> None:
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8
    assert pixels.ndim == 3
    assert pixels.shape[2] == 3
    assert pixels.flags.c_contiguous
    assert decoded.format in SUPPORTED_FORMATS


# --- sniffing -------------------------------------------------------------------------------

FORMAT_SAMPLES: dict[str, Callable[[], bytes]] = {
    "JPEG": lambda: encode(red_blue(), "JPEG", quality=95),
    "PNG": lambda: encode(red_blue(), "PNG"),
    "WEBP": lambda: encode(red_blue(), "WEBP", lossless=True),
    "GIF": lambda: encode(red_blue(), "GIF"),
    "BMP": lambda: encode(red_blue(), "BMP"),
    "TIFF": lambda: encode(red_blue(), "TIFF"),
    "HEIF": lambda: encode(red_blue(), "HEIF", quality=90),
    "AVIF": lambda: encode(red_blue(), "AVIF", quality=90),
}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        # what an iPhone writes, a HEIF image sequence, a generic-brand still
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF"),
        (b"\x00\x00\x00\x18ftypmsf1\x00\x00\x00\x00msf1hevc", "HEIF"),
        (b"\x00\x00\x00\x10ftypmif1\x00\x00\x00\x00", "HEIF"),
        # AVIF, by its major brand or as a compatible brand behind "mif1"
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "AVIF"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "AVIF"),
        # MP4 and QuickTime video are ISO-BMFF too, and not images
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", None),
        # a brand past the end the box declares does not count
        (b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00heic", None),
    ],
)
def test_sniff_format_reads_iso_bmff_brands(head: bytes, expected: str | None) -> None:
    # Given the leading ftyp box of an ISO-BMFF file
    # When / Then its major and compatible brands decide, never a file name
    assert sniff_format(head + b"\x00" * 32) == expected


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_sniff_format_names_each_supported_format(fmt: str) -> None:
    # Given a file of each format, written by Pillow
    data = FORMAT_SAMPLES[fmt]()
    # When / Then the magic bytes alone identify it
    assert sniff_format(data) == fmt


def test_sniff_format_recognises_big_endian_and_big_tiff() -> None:
    # Given a big-endian TIFF header and a BigTIFF file
    big_tiff = encode(red_blue(), "TIFF", big_tiff=True)
    # When / Then both are TIFF
    assert big_tiff.startswith(b"II+\x00")
    assert sniff_format(big_tiff) == "TIFF"
    assert sniff_format(b"MM\x00*\x00\x00\x00\x08") == "TIFF"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",  # JPEG magic cut short
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"GIF88a",
        b"BM is not a bitmap, it is a sentence.",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"\x00\x00\x01\x00\x01\x00",  # ICO
    ],
)
def test_sniff_format_returns_none_for_lookalikes(data: bytes) -> None:
    # Given bytes that resemble but are not a supported image
    # When / Then nothing is recognised
    assert sniff_format(data) is None


# --- decoding every format ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 6),
        ("JPEG", {"quality": 95, "progressive": True}, 6),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("WEBP", {"quality": 90}, 12),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
        ("TIFF", {"big_tiff": True}, 0),
        ("HEIF", {"quality": 90}, 12),
        ("AVIF", {"quality": 90}, 12),
    ],
)
def test_decode_each_format(fmt: str, params: dict[str, object], tolerance: int) -> None:
    # Given a 32×24 image, red on the left and blue on the right, in this format
    data = encode(red_blue(), fmt, **params)
    # When it is decoded
    decoded = decode_image(data)
    # Then the size, format and colours survive
    assert_contract(decoded)
    assert decoded.pixels.shape == (24, 32, 3)
    assert (decoded.width, decoded.height, decoded.format) == (32, 24, fmt)
    assert_close(pixel(decoded, 4, 12), RED, tolerance)
    assert_close(pixel(decoded, 27, 12), BLUE, tolerance)


def test_decode_returns_rgb_array_without_copy_for_rgb_images() -> None:
    # Given a plain RGB PNG
    data = encode(red_blue(), "PNG")
    # When it is decoded
    decoded = decode_image(data)
    # Then the array is the one numpy built over Pillow's bytes (read-only, not re-copied)
    assert not decoded.pixels.flags.writeable
    assert not decoded.pixels.flags.owndata


def test_pillow_is_restricted_to_the_sniffed_format(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a spy on Image.open
    seen: list[object] = []
    real_open = Image.open

    def spy(fp: io.BytesIO, mode: str = "r", formats: list[str] | None = None) -> object:
        seen.append(formats)
        return real_open(fp, "r", formats)

    monkeypatch.setattr(Image, "open", spy)
    # When a PNG is decoded
    decode_image(encode(red_blue(), "PNG"))
    # Then Pillow was allowed to try PNG only
    assert seen == [["PNG"]]


def test_jpeg_magic_on_png_body_is_corrupt_not_decoded_as_png() -> None:
    # Given a PNG body behind a JPEG signature
    data = b"\xff\xd8\xff" + encode(red_blue(), "PNG")
    # When / Then it is a corrupt JPEG, not a PNG
    with pytest.raises(CorruptImage):
        decode_image(data)


# --- colour modes ---------------------------------------------------------------------------


def _palette_image(transparent_index: int | None) -> bytes:
    im = Image.new("P", (2, 1))
    im.putpalette([*RED, *BLUE])
    im.putpixel((1, 0), 1)
    params = {} if transparent_index is None else {"transparency": transparent_index}
    return encode(im, "PNG", **params)


def _la_image() -> bytes:
    im = Image.new("LA", (3, 1))
    im.putdata([(100, 0), (100, 255), (0, 128)])
    return encode(im, "PNG")


def _pa_tiff() -> bytes:
    im = Image.new("PA", (2, 1))
    im.putpalette([*RED, *BLUE])
    im.putdata([(0, 255), (1, 0)])
    return encode(im, "TIFF")


def _rgba_png() -> bytes:
    im = Image.new("RGBA", (3, 1))
    im.putdata([(255, 0, 0, 255), (255, 0, 0, 128), (0, 0, 255, 0)])
    return encode(im, "PNG")


def _one_bit_png() -> bytes:
    im = Image.new("1", (2, 1))
    im.putpixel((1, 0), 1)
    return encode(im, "PNG")


@pytest.mark.parametrize(
    ("build", "expected", "tolerance"),
    [
        pytest.param(_one_bit_png, [(0, 0, 0), WHITE], 0, id="1"),
        pytest.param(
            lambda: encode(grey("L", [77, 200], "u1"), "PNG"), [(77,) * 3, (200,) * 3], 0, id="L"
        ),
        pytest.param(_la_image, [WHITE, (100,) * 3, (127,) * 3], 1, id="LA-over-white"),
        pytest.param(lambda: _palette_image(None), [RED, BLUE], 0, id="P"),
        pytest.param(lambda: _palette_image(1), [RED, WHITE], 0, id="P-tRNS-over-white"),
        pytest.param(_pa_tiff, [RED, WHITE], 0, id="PA-over-white"),
        pytest.param(_rgba_png, [RED, (255, 127, 127), WHITE], 1, id="RGBA-over-white"),
        pytest.param(
            lambda: encode(grey("L", [0, 90], "u1"), "PNG", transparency=0),
            [WHITE, (90,) * 3],
            0,
            id="L-tRNS-over-white",
        ),
        pytest.param(
            lambda: encode(Image.new("RGB", (2, 1), (0, 0, 0)), "PNG", transparency=(0, 0, 0)),
            [WHITE, WHITE],
            0,
            id="RGB-tRNS-over-white",
        ),
        pytest.param(
            lambda: encode(grey("I;16", [0, 25700, 65535], "<u2"), "PNG"),
            [(0,) * 3, (100,) * 3, (255,) * 3],
            0,
            id="I;16-png-scaled",
        ),
        pytest.param(
            lambda: encode(grey("I;16", [0, 25700, 65535], "<u2"), "PNG", transparency=0),
            [WHITE, (100,) * 3, (255,) * 3],
            0,
            id="I;16-png-tRNS",
        ),
        pytest.param(
            lambda: encode(grey("I;16", [0, 25700, 65535], "<u2"), "TIFF"),
            [(0,) * 3, (100,) * 3, (255,) * 3],
            0,
            id="I;16L-tiff-scaled",
        ),
        pytest.param(
            lambda: encode(grey("I;16B", [0, 25700, 65535], ">u2"), "TIFF"),
            [(0,) * 3, (100,) * 3, (255,) * 3],
            0,
            id="I;16B-tiff-scaled",
        ),
        pytest.param(
            lambda: encode(grey("I", [0, 25700, 65535], "<i4"), "TIFF"),
            [(0,) * 3, (100,) * 3, (255,) * 3],
            0,
            id="I-16-bit-range",
        ),
        pytest.param(
            lambda: encode(grey("I", [0, 17, 200], "<i4"), "TIFF"),
            [(0,) * 3, (17,) * 3, (200,) * 3],
            0,
            id="I-8-bit-range",
        ),
        pytest.param(
            lambda: encode(grey("I", [-1000, 0, 1000], "<i4"), "TIFF"),
            [(0,) * 3, (128,) * 3, (255,) * 3],
            0,
            id="I-stretched",
        ),
        pytest.param(
            lambda: encode(grey("F", [0.0, 0.5, 1.0], "<f4"), "TIFF"),
            [(0,) * 3, (128,) * 3, (255,) * 3],
            0,
            id="F-unit-range",
        ),
        pytest.param(
            lambda: encode(grey("F", [0.0, 100.0, 255.0], "<f4"), "TIFF"),
            [(0,) * 3, (100,) * 3, (255,) * 3],
            0,
            id="F-byte-range",
        ),
        pytest.param(
            lambda: encode(grey("F", [-2.0, 1.0, 4.0, float("nan")], "<f4"), "TIFF"),
            [(0,) * 3, (128,) * 3, (255,) * 3, (85,) * 3],
            0,
            id="F-stretched-nan-as-zero",
        ),
        pytest.param(
            lambda: encode(Image.new("CMYK", (2, 1), (0, 255, 255, 0)), "TIFF"),
            [RED, RED],
            0,
            id="CMYK-tiff",
        ),
        pytest.param(
            lambda: encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95),
            [RED, RED],
            8,
            id="CMYK-jpeg",
        ),
        pytest.param(
            lambda: encode(Image.new("RGB", (2, 1), RED).convert("YCbCr"), "TIFF"),
            [RED, RED],
            3,
            id="YCbCr-tiff",
        ),
        pytest.param(
            lambda: encode(Image.new("LAB", (2, 1), (255, 128, 128)), "TIFF"),
            [WHITE, WHITE],
            2,
            id="LAB-tiff",
        ),
    ],
)
def test_every_mode_becomes_rgb(
    build: Callable[[], bytes], expected: list[tuple[int, ...]], tolerance: int
) -> None:
    # Given a file in a particular colour mode
    data = build()
    # When it is decoded
    decoded = decode_image(data)
    # Then it is RGB with transparency over white and wide values scaled, not clipped
    assert_contract(decoded)
    for x, colour in enumerate(expected):
        assert_close(pixel(decoded, x, 0), colour, tolerance)


def test_source_modes_are_what_the_mode_tests_claim() -> None:
    # Given the files the mode tests build
    cases = {
        "LA": _la_image(),
        "PA": _pa_tiff(),
        "I;16": encode(grey("I;16", [1], "<u2"), "PNG"),
        "I;16B": encode(grey("I;16B", [1], ">u2"), "TIFF"),
        "I": encode(grey("I", [1], "<i4"), "TIFF"),
        "F": encode(grey("F", [1.0], "<f4"), "TIFF"),
        "CMYK": encode(Image.new("CMYK", (16, 16)), "JPEG"),
        "YCbCr": encode(Image.new("YCbCr", (2, 1)), "TIFF"),
        "LAB": encode(Image.new("LAB", (2, 1)), "TIFF"),
    }
    for mode, data in cases.items():
        # When Pillow opens them / Then they really are in that mode (so the tests test it)
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == mode


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("RGBa", (128, 0, 0, 128), RED),  # premultiplied half-red over white → pink
        ("HSV", (0, 255, 255), RED),
        ("RGBX", (0, 0, 255, 0), BLUE),
    ],
)
def test_in_memory_only_modes_become_rgb(
    mode: str, value: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    # Given an image in a mode no supported file format stores
    im = Image.new(mode, (2, 1), value)
    # When it is converted
    rgb = intake._to_rgb_array(im)
    # Then it is RGB; alpha is composited over white
    if mode == "RGBa":
        expected = (255, 127, 127)
    assert_close(tuple(int(v) for v in rgb[0, 0]), expected, 1)
    assert rgb.shape == (1, 2, 3)


# --- EXIF orientation -----------------------------------------------------------------------

# Stored image: red square top-left, green square top-right, 48 wide × 32 high.
# Where each block must be shown for each EXIF Orientation value (per the EXIF spec).
ORIENTATIONS = {
    1: ("top-left", "top-right"),
    2: ("top-right", "top-left"),
    3: ("bottom-right", "bottom-left"),
    4: ("bottom-left", "bottom-right"),
    5: ("top-left", "bottom-left"),
    6: ("top-right", "bottom-right"),
    7: ("bottom-right", "top-right"),
    8: ("bottom-left", "top-left"),
}


def _corner(decoded: DecodedImage, name: str) -> tuple[int, ...]:
    rows, cols = decoded.pixels.shape[:2]
    y = 4 if name.startswith("top") else rows - 5
    x = 4 if name.endswith("left") else cols - 5
    return pixel(decoded, x, y)


def _oriented(fmt: str, orientation: int, width: int = 48, height: int = 32) -> bytes:
    block = min(width, height) // 2
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[:block, :block] = RED
    pixels[:block, -block:] = GREEN
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    params: dict[str, object] = {"quality": 95, "exif": exif.tobytes()}
    if fmt == "JPEG":
        params["subsampling"] = 0
    # pillow-heif turns the EXIF tag into HEIF's irot/imir boxes, as an iPhone stores a
    # portrait photo; Pillow's AVIF writer keeps the EXIF tag.
    return encode(Image.fromarray(pixels), fmt, **params)


def _oriented_jpeg(orientation: int, width: int = 48, height: int = 32) -> bytes:
    return _oriented("JPEG", orientation, width, height)


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "AVIF"])
@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_orientation_is_applied(fmt: str, orientation: int) -> None:
    # Given a 48×32 image, red top-left and green top-right, tagged with this orientation
    data = _oriented(fmt, orientation)
    # When it is decoded
    decoded = decode_image(data)
    # Then the blocks are where the viewer sees them, and 5–8 swap width and height
    red_at, green_at = ORIENTATIONS[orientation]
    assert_close(_corner(decoded, red_at), RED, 12)
    assert_close(_corner(decoded, green_at), GREEN, 12)
    upright = (32, 48) if orientation >= 5 else (48, 32)
    if fmt == "HEIF" and orientation > 1:  # stored as HEIF's own boxes, as phones do
        assert b"irot" in data or b"imir" in data
    assert (decoded.width, decoded.height) == upright
    assert decoded.pixels.shape == (upright[1], upright[0], 3)


def test_broken_exif_is_ignored_not_refused() -> None:
    # Given a JPEG whose APP1 EXIF segment is garbage
    good = encode(red_blue(), "JPEG", quality=95)
    body = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x01\x12\x00\x03" + b"\xee" * 20
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    data = good[:2] + app1 + good[2:]
    # When it is decoded
    decoded = decode_image(data)
    # Then the photo is returned unrotated
    assert decoded.pixels.shape == (24, 32, 3)
    assert_close(pixel(decoded, 4, 12), RED, 6)


# --- multi-frame: first frame only ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF", "PNG"])
def test_animation_or_multipage_takes_the_first_frame(fmt: str) -> None:
    # Given a two-frame file: red, then blue
    first, second = Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)
    params: dict[str, object] = {"save_all": True, "append_images": [second]}
    if fmt == "WEBP":
        params["lossless"] = True
    data = encode(first, fmt, **params)
    with Image.open(io.BytesIO(data)) as im:
        assert getattr(im, "n_frames", 1) == 2
    # When it is decoded
    decoded = decode_image(data)
    # Then only the red first frame is returned
    assert (decoded.pixels == np.array(RED, dtype=np.uint8)).all()


def test_gif_transparency_is_white() -> None:
    # Given a GIF whose palette index 1 is transparent
    im = Image.new("P", (2, 1))
    im.putpalette([*RED, *BLUE])
    im.putpixel((1, 0), 1)
    data = encode(im, "GIF", transparency=1)
    # When it is decoded
    decoded = decode_image(data)
    # Then the transparent pixel is white, not black or blue
    assert pixel(decoded, 0, 0) == RED
    assert pixel(decoded, 1, 0) == WHITE


# --- size limits ----------------------------------------------------------------------------


def test_empty_input_is_refused() -> None:
    # Given no bytes / When decoded / Then EmptyInput
    with pytest.raises(EmptyInput) as caught:
        decode_image(b"")
    assert caught.value.code == "empty_body"


def test_byte_cap() -> None:
    # Given a valid PNG and a cap one byte below its size
    data = encode(red_blue(), "PNG")
    # When decoded with that cap / Then PayloadTooLarge, naming both sizes, exactly
    with pytest.raises(PayloadTooLarge) as caught:
        decode_image(data, max_bytes=len(data) - 1)
    assert caught.value.code == "payload_too_large"
    assert f"{len(data) - 1} bytes" in caught.value.message
    # And at exactly its size it decodes
    assert decode_image(data, max_bytes=len(data)).width == 32


def test_byte_cap_message() -> None:
    # Given 12 MB of bytes and the default 10 MB cap
    data = b"\xff\xd8\xff" + bytes(12_000_000)
    # When / Then the message gives the size and the cap
    with pytest.raises(PayloadTooLarge, match=r"^The file is 12 MB; the limit is 10 MB\.$"):
        decode_image(data)


@pytest.mark.parametrize(
    ("data", "megapixels"),
    [
        (png_declaring(10_000, 10_000), "10000 × 10000 (100 megapixels)"),  # over Pillow's warning
        (png_declaring(7_000, 6_000), "7000 × 6000 (42 megapixels)"),  # over ours, under Pillow's
        (png_declaring(100_000, 100_000), None),  # over Pillow's hard cap (its error path)
        (jpeg_declaring(60_000, 60_000), None),
        (gif_declaring(65_535, 65_535), None),
    ],
)
def test_decompression_bomb_is_refused_before_decoding(
    data: bytes, megapixels: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tiny file declaring a huge canvas, and a record of any pixel decoding
    assert len(data) < 1000
    loads: list[str] = []
    original_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> object:
        loads.append(self.format or "?")
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    # When it is decoded with warnings escalated to errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLarge) as caught:
            decode_image(data)
    # Then it is refused before any pixel is decoded (no 300 MB+ allocation), with a message
    assert loads == []
    assert caught.value.code == "image_too_large"
    assert "the limit is 40 megapixels" in caught.value.message
    if megapixels is not None:
        expected = f"The image is {megapixels}; the limit is 40 megapixels."
        assert caught.value.message == expected


@pytest.mark.parametrize(
    ("max_bytes", "message"),
    [
        (1000, "The file is 1.07 KB; the limit is 1 KB."),
        (1069, "The file is 1,070 bytes; the limit is 1,069 bytes."),
        (500, "The file is 1.07 KB; the limit is 500 bytes."),
    ],
)
def test_small_byte_caps_read_as_people_read_sizes(max_bytes: int, message: str) -> None:
    # Given a 1,070-byte file and a cap of about a kilobyte (IMAGEREC_MAX_BYTES=1000)
    data = b"\xff\xd8\xff" + bytes(1067)
    # When / Then the message says sizes that differ, never "the limit is 0.0 MB"
    with pytest.raises(PayloadTooLarge) as caught:
        decode_image(data, max_bytes=max_bytes)
    assert caught.value.message == message


def _heif_declaring(width: int, height: int) -> bytes:
    """A small real HEIF whose ``ispe`` (image spatial extents) box is rewritten."""
    # 64×64 is a whole number of HEVC coding blocks, so no clean-aperture crop hides ispe.
    data = bytearray(encode(red_blue(64, 64), "HEIF", quality=50))
    at = data.index(b"ispe")
    struct.pack_into(">II", data, at + 8, width, height)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_heif_declaring(8_000, 8_000), "The image is 8000 × 8000 (64 megapixels); the limit"),
        (_heif_declaring(20_000, 20_000), "The image is too large; the limit"),  # Pillow's cap
        # over libheif's own guard, which refuses it while parsing
        (_heif_declaring(60_000, 60_000), "The image is too large; the limit"),
    ],
)
def test_heif_bomb_is_refused_from_its_header(data: bytes, message: str) -> None:
    # Given a small HEIF whose header declares a huge canvas that its data cannot fill
    assert len(data) < 5000
    # When / Then it is too large (a decode attempt would have found it corrupt instead)
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heif_and_avif_pixel_cap_is_checked_before_decoding(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a real 64×48 image and a record of every pixel decode by any Pillow plugin
    data = encode(red_blue(64, 48), fmt, quality=80)
    loads: list[str] = []
    for cls in {type(Image.open(io.BytesIO(data))), ImageFile.ImageFile}:
        original = cls.load

        def recording_load(self: Image.Image, real: Callable[..., object] = original) -> object:
            loads.append(self.format or "?")
            return real(self)

        monkeypatch.setattr(cls, "load", recording_load)
    # When it is decoded with a pixel cap just under its size
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data, max_pixels=64 * 48 - 1)
    # Then it is refused with the declared size and nothing was decoded
    assert caught.value.message == "The image is 64 × 48 (3,072 pixels); the limit is 3,071 pixels."
    assert loads == []
    assert decode_image(data, max_pixels=64 * 48).pixels.shape == (48, 64, 3)


def test_max_pixels_is_inclusive() -> None:
    # Given a 32×24 (768-pixel) image
    data = encode(red_blue(), "PNG")
    # When / Then 768 is allowed and 767 is not
    assert decode_image(data, max_pixels=768).pixels.shape == (24, 32, 3)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=767)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (4000, 10), (10, 4000)])
def test_extreme_aspect_and_tiny_images(width: int, height: int) -> None:
    # Given a 1×1 image or a long strip
    data = encode(Image.new("RGB", (width, height), BLUE), "PNG")
    # When it is decoded
    decoded = decode_image(data)
    # Then the shape is exact
    assert decoded.pixels.shape == (height, width, 3)
    assert pixel(decoded, width - 1, height - 1) == BLUE


@pytest.mark.parametrize(
    "kwargs", [{"max_bytes": 0}, {"max_pixels": -1}, {"min_side": 0}, {"max_bytes": True}]
)
def test_bad_arguments_are_programming_errors(kwargs: dict[str, int]) -> None:
    # Given a valid image but a nonsensical limit / When / Then ValueError (a 500, not a 400)
    with pytest.raises(ValueError, match="Expected"):
        decode_image(encode(red_blue(), "PNG"), **kwargs)


# --- JPEG draft ----------------------------------------------------------------------------


def test_draft_downscales_big_jpeg_when_min_side_given() -> None:
    # Given a 2048×1536 JPEG
    data = encode(red_blue(2048, 1536), "JPEG", quality=90)
    # When decoded with and without min_side=256
    small = decode_image(data, min_side=256)
    full = decode_image(data)
    # Then the draft is 1/4 scale (1/8 would make the short side 192 < 256) ...
    assert small.pixels.shape == (384, 512, 3)
    assert full.pixels.shape == (1536, 2048, 3)
    # ... both report the full size, and colours survive the DCT-domain downscale
    assert (small.width, small.height) == (full.width, full.height) == (2048, 1536)
    assert_close(pixel(small, 10, 10), RED, 6)
    assert_close(pixel(small, 500, 300), BLUE, 6)


def test_draft_respects_exif_rotation() -> None:
    # Given a 1024×512 JPEG tagged Orientation 6 (shown 512 wide × 1024 high)
    data = _oriented_jpeg(6, width=1024, height=512)
    # When decoded with min_side=64
    decoded = decode_image(data, min_side=64)
    # Then it is 1/8 scale and upright, and width/height are the full upright size
    assert decoded.pixels.shape == (128, 64, 3)
    assert (decoded.width, decoded.height) == (512, 1024)
    assert_close(_corner(decoded, "top-right"), RED, 16)


@pytest.mark.parametrize("min_side", [24, 1000])
def test_draft_never_goes_below_min_side(min_side: int) -> None:
    # Given a 32×24 JPEG and a min_side at or above its short side
    data = encode(red_blue(), "JPEG")
    # When / Then it is decoded at full size
    assert decode_image(data, min_side=min_side).pixels.shape == (24, 32, 3)


def test_min_side_is_ignored_for_other_formats() -> None:
    # Given a big PNG / When decoded with min_side / Then full size
    data = encode(red_blue(1024, 768), "PNG")
    assert decode_image(data, min_side=64).pixels.shape == (768, 1024, 3)


# --- corrupt and unsupported input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {}),
        ("PNG", {}),
        ("GIF", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("HEIF", {}),
        ("AVIF", {}),
    ],
)
def test_truncated_halfway_is_corrupt(fmt: str, params: dict[str, object]) -> None:
    # Given a noisy 64×48 image in this format, cut in half
    noise = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt, **params)
    # When / Then it is refused as corrupt, never half-decoded
    with pytest.raises(CorruptImage) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.code == "corrupt_image"
    assert caught.value.message == "The image data is corrupt or truncated."
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat.jpg", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
            "an SVG drawing",
        ),
        (b"<svg width='10' height='10'><rect/></svg>", "an SVG drawing"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML page"),
        (_zip_bytes(), "a ZIP archive or Office document"),
        (gzip.compress(b"hello"), "a gzip archive"),
        (b"just some words\n", "plain text"),
        (b'{"image": "cat.jpg"}', "JSON or other text"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "a video or other media file"),
        (encode(Image.new("RGB", (16, 16)), "ICO"), "an ICO icon"),
        (np.random.default_rng(3).bytes(4096), None),
    ],
)
def test_unsupported_formats_are_named(data: bytes, looks_like: str | None) -> None:
    # Given something that is not one of our raster formats
    # When it is decoded
    with pytest.raises(UnsupportedFormat) as caught:
        decode_image(data)
    # Then the message says what it looks like (when cheap to tell) and what we accept
    detail = f" (looks like {looks_like})" if looks_like else ""
    assert caught.value.message == f"The file is not a supported image{detail}. {ACCEPTED}"
    assert caught.value.code == "unsupported_format"


# --- fuzzing: only ImagerecError may escape -------------------------------------------------


def _fuzz_seeds() -> dict[str, bytes]:
    rgba = Image.fromarray(
        np.random.default_rng(11).integers(0, 256, (12, 16, 4), dtype=np.uint8), "RGBA"
    )
    rgb = rgba.convert("RGB")
    frames = {"save_all": True, "append_images": [rgb.rotate(90)]}
    return {
        "jpeg": encode(rgb, "JPEG"),
        "jpeg-progressive-exif": _oriented_jpeg(6, 16, 16),
        "png": encode(rgba, "PNG"),
        "png-palette": encode(rgb.convert("P"), "PNG", transparency=0),
        "png-16bit": encode(grey("I;16", [0, 999, 65535], "<u2"), "PNG"),
        "webp": encode(rgb, "WEBP"),
        "webp-lossless": encode(rgba, "WEBP", lossless=True),
        "webp-animated": encode(rgb, "WEBP", **frames),
        "gif-animated": encode(rgb, "GIF", **frames),
        "bmp": encode(rgb, "BMP"),
        "bmp-palette": encode(rgb.convert("P"), "BMP"),
        "tiff": encode(rgb, "TIFF"),
        "tiff-lzw": encode(rgba, "TIFF", compression="tiff_lzw"),
        "tiff-float": encode(grey("F", [0.0, 0.5, 1.0], "<f4"), "TIFF"),
        "bigtiff": encode(rgb, "TIFF", big_tiff=True),
        "heif-rotated": _oriented("HEIF", 6, 16, 16),
        "avif-rotated": _oriented("AVIF", 6, 16, 16),
    }


FUZZ_SEEDS = _fuzz_seeds()
FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _decode_or_refuse(data: bytes) -> None:
    """Decode; a refusal must be an ImagerecError, a success must honour the contract."""
    try:
        decoded = decode_image(data)
    except ImagerecError:
        return
    assert_contract(decoded)


@pytest.mark.parametrize("name", sorted(FUZZ_SEEDS))
def test_every_truncation_is_decoded_or_refused_cleanly(name: str) -> None:
    # Given a small valid file
    data = FUZZ_SEEDS[name]
    # When it is cut at every offset / Then each prefix decodes or raises ImagerecError
    for cut in range(len(data)):
        _decode_or_refuse(data[:cut])


@FUZZ_SETTINGS
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    # Given arbitrary bytes / When decoded / Then only ImagerecError escapes
    _decode_or_refuse(data)


MAGICS = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8L",
    b"RIFF\x00\x01\x00\x00WEBPVP8X",
    b"GIF89a",
    b"GIF87a",
    b"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
]


@FUZZ_SETTINGS
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_fuzz_valid_magic_random_body(magic: bytes, body: bytes) -> None:
    # Given a real signature followed by junk / When decoded / Then only ImagerecError escapes
    _decode_or_refuse(magic + body)


@FUZZ_SETTINGS
@given(
    st.sampled_from(sorted(FUZZ_SEEDS)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=12),
)
def test_fuzz_bit_flips(name: str, flips: list[tuple[int, int]]) -> None:
    # Given a small valid file with some bits flipped
    data = bytearray(FUZZ_SEEDS[name])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    # When decoded / Then it decodes or raises ImagerecError, nothing else
    _decode_or_refuse(bytes(data))


def test_decoding_leaves_pillow_global_state_alone() -> None:
    # Given Pillow's process-wide settings before decoding hostile input
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, warnings.filters[:])
    # When a bomb, a truncated file and a valid file are decoded
    for data in (png_declaring(10_000, 10_000), FUZZ_SEEDS["png"][:100], FUZZ_SEEDS["png"]):
        _decode_or_refuse(data)
    # Then nothing global changed
    after = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, warnings.filters[:])
    assert after == before


# --- memory: tiles, a budget read from the header, and our bugs kept ours --------------------

_TRANSPOSES = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _random_image(mode: str, width: int = 23, height: int = 17) -> Image.Image:
    rng = np.random.default_rng(9)
    if mode == "F":
        values = rng.normal(0, 300, (height, width)).astype(np.float32)
        values[3, 4] = np.nan
        return Image.fromarray(values, "F")
    if mode == "I":
        return Image.fromarray(rng.integers(-(2**20), 2**20, (height, width), dtype=np.int32))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65535, (height, width), dtype=np.uint16))
    rgba = Image.fromarray(rng.integers(0, 255, (height, width, 4), dtype=np.uint8))
    return rgba.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F"])
def test_tiled_upright_conversion_equals_whole_frame_conversion(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an image in this mode, and Pillow's own transposes as the reference
    im = _random_image(mode)
    for orientation, method in _TRANSPOSES.items():
        turned = im if method is None else im.transpose(method)
        whole = intake._to_rgb_array(turned)
        # When it is converted in 7-pixel tiles, written straight to their upright place
        monkeypatch.setattr(intake, "_TILE_PIXELS", 7)
        tiled = intake._to_rgb_array(im, orientation)
        monkeypatch.undo()
        # Then every pixel is the one a whole-frame conversion of the turned image gives
        assert tiled.shape == whole.shape
        assert np.array_equal(tiled, whole), (mode, orientation)
        assert tiled.flags.c_contiguous
        assert not tiled.flags.writeable


def test_a_bug_in_our_own_conversion_is_not_blamed_on_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a conversion step of ours that fails as a bug would
    def broken(im: Image.Image, orientation: int = 1) -> np.ndarray:
        raise KeyError("our bug")

    monkeypatch.setattr(intake, "_to_rgb_array", broken)
    # When a valid image is decoded / Then the bug surfaces as itself, not as corrupt_image
    with pytest.raises(KeyError, match="our bug"):
        decode_image(encode(red_blue(), "PNG"))


def test_a_bug_in_our_orientation_code_is_not_blamed_on_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "_upright_view", lambda out, o: out[:, :, :, None])
    with pytest.raises((ValueError, IndexError)):
        decode_image(encode(_random_image("RGB", 3000, 400), "PNG"))


def test_probe_reads_the_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 2000×1000 JPEG, and a record of any pixel decoding
    data = encode(Image.new("RGB", (2000, 1000), RED), "JPEG")
    loads: list[str] = []
    original_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> object:
        loads.append(self.format or "?")
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    # When it is probed, with and without the DCT draft
    whole = intake.probe_image(data)
    drafted = intake.probe_image(data, min_side=300)
    # Then the declared size, the pixels a decode will make and its memory are known
    assert (whole.format, whole.width, whole.height, whole.mode) == ("JPEG", 2000, 1000, "RGB")
    assert whole.decoded_pixels == 2_000_000
    assert drafted.decoded_pixels == 1000 * 500  # 1/2 scale keeps the short side >= 300
    assert whole.decode_bytes > 7 * 2_000_000 > drafted.decode_bytes - intake._TILE_BYTES
    assert loads == []


@pytest.mark.parametrize(
    ("mode", "bytes_per_pixel"), [("L", 4), ("I;16", 5), ("RGB", 7), ("RGBA", 7), ("F", 7)]
)
def test_decode_cost_counts_the_frame_and_the_result(mode: str, bytes_per_pixel: int) -> None:
    data = encode(_random_image(mode, 40, 25), "TIFF")
    header = intake.probe_image(data)
    assert header.decode_bytes == 1000 * bytes_per_pixel + intake._TILE_BYTES


def test_webp_costs_its_decoder_buffers_too() -> None:
    data = encode(_random_image("RGBA", 40, 25), "WEBP", lossless=True)
    assert intake.probe_image(data).decode_bytes == 1000 * (4 + 3 + 8) + intake._TILE_BYTES


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heif_and_avif_probe_and_cost_their_decoder_buffers(fmt: str) -> None:
    # Given a real 64×48 HEIF or AVIF
    data = encode(red_blue(64, 48), fmt, quality=80)
    # When it is probed
    header = intake.probe_image(data)
    # Then its format and size are read, and its cost counts libheif's/libavif's own buffers
    assert (header.format, header.width, header.height) == (fmt, 64, 48)
    assert header.decoded_pixels == 64 * 48
    assert header.decode_bytes == 64 * 48 * (4 + 3 + 6) + intake._TILE_BYTES
    # And a decode budget one byte short refuses it before decoding
    with pytest.raises(ImageTooLarge, match=f"{fmt} .* would take about"):
        decode_image(data, max_decode_bytes=header.decode_bytes - 1)


def test_over_the_memory_budget_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a float TIFF whose decoding would take more than the budget
    data = encode(_random_image("F", 400, 300), "TIFF")
    budget = intake.probe_image(data).decode_bytes - 1
    loads: list[str] = []
    original_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> object:
        loads.append(self.format or "?")
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    # When it is decoded / Then a 413-family error says how much and why, before any pixel
    with pytest.raises(ImageTooLarge, match=r"TIFF \(F\) would take about \d+ MB") as caught:
        decode_image(data, max_decode_bytes=budget)
    assert caught.value.code == "image_too_large"
    assert loads == []
    # And one byte more budget decodes it
    assert decode_image(data, max_decode_bytes=budget + 1).pixels.shape == (300, 400, 3)
