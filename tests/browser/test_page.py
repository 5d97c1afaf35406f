"""The page in headless Chromium against the real `imagerec serve`: photos in, labels out."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser]

CLASSIFY = re.compile(r"/api/public/classify(\?|$)")
# Chelsea is a tabby; ImageNet has several cats and the model may pick any of them.
CAT_WORDS = ("cat", "tabby", "lynx")
UNIFORM_WORDS = ("military uniform", "suit", "tie", "mortarboard", "academic gown", "uniform")


def top_label(card):
    return card.locator(".top-label").inner_text()


def raw_label(card):
    return (card.get_attribute("data-label") or "").lower()


def test_dropped_photo_shows_its_label_large_with_top_five(page, drop, finished_cards, coffee):
    # Given the page, When a real photo of a coffee cup is dropped on the drop zone
    drop(page, coffee)

    # Then its card shows the photo, the top label large, five bars, the model and the time
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-state") == "done"
    assert top_label(card) == "Espresso"
    assert re.fullmatch(r"\d{1,3}% confidence", card.locator(".top-score").inner_text())
    rows = card.locator(".bar-row")
    assert rows.count() == 5
    assert rows.first.locator(".bar-label").inner_text() == "Espresso"
    for pct in card.locator(".bar-pct").all_inner_texts():
        assert re.fullmatch(r"(<0\.1|\d{1,3}(\.\d)?)%", pct), pct
    meta = card.locator(".meta").inner_text()
    assert "efficientnet_lite0" in meta
    assert re.search(r"\d+ ms on the server, \d+ ms round trip", meta), meta
    assert card.locator(".thumb img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert card.get_attribute("aria-label") == "coffee.png"
    assert not page.problems.page_errors
    assert not page.problems.csp_violations()


def test_bars_are_ordered_and_sized_by_score(page, drop, finished_cards, coffee):
    drop(page, coffee)
    (card,) = finished_cards(page, 1)

    widths = card.locator(".bar-fill").evaluate_all(
        "fills => fills.map((f) => f.getBoundingClientRect().width)"
    )
    assert widths == sorted(widths, reverse=True)
    track = card.locator(".bar-track").first.bounding_box()
    assert widths[0] > 0.5 * track["width"]  # espresso wins clearly


def test_file_picker(page, finished_cards, grace_hopper):
    # When a person picks a photo with the file chooser
    page.set_input_files("#file-input", str(grace_hopper.path))

    # Then it is recognised like a dropped one
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("data-state") == "done"
    assert any(word in raw_label(card) for word in UNIFORM_WORDS), raw_label(card)
    assert card.locator(".file-name").inner_text() == "grace_hopper.jpg"


def test_paste_from_clipboard(page, paste, finished_cards, chelsea):
    # When an image is pasted onto the page
    paste(page, chelsea)

    # Then it is recognised: Chelsea is some kind of cat
    (card,) = finished_cards(page, 1)
    assert any(word in raw_label(card) for word in CAT_WORDS), raw_label(card)
    assert card.get_attribute("aria-label") == "chelsea.png"


def test_pasting_text_adds_nothing(page):
    page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.setData("text/plain", "hello");
          document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer }));
        }"""
    )
    assert page.locator("#results .card").count() == 0


def test_several_files_get_a_card_each_in_order_one_at_a_time(
    page, drop, finished_cards, coffee, chelsea, grace_hopper
):
    # Given a record of when each upload starts and finishes
    events: list[str] = []
    page.on("request", lambda r: events.append("start") if CLASSIFY.search(r.url) else None)
    page.on("requestfinished", lambda r: events.append("end") if CLASSIFY.search(r.url) else None)

    # When three photos are dropped at once
    drop(page, coffee, chelsea, grace_hopper)

    # Then each gets its own card, in the order given, each recognised on its own
    cards = finished_cards(page, 3)
    names = [c.locator(".file-name").inner_text() for c in cards]
    assert names == ["coffee.png", "chelsea.png", "grace_hopper.jpg"]
    assert top_label(cards[0]) == "Espresso"
    assert any(word in raw_label(cards[1]) for word in CAT_WORDS), raw_label(cards[1])
    assert any(word in raw_label(cards[2]) for word in UNIFORM_WORDS), raw_label(cards[2])
    # And they were sent one after another, never two at a time
    page.wait_for_function("() => !document.getElementById('results').dataset.busy")
    assert events == ["start", "end"] * 3


def test_new_photos_go_on_top(page, drop, finished_cards, coffee, chelsea):
    drop(page, coffee)
    finished_cards(page, 1)
    drop(page, chelsea)
    cards = finished_cards(page, 2)
    assert [c.locator(".file-name").inner_text() for c in cards] == ["chelsea.png", "coffee.png"]


def test_a_large_upload_is_a_jpeg_at_most_1024_px(page, drop, finished_cards, file_of):
    # Given a large PNG (2400×1600, noisy, so several MB: over what the page sends as it is)
    pixels = np.random.default_rng(3).integers(0, 256, size=(1600, 2400, 3), dtype=np.uint8)
    pixels[:, :1200] = (200, 60, 30)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    assert buffer.tell() > 2_000_000
    sent: list[tuple[str, bytes]] = []

    def record(route):
        sent.append((route.request.headers.get("content-type", ""), route.request.post_data_buffer))
        route.continue_()

    page.route(CLASSIFY, record)

    # When it is dropped
    drop(page, file_of("big.png", "image/png", buffer.getvalue()))
    finished_cards(page, 1)

    # Then the browser shrank it to 1024 px on the long side and sent JPEG bytes
    ((content_type, body),) = sent
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(body)) as uploaded:
        assert uploaded.format == "JPEG"
        assert uploaded.size == (1024, 683)


