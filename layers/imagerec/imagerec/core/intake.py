"""Intake: untrusted image bytes in, an oriented H×W×3 uint8 RGB array out.

Everything here treats the bytes as hostile. The format is sniffed from magic bytes only,
Pillow is restricted to that one format, the declared size is checked before any pixel is
decoded, and every failure surfaces as an :class:`~imagerec.core.errors.ImagerecError` subclass.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Final

import numpy as np
import pillow_heif
from PIL import ExifTags, Image

from imagerec.core.errors import (
    CorruptImage,
    EmptyInput,
    ImageTooLarge,
    PayloadTooLarge,
    UnsupportedFormat,
)
from imagerec.core.text import human_pixels, human_size, size_over_limit

SUPPORTED_FORMATS: tuple[str, ...] = (
    "JPEG",
    "PNG",
    "WEBP",
    "GIF",
    "BMP",
    "TIFF",
    "HEIF",
    "AVIF",
)
# How people write a format's name, where it is not Pillow's; its media type is image/<name>.
# HEIF is named by what phones save: HEIC (HEVC-coded HEIF).
_DISPLAY_NAMES: Final = {"WEBP": "WebP", "HEIF": "HEIC"}
# Browsers and phones label HEIF photos by their .heic extension.
_MEDIA_TYPES: Final = {"HEIF": "image/heic"}


def format_names() -> list[str]:
    """The accepted formats as people write them: ['JPEG', 'PNG', 'WebP', ...]."""
    return [_DISPLAY_NAMES.get(name, name) for name in SUPPORTED_FORMATS]


def media_types() -> list[str]:
    """The accepted formats' media types: ['image/jpeg', 'image/png', ...]."""
    return [_MEDIA_TYPES.get(name, f"image/{name.lower()}") for name in SUPPORTED_FORMATS]


def _or_list(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} or {items[-1]}" if len(items) > 1 else "".join(items)


_ACCEPTED = f"Send a {_or_list(format_names())}."
_CORRUPT = "The image data is corrupt or truncated."

# What Pillow's parsers raise on malformed input (seen in fuzzing). Listed rather than a bare
# ``except Exception`` so that a bug in our own code is not reported as a bad upload.
_PARSE_ERRORS: Final = (
    OSError,  # includes UnidentifiedImageError and decoder errors ("broken data stream")
    EOFError,
    ValueError,
    SyntaxError,  # Pillow's historical "not a valid file" signal
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    Warning,  # Pillow's parse warnings, should a caller escalate warnings to errors
)

# BITMAPCOREHEADER, BITMAPINFOHEADER, its v2/v3 extensions, OS/2 v2, v4 and v5.
_BMP_DIB_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})

# Pixels converted at a time: a few MB of temporaries, whatever the image's size or mode.
_TILE_PIXELS: Final = 1 << 20
# A tile's temporaries at their largest (a float tile as float32, a mask and float64).
_TILE_BYTES: Final = 24 * _TILE_PIXELS
# Bytes a pixel of Pillow's frame by mode; every other mode takes 4.
_FRAME_BYTES: Final = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}

# Modes Pillow converts to RGBA itself; anything carrying alpha goes through RGBA so it can
# be composited over white.
_ALPHA_MODES: Final = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_SIXTEEN_BIT_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})

