"""Looks and manners: phone to desktop, dark mode, contrast, focus and keyboard-only use.

Screenshots land in test-artifacts/browser/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser]

CLASSIFY = re.compile(r"/api/public/classify(\?|$)")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# Every piece of text a person reads, by selector; checked against whatever is behind it.
KEY_TEXT = [
    "h1",
    ".lede",
    ".brand-name",
    ".drop-title",
    ".drop-hint",
    ".pill",
    ".file-name",
    ".lead",
    ".top-label",
    ".top-score",
    ".bar-label",
    ".bar-pct",
    ".meta",
    ".problem-title",
    ".problem-text",
    ".problem-detail",
    ".problem .button",
    ".footnote p",
]

_COLOURS_JS = """
(selectors) => {
  const opaque = (c) => !/rgba\\(.*,\\s*0\\)$/.test(c) && c !== "transparent";
  const behind = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const bg = getComputedStyle(node).backgroundColor;
      if (opaque(bg)) return bg;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  return selectors.map((selector) => {
    const el = document.querySelector(selector);
    if (!el) return { selector, missing: true };
    const style = getComputedStyle(el);
    return { selector, color: style.color, background: behind(el) };
  });
}
"""


def rgb(css: str) -> tuple[float, float, float]:
    numbers = re.findall(r"[\d.]+", css)
    assert len(numbers) >= 3, f"Expected an rgb() colour, received: {css!r}"
    red, green, blue = (float(n) for n in numbers[:3])
    return red, green, blue


def luminance(css: str) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb(css))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def show_result_and_problem(page, drop, finished_cards, coffee, chelsea):
    """A recognised photo on top of a failed one, so every kind of text is on screen."""
    page.route(
        CLASSIFY,
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": {"code": "busy", "message": "All workers are busy."}}',
        ),
    )
    drop(page, chelsea)
    finished_cards(page, 1)
    page.unroute(CLASSIFY)
    drop(page, coffee)
    return finished_cards(page, 2)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(new_page, drop, finished_cards, coffee, chelsea, scheme):
    # Given a result and an error on screen
    page = new_page(color_scheme=scheme)
    show_result_and_problem(page, drop, finished_cards, coffee, chelsea)
    page.mouse.move(0, 0)  # no hover effects

    # Then every piece of text has at least 4.5:1 contrast with what is behind it
    failures = []
    for item in page.evaluate(_COLOURS_JS, KEY_TEXT):
        assert not item.get("missing"), f"Expected {item['selector']} on the page"
        ratio = contrast(item["color"], item["background"])
        if ratio < 4.5:
            failures.append(
                f"{item['selector']}: {ratio:.2f} ({item['color']} on {item['background']})"
            )
    assert not failures, failures

    # And the bars and the focus ring stand out at least 3:1 (non-text contrast)
    colours = page.evaluate(
        """() => {
          const css = getComputedStyle(document.documentElement);
          const get = (name) => {
            const probe = document.createElement("span");
            probe.style.color = css.getPropertyValue(name);
            document.body.append(probe);
            const value = getComputedStyle(probe).color;
            probe.remove();
            return value;
          };
          return { bar: get("--bar"), track: get("--bar-track"), surface: get("--surface"),
                   focus: get("--focus"), bg: get("--bg") };
        }"""
    )
    assert contrast(colours["bar"], colours["track"]) >= 3, colours
    assert contrast(colours["bar"], colours["surface"]) >= 3, colours
    assert contrast(colours["focus"], colours["bg"]) >= 3, colours
    assert contrast(colours["focus"], colours["surface"]) >= 3, colours


def test_dark_mode_renders_dark(new_page, drop, finished_cards, coffee, chelsea, screenshot):
    page = new_page(color_scheme="dark")
    show_result_and_problem(page, drop, finished_cards, coffee, chelsea)

    body = page.evaluate(
        "() => { const s = getComputedStyle(document.body);"
        " return { bg: s.backgroundColor, fg: s.color }; }"
    )
    card_bg = page.locator(".card").first.evaluate("c => getComputedStyle(c).backgroundColor")
    assert luminance(body["bg"]) < 0.05
    assert luminance(card_bg) < 0.05
    assert luminance(body["fg"]) > 0.7
    screenshot(page, "desktop-dark.png")


def test_desktop_screenshot(new_page, drop, finished_cards, coffee, chelsea, screenshot):
    page = new_page(viewport=DESKTOP)
    screenshot(page, "desktop-empty.png")

    drop(page, coffee, chelsea)
    cards = finished_cards(page, 2)
    assert all(c.get_attribute("data-state") == "done" for c in cards)
    screenshot(page, "desktop.png")

    # The card sits beside its photo on a wide screen
    photo = cards[0].locator(".thumb").bounding_box()
    label = cards[0].locator(".top-label").bounding_box()
    assert label["x"] > photo["x"] + photo["width"]


def test_phone_viewport_has_no_horizontal_scroll(
    new_page, drop, finished_cards, coffee, chelsea, screenshot
):
    # Given a 360×740 touch phone
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    assert page.locator("#camera-button").is_visible()
    assert page.locator(".drop-title").inner_text() == "Tap to choose photos"

    # When photos are recognised and one fails
    show_result_and_problem(page, drop, finished_cards, coffee, chelsea)

    # Then nothing is wider than the screen
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    for box in page.locator(".card, .bar-row, .dropzone").evaluate_all(
        "els => els.map((e) => e.getBoundingClientRect().right)"
    ):
        assert box <= PHONE["width"]
    screenshot(page, "phone.png")


def test_phone_camera_button_opens_a_camera_chooser(new_page, file_chooser, finished_cards, coffee):
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    assert page.locator("#camera-input").get_attribute("capture") == "environment"
    assert page.locator("#file-input").get_attribute("capture") is None

    chooser = file_chooser(page, lambda: page.locator("#camera-button").tap())
    assert not chooser.is_multiple()
    chooser.set_files(str(coffee.path))

    (card,) = finished_cards(page, 1)
    assert card.locator(".top-label").inner_text() == "Espresso"


def test_phone_dark_screenshot(new_page, drop, finished_cards, coffee, screenshot):
    page = new_page(viewport=PHONE, color_scheme="dark", is_mobile=True, has_touch=True)
    drop(page, coffee)
    finished_cards(page, 1)
    screenshot(page, "phone-dark.png")


@pytest.mark.parametrize("key", ["Enter", "Space"])
def test_keyboard_only(page, file_chooser, finished_cards, coffee, key):
    # Given a fresh page, When Tab is pressed, Then the drop zone has a visible focus ring
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "dropzone"
    ring = page.locator("#dropzone").evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert ring[0] != "none"
    assert float(ring[1].removesuffix("px")) >= 2

    # When Enter (or Space) is pressed, Then the file chooser opens, for several files
    chooser = file_chooser(page, lambda: page.keyboard.press(key))
    assert chooser.is_multiple()
    chooser.set_files(str(coffee.path))

    # Then the photo is recognised
    (card,) = finished_cards(page, 1)
    assert card.locator(".top-label").inner_text() == "Espresso"


def test_keyboard_reaches_try_again(page, drop, finished_cards, coffee):
    page.route(CLASSIFY, lambda route: route.abort("connectionrefused"))
    drop(page, coffee)
    finished_cards(page, 1)
    page.unroute(CLASSIFY)

    page.keyboard.press("Tab")  # the drop zone
    page.keyboard.press("Tab")  # "Clear results"
    page.keyboard.press("Tab")  # the card's "Try again"
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Try again"
    page.keyboard.press("Enter")
    page.wait_for_selector("#results .card[data-state='done']")


def test_drop_zone_shows_hover_and_drag_states(page, file_of):
    zone = page.locator("#dropzone")
    border = "el => getComputedStyle(el).borderColor + ' ' + getComputedStyle(el).backgroundColor"
    page.mouse.move(0, 0)
    resting = zone.evaluate(border)

    zone.hover()
    assert zone.evaluate(border) != resting

    page.mouse.move(0, 0)
    page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File(["x"], "a.png", { type: "image/png" }));
          const zone = document.getElementById("dropzone");
          zone.dispatchEvent(new DragEvent("dragenter", { dataTransfer: transfer, bubbles: true }));
        }"""
    )
    assert "is-dragover" in (zone.get_attribute("class") or "")
    assert zone.evaluate("el => getComputedStyle(el).borderStyle") == "solid"

    page.evaluate(
        """() => document.getElementById("dropzone")
          .dispatchEvent(new DragEvent("dragleave", { bubbles: true }))"""
    )
    assert "is-dragover" not in (zone.get_attribute("class") or "")
