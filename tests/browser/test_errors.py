"""When things go wrong: a plain message next to the photo, and the page keeps working."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser]

CLASSIFY = re.compile(r"/api/public/classify(\?|$)")


def problem(card) -> tuple[str, str]:
    return (card.get_attribute("data-problem"), card.locator(".problem").inner_text())


def test_text_file_is_not_an_image(page, drop, finished_cards, file_of):
    drop(page, file_of("notes.txt", "text/plain", b"Shopping list: eggs, milk.\n"))

    (card,) = finished_cards(page, 1)
    kind, text = problem(card)
    assert kind == "notImage"
    assert "Not an image" in text
    assert card.locator(".thumb-note").inner_text() == "No preview"


def test_pdf_named_jpg_is_not_an_image(page, drop, finished_cards, file_of):
    # Given bytes that claim to be a JPEG by name and type but are a PDF
    fake = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"

    # When dropped: the browser can't decode it, so it goes to the server as it is
    drop(page, file_of("holiday.jpg", "image/jpeg", fake))

    # Then the server's verdict reads as "not an image"
    (card,) = finished_cards(page, 1)
    kind, text = problem(card)
    assert kind == "notImage"
    assert "Not an image" in text


def test_empty_file(page, drop, finished_cards, file_of):
    drop(page, file_of("empty.png", "image/png", b""))

    (card,) = finished_cards(page, 1)
    assert problem(card)[0] == "empty"


def noise_png(side: int = 800) -> bytes:
    """Random pixels: no JPEG encoder can make this small."""
    pixels = np.random.default_rng(7).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_oversized_photo_is_too_large(
    new_page, small_cap_server_url, drop, finished_cards, file_of, coffee
):
    # Given a server that accepts at most 2,000 bytes
    page = new_page(base_url=small_cap_server_url)

    # When a photo the browser can't shrink that far is dropped
    drop(page, file_of("noise.png", "image/png", noise_png()))

    # Then the card says it is too large, with the server's explanation
    (card,) = finished_cards(page, 1)
    kind, text = problem(card)
    assert kind == "tooLarge"
    assert "Too large" in text
    assert card.locator(".problem-detail").inner_text().strip()

    # And the page still takes the next photo (too large again here, but a fresh card)
    drop(page, coffee)
    cards = finished_cards(page, 2)
    assert problem(cards[0])[0] == "tooLarge"


def test_network_failure_then_the_next_photo_works(page, drop, finished_cards, coffee, chelsea):
    # Given the network drops every upload
    page.route(CLASSIFY, lambda route: route.abort("internetdisconnected"))

    # When a photo is dropped
    drop(page, coffee)

    # Then the card says the network is down and offers to try again
    (card,) = finished_cards(page, 1)
    kind, text = problem(card)
    assert kind == "network"
    assert "Network down" in text
    assert card.get_by_role("button", name="Try again").is_visible()

    # When the network comes back and another photo is dropped, it is recognised
    page.unroute(CLASSIFY)
    drop(page, chelsea)
    cards = finished_cards(page, 2)
    assert cards[0].get_attribute("data-state") == "done"

    # And "Try again" on the failed one (now second) works too
    cards[1].get_by_role("button", name="Try again").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results .card')]"
        ".every((c) => c.dataset.state === 'done')"
    )
    assert cards[1].locator(".top-label").inner_text() == "Espresso"


@pytest.mark.parametrize(
    ("status", "code", "kind", "title"),
    [
        (503, "busy", "busy", "Server busy"),
        (500, "internal_error", "failing", "Something went wrong"),
        (413, "image_too_large", "tooLarge", "Too large"),
        (415, "unsupported_format", "notImage", "Not an image"),
        (400, "corrupt_image", "corrupt", "Damaged photo"),
        (404, "not_found", "failing", "Something went wrong"),
    ],
)
def test_api_error_codes_read_as_plain_messages(
    page, drop, finished_cards, coffee, status, code, kind, title
):
    # Given the API answers with an error
    message = f"Server says: {code} <b>not bold</b>"
    body = json.dumps({"error": {"code": code, "message": message}})
    page.route(
        CLASSIFY,
        lambda route: route.fulfill(status=status, content_type="application/json", body=body),
    )

    # When a photo is dropped
    drop(page, coffee)

    # Then the card shows the plain message for that kind, with the server's text as detail
    (card,) = finished_cards(page, 1)
    assert problem(card)[0] == kind
    assert card.locator(".problem-title").inner_text() == title
    assert card.locator(".problem-detail").inner_text() == message
    assert card.locator(".problem b").count() == 0


def test_non_json_error_page_still_reads_as_busy(page, drop, finished_cards, coffee):
    # A proxy in front of the API may answer with HTML
    page.route(
        CLASSIFY,
        lambda route: route.fulfill(
            status=503, content_type="text/html", body="<h1>Service Unavailable</h1>"
        ),
    )
    drop(page, coffee)

    (card,) = finished_cards(page, 1)
    assert problem(card)[0] == "busy"
    assert card.locator(".problem-detail").count() == 0