# Cheap recognisers for the message only; first match wins. (prefix, offset, description)
_LOOKALIKES: Final[tuple[tuple[bytes, int, str], ...]] = (
    (b"%PDF-", 0, "a PDF document"),
    (b"PK\x03\x04", 0, "a ZIP archive or Office document"),
    (b"PK\x05\x06", 0, "an empty ZIP archive"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"BZh", 0, "a bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", 0, "a Zstandard archive"),
    (b"ustar", 257, "a tar archive"),
    (b"8BPS", 0, "a Photoshop document"),
    (b"\x00\x00\x01\x00", 0, "an ICO icon"),
    (b"\x00\x00\x02\x00", 0, "a CUR cursor"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", 0, "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "a JPEG XL image"),
    (b"\xff\x0a", 0, "a JPEG XL image"),
    (b"qoif", 0, "a QOI image"),
    (b"\x7fELF", 0, "an executable"),
    (b"MZ", 0, "an executable"),
)
# ISO-BMFF "ftyp" brands (major and compatible). HEVC-coded HEIF is what phones write;
# "mif1"/"msf1" are the generic image brands and go to libheif unless an AVIF brand is
# also listed. AVIF goes to Pillow's own plugin (libavif, in Pillow's wheels).
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

# pillow-heif adds a "HEIF" format to Pillow. Its thumbnails are listed (not decoded) so that
# a draft can pick one big enough for the model instead of the whole photo: HEVC has no
# scaled decode, unlike JPEG's DCT. Depth maps and auxiliary images are never used here.
pillow_heif.options.THUMBNAILS = True
pillow_heif.options.DEPTH_IMAGES = False
pillow_heif.options.AUX_IMAGES = False
pillow_heif.register_heif_opener()
_LIBHEIF_LIBAVIF: Final = frozenset({"HEIF", "AVIF"})


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload.

    ``pixels`` is H×W×3 uint8 RGB, C-contiguous and read-only, already upright (EXIF
    orientation, or for HEIF its rotation and mirror boxes, applied) and possibly
    DCT-downscaled (see ``min_side``). ``width`` and ``height`` are the upright size the
    user sees, before any downscale.
    """

    pixels: np.ndarray
    width: int
    height: int
    format: str


def sniff_format(data: bytes) -> str | None:
    """Return the supported format the magic bytes announce, or ``None``.

    Looks at the leading bytes only: a file name or a Content-Type is never trusted.
    """
    head = bytes(data[:32])
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(bytes(data[:_FTYP_READ]))
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    # "BM" alone is two ASCII letters; also demand a known DIB header size.
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_HEADER_SIZES
    ):
        return "BMP"
    # Classic TIFF (42) and BigTIFF (43), little- and big-endian; Pillow reads both.
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    return None


_FTYP_READ: Final = 64  # major brand, minor version and the first compatible brands


def _ftyp_brands(head: bytes) -> list[bytes]:
    """The major and compatible brands of a leading ISO-BMFF ``ftyp`` box."""
    declared = struct.unpack_from(">I", head, 0)[0] if len(head) >= 4 else 0
    end = min(len(head), declared) if declared >= 16 else len(head)
    body = head[8:end]
    brands = [body[0:4]] + [body[i : i + 4] for i in range(8, len(body) - 3, 4)]
    return [brand for brand in brands if len(brand) == 4]


def _sniff_ftyp(head: bytes) -> str | None:
    brands = set(_ftyp_brands(head))
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header says, read without decoding a pixel.

    ``decoded_pixels`` is what decoding will allocate: the declared size, or less for a
    JPEG that will be decoded at 1/2, 1/4 or 1/8 scale (``min_side``).
    """

    format: str
    width: int
    height: int
    mode: str
    decoded_pixels: int
    # The most memory decoding it takes, by :func:`decode_cost`.
    decode_bytes: int


def probe_image(
    data: bytes,
    *,
    max_bytes: int = 10_000_000,
    max_pixels: int = 40_000_000,
    min_side: int | None = None,
    max_decode_bytes: int | None = None,
) -> ImageHeader:
    """Read an upload's format and size, checking the same limits as :func:`decode_image`.

    Cheap (headers only), so a request's whole budget can be checked before any decoding.
    """
    fmt = _check_payload(data, max_bytes, max_pixels, min_side)
    with _opened(data, fmt, max_pixels, min_side) as (im, width, height):
        return _header(im, fmt, width, height, max_decode_bytes)


