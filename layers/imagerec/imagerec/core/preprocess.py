"""Pure-numpy image preprocessing: centre crop, TF1-compatible resize, normalisation.

The resize functions reproduce TensorFlow 1's legacy ``resize_bicubic``/``resize_bilinear``
(``align_corners=False``, ``half_pixel_centers=False``) so that a model trained with the
TF1 input pipeline sees the same pixels here without TensorFlow at run time.

A resize is separable: ``out = Wy @ img @ Wx.T`` with one weight matrix per axis. Each
row of those matrices has only 4 (bicubic) or 2 (bilinear) non-zero taps, so they are
cached in that sparse form and applied by gathering rows: for a 4000×3000 photo this
costs a few million multiply-adds instead of billions for the dense product.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

ResizeMethod = Literal["tf1_bicubic", "bilinear"]
NormalizeMode = Literal["lite", "tf", "torch", "caffe", "none"]

_RESIZE_METHODS: tuple[str, ...] = get_args(ResizeMethod)
_NORMALIZE_MODES: tuple[str, ...] = get_args(NormalizeMode)

Float32Array = npt.NDArray[np.float32]

# ImageNet channel statistics: torchvision's (RGB, on [0, 1]) and Caffe's (BGR, on [0, 255]).
_TORCH_MEAN: Float32Array = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD: Float32Array = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CAFFE_BGR_MEAN: Float32Array = np.array([103.939, 116.779, 123.68], dtype=np.float32)

# TF's bicubic kernel is evaluated from a table of this many steps per pixel, so the
# fractional source position is quantised to 1/1024 before the weights are looked up.
_TF_TABLE_SIZE = 1024
_KEYS_A = -0.75  # TF1's legacy cubic coefficient (not the -0.5 of PIL or half-pixel TF2).

_Taps = tuple[npt.NDArray[np.intp], Float32Array]  # per output index: source indices, weights


@dataclass(frozen=True)
class Preprocessing:
    """The input contract of one model: how a decoded RGB photo becomes its input tensor."""

    size: int = 224
    crop_fraction: float = 0.875
    resize: ResizeMethod = "tf1_bicubic"
    mode: NormalizeMode = "lite"

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"Expected a positive integer size, received: {self.size!r}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"Expected crop_fraction in (0, 1], received: {self.crop_fraction!r}")
        if self.resize not in _RESIZE_METHODS:
            raise ValueError(f"Expected resize in {_RESIZE_METHODS}, received: {self.resize!r}")
        if self.mode not in _NORMALIZE_MODES:
            raise ValueError(f"Expected mode in {_NORMALIZE_MODES}, received: {self.mode!r}")

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary, e.g. for a model card or the API's ``/models`` listing."""
        return asdict(self)


def _validate_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"Expected a numpy array, received: {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"Expected an H×W×3 RGB array, received: shape {rgb.shape}")


def center_crop(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """The central square of side ``int(fraction × shorter side)``, as a view (no copy).

    At least one pixel: a 1-pixel-high strip is still an image someone may send.
    """
    _validate_rgb(rgb)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"Expected fraction in (0, 1], received: {fraction!r}")
    height, width = rgb.shape[:2]
    side = max(1, int(fraction * min(height, width)))
    top = (height - side + 1) // 2
    left = (width - side + 1) // 2
    return rgb[top : top + side, left : left + side]


def _legacy_source_positions(in_size: int, out_size: int) -> Float32Array:
    # TF1 legacy mapping, in float32 as TF computes it: src = dst × (in / out).
    scale = np.float32(in_size) / np.float32(out_size)
    return np.arange(out_size, dtype=np.float32) * scale


