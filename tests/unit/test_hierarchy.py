"""The hierarchy: summed scores, the summary, categories and filters, on synthetic vectors.

A tiny hand-made tree tests the arithmetic; the bundled ImageNet hierarchy is tested for
what people read: familiar parents, never an abstraction.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from imagerec.core.errors import InvalidArgument, ModelError
from imagerec.core.hierarchy import (
    NO_FILTER,
    CategoryScore,
    Hierarchy,
    LabelFilter,
    Summary,
    SummaryThresholds,
    imagenet_hierarchy,
)
from imagerec.core.labels import imagenet_labels

pytestmark = pytest.mark.unit

# animal(0) > insect(1) > butterfly(2); animal > dog(3); food(4) > fruit(5). Familiar:
# insect, butterfly, dog, fruit; "animal" and "food" are parents only.
LABELS = ("admiral", "ringlet", "monarch", "beagle", "pug", "lemon", "banana", "rock")
TINY = Hierarchy(
    categories=("animal", "food", "other"),
    node_names=("animal", "insect", "butterfly", "dog", "food", "fruit"),
    node_parents=(-1, 0, 1, 0, -1, 4),
    class_nodes=(2, 2, 2, 3, 3, 5, 5, -1),
    class_categories=(0, 0, 0, 0, 0, 1, 1, 2),
    node_familiar=(False, True, True, True, False, True),
)


def bars(value: float) -> SummaryThresholds:
    return SummaryThresholds.single(value)


def probs(*values: float) -> np.ndarray:
    vector = np.zeros(len(LABELS))
    vector[: len(values)] = values
    return vector


def test_a_category_scores_the_sum_of_every_class_under_it() -> None:
    # Given confidence spread over three butterflies and a little elsewhere
    p = probs(0.29, 0.28, 0.27, 0.05, 0.03, 0.04, 0.02, 0.02)
    # When the nodes are scored
    scores = dict(zip(TINY.node_names, TINY.node_scores(p), strict=True))
    # Then each is the sum of its classes, all the way up
    assert scores["butterfly"] == pytest.approx(0.84)
    assert scores["insect"] == pytest.approx(0.84)
    assert scores["dog"] == pytest.approx(0.08)
    assert scores["animal"] == pytest.approx(0.92)
    assert scores["fruit"] == pytest.approx(0.06)


def test_the_summary_is_the_most_specific_familiar_category_that_reaches_the_threshold() -> None:
    p = probs(0.29, 0.28, 0.27, 0.05, 0.03, 0.04, 0.02, 0.02)
    assert TINY.summary(p, LABELS, bars(0.6)) == Summary("butterfly", 0.84)
    # Above 0.84 only "animal" (0.92) reaches it: a parent, never an answer.
    assert TINY.summary(p, LABELS, bars(0.85)) is None


def test_a_sure_class_is_the_summary_even_under_a_surer_category() -> None:
    p = probs(0.92, 0.05, 0.0, 0.0, 0.0, 0.03)
    assert TINY.summary(p, LABELS, bars(0.6)) == Summary("admiral", 0.92)


def test_a_familiar_category_leads_over_a_class_that_is_not_sure() -> None:
    # Given the admiral at 0.7, the butterflies at 0.85 together
    p = probs(0.7, 0.1, 0.05, 0.05, 0.0, 0.05, 0.05)
    # Then the butterfly is the answer, the admiral its most likely kind
    assert TINY.summary(p, LABELS, bars(0.6)) == Summary("butterfly", 0.85)


def test_with_no_familiar_category_the_class_needs_its_own_threshold() -> None:
    # "rock" has no category above it: only its own bar can make it the answer
    p = probs(0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4)
    thresholds = SummaryThresholds(category=0.45, top_class=0.35)
    assert TINY.summary(p, LABELS, thresholds) == Summary("rock", 0.4)
    assert TINY.summary(p, LABELS, SummaryThresholds(0.45, 0.45)) is None


def test_min_confidence_raises_every_bar() -> None:
    assert SummaryThresholds(0.4, 0.3).at_least(0.5) == SummaryThresholds(0.5, 0.5, 0.9)
    assert SummaryThresholds.single(0.95) == SummaryThresholds(0.95, 0.95, 0.95)


def test_below_half_the_deepest_then_the_surest_category_wins() -> None:
    # Given two sibling branches both above a low threshold
    p = probs(0.2, 0.2, 0.0, 0.3, 0.1, 0.1, 0.1)
    # Then the deeper and surer one is chosen: butterfly 0.4 and dog 0.4 are equally deep
    summary = TINY.summary(p, LABELS, bars(0.35))
    assert summary is not None
    assert summary.label in {"butterfly", "dog"}
    assert summary.score == pytest.approx(0.4)
    p = probs(0.2, 0.25, 0.0, 0.3, 0.1, 0.1, 0.05)
    assert TINY.summary(p, LABELS, bars(0.35)) == Summary("butterfly", 0.45)


def test_parents_are_nearest_first() -> None:
    assert TINY.parents[0] == ("butterfly", "insect", "animal")
    assert TINY.parents[5] == ("fruit", "food")
    assert TINY.parents[7] == ()


def test_categories_partition_the_classes_and_sum_to_one() -> None:
    p = probs(0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1)
    rows = TINY.category_scores(p)
    assert rows[0] == CategoryScore("animal", 0.5)
    assert [r.name for r in rows] == ["animal", "food", "other"]
    assert sum(r.score for r in rows) == pytest.approx(1.0)


def test_min_confidence_drops_categories_below_it() -> None:
    p = probs(0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1)
    rows = TINY.category_scores(p, TINY.check_filter(min_confidence=0.3))
    assert rows == [CategoryScore("animal", 0.5), CategoryScore("food", 0.4)]


def test_exclude_removes_a_category_from_the_sums_and_the_summary() -> None:
    # Given a photo that is mostly lemon
    p = probs(0.05, 0.0, 0.0, 0.05, 0.0, 0.8, 0.1)
    # When food is excluded
    only_animals = TINY.check_filter(exclude=["food"])
    # Then neither the lemon nor "fruit" can be the summary, and nothing else reaches 0.6
    assert TINY.summary(p, LABELS, bars(0.6)) == Summary("fruit", 0.9)
    assert TINY.summary(p, LABELS, bars(0.6), only_animals) is None
    assert TINY.summary(p, LABELS, bars(0.05), only_animals) == Summary("butterfly", 0.05)
    assert [r.name for r in TINY.category_scores(p, only_animals)] == ["animal", "other"]


def test_include_keeps_only_those_categories() -> None:
    p = probs(0.05, 0.0, 0.0, 0.05, 0.0, 0.8, 0.1)
    animals = TINY.check_filter(include=["animal"])
    mask = TINY.allowed(animals)
    assert mask is not None
    assert mask.tolist() == [True] * 5 + [False] * 3
    assert [r.name for r in TINY.category_scores(p, animals)] == ["animal"]
    assert TINY.allowed(NO_FILTER) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_confidence": -0.1}, "between 0 and 1"),
        ({"min_confidence": 1.5}, "between 0 and 1"),
        ({"min_confidence": float("nan")}, "between 0 and 1"),
        ({"min_confidence": True}, "a number"),
        ({"min_confidence": "0.5"}, "a number"),
        ({"include": ["animals"]}, "from animal, food, other, received: animals"),
        ({"exclude": ["rock"]}, "received: rock"),
        ({"include": ["food"], "exclude": ["food"]}, "not both"),
    ],
)
def test_bad_filters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        TINY.check_filter(**kwargs)  # type: ignore[arg-type]


def test_a_good_filter_is_normalised() -> None:
    assert TINY.check_filter(1, ["food", "food"], []) == LabelFilter(1.0, frozenset({"food"}))


def test_vectors_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="Expected a vector of 8"):
        TINY.node_scores(np.zeros(7))


@pytest.mark.parametrize(
    "broken",
    [
        {"node_parents": (-1, 0, 1, 0, -1)},  # one parent missing
        {"node_parents": (-1, 2, 1, 0, -1, 4)},  # a child before its parent
        {"class_categories": (0, 0, 0, 0, 0, 1, 1, 3)},  # no such category
        {"node_names": ("animal", "insect", "butterfly", "dog", "food", "dog")},
        {"node_familiar": (True, False)},  # a flag missing
    ],
)
def test_an_inconsistent_hierarchy_is_refused(broken: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "categories": ("animal", "food", "other"),
        "node_names": ("animal", "insect", "butterfly", "dog", "food", "fruit"),
        "node_parents": (-1, 0, 1, 0, -1, 4),
        "class_nodes": (2, 2, 2, 3, 3, 5, 5, -1),
        "class_categories": (0, 0, 0, 0, 0, 1, 1, 2),
        **broken,
    }
    with pytest.raises(ValueError, match="Expected"):
        Hierarchy(**arguments)  # type: ignore[arg-type]


def test_a_document_of_another_format_is_refused() -> None:
    with pytest.raises(ModelError, match="format"):
        Hierarchy.from_document({"format": 99})
    with pytest.raises(ModelError, match="valid hierarchy"):
        Hierarchy.from_document({"format": 2, "nodes": [["n1", "x"]]})


# ---- the bundled ImageNet hierarchy ---------------------------------------------------------

# What scripts/build_hierarchy.py promises never to report ("device" may be the last-resort
# parent of a lighter or a remote control, never an answer).
ABSTRACTIONS = {
    "entity",
    "physical entity",
    "object",
    "whole",
    "artifact",
    "instrumentality",
    "living thing",
    "organism",
    "matter",
    "abstraction",
    "placental",
    "chordate",
    "vertebrate",
}


def label_index(label: str) -> int:
    return imagenet_labels().index(label)


def test_the_bundled_hierarchy_covers_every_imagenet_class() -> None:
    hierarchy = imagenet_hierarchy()
    assert hierarchy.num_classes == len(imagenet_labels()) == 1000
    assert not ABSTRACTIONS & set(hierarchy.node_names)
    # Every class has parents (the 40 with only abstractions above keep the plainest).
    assert all(hierarchy.parents)
    assert hierarchy.parents[label_index("altar")] == ("structure",)
    assert "plant part" in hierarchy.parents[label_index("acorn")]
    assert "other" in hierarchy.categories
    assert {"animal", "plant", "food", "vehicle"} <= set(hierarchy.categories)


def test_the_bundled_file_says_where_it_came_from() -> None:
    text = resources.files("imagerec").joinpath("data", "imagenet_hierarchy.json").read_text()
    provenance = json.loads(text)["provenance"]
    assert provenance["command"] == "python scripts/build_hierarchy.py"
    assert "WordNet 3.0" in provenance["wordnet"]
    assert "timm" in provenance["imagenet_synsets"]
    assert len(text) < 200_000


@pytest.mark.parametrize(
    ("label", "nearest", "also", "category"),
    [
        ("admiral", "nymphalid", "butterfly", "animal"),
        ("ringlet", "butterfly", "insect", "animal"),
        ("golden retriever", "retriever", "dog", "animal"),
        ("tabby", "cat", "mammal", "animal"),
        ("fox squirrel", "tree squirrel", "squirrel", "animal"),
        ("lemon", "citrus", "fruit", "food"),
        ("soccer ball", "ball", "game equipment", "sport"),
        ("sports car", "car", "vehicle", "vehicle"),
        ("espresso", "coffee", "drink", "food"),
        ("cup", "drinking vessel", "container", "household"),
    ],
)
def test_imagenet_classes_have_familiar_parents(
    label: str, nearest: str, also: str, category: str
) -> None:
    hierarchy = imagenet_hierarchy()
    index = label_index(label)
    parents = hierarchy.parents[index]
    assert parents[0] == nearest
    assert also in parents
    assert hierarchy.categories[hierarchy.class_categories[index]] == category


@pytest.mark.parametrize(
    ("spread", "expected"),
    [
        # The swallowtail: ringlet 28%, admiral 27%, monarch 26%...
        ({"ringlet": 0.28, "admiral": 0.27, "monarch": 0.26, "lycaenid": 0.04}, "butterfly"),
        # The hounds and retrievers: "a dog", never "hound", "canine" or "animal".
        ({"beagle": 0.3, "English foxhound": 0.25, "Walker hound": 0.2}, "dog"),
        ({"beagle": 0.3, "pug": 0.25, "golden retriever": 0.2}, "dog"),
        ({"redbone": 0.3, "flat-coated retriever": 0.2, "tabby": 0.2}, None),
        ({"lemon": 0.45, "orange": 0.3}, "fruit"),
        # Rodents are a rank, not a word people use of a photo: not sure, then.
        ({"fox squirrel": 0.5, "marmot": 0.05, "hamster": 0.05}, None),
        ({"fox squirrel": 0.62}, "fox squirrel"),
        ({"tabby": 0.3, "tiger cat": 0.3, "Egyptian cat": 0.25}, "cat"),
    ],
)
def test_spread_confidence_gives_a_familiar_summary(
    spread: dict[str, float], expected: str | None
) -> None:
    # Given a probability vector spread over neighbouring classes, the rest uniform
    p = np.full(1000, (1 - sum(spread.values())) / (1000 - len(spread)))
    for label, score in spread.items():
        p[label_index(label)] = score
    # Then the summary names the familiar category they share, or nothing
    summary = imagenet_hierarchy().summary(p, imagenet_labels(), bars(0.6))
    assert (summary.label if summary else None) == expected


def test_a_uniform_vector_has_no_summary() -> None:
    p = np.full(1000, 1 / 1000)
    assert imagenet_hierarchy().summary(p, imagenet_labels(), bars(0.6)) is None


def test_every_dog_class_is_a_dog() -> None:
    # The 118 dog classes (151-268) are judged apart, so this is checked on the tree alone:
    # "dog" is the broadest familiar category above each, and no broad level is familiar.
    hierarchy = imagenet_hierarchy()
    for index in range(151, 269):
        familiar = [p for p in hierarchy.parents[index] if p in hierarchy.familiar]
        assert familiar[-1] == "dog", imagenet_labels()[index]
    assert not {"animal", "mammal", "carnivore", "canine", "reptile", "food"} & hierarchy.familiar


def test_the_committed_data_follows_the_scripts_curation() -> None:
    # The script is importable without WordNet; its lists are what the data must reflect.
    from scripts import build_hierarchy as script

    document = json.loads(
        resources.files("imagerec").joinpath("data", "imagenet_hierarchy.json").read_text()
    )
    node_ids = {wnid for wnid, _, _, _ in document["nodes"]}
    dropped = {f"n{offset}" for offset in {**script.ABSTRACTIONS, **script.JARGON}}
    # Dropped levels appear only as the last-resort parents, and never the vaguest ones.
    assert not node_ids & {f"n{offset}" for offset in script.TOO_ABSTRACT_TO_LIST}
    assert len(node_ids & dropped) < 40
    familiar = {wnid for wnid, _, _, flag in document["nodes"] if flag}
    assert familiar == {f"n{offset}" for offset in script.FAMILIAR}
    assert document["categories"] == [name for name, _ in script.CATEGORIES]
    names = {wnid: name for wnid, name, _, _ in document["nodes"]}
    for offset, name in script.NAME_OVERRIDES.items():
        assert names.get(f"n{offset}", name) == name
    # Only torchvision's two disambiguated names are not a WordNet lemma of their class.
    assert document["provenance"]["labels_not_a_lemma"] == [
        [134, "crane bird"],
        [639, "maillot tank suit"],
    ]
