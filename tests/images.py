"""Image builders shared by the tests: every input is made here with Pillow, nothing binary
is committed."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


def red_blue(width: int = 32, height: int = 24) -> Image.Image:
    """Left half red, right half blue: solid 16-px blocks survive JPEG well."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width×height but carries (almost) no pixel data."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body)
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def phone_style(path: Path, fmt: str, *, turned: bool = False, quality: int = 90) -> bytes:
    """A photo re-encoded as a phone saves it: HEIF (HEVC) or AVIF.

    ``turned`` stores the pixels sideways with EXIF Orientation 6, as a phone held upright
    does; pillow-heif writes that as HEIF's own irot box, Pillow's AVIF writer as irot too.
    """
    with Image.open(path) as im:
        upright = im.convert("RGB")
    if not turned:
        return encode(upright, fmt, quality=quality)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # ROTATE_270 (tag 6) undoes it
    return encode(stored, fmt, quality=quality, exif=exif.tobytes())


def phone_sized_jpeg(path: Path, quality: int = 97) -> bytes:
    """A 12 MP (4000×3000), about 12 MB JPEG of a photo: upscaled, with sensor-like noise.

    Bigger than the direct-request cap, so only the upload flow can bring it in.
    """
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR))
    noise = np.random.default_rng(12).integers(-10, 11, pixels.shape, dtype=np.int16)
    noisy = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    return encode(Image.fromarray(noisy), "JPEG", quality=quality, subsampling=0)


def coffee(mode: str | None = None, size: tuple[int, int] | None = None) -> Image.Image:
    """The coffee photo (espresso), optionally resized and converted to another mode."""
    from tests.conftest import photo_bytes

    with Image.open(io.BytesIO(photo_bytes("coffee"))) as im:
        im = im.convert("RGB")
        if size:
            im = im.resize(size)
        return im.convert(mode) if mode else im


def exif_rotated_coffee() -> bytes:
    """The coffee photo stored turned, with EXIF orientation 6 to turn it upright again."""
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90° clockwise
    return encode(coffee().transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())


def animated_coffee_gif() -> bytes:
    """A two-frame GIF whose first frame is the coffee photo."""
    frames = [coffee().convert("P"), red_blue(600, 400).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
