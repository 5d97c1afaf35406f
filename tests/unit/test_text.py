"""The one line people read per image, from the API's result shape (synthetic results)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from imagerec.core.text import leading_summary, result_line, with_article

pytestmark = pytest.mark.unit


def result(summary: dict[str, Any] | None, *predictions: tuple[str, float]) -> dict[str, Any]:
    return {
        "summary": summary,
        "predictions": [{"label": label, "score": score} for label, score in predictions],
    }


def test_a_surer_summary_leads_and_the_top_class_follows() -> None:
    answer = result({"label": "butterfly", "score": 0.85}, ("admiral", 0.29), ("ringlet", 0.28))
    assert result_line(answer, "b.jpg") == (
        "b.jpg: a butterfly (85.0%), most likely an admiral (29.0%), ringlet (28.0%)"
    )


def test_a_summary_that_is_the_top_class_is_the_plain_line() -> None:
    answer = result({"label": "espresso", "score": 0.94}, ("espresso", 0.94), ("cup", 0.016))
    assert leading_summary(answer) is None
    assert result_line(answer) == "espresso (94.0%), cup (1.6%)"


def test_no_summary_says_plainly_that_the_model_is_not_sure() -> None:
    answer = result(None, ("missile", 0.253), ("projectile", 0.2))
    assert leading_summary(answer) is None
    assert result_line(answer, "r.jpg") == (
        "r.jpg: not sure, maybe a missile (25.3%), projectile (20.0%)"
    )


def test_the_phrase_the_api_sends_is_the_one_used() -> None:
    # Given the API's phrases, the line does not make its own
    answer = result({"label": "dog", "score": 0.9, "phrase": "a dog"}, ("Lhasa", 0.5))
    answer["predictions"][0]["phrase"] = "a Lhasa apso"
    assert result_line(answer) == "a dog (90.0%), most likely a Lhasa apso (50.0%)"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("butterfly", "a butterfly"),
        ("admiral", "an admiral"),
        ("umbrella", "an umbrella"),
        ("uniform", "a uniform"),
        ("clothing", "clothing"),
        ("sports equipment", "sports equipment"),
        ("footwear", "footwear"),
        ("tabby, tabby cat", "a tabby"),
    ],
)
def test_names_read_in_a_sentence(label: str, expected: str) -> None:
    assert with_article(label) == expected


def test_a_mass_noun_takes_no_article() -> None:
    answer = result({"label": "clothing", "score": 0.87}, ("military uniform", 0.29))
    assert result_line(answer) == "clothing (87.0%), most likely a military uniform (29.0%)"


def test_no_prediction_left_says_so() -> None:
    assert result_line(result(None), "x.jpg") == "x.jpg: no label reaches the minimum confidence"


def test_the_a_an_rule_lives_only_here() -> None:
    # The page shows the API's "phrase": it must not grow a second article rule of its own.
    script = (Path(__file__).resolve().parents[2] / "site" / "app.js").read_text("utf-8")
    assert not re.search(r"""["'`]an["'`]|u\(\?!ni""", script)
    assert "phrase" in script
