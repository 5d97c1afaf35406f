"""The page on a second visit: clearing results, the formats the API accepts, the API's docs,
and answers that agree with the API's for the same file."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser]

CLASSIFY = re.compile(r"/api/public/classify(\?|$)")


def or_list(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} or {items[-1]}"


def noise_png(width: int = 1600, height: int = 1200) -> bytes:
    """Random pixels compress badly: a PNG of several MB, over what the page sends as it is."""
    pixels = np.random.default_rng(11).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_formats_line_comes_from_the_api(page):
    # Given what the API says it accepts
    accepts = page.request.get("/api/models").json()["accepts"]
    # Then the drop zone lists exactly those formats and the size cap
    line = page.locator("#formats")
    page.wait_for_function("() => document.getElementById('formats').dataset.source === 'api'")
    text = line.inner_text()
    assert text.startswith(or_list(accepts["formats"]))
    assert "BMP" in text
    assert "TIFF" in text
    assert "up to 10 MB each" in text


def test_the_api_docs_are_one_click_away(page):
    link = page.get_by_role("link", name=re.compile("HTTP API"))
    assert link.is_visible()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    assert response.json()["openapi"].startswith("3.")


def test_clear_results_empties_the_page_for_the_next_round(page, drop, finished_cards, coffee):
    # Given no results yet: nothing to clear
    clear = page.get_by_role("button", name="Clear results")
    assert not clear.is_visible()
    # When a photo is recognised
    drop(page, coffee)
    finished_cards(page, 1)
    # Then the button shows; pressing it empties the results and hides it again
    assert clear.is_visible()
    clear.click()
    assert page.locator("#results .card").count() == 0
    assert not clear.is_visible()
    assert page.evaluate("document.activeElement.id") == "dropzone"
    # And the next photo starts a fresh list
    drop(page, coffee)
    assert len(finished_cards(page, 1)) == 1


def test_a_small_photo_goes_as_it_is_and_the_page_agrees_with_the_api(
    page, drop, finished_cards, coffee
):
    # Given the API's own answer for the file (coffee.png, 466 KB)
    direct = page.request.post(
        "/api/classify?top_k=5", data=coffee.data, headers={"Content-Type": "image/png"}
    ).json()
    sent: list[tuple[str, bytes]] = []

    def record(route):
        sent.append((route.request.headers.get("content-type", ""), route.request.post_data_buffer))
        route.continue_()

    page.route(CLASSIFY, record)
    # When the same file is dropped on the page
    drop(page, coffee)
    (card,) = finished_cards(page, 1)
    # Then the page sent the file itself and shows the API's five labels, in the API's order
    assert sent == [("image/png", coffee.data)]
    shown = card.locator(".bar-label").all_inner_texts()
    assert [s.lower() for s in shown] == [
        p["label"].split(", ")[0].lower() for p in direct["predictions"]
    ]
    assert not card.locator(".copy-note").is_visible()


def test_a_large_photo_is_shrunk_and_the_card_says_so(page, drop, finished_cards, file_of):
    drop(page, file_of("noise.png", "image/png", noise_png()))
    (card,) = finished_cards(page, 1)
    note = card.locator(".copy-note")
    assert note.is_visible()
    assert note.inner_text().startswith("A smaller copy (1024 × 768) was classified")


def test_two_rounds_then_clear_screenshot(
    page, drop, finished_cards, coffee, chelsea, grace_hopper, file_of, screenshot
):
    # Given two rounds of drops: two photos, then a photo and a large one
    drop(page, coffee, chelsea)
    finished_cards(page, 2)
    drop(page, grace_hopper, file_of("big-noise.png", "image/png", noise_png()))
    cards = finished_cards(page, 4)
    # Then the newest are on top, the clear button and the formats line are showing
    names = [c.locator(".file-name").inner_text() for c in cards]
    assert names == ["grace_hopper.jpg", "big-noise.png", "coffee.png", "chelsea.png"]
    assert page.get_by_role("button", name="Clear results").is_visible()
    assert "TIFF" in page.locator("#formats").inner_text()
    screenshot(page, "second-visit.png")
    assert not page.problems.page_errors
    assert not page.problems.csp_violations()