def decode_cost(im: Image.Image, fmt: str) -> int:
    """The bytes decoding an opened (not loaded) image takes at its peak, from its header.

    Pillow's frame (1, 2 or 4 bytes a pixel by mode) plus our 3-byte RGB result, plus what
    the format's decoder holds beside the frame: libwebp a decoded RGBA frame and its copy
    as ``bytes``; libtiff, for JPEG-compressed or YCbCr data, an RGBA block of rows. The
    factors were measured (ru_maxrss) on 40 MP images of each kind; docs/api.md has them.
    """
    width, height = im.size
    pixels = width * height
    frame = _FRAME_BYTES.get(im.mode, 4)
    extra = 0
    if fmt == "WEBP":
        extra = 8 * pixels
    elif fmt in _LIBHEIF_LIBAVIF:
        # libheif and libavif hold the decoded YCbCr planes and an interleaved RGB(A) copy
        # beside Pillow's frame. Estimated from their buffers (not measured like the others).
        extra = 6 * pixels
    elif fmt == "TIFF":
        tags = getattr(im, "tag_v2", {})
        if tags.get(262) == 6 or tags.get(259) in (6, 7):  # YCbCr, or old/new JPEG
            rows = tags.get(323) or tags.get(278) or height
            extra = 4 * width * min(int(rows), height)
    return pixels * (frame + 3) + extra + _TILE_BYTES


def _header(
    im: Image.Image, fmt: str, width: int, height: int, max_decode_bytes: int | None
) -> ImageHeader:
    cost = decode_cost(im, fmt)
    if max_decode_bytes is not None and cost > max_decode_bytes:
        raise ImageTooLarge(
            f"Decoding this {human_pixels(width * height)} {fmt} ({im.mode}) would take about "
            f"{human_size(cost)} of memory; the limit is {human_size(max_decode_bytes)}."
        )
    return ImageHeader(fmt, width, height, im.mode, im.size[0] * im.size[1], cost)


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 10_000_000,
    max_pixels: int = 40_000_000,
    min_side: int | None = None,
    max_decode_bytes: int | None = None,
) -> DecodedImage:
    """Decode untrusted image bytes to an upright RGB array.

    Args:
        data: The raw upload.
        max_bytes: Refuse larger payloads with :class:`PayloadTooLarge`.
        max_pixels: Refuse images whose *declared* width × height exceeds this, before
            decoding, with :class:`ImageTooLarge`.
        min_side: If given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale in the DCT
            domain, keeping the shorter side at least ``min_side``; a HEIF photo may be
            decoded from its embedded thumbnail instead, when one is a scaled copy of the
            photo (pillow-heif checks its aspect, mode, rotation and colour profile) with both
            sides at least ``min_side``. Other formats ignore it.
        max_decode_bytes: Refuse, before decoding, an image whose decoding would take more
            memory than this (:func:`decode_cost`), with :class:`ImageTooLarge`.

    Colour handling: transparency is composited over white; 16-bit greyscale is scaled by
    1/257; 32-bit integer greyscale is taken as 8-bit if it fits 0–255, as 16-bit if it
    fits 0–65535, else stretched min–max; float greyscale is taken as 0–1 if it fits, as
    0–255 if it fits, else stretched min–max (NaN → 0). Only the first frame of an
    animation or multi-page file is used.

    Memory: Pillow's frame (1, 2 or 4 bytes a pixel by mode) plus the 3-byte RGB result,
    converted and turned upright tile by tile straight into the result, so no conversion
    ever copies the whole frame (at most 7 bytes a decoded pixel, plus a ~1 MP tile).

    Raises:
        EmptyInput, PayloadTooLarge, UnsupportedFormat, ImageTooLarge, CorruptImage.
        ValueError: The keyword arguments themselves are invalid (a programming error).
    """
    fmt = _check_payload(data, max_bytes, max_pixels, min_side)
    with _opened(data, fmt, max_pixels, min_side) as (im, width, height):
        _header(im, fmt, width, height, max_decode_bytes)
        with _pillow_errors(max_pixels, fmt):
            if min_side is not None and fmt == "HEIF":
                # After the header check, on the declared size: a thumbnail is never larger.
                # Not in probe_image, whose budget thus counts the whole photo.
                im.draft("RGB", (min_side, min_side))
            # Decode everything now: Pillow is lazy, and LOAD_TRUNCATED_IMAGES (left False)
            # makes a short file raise here.
            im.load()
        # libheif has already applied HEIF's own irot/imir boxes (pillow-heif then resets
        # the EXIF tag); the HEIF spec makes those boxes, not EXIF, the orientation, so EXIF
        # is applied to every other format only.
        orientation = 1 if fmt == "HEIF" else _orientation(im)
        # Our own code from here on: a bug in it is a 500, never the client's corrupt_image.
        pixels = _to_rgb_array(im, orientation)
    if orientation >= 5:  # the user sees the declared width as the height
        width, height = height, width
    return DecodedImage(pixels=pixels, width=width, height=height, format=fmt)


