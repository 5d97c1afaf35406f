"""The classifier: image bytes in, ranked labels out. The public Python API."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from imagerec.core.errors import ConfigError, ImagerecError, InvalidArgument, ModelNotBuilt
from imagerec.core.hierarchy import (
    NO_FILTER,
    CategoryScore,
    Hierarchy,
    LabelFilter,
    Summary,
    SummaryThresholds,
    check_filter,
    imagenet_hierarchy,
    summarise_classes,
)
from imagerec.core.intake import ImageHeader, decode_image, probe_image
from imagerec.core.labels import imagenet_labels
from imagerec.core.memory import keep_freed_memory
from imagerec.core.preprocess import preprocess
from imagerec.core.runtimes import KerasRuntime, LiteRTRuntime, Runtime
from imagerec.core.settings import RUNTIMES, Settings
from imagerec.core.text import with_article
from imagerec.models.registry import (
    Artefact,
    build_artefact,
    find_artefact,
    get_spec,
    is_custom_model,
    measured_summary_thresholds,
    published_top1,
)


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float
    # Familiar categories above the class, nearest first ("butterfly", "insect", "animal").
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class Classification:
    model: str
    runtime: str
    predictions: list[Prediction]
    image: ImageInfo
    timing_ms: dict[str, float] = field(default_factory=dict)
    # The most specific class or category the model is sure enough of, or None.
    summary: Summary | None = None
    # Broad categories (animal, food, vehicle...) with summed scores, best first.
    categories: list[CategoryScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model, "runtime": self.runtime},
            # "phrase" is what a sentence says ("a dog"), so no client writes the a/an rule.
            "summary": (
                {**asdict(self.summary), "phrase": with_article(self.summary.label)}
                if self.summary
                else None
            ),
            "predictions": [
                {
                    "index": p.index,
                    "label": p.label,
                    "score": p.score,
                    "phrase": with_article(p.label),
                    "parents": list(p.parents),
                }
                for p in self.predictions
            ],
            "categories": [asdict(c) for c in self.categories],
            "image": asdict(self.image),
            "timing_ms": self.timing_ms,
        }


@dataclass(frozen=True)
class Labelling:
    """What the probabilities say, for people: predictions, summary and categories."""

    predictions: list[Prediction]
    summary: Summary | None
    categories: list[CategoryScore]


DRAFT_FACTOR = 2
# Images per interpreter call in ``classify_many``. LiteRT's XNNPACK gains ~10 % a photo at
# batch 4 on 2 threads and nothing at 1 thread; larger batches only cost memory (an arena
# per image) and lose the cache (measured in docs/benchmarks.md, "batch against single").
BATCH_SIZE = 4

Span = Callable[[str], AbstractContextManager[object]]


def _no_span(name: str) -> AbstractContextManager[object]:
    return nullcontext()


def top_k_predictions(
    probabilities: np.ndarray,
    labels: tuple[str, ...],
    k: int,
    *,
    allowed: np.ndarray | None = None,
    min_confidence: float = 0.0,
    parents: tuple[tuple[str, ...], ...] | None = None,
) -> list[Prediction]:
    """The k most probable (allowed) classes at or above min_confidence, best first.

    Ties are broken by class index; ``parents`` gives each class its familiar categories.
    """
    if probabilities.ndim != 1 or probabilities.shape[0] != len(labels):
        raise ValueError(
            f"Expected a vector of {len(labels)} probabilities, received: {probabilities.shape}"
        )
    # Classes a filter leaves out rank below every real probability, then are dropped.
    ranked = probabilities if allowed is None else np.where(allowed, probabilities, -1.0)
    k = min(k, ranked.shape[0])
    # argpartition is O(C); only the k winners get sorted.
    best = np.argpartition(-ranked, k - 1)[:k]
    best = best[np.lexsort((best, -ranked[best]))]
    return [
        Prediction(
            int(i),
            labels[i],
            round(float(probabilities[i]), 6),
            parents[i] if parents is not None else (),
        )
        for i in best
        if ranked[i] >= 0 and ranked[i] >= min_confidence
    ]


@dataclass
class _Prepared:
    """One image on its way through ``classify_many``: its input tensor and its times."""

    info: ImageInfo
    tensor: np.ndarray
    decode_s: float
    preprocess_s: float
    inference_s: float = 0.0
    probabilities: np.ndarray | None = None


def _chunks(items: list[_Prepared], size: int) -> list[list[_Prepared]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Classifier:
    """A loaded model with the runtime that serves it."""

    def __init__(
        self,
        artefact: Artefact,
        runtime: Runtime,
        settings: Settings,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected a positive integer batch_size, received: {batch_size!r}")
        self.batch_size = batch_size
        self.artefact = artefact
        self.name = artefact.manifest.name
        self.preprocessing = artefact.manifest.preprocessing
        self.labels = artefact.labels()
        self.settings = settings
        self._runtime = runtime
        self.warm = False
        # Large JPEGs decode at 1/2, 1/4 or 1/8 scale (DCT domain), the shorter side kept at
        # least twice what the crop needs (512 px for 224): a 12 MP photo decodes at 1/4, in
        # 45 % of the full decode's time. On 150 evaluation photos upscaled to 12 MP
        # (benchmarks/draft.py, docs/benchmarks.md) its top-1 agreed with the photo as taken
        # on 97 %, the full decode's on 93 %: TF1's bicubic resize does not antialias, so
        # 3000 px to 224 in one step aliases, and the DCT scale filters. 1/8 (256 px) did as
        # well on those but flips a reference photo of 512 px (grace_hopper); under 1024 px
        # a photo is decoded whole, as the reference recipe does.
        needed = round(self.preprocessing.size / self.preprocessing.crop_fraction)
        self.draft_min_side = DRAFT_FACTOR * needed
        # Familiar categories exist for ImageNet-1k's labels; another label set has none.
        self.hierarchy: Hierarchy | None = (
            imagenet_hierarchy() if self.labels == imagenet_labels() else None
        )
        self.summary_thresholds = summary_thresholds(self.name, settings)

    @property
    def runtime(self) -> str:
        return self._runtime.name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """N×S×S×3 float32, already preprocessed → N×C probabilities."""
        return self._runtime.predict(batch)

    def prepare(self, data: bytes) -> np.ndarray:
        """Image bytes → the model's input for one image (S×S×3 float32), as ``classify``
        makes it; stack several for ``predict``."""
        image = decode_image(
            data,
            max_bytes=self.settings.max_bytes,
            max_pixels=self.settings.max_pixels,
            min_side=self.draft_min_side,
            max_decode_bytes=self.settings.max_decode_bytes,
        )
        return preprocess(image.pixels, self.preprocessing)

    def check_top_k(self, top_k: int) -> int:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise InvalidArgument(f"Expected top_k to be an integer, received: {top_k!r}")
        limit = min(self.settings.max_top_k, len(self.labels))
        if not 1 <= top_k <= limit:
            raise InvalidArgument(f"Expected top_k between 1 and {limit}, received: {top_k}")
        return top_k

    def probe(self, data: bytes, *, max_bytes: int | None = None) -> ImageHeader:
        """An image's header, checked against every per-image limit, without decoding it.

        ``max_bytes`` overrides the settings' cap for bytes that did not come in the request
        body (an upload or an S3 object, capped by ``max_upload_bytes``).
        """
        return probe_image(
            data,
            max_bytes=max_bytes or self.settings.max_bytes,
            max_pixels=self.settings.max_pixels,
            min_side=self.draft_min_side,
            max_decode_bytes=self.settings.max_decode_bytes,
        )

    @property
    def categories(self) -> tuple[str, ...]:
        """The broad categories this model's classes fall into (none for custom labels)."""
        return self.hierarchy.categories if self.hierarchy else ()

    def check_filter(
        self,
        min_confidence: float = 0.0,
        include: tuple[str, ...] | frozenset[str] = (),
        exclude: tuple[str, ...] | frozenset[str] = (),
    ) -> LabelFilter:
        """A request's min_confidence and category filters, checked once per request."""
        return check_filter(min_confidence, include, exclude, self.categories)

    def label(
        self, probabilities: np.ndarray, top_k: int, label_filter: LabelFilter = NO_FILTER
    ) -> Labelling:
        """Probabilities to what people read: top-k with parents, the summary, categories."""
        thresholds = self.summary_thresholds.at_least(label_filter.min_confidence)
        hierarchy = self.hierarchy
        if hierarchy is None:
            return Labelling(
                top_k_predictions(
                    probabilities,
                    self.labels,
                    top_k,
                    min_confidence=label_filter.min_confidence,
                ),
                summarise_classes(probabilities, self.labels, thresholds.top_class),
                [],
            )
        # Summing needs float64: float32 sums of 1,000 terms drift in the 7th digit.
        probabilities = probabilities.astype(np.float64, copy=False)
        return Labelling(
            top_k_predictions(
                probabilities,
                self.labels,
                top_k,
                allowed=hierarchy.allowed(label_filter),
                min_confidence=label_filter.min_confidence,
                parents=hierarchy.parents,
            ),
            hierarchy.summary(probabilities, self.labels, thresholds, label_filter),
            hierarchy.category_scores(probabilities, label_filter),
        )

    def classify(
        self,
        data: bytes,
        top_k: int = 5,
        *,
        label_filter: LabelFilter = NO_FILTER,
        span: Span = _no_span,
        max_bytes: int | None = None,
    ) -> Classification:
        """Classify one image. ``span(name)`` wraps each stage, for tracing; ``max_bytes`` as
        in :meth:`probe`."""
        top_k = self.check_top_k(top_k)
        entry = self._prepare(data, max_bytes, span)
        start = time.perf_counter()
        with span("inference"):
            entry.probabilities = self.predict(entry.tensor[np.newaxis])[0]
        entry.inference_s = time.perf_counter() - start
        return self._finish(entry, top_k, label_filter)

    def classify_many(
        self,
        images: Sequence[bytes],
        top_k: int = 5,
        *,
        label_filter: LabelFilter = NO_FILTER,
        span: Span = _no_span,
        max_bytes: int | None = None,
    ) -> list[Classification | ImagerecError]:
        """Classify several images, ``batch_size`` to an interpreter call; one entry per
        image, in order: its classification, or the error that refused it (a corrupt or
        too-large image spoils only its own entry). The answers are those of ``classify``.

        ``timing_ms.inference`` is the image's share of its batch's call.
        """
        top_k = self.check_top_k(top_k)
        entries: list[_Prepared | ImagerecError] = []
        for data in images:
            try:
                entries.append(self._prepare(data, max_bytes, span))
            except ImagerecError as error:
                entries.append(error)
        ready = [entry for entry in entries if isinstance(entry, _Prepared)]
        for chunk in _chunks(ready, self.batch_size):
            start = time.perf_counter()
            with span("inference"):
                rows = self.predict(np.stack([entry.tensor for entry in chunk]))
            share = (time.perf_counter() - start) / len(chunk)
            for entry, row in zip(chunk, rows, strict=True):
                entry.probabilities, entry.inference_s = row, share
        return [
            entry if isinstance(entry, ImagerecError) else self._finish(entry, top_k, label_filter)
            for entry in entries
        ]

    def _prepare(self, data: bytes, max_bytes: int | None, span: Span) -> _Prepared:
        start = time.perf_counter()
        with span("decode"):
            image = decode_image(
                data,
                max_bytes=max_bytes or self.settings.max_bytes,
                max_pixels=self.settings.max_pixels,
                min_side=self.draft_min_side,
                max_decode_bytes=self.settings.max_decode_bytes,
            )
        decoded = time.perf_counter()
        with span("preprocess"):
            tensor = preprocess(image.pixels, self.preprocessing)
        return _Prepared(
            ImageInfo(image.width, image.height, image.format),
            tensor,
            decoded - start,
            time.perf_counter() - decoded,
        )

    def _finish(self, entry: _Prepared, top_k: int, label_filter: LabelFilter) -> Classification:
        assert entry.probabilities is not None, "every prepared image was in a batch"
        start = time.perf_counter()
        labelling = self.label(entry.probabilities, top_k, label_filter)
        label_s = time.perf_counter() - start
        ms = {
            "decode": entry.decode_s,
            "preprocess": entry.preprocess_s,
            "inference": entry.inference_s,
        }
        return Classification(
            model=self.name,
            runtime=self.runtime,
            predictions=labelling.predictions,
            summary=labelling.summary,
            categories=labelling.categories,
            image=entry.info,
            timing_ms={
                **{stage: round(seconds * 1000, 3) for stage, seconds in ms.items()},
                "total": round((sum(ms.values()) + label_s) * 1000, 3),
            },
        )

    def warm_up(self) -> None:
        """One inference so the first real request finds every buffer allocated."""
        size = self.preprocessing.size
        self.predict(np.zeros((1, size, size, 3), dtype=np.float32))
        self.warm = True

    def describe(self) -> dict[str, Any]:
        manifest = self.artefact.manifest
        return {
            "name": self.name,
            "description": manifest.description,
            "runtime": self.runtime,
            "input_size": [self.preprocessing.size, self.preprocessing.size, 3],
            "num_labels": len(self.labels),
            "categories": list(self.categories),
            "preprocessing": self.preprocessing.describe(),
            "top1_accuracy": published_top1(self.name),
            "latency": manifest.latency or None,
            "litert_check": manifest.litert_check,
        }