def test_upload_honours_exif_orientation(page, drop, finished_cards, file_of):
    # Given a 300×100 JPEG whose EXIF says "rotate 90° clockwise to display"
    image = Image.new("RGB", (300, 100), (20, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    sent: list[bytes] = []

    def record(route):
        sent.append(route.request.post_data_buffer)
        route.continue_()

    page.route(CLASSIFY, record)

    # When it is dropped
    with page.expect_response(CLASSIFY) as answer:
        drop(page, file_of("phone.jpg", "image/jpeg", buffer.getvalue()))
    finished_cards(page, 1)

    # Then the photo went as it is (small, and a format the API takes), EXIF and all, and the
    # server saw it upright: 100 wide, 300 tall
    assert sent[0] == buffer.getvalue()
    assert answer.value.json()["image"] == {"width": 100, "height": 300, "format": "JPEG"}


def test_a_large_photo_is_shrunk_upright(page, drop, finished_cards, file_of):
    # Given a 3000×1000 noisy JPEG (over 2 MB) whose EXIF says "rotate 90° clockwise"
    pixels = np.random.default_rng(5).integers(0, 256, size=(1000, 3000, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    assert buffer.tell() > 2_000_000
    sent: list[bytes] = []

    def record(route):
        sent.append(route.request.post_data_buffer)
        route.continue_()

    page.route(CLASSIFY, record)
    drop(page, file_of("phone.jpg", "image/jpeg", buffer.getvalue()))
    (card,) = finished_cards(page, 1)

    # Then the browser's copy is upright and at most 1024 px, and the card says a copy was used
    with Image.open(io.BytesIO(sent[0])) as uploaded:
        assert uploaded.size == (341, 1024)
    assert (
        card.locator(".copy-note")
        .inner_text()
        .startswith("A smaller copy (341 × 1024) was classified")
    )


def test_results_region_is_a_live_region(page, drop, finished_cards, coffee):
    results = page.locator("#results")
    assert results.get_attribute("aria-live") == "polite"
    assert results.get_attribute("aria-busy") is None

    # Each card is busy while it works, then announced once it has its result
    drop(page, coffee)
    (card,) = finished_cards(page, 1)
    assert card.get_attribute("aria-busy") is None
    assert results.get_attribute("aria-busy") is None


def test_card_shows_preview_then_progress_then_recognising(
    page, drop, finished_cards, coffee, screenshot
):
    # Given a record of every state a card goes through, and the API held back
    page.evaluate(
        """() => {
          window.__states = [];
          new MutationObserver((changes) => {
            for (const c of changes) window.__states.push(c.target.dataset.state);
          }).observe(document.getElementById("results"),
                     { subtree: true, attributes: true, attributeFilter: ["data-state"] });
        }"""
    )
    held = []
    page.route(CLASSIFY, lambda route: held.append(route))

    # When a photo is dropped
    drop(page, coffee)

    # Then its preview shows at once, with upload progress while the request is held
    card = page.locator("#results .card").first
    page.wait_for_selector("#results .card[data-state='uploading']")
    assert card.locator(".status").inner_text() == "Uploading…"
    assert card.locator("progress.upload").is_visible()
    assert card.get_attribute("aria-busy") == "true"
    assert card.locator(".thumb img").evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "desktop-working.png")

    # When the server answers, the result replaces the status
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    finished_cards(page, 1)
    assert not card.locator(".status").is_visible()
    states = page.evaluate("window.__states")
    assert states[:1] == ["preparing"]
    assert "uploading" in states
    assert states.index("uploading") < states.index("recognising") < states.index("done")


def test_object_urls_are_revoked(new_page, drop, finished_cards, coffee, chelsea):
    # Given a page that counts object URLs made and released
    page = new_page(open_page=False)
    page.add_init_script(
        """(() => {
          window.__urls = { made: 0, revoked: 0 };
          const make = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
          URL.createObjectURL = (o) => { window.__urls.made++; return make(o); };
          URL.revokeObjectURL = (u) => { window.__urls.revoked++; return revoke(u); };
        })()"""
    )
    page.goto("/")

    # When two photos are recognised
    drop(page, coffee, chelsea)
    finished_cards(page, 2)

    # Then every object URL made for them has been released
    page.wait_for_function("() => window.__urls.made === window.__urls.revoked")
    assert page.evaluate("window.__urls.made") >= 2


def test_label_text_is_escaped(page, drop, finished_cards, coffee):
    # Given a server that answers with markup in a label (sure of it: the label is the summary)
    markup = "<img src=x onerror=alert(1)>"
    payload = (
        '{"model": {"name": "m", "runtime": "r"}, "timing_ms": {"total": 1},'
        f' "summary": {{"label": "{markup}", "score": 0.9}},'
        f' "predictions": [{{"index": 0, "label": "{markup}", "score": 0.9}}]}}'
    )
    page.route(
        CLASSIFY,
        lambda route: route.fulfill(status=200, content_type="application/json", body=payload),
    )

    # When a photo is dropped
    drop(page, coffee)
    (card,) = finished_cards(page, 1)

    # Then the label is shown as text, not turned into an element
    assert top_label(card) == "<img src=x onerror=alert(1)>"
    assert card.locator(".outcome img").count() == 0