def _check_payload(data: bytes, max_bytes: int, max_pixels: int, min_side: int | None) -> str:
    """Check the arguments and the bytes before Pillow sees them; return the format."""
    _check_positive("max_bytes", max_bytes)
    _check_positive("max_pixels", max_pixels)
    if min_side is not None:
        _check_positive("min_side", min_side)
    size = len(data)
    if size == 0:
        raise EmptyInput("The request contained no image data.")
    if size > max_bytes:
        shown, limit = size_over_limit(size, max_bytes)
        raise PayloadTooLarge(f"The file is {shown}; the limit is {limit}.")
    fmt = sniff_format(data)
    if fmt is None:
        looks_like = _describe_unsupported(data)
        detail = f" (looks like {looks_like})" if looks_like else ""
        raise UnsupportedFormat(f"The file is not a supported image{detail}. {_ACCEPTED}")
    return fmt


@contextmanager
def _pillow_errors(max_pixels: int, fmt: str) -> Iterator[None]:
    """Map what Pillow raises on hostile bytes to our typed errors. Wraps Pillow calls only."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        # Pillow's hard cap fired before ours (only if max_pixels > ~179 MP, or a GIF
        # frame reaching past its declared screen).
        limit = human_pixels(max_pixels)
        raise ImageTooLarge(f"The image is too large; the limit is {limit}.") from exc
    except _PARSE_ERRORS as exc:
        raise CorruptImage(_CORRUPT) from exc
    except RuntimeError as exc:
        # pillow-heif and Pillow's AVIF plugin report every libheif/libavif failure as a
        # RuntimeError, libheif's own size guard (about 1 gigapixel) included (found by the
        # fuzz tests). For any other format it would be our bug: a 500, not corrupt_image.
        if fmt not in _LIBHEIF_LIBAVIF:
            raise
        if "security limit" in str(exc).lower():
            limit = human_pixels(max_pixels)
            raise ImageTooLarge(f"The image is too large; the limit is {limit}.") from exc
        raise CorruptImage(_CORRUPT) from exc


@contextmanager
def _opened(
    data: bytes, fmt: str, max_pixels: int, min_side: int | None
) -> Iterator[tuple[Image.Image, int, int]]:
    """The image opened as ``fmt`` only, its declared size checked, a JPEG drafted; with
    the declared width and height (a draft shrinks ``im.size``).

    Pillow warns above Image.MAX_IMAGE_PIXELS (~89 MP) and raises above twice that, as a
    process-wide default. Our max_pixels is the limit that counts, so the warning is
    silenced here (not globally) and the error is mapped to ImageTooLarge. So are Pillow's
    "corrupt tag" UserWarnings: they describe client bytes, and the outcome is reported
    anyway (CorruptImage, or a decoded image). Python 3.11's catch_warnings is not
    thread-safe: a race could at worst leave these "ignore" filters installed; a Lambda
    runtime serves one request per process at a time.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        with _pillow_errors(max_pixels, fmt):
            im = Image.open(BytesIO(data), formats=[fmt])
        try:
            width, height = im.size
            _check_pixels(width, height, max_pixels)
            if min_side is not None and fmt == "JPEG":
                with _pillow_errors(max_pixels, fmt):
                    # The shorter side is the same before and after EXIF rotation, so the
                    # draft request need not know the orientation.
                    im.draft("RGB", (min_side, min_side))
            yield im, width, height
        finally:
            im.close()


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected {name} to be a positive int, received: {value!r}")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImage(_CORRUPT)
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width} × {height} ({human_pixels(width * height)}); "
            f"the limit is {human_pixels(max_pixels)}."
        )


