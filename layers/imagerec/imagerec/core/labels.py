"""Class names: the bundled ImageNet-1k list, or a user's labels file.

``data/imagenet_labels.txt`` holds torchvision's ``_IMAGENET_CATEGORIES`` (torchvision
0.29.1), one name per line in class-index order. It ships inside the package; nothing is
fetched at run time.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from imagerec.core.errors import ModelError

IMAGENET_CLASSES = 1000


def _parse(text: str, source: str) -> tuple[str, ...]:
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ModelError(
                f"Expected a label on every line of {source}, received: blank line {number}"
            )
        if line != line.strip():
            raise ModelError(
                f"Expected no surrounding whitespace in {source}, "
                f"received: {line!r} on line {number}"
            )
    if not lines:
        raise ModelError(f"Expected at least one label in {source}, received: an empty file")
    return tuple(lines)


@functools.cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (read once, then cached)."""
    text = resources.files("imagerec").joinpath("data", "imagenet_labels.txt").read_text("utf-8")
    labels = _parse(text, "imagenet_labels.txt")
    if len(labels) != IMAGENET_CLASSES:
        raise ModelError(f"Expected {IMAGENET_CLASSES} ImageNet labels, received: {len(labels)}")
    return labels


def load_labels(path: Path) -> tuple[str, ...]:
    """A user's labels file: UTF-8, one class name per line, index order, no blank lines."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"Expected a readable UTF-8 labels file, received: {error}") from error
    return _parse(text, str(path))
