"""The summary headline: a familiar category leads when the top class is not sure enough, and
the page says plainly when nothing is."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser]


def test_a_dropped_cat_reads_as_a_cat_with_the_breeds_below(
    page, drop, finished_cards, chelsea, screenshot
):
    # Given the page, When Chelsea (a tabby, which ImageNet splits over several cats) is dropped
    drop(page, chelsea)

    # Then the headline is the summed category, with its confidence
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-summary") == "cat"
    headline = card.locator(".top-label").inner_text()
    match = re.fullmatch(r"A cat — (\d{1,3})%", headline)
    assert match, headline
    # ...more certain than the top class, which is named just below it
    top_pct = card.locator(".bar-pct").first.inner_text()
    assert int(match.group(1)) > float(top_pct.rstrip("%"))
    best = card.locator(".bar-label").first.inner_text().lower()
    detail = card.locator(".top-score").inner_text()
    assert detail.lower().startswith(f"most likely a {best} ("), detail
    # And the fine-grained classes are listed below as before
    assert card.locator(".bar-row").count() == 5
    assert not page.problems.page_errors
    assert not page.problems.csp_violations()
    screenshot(page, "summary-cat.png")


def test_a_sure_top_class_keeps_its_own_headline(page, drop, finished_cards, coffee):
    # When the top class alone is sure (espresso, ~94%)
    drop(page, coffee)

    # Then the headline is the class itself
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-summary") == "espresso"
    assert card.locator(".lead").inner_text().lower() == "looks like"
    assert card.locator(".top-label").inner_text() == "Espresso"


def test_an_unsure_answer_says_so_with_the_best_guess(page, drop, finished_cards, rocket):
    # When nothing is sure enough (the rocket: "missile" at 25%, no familiar category)
    drop(page, rocket)

    # Then the page says it is not sure, and names its guess with the API's phrase
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-summary") is None
    assert card.get_attribute("data-unsure") == ""
    assert card.locator(".lead").inner_text().lower() == "not sure"
    assert card.locator(".top-label").inner_text() == "Maybe a missile"
    assert not page.problems.page_errors


def test_the_summary_headline_fits_a_phone(new_page, drop, finished_cards, chelsea, screenshot):
    # Given a 360 px wide phone
    page = new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    drop(page, chelsea)
    (card,) = finished_cards(page, 1)
    # Then the headline wraps inside the card: nothing scrolls sideways
    assert card.get_attribute("data-summary") == "cat"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    box, label = card.bounding_box(), card.locator(".top-label").bounding_box()
    assert label["x"] + label["width"] <= box["x"] + box["width"]
    screenshot(page, "summary-cat-phone.png")
