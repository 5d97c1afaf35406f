"""Photos the page cannot shrink itself go through the upload flow: a HEIC and a 12 MB TIFF
(Chromium decodes neither) are uploaded as they are, with progress, then classified by their
upload id; a 12 MB JPEG is shrunk in the browser and sent directly."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.conftest import PHOTOS
from tests.images import phone_sized_jpeg, phone_style

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UNIFORM_WORDS = ("military uniform", "suit", "tie", "mortarboard", "academic gown", "uniform")

_RECORD_JS = """() => {
  window.__states = [];
  window.__progress = [];
  new MutationObserver((changes) => {
    for (const c of changes) {
      if (c.attributeName === "data-state") window.__states.push(c.target.dataset.state);
      else window.__progress.push(c.target.getAttribute("aria-valuetext"));
    }
  }).observe(document.getElementById("results"), {
    subtree: true, attributes: true, attributeFilter: ["data-state", "aria-valuetext"],
  });
}"""


def record(page):
    """Start recording card states, upload progress and the API requests the page makes."""
    page.evaluate(_RECORD_JS)
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, re.sub(r"^https?://[^/]+", "", r.url))))
    return requests


def assert_upload_flow(page, requests, card) -> None:
    # The page asked for a form, posted the file to its URL, then classified by id
    api = [(method, path) for method, path in requests if path.startswith("/api/")]
    assert [a for a in api if a[1] == "/api/public/uploads"] == [("POST", "/api/public/uploads")]
    form_posts = [a for a in api if re.fullmatch(r"/api/uploads/[0-9a-f]{32}", a[1])]
    assert len(form_posts) == 1
    assert api.index(form_posts[0]) < api.index(("POST", "/api/public/classify?top_k=5"))
    assert card.get_attribute("data-via") == "upload"
    # with upload progress, then "Recognising…", then the result
    states = page.evaluate("window.__states")
    assert states.index("uploading") < states.index("recognising") < states.index("done")
    assert "100%" in page.evaluate("window.__progress")


def test_a_heic_from_a_phone_is_uploaded_and_labelled(page, drop, finished_cards, file_of):
    # Given a portrait HEIC as an iPhone saves it (stored sideways, HEIF rotation box)
    heic = phone_style(PHOTOS["grace_hopper"][0], "HEIF", turned=True)
    requests = record(page)
    # When it is dropped (Chromium cannot decode HEIC, so it cannot shrink it)
    drop(page, file_of("IMG_0001.HEIC", "image/heic", heic))
    # Then it is uploaded as it is and its label shown
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-state") == "done"
    assert any(word in (card.get_attribute("data-label") or "") for word in UNIFORM_WORDS)
    assert_upload_flow(page, requests, card)


def test_a_12_mb_photo_is_labelled(page, drop, finished_cards, file_of):
    # Given a 12 MP, 12 MB JPEG, over what one request to the cloud API may carry
    photo = phone_sized_jpeg(PHOTOS["coffee"][0])
    assert len(photo) > 10_000_000
    # When it is dropped / Then the browser shrinks it, sends the copy, and shows the label
    drop(page, file_of("PXL_0001.jpg", "image/jpeg", photo))
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-state") == "done", card.inner_text()
    assert card.get_attribute("data-via") == "direct"
    assert card.locator(".top-label").inner_text() == "Espresso"


def test_a_12_mb_file_the_browser_cannot_read_is_uploaded_whole(
    page, drop, finished_cards, file_of
):
    # Given a 12 MB TIFF of the same photo (Chromium cannot decode TIFF, so cannot shrink it)
    with Image.open(PHOTOS["coffee"][0]) as im:
        big = im.convert("RGB").resize((2000, 2000), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, "TIFF")
    assert buffer.tell() > 12_000_000
    requests = record(page)
    # When it is dropped
    drop(page, file_of("scan.tiff", "image/tiff", buffer.getvalue()))
    # Then it goes through the upload flow, with progress, and its label is shown
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-state") == "done", card.inner_text()
    assert card.locator(".top-label").inner_text() == "Espresso"
    assert_upload_flow(page, requests, card)