def choose_runtime(artefact: Artefact, settings: Settings) -> Runtime:
    """'auto' serves with LiteRT when its answers were checked to match Keras at build time."""
    wanted = settings.runtime
    if wanted == "auto":
        wanted = "litert" if artefact.manifest.litert_matches else "keras"
    if wanted == "litert":
        return LiteRTRuntime(
            artefact.path("tflite"), threads=settings.threads, quiet=not settings.verbose
        )
    return KerasRuntime(artefact.path("keras"), threads=settings.threads)


def summary_thresholds(name: str, settings: Settings) -> SummaryThresholds:
    """IMAGEREC_SUMMARY_THRESHOLD when set, else the model's measured ones, else 0.6."""
    if settings.summary_threshold is not None:
        return SummaryThresholds.single(settings.summary_threshold)
    measured = measured_summary_thresholds(name)
    if measured is None:
        return SummaryThresholds.single(0.6)
    return SummaryThresholds(category=measured[0], top_class=measured[1])


def load_classifier(
    name: str | None = None,
    *,
    runtime: str | None = None,
    settings: Settings | None = None,
    build: bool = True,
) -> Classifier:
    """Load a model by name (default: the embedded EfficientNet-Lite0).

    A model that is not built yet is built first when ``build`` is true (that needs
    TensorFlow and, for keras.applications models, the network); serving passes False.
    """
    settings = _override(settings or Settings.from_env(), name, runtime)
    # A process that loads a classifier classifies image after image: keep their buffers.
    keep_freed_memory()
    try:
        artefact = built_artefact(settings)
    except ModelNotBuilt:
        if not build:
            raise
        artefact = build_artefact(
            settings.model, settings.cache_dir, labels_file=settings.labels_file
        )
    return Classifier(artefact, choose_runtime(artefact, settings), settings)


def built_artefact(settings: Settings) -> Artefact:
    """The built artefact of ``settings.model``, or a one-line error saying how to build it.

    A name a model was built under (``build-model my.keras`` → "my") needs no registry entry.
    """
    model = settings.model
    artefact = find_artefact(settings.cache_dir, model)
    if artefact is not None:
        return artefact
    if not is_custom_model(model):
        get_spec(model, settings.cache_dir)  # an unknown name fails here, before any build
    # In a function image the model is baked in at build time: the fix is the image, not a command.
    fix = (
        f"rebuild the image with the build argument IMAGEREC_MODEL={model}"
        if settings.on_lambda
        else f"build it with `imagerec build-model {model}`"
    )
    raise ModelNotBuilt(f"The model {model} is not built in {settings.cache_dir}; {fix}.")


def _override(settings: Settings, name: str | None, runtime: str | None) -> Settings:
    changes: dict[str, Any] = {}
    if name is not None:
        changes["model"] = name
    if runtime is not None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"Expected a runtime in {', '.join(RUNTIMES)}, received: {runtime!r}")
        changes["runtime"] = runtime
    return replace(settings, **changes) if changes else settings
