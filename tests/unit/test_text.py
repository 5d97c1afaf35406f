"""The one line people read per image, from the API's result shape (synthetic results)."""

from __future__ import annotations

from typing import Any

import pytest

from imagerec.core.text import leading_summary, result_line

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


@pytest.mark.parametrize(
    "summary",
    [
        None,
        {"label": "espresso", "score": 0.94},  # the top class itself
        {"label": "coffee", "score": 0.94},  # no surer than the top class
    ],
)
def test_otherwise_the_line_is_the_labels(summary: dict[str, Any] | None) -> None:
    answer = result(summary, ("espresso", 0.94), ("cup", 0.016))
    assert leading_summary(answer) is None
    assert result_line(answer) == "espresso (94.0%), cup (1.6%)"


def test_a_mass_noun_takes_no_article() -> None:
    answer = result({"label": "clothing", "score": 0.87}, ("military uniform", 0.29))
    assert result_line(answer) == "clothing (87.0%), most likely a military uniform (29.0%)"


def test_no_prediction_left_says_so() -> None:
    assert result_line(result(None), "x.jpg") == "x.jpg: no label reaches the minimum confidence"