def _orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) Orientation, 1–8; 1 when absent or unreadable.

    A broken EXIF block is ignored: better an unrotated photo than a refused one.
    """
    try:
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _PARSE_ERRORS:
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _upright_view(out: np.ndarray, orientation: int) -> np.ndarray:
    """The view of ``out`` (the upright result) in the stored image's own layout.

    Writing stored pixel (x, y) to ``view[y, x]`` lands it where the EXIF Orientation says
    it is shown, so turning the image upright costs no copy. (The same table Pillow's
    ImageOps.exif_transpose uses, as numpy views.)
    """
    views: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda o: o[:, ::-1],  # FLIP_LEFT_RIGHT
        3: lambda o: o[::-1, ::-1],  # ROTATE_180
        4: lambda o: o[::-1],  # FLIP_TOP_BOTTOM
        5: lambda o: o.swapaxes(0, 1),  # TRANSPOSE
        6: lambda o: np.rot90(o, 1),  # ROTATE_270
        7: lambda o: o[::-1, ::-1].swapaxes(0, 1),  # TRANSVERSE
        8: lambda o: np.rot90(o, -1),  # ROTATE_90
    }
    view = views.get(orientation)
    return out if view is None else view(out)


def _tiles(width: int, height: int) -> Iterator[tuple[int, int, int, int]]:
    """Boxes of at most ``_TILE_PIXELS`` covering the image, row-major."""
    tile_width = min(width, _TILE_PIXELS)
    tile_height = max(1, _TILE_PIXELS // tile_width)
    for top in range(0, height, tile_height):
        for left in range(0, width, tile_width):
            yield left, top, min(left + tile_width, width), min(top + tile_height, height)


def _to_rgb_array(im: Image.Image, orientation: int = 1) -> np.ndarray:
    """Convert a loaded Pillow image to a C-contiguous, read-only, upright H×W×3 uint8 array.

    Tile by tile into the result: Pillow's own ``tobytes`` (behind ``np.asarray``) holds two
    copies of its output at once, and a float frame converted whole needs several float64
    copies, so a whole-frame conversion would cost many times the frame.
    """
    width, height = im.size
    mode = im.mode
    plain_rgb = mode == "RGB" and "transparency" not in im.info
    if plain_rgb and orientation == 1 and width * height <= _TILE_PIXELS:
        return np.asarray(im)  # the common case: one copy, as small as the photo
    convert = _tile_converter(im)
    shape = (width, height, 3) if orientation >= 5 else (height, width, 3)
    out = np.empty(shape, dtype=np.uint8)
    view = _upright_view(out, orientation)
    for left, top, right, bottom in _tiles(width, height):
        tile = convert(im.crop((left, top, right, bottom)))
        target = view[top:bottom, left:right]
        target[...] = tile[:, :, np.newaxis] if tile.ndim == 2 else tile
    out.flags.writeable = False
    return out


def _tile_converter(im: Image.Image) -> Callable[[Image.Image], np.ndarray]:
    """How to turn one tile of ``im`` into uint8 grey (H×W) or RGB (H×W×3) pixels."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return np.asarray
    if mode == "L" and "transparency" not in im.info:
        return np.asarray
    if mode in _SIXTEEN_BIT_MODES:
        key = im.info.get("transparency")
        return lambda tile: _sixteen_to_uint8(np.asarray(tile), key)
    if mode == "I":
        low, high = _extrema(im, finite=False)
        return lambda tile: _int_to_uint8(np.asarray(tile), low, high)
    if mode == "F":
        low, high = _extrema(im, finite=True)
        return lambda tile: _float_to_uint8(np.asarray(tile), low, high)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        return _over_white
    # 1, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are right for these.
    try:
        im.crop((0, 0, 1, 1)).convert("RGB")
    except ValueError as exc:
        raise UnsupportedFormat(
            f"The image uses a colour mode ({mode}) that cannot be converted. {_ACCEPTED}"
        ) from exc
    return lambda tile: np.asarray(tile.convert("RGB"))