@functools.lru_cache(maxsize=64)
def _bicubic_taps(in_size: int, out_size: int) -> _Taps:
    """Indices and weights (out_size × 4) of TF1's legacy bicubic resize along one axis."""
    source = _legacy_source_positions(in_size, out_size)
    floor = np.floor(source)
    # Round half to even like lrintf, then read the kernel as TF's table would.
    step = np.rint((source - floor) * np.float32(_TF_TABLE_SIZE)).astype(np.float64)
    t = step / _TF_TABLE_SIZE
    a = _KEYS_A

    def near(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    base = floor.astype(np.intp)[:, None] + np.arange(-1, 3)
    indices = np.clip(base, 0, in_size - 1)  # TF clamps edge taps instead of renormalising
    return indices, weights.astype(np.float32)


@functools.lru_cache(maxsize=64)
def _bilinear_taps(in_size: int, out_size: int) -> _Taps:
    """Indices and weights (out_size × 2) of TF1's legacy bilinear resize along one axis."""
    source = _legacy_source_positions(in_size, out_size)
    floor = np.floor(source)
    lerp = source - floor
    lower = np.minimum(floor.astype(np.intp), in_size - 1)
    upper = np.minimum(np.ceil(source).astype(np.intp), in_size - 1)
    weights = np.stack([1 - lerp, lerp], axis=1).astype(np.float32)
    return np.stack([lower, upper], axis=1), weights


def resize_weights(in_size: int, out_size: int, method: ResizeMethod) -> Float32Array:
    """The dense (out_size × in_size) matrix of one axis of a resize; for tests and docs."""
    taps = _taps(method)(in_size, out_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    np.add.at(matrix, (np.arange(out_size)[:, None], taps[0]), taps[1])
    return matrix


def _taps(method: ResizeMethod) -> Callable[[int, int], _Taps]:
    return _bicubic_taps if method == "tf1_bicubic" else _bilinear_taps


def _resize_rows(rows: np.ndarray, taps: _Taps) -> Float32Array:
    """Resize axis 0 of a 2-D (rows × features) array: ``W @ rows`` with W in tap form."""
    indices, weights = taps
    # Gathering the taps reads only the source rows that contribute, so a large uint8
    # photo is never converted to float as a whole. One batched (1×K)·(K×features)
    # product per output row; the long feature axis keeps the inner loops long.
    gathered = rows[indices].astype(np.float32)
    out: Float32Array = np.matmul(weights[:, None, :], gathered)[:, 0]
    return out


def _swap_axes(pixels: Float32Array) -> Float32Array:
    """(A, B, C) float32 → a contiguous (B, A, C) copy: the first two axes swapped.

    Each pixel's C channels move as one item (a C·4-byte void), so the copy moves a third as
    many items as numpy's strided one: 2.7x faster for a 224 × 350 × 3 array, bit for bit.
    """
    a, b, c = pixels.shape
    item = np.dtype((np.void, 4 * c))
    rows = np.ascontiguousarray(pixels).reshape(a, b * c).view(item).reshape(a, b)
    swapped: Float32Array = np.ascontiguousarray(rows.T).view(np.float32).reshape(b, a, c)
    return swapped


def _resize(img: np.ndarray, size: int, method: ResizeMethod) -> Float32Array:
    _validate_rgb(img)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"Expected a positive integer size, received: {size!r}")
    height, width, channels = img.shape
    taps = _taps(method)
    # Rows first, on the (cheap, usually non-copying) H × (W·3) view of the input.
    tall = _resize_rows(img.reshape(height, width * channels), taps(height, size))
    # Then columns, by transposing the now small intermediate so they become rows.
    wide = _swap_axes(tall.reshape(size, width, channels)).reshape(width, -1)
    out = _resize_rows(wide, taps(width, size)).reshape(size, size, channels)
    return _swap_axes(out)


def resize_tf1_bicubic(img: np.ndarray, size: int) -> Float32Array:
    """Resize H×W×3 to size×size like ``tf.compat.v1.image.resize_bicubic`` (no clipping)."""
    return _resize(img, size, "tf1_bicubic")


def resize_bilinear(img: np.ndarray, size: int) -> Float32Array:
    """Resize H×W×3 to size×size like ``tf.compat.v1.image.resize_bilinear``."""
    return _resize(img, size, "bilinear")


def normalize(x: np.ndarray, mode: NormalizeMode) -> Float32Array:
    """Map 0–255 RGB values to a model's input range; returns a new float32 array."""
    if mode not in _NORMALIZE_MODES:
        raise ValueError(f"Expected mode in {_NORMALIZE_MODES}, received: {mode!r}")
    if not isinstance(x, np.ndarray) or x.ndim < 1 or x.shape[-1] != 3:
        received = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"Expected an array of RGB pixels (…×3), received: {received}")
    pixels: Float32Array = np.asarray(x, dtype=np.float32)
    if mode == "lite":
        return (pixels - np.float32(127.0)) / np.float32(128.0)
    if mode == "tf":
        return pixels / np.float32(127.5) - np.float32(1.0)
    if mode == "torch":
        return (pixels / np.float32(255.0) - _TORCH_MEAN) / _TORCH_STD
    if mode == "caffe":
        return pixels[..., ::-1] - _CAFFE_BGR_MEAN
    return pixels.copy()


def preprocess(rgb: np.ndarray, spec: Preprocessing) -> Float32Array:
    """Decoded uint8 H×W×3 RGB → float32 size×size×3 model input, as ``spec`` says."""
    _validate_rgb(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 RGB array, received: dtype {rgb.dtype}")
    if not isinstance(spec, Preprocessing):
        raise ValueError(f"Expected a Preprocessing, received: {type(spec).__name__}")
    cropped = center_crop(rgb, spec.crop_fraction)
    resized = _resize(cropped, spec.size, spec.resize)
    return normalize(resized, spec.mode)
