"""A small stand-in for the classifier, so the API's tests run in milliseconds without a built
model. It is no mock: it decodes with the real intake (the same limits and errors) and answers
with the colour names nearest the image's mean colour, so a test can tell images apart."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from imagerec.core.errors import ImagerecError, InvalidArgument
from imagerec.core.hierarchy import NO_FILTER, LabelFilter, check_filter, summarise_classes
from imagerec.core.intake import ImageHeader, decode_image, probe_image
from imagerec.core.settings import Settings
from imagerec.models.classifier import (
    Classification,
    ImageInfo,
    Prediction,
    Span,
    top_k_predictions,
)

# 24 colours: enough labels for the API's largest top_k (20).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "black": (0, 0, 0),
    "white": (255, 255, 255), "grey": (128, 128, 128), "orange": (255, 165, 0),
    "purple": (128, 0, 128), "brown": (139, 69, 19), "pink": (255, 192, 203),
    "lime": (0, 255, 0), "navy": (0, 0, 128), "teal": (0, 128, 128), "olive": (128, 128, 0),
    "maroon": (128, 0, 0), "silver": (192, 192, 192), "gold": (255, 215, 0),
    "beige": (245, 245, 220), "coral": (255, 127, 80), "indigo": (75, 0, 130),
    "violet": (238, 130, 238),
}  # fmt: skip
LABELS = tuple(PALETTE)
_COLOURS = np.array(list(PALETTE.values()), dtype=np.float64)


def _no_span(name: str) -> AbstractContextManager[object]:
    return nullcontext()


class StandInClassifier:
    name = "stand-in"
    runtime = "colour"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(threads=1)
        self.warm = True
        self.calls = 0

    def check_top_k(self, top_k: int) -> int:
        limit = min(self.settings.max_top_k, len(LABELS))
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limit:
            raise InvalidArgument(f"Expected top_k between 1 and {limit}, received: {top_k!r}")
        return top_k

    @property
    def categories(self) -> tuple[str, ...]:
        return ()  # colours have no familiar categories, as a custom labels file has none

    def check_filter(
        self,
        min_confidence: float = 0.0,
        include: tuple[str, ...] | frozenset[str] = (),
        exclude: tuple[str, ...] | frozenset[str] = (),
    ) -> LabelFilter:
        return check_filter(min_confidence, include, exclude, self.categories)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        mean = pixels.reshape(-1, 3).mean(axis=0)
        logits = -np.linalg.norm(_COLOURS - mean, axis=1) / 16
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def _limits(self, max_bytes: int | None = None) -> dict[str, int]:
        settings = self.settings
        return {
            "max_bytes": max_bytes or settings.max_bytes,
            "max_pixels": settings.max_pixels,
            "max_decode_bytes": settings.max_decode_bytes,
        }

    def probe(self, data: bytes, *, max_bytes: int | None = None) -> ImageHeader:
        return probe_image(data, **self._limits(max_bytes))

    def classify(
        self,
        data: bytes,
        top_k: int = 5,
        *,
        label_filter: LabelFilter = NO_FILTER,
        span: Span = _no_span,
        max_bytes: int | None = None,
    ) -> Classification:
        top_k = self.check_top_k(top_k)
        self.calls += 1
        with span("decode"):
            image = decode_image(data, **self._limits(max_bytes))
        probabilities = self.probabilities(image.pixels)
        predictions: list[Prediction] = top_k_predictions(
            probabilities,
            LABELS,
            top_k,
            min_confidence=label_filter.min_confidence,
        )
        return Classification(
            model=self.name,
            runtime=self.runtime,
            predictions=predictions,
            # As a model with its own labels: the top class, when sure enough on its own.
            summary=summarise_classes(
                probabilities,
                LABELS,
                max(self.settings.summary_threshold or 0.6, label_filter.min_confidence),
            ),
            image=ImageInfo(image.width, image.height, image.format),
            timing_ms={"decode": 0.0, "preprocess": 0.0, "inference": 0.0, "total": 0.0},
        )

    def classify_many(
        self,
        images: Sequence[bytes],
        top_k: int = 5,
        *,
        label_filter: LabelFilter = NO_FILTER,
        span: Span = _no_span,
        max_bytes: int | None = None,
    ) -> list[Classification | ImagerecError]:
        top_k = self.check_top_k(top_k)
        results: list[Classification | ImagerecError] = []
        for data in images:
            try:
                results.append(
                    self.classify(
                        data, top_k, label_filter=label_filter, span=span, max_bytes=max_bytes
                    )
                )
            except ImagerecError as error:
                results.append(error)
        return results

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "runtime": self.runtime, "num_labels": len(LABELS)}