def _over_white(tile: Image.Image) -> np.ndarray:
    rgba = tile.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, (0, 0), rgba)  # the RGBA image's own alpha is the mask
    return np.asarray(flat)


def _extrema(im: Image.Image, *, finite: bool) -> tuple[float, float]:
    """Min and max of a one-channel image, a tile at a time; with ``finite``, NaN and ±inf
    count as 0 (``(nan, nan)`` when nothing is finite)."""
    low, high = math.inf, -math.inf
    for box in _tiles(*im.size):
        values = np.asarray(im.crop(box))
        if finite:
            good = np.isfinite(values)
            if not good.all():
                low, high = min(low, 0.0), max(high, 0.0)
                values = values[good]
            if values.size == 0:
                continue
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return (low, high) if low <= high else (math.nan, math.nan)


def _sixteen_to_uint8(values: np.ndarray, key: object) -> np.ndarray:
    # Pillow's convert("RGB") clips 16-bit values at 255; scale instead, rounding.
    wide = values.astype(np.uint32)
    grey = ((wide + 128) // 257).astype(np.uint8)
    if isinstance(key, int):  # 16-bit PNG tRNS: one fully transparent grey level
        grey[wide == key] = 255
    return grey


def _int_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """32-bit integer greyscale: 8-bit or 16-bit data in an ``I`` image, else min–max."""
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return ((values.astype(np.int64) + 128) // 257).astype(np.uint8)
    return _stretch(values.astype(np.float64), low, high)


def _float_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float greyscale: 0–1 (the usual float convention), else 0–255, else min–max."""
    if math.isnan(low):  # nothing finite anywhere in the image
        return np.zeros(values.shape, dtype=np.uint8)
    data = np.where(np.isfinite(values), values, 0.0).astype(np.float64)
    if low >= 0.0 and high <= 1.0:
        return np.rint(data * 255.0).astype(np.uint8)
    if low >= 0.0 and high <= 255.0:
        return np.rint(data).astype(np.uint8)
    return _stretch(data, low, high)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _describe_unsupported(data: bytes) -> str | None:
    """A cheap guess at what a non-image upload is, for the error message only."""
    for magic, offset, description in _LOOKALIKES:
        if data[offset : offset + len(magic)] == magic:
            return description
    if data[4:8] == b"ftyp":  # sniff_format took every HEIF and AVIF brand already
        return "a video or other media file"
    if data.startswith(b"RIFF"):
        return "a RIFF media file (audio or video)"
    if data.startswith(b"BM"):
        return None  # a BMP-like header that is not plausible: say nothing
    return _describe_text(bytes(data[:1024]))


def _describe_text(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the 1 KiB boundary; retry without the tail.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in lowered:
        return "an SVG drawing"
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "an HTML page"
    if lowered.startswith("<"):
        return "an HTML or XML document"
    if lowered.startswith(("{", "[")):
        return "JSON or other text"
    if text and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "plain text"
    return None
