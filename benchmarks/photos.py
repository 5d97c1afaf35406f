"""The photos a run classifies: realistic JPEGs made from scikit-image's bundled photos."""

from __future__ import annotations

from pathlib import Path

from benchmarks.plan import Json

SMALL = (640, 480)
BIG = (4000, 3000)
SOURCES = ("astronaut", "coffee", "chelsea")


def make_photos(directory: Path) -> dict[str, list[Path]]:
    """Realistic JPEGs: scikit-image photos upscaled (LANCZOS) with sensor-like grain.

    Upscaling alone gives smooth images that compress far better than camera photos;
    luminance grain (σ 6) plus weaker chroma noise brings a 12 MP q=90 JPEG to ~3.5 MB.
    """
    import numpy as np
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(2026)
    photos: dict[str, list[Path]] = {"small": [], "big": []}
    for name in SOURCES:
        source = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for label, size in (("small", SMALL), ("big", BIG)):
            pixels = np.asarray(source.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
            shape = (size[1], size[0])
            grain = rng.standard_normal((*shape, 1), dtype=np.float32) * 6.0
            chroma = rng.standard_normal((*shape, 3), dtype=np.float32) * 2.0
            noisy = np.clip(pixels + grain + chroma + 0.5, 0, 255).astype(np.uint8)
            path = directory / f"{name}-{size[0]}x{size[1]}.jpg"
            Image.fromarray(noisy).save(path, "JPEG", quality=90)
            photos[label].append(path)
    return photos


def describe_photos(photos: dict[str, list[Path]]) -> Json:
    return {
        label: [{"name": p.name, "bytes": p.stat().st_size} for p in paths]
        for label, paths in photos.items()
    }


def batch_photos(photos: dict[str, list[Path]], count: int = 16) -> list[Path]:
    """Real photos of assorted sizes for batched against single: evaluation photos where they
    exist (every 50th), else this run's 640×480 ones."""
    from benchmarks.accuracy import eval_dir

    folder = eval_dir()
    if folder is None:
        return photos["small"]
    return sorted(folder.iterdir())[::50][:count]
