"""Familiar categories above ImageNet's classes, and the confidence summed over each.

ImageNet's 1,000 classes are fine-grained, so a model sure that a photo shows a butterfly can
spread its confidence over admiral, ringlet and monarch. Every class belongs to a tree of
WordNet categories (``data/imagenet_hierarchy.json``, built by ``scripts/build_hierarchy.py``);
a category's score is the sum of the probabilities of all the classes under it. Some of the
categories are familiar ("dog", "bird", "fruit", "car"): a summary may name those. The rest
("animal", "mammal", "carnivore", "container") are parents, never answers. The broad
categories (animal, food, vehicle…) partition the classes, so their scores add up to one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from imagerec.core.errors import InvalidArgument, ModelError

DATA_FILE = "imagenet_hierarchy.json"
FORMAT = 2
# A class this sure is the answer even when a familiar category above it is surer: people
# expect the breed when the model is sure of it (docs/accuracy.md).
SURE = 0.9


@dataclass(frozen=True)
class SummaryThresholds:
    """How sure a summary must be: a familiar category, or the top class on its own.

    Measured per model on real photos (docs/accuracy.md): a model's confidence scale is its
    own, so one number does not fit all.
    """

    category: float = 0.6
    top_class: float = 0.6
    sure: float = SURE

    @classmethod
    def single(cls, threshold: float) -> SummaryThresholds:
        """One bar for both (IMAGEREC_SUMMARY_THRESHOLD, or a model with no measurement)."""
        return cls(threshold, threshold, max(SURE, threshold))

    def at_least(self, floor: float) -> SummaryThresholds:
        """Every bar raised to ``floor`` (a request's min_confidence)."""
        return SummaryThresholds(
            max(self.category, floor), max(self.top_class, floor), max(self.sure, floor)
        )


@dataclass(frozen=True)
class Summary:
    """The class, or the familiar category, that the model is sure enough of."""

    label: str
    score: float


@dataclass(frozen=True)
class CategoryScore:
    name: str
    score: float


@dataclass(frozen=True)
class LabelFilter:
    """What a request asks to see, in the style of Rekognition's DetectLabels settings.

    ``min_confidence`` drops predictions (and categories) scoring below it; ``include``
    keeps only classes in those broad categories, ``exclude`` removes those in them. Scores
    are never renormalised: an excluded class's probability simply counts nowhere.
    """

    min_confidence: float = 0.0
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    @property
    def filters_categories(self) -> bool:
        return bool(self.include or self.exclude)


NO_FILTER = LabelFilter()


class Hierarchy:
    """Familiar categories above a 1-of-N classifier's classes (a tree, parents first)."""

    def __init__(
        self,
        categories: Sequence[str],
        node_names: Sequence[str],
        node_parents: Sequence[int],
        class_nodes: Sequence[int],
        class_categories: Sequence[int],
        node_familiar: Sequence[bool] = (),
    ) -> None:
        nodes = len(node_names)
        if len(node_parents) != nodes:
            raise ValueError(
                f"Expected a parent for each of {nodes} nodes, received: {len(node_parents)}"
            )
        for index, parent in enumerate(node_parents):
            # Parents come first, so one pass from the top computes every depth.
            if not -1 <= parent < index:
                raise ValueError(
                    f"Expected node {index}'s parent to be -1 or an earlier node, "
                    f"received: {parent}"
                )
        if len(class_categories) != len(class_nodes):
            raise ValueError(
                f"Expected a category for each of {len(class_nodes)} classes, "
                f"received: {len(class_categories)}"
            )
        if any(not -1 <= node < nodes for node in class_nodes):
            raise ValueError("Expected each class's node to be -1 or a node index")
        if any(not 0 <= c < len(categories) for c in class_categories):
            raise ValueError("Expected each class's category to be a category index")
        if len(set(node_names)) != nodes:
            raise ValueError("Expected node names to be distinct")
        if node_familiar and len(node_familiar) != nodes:
            raise ValueError(
                f"Expected a familiar flag for each of {nodes} nodes, "
                f"received: {len(node_familiar)}"
            )

        self.categories: tuple[str, ...] = tuple(categories)
        self.node_names: tuple[str, ...] = tuple(node_names)
        self.num_classes = len(class_nodes)
        depth: list[int] = []
        for parent in node_parents:
            depth.append(0 if parent < 0 else depth[parent] + 1)
        self.node_depth = np.asarray(depth, dtype=np.int32)
        # Which nodes a summary may name; the others are parents only.
        self.node_familiar = np.zeros(nodes, dtype=bool)
        if node_familiar:
            self.node_familiar[:] = node_familiar
        self.familiar: frozenset[str] = frozenset(
            name for name, flag in zip(self.node_names, self.node_familiar, strict=True) if flag
        )

        chains: list[tuple[int, ...]] = []
        for node in class_nodes:
            chain: list[int] = []
            while node >= 0:
                chain.append(node)
                node = node_parents[node]
            chains.append(tuple(chain))
        self._chains = chains
        self.parents: tuple[tuple[str, ...], ...] = tuple(
            tuple(self.node_names[n] for n in chain) for chain in chains
        )
        # (class, node) pairs for every node above every class: summing is one bincount.
        self._pair_classes = np.asarray(
            [c for c, chain in enumerate(chains) for _ in chain], dtype=np.intp
        )
        self._pair_nodes = np.asarray([n for chain in chains for n in chain], dtype=np.intp)
        self.class_categories = np.asarray(class_categories, dtype=np.intp)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Hierarchy:
        """The hierarchy from ``imagenet_hierarchy.json``'s parsed content."""
        if document.get("format") != FORMAT:
            raise ModelError(
                f"Expected hierarchy format {FORMAT}, received: {document.get('format')!r}"
            )
        try:
            nodes = document["nodes"]
            classes = document["classes"]
            return cls(
                categories=[str(c) for c in document["categories"]],
                node_names=[str(name) for _, name, _, _ in nodes],
                node_parents=[int(parent) for _, _, parent, _ in nodes],
                class_nodes=[int(node) for _, node, _ in classes],
                class_categories=[int(category) for _, _, category in classes],
                node_familiar=[bool(familiar) for _, _, _, familiar in nodes],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"Expected a valid hierarchy document, received: {error}") from error

    # ---- checking a request's filter ------------------------------------------------------

    def check_filter(
        self,
        min_confidence: float = 0.0,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> LabelFilter:
        """Validate a request's options; unknown categories name the known ones."""
        return check_filter(min_confidence, include, exclude, self.categories)

    def allowed(self, label_filter: LabelFilter) -> np.ndarray | None:
        """A boolean mask of the classes the filter keeps, or None when it keeps them all."""
        if not label_filter.filters_categories:
            return None
        index = {name: i for i, name in enumerate(self.categories)}
        keep = np.ones(len(self.categories), dtype=bool)
        if label_filter.include:
            keep[:] = False
            keep[[index[name] for name in label_filter.include]] = True
        if label_filter.exclude:
            keep[[index[name] for name in label_filter.exclude]] = False
        mask: np.ndarray = keep[self.class_categories]
        return mask

    # ---- scores ---------------------------------------------------------------------------

    def _check(self, probabilities: np.ndarray) -> None:
        if probabilities.ndim != 1 or probabilities.shape[0] != self.num_classes:
            raise ValueError(
                f"Expected a vector of {self.num_classes} probabilities, "
                f"received: {probabilities.shape}"
            )

    def node_scores(self, probabilities: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Each node's score: the summed probability of every (kept) class under it."""
        self._check(probabilities)
        weights = probabilities if mask is None else np.where(mask, probabilities, 0.0)
        return np.bincount(
            self._pair_nodes,
            weights=weights[self._pair_classes],
            minlength=len(self.node_names),
        )

    def category_scores(
        self, probabilities: np.ndarray, label_filter: LabelFilter = NO_FILTER
    ) -> list[CategoryScore]:
        """The broad categories the filter keeps, best first, at or above min_confidence."""
        self._check(probabilities)
        # Python floats from here: 16 numpy scalar operations cost more than the sum itself.
        sums: list[float] = np.bincount(
            self.class_categories, weights=probabilities, minlength=len(self.categories)
        ).tolist()
        rows = [
            CategoryScore(name, round(score, 6))
            for name, score in zip(self.categories, sums, strict=True)
            if (not label_filter.include or name in label_filter.include)
            and name not in label_filter.exclude
            and score >= label_filter.min_confidence
        ]
        return sorted(rows, key=lambda row: -row.score)

    def summary(
        self,
        probabilities: np.ndarray,
        labels: Sequence[str],
        thresholds: SummaryThresholds,
        label_filter: LabelFilter = NO_FILTER,
    ) -> Summary | None:
        """What the (kept) probabilities let us say, or None when the model is not sure.

        In order: the top class when it reaches ``sure``; else the deepest familiar category
        reaching ``category`` (the higher score breaking a tie); else the top class when it
        reaches ``top_class``. A broad level ("animal", "mammal") is never the answer.
        """
        mask = self.allowed(label_filter)
        sure = summarise_classes(probabilities, labels, thresholds.sure, mask)
        if sure is not None:
            return sure
        scores = self.node_scores(probabilities, mask)
        reached = np.flatnonzero(self.node_familiar & (scores >= thresholds.category))
        if reached.size:
            node = max(reached, key=lambda n: (self.node_depth[n], scores[n]))
            return Summary(self.node_names[node], round(float(scores[node]), 6))
        return summarise_classes(probabilities, labels, thresholds.top_class, mask)

    def is_familiar_ancestor(self, name: str, class_index: int) -> bool:
        """Whether ``name`` is a familiar category above the class (a right summary of it)."""
        return name in self.familiar and name in self.parents[class_index]


def summarise_classes(
    probabilities: np.ndarray,
    labels: Sequence[str],
    threshold: float,
    mask: np.ndarray | None = None,
) -> Summary | None:
    """The best (kept) class when it reaches the threshold on its own, else None."""
    if probabilities.ndim != 1 or probabilities.shape[0] != len(labels):
        raise ValueError(
            f"Expected a vector of {len(labels)} probabilities, received: {probabilities.shape}"
        )
    scores = probabilities if mask is None else np.where(mask, probabilities, -1.0)
    best = int(np.argmax(scores))
    if scores[best] < threshold:
        return None
    return Summary(labels[best], round(float(probabilities[best]), 6))


def check_filter(
    min_confidence: float,
    include: Iterable[str],
    exclude: Iterable[str],
    categories: Sequence[str],
) -> LabelFilter:
    """Validate min_confidence (0-1) and category names against ``categories``."""
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)):
        raise InvalidArgument(
            f"Expected min_confidence to be a number between 0 and 1, received: {min_confidence!r}"
        )
    if not 0.0 <= min_confidence <= 1.0:  # also refuses NaN
        raise InvalidArgument(
            f"Expected min_confidence between 0 and 1, received: {min_confidence}"
        )
    chosen: dict[str, frozenset[str]] = {}
    for option, names in (("include_categories", include), ("exclude_categories", exclude)):
        given = frozenset(names)
        if given and not categories:
            raise InvalidArgument(f"Expected no {option}: this model's labels have no categories")
        unknown = sorted(given - set(categories))
        if unknown:
            raise InvalidArgument(
                f"Expected {option} from {', '.join(categories)}, received: {', '.join(unknown)}"
            )
        chosen[option] = given
    both = chosen["include_categories"] & chosen["exclude_categories"]
    if both:
        raise InvalidArgument(
            "Expected a category in include_categories or exclude_categories, not both, "
            f"received: {', '.join(sorted(both))}"
        )
    return LabelFilter(
        float(min_confidence), chosen["include_categories"], chosen["exclude_categories"]
    )


@functools.cache
def imagenet_hierarchy() -> Hierarchy:
    """The bundled hierarchy for ImageNet-1k's classes (read once, then cached)."""
    text = resources.files("imagerec").joinpath("data", DATA_FILE).read_text("utf-8")
    return Hierarchy.from_document(json.loads(text))
