"""Cheap checks on site/ without a browser: small, self-contained, and safe under a strict CSP.

The page is served (by CloudFront and by `imagerec serve`) with the Content-Security-Policy
of `imagerec.http.headers`, which allows only this origin, so anything inline or third-party
would be blocked there.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from imagerec.http.api import ROUTES

pytestmark = [pytest.mark.integration]

SITE = Path(__file__).resolve().parents[2] / "site"
BUDGET_BYTES = 50 * 1024
CSP_NAMES = {"content-security-policy", "content-security-policy-report-only"}
# The SVG namespace is an identifier, not something fetched.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*""", re.IGNORECASE)


class Tags(HTMLParser):
    """Every start tag in a document, with its attributes, and the text inside <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)

    def find(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(path: Path) -> Tags:
    parser = Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def index() -> Tags:
    return parse(SITE / "index.html")


def site_files() -> list[Path]:
    return sorted(p for p in SITE.rglob("*") if p.is_file())


def test_site_has_one_page_one_script_one_stylesheet(index):
    scripts = index.find("script")
    sheets = [a for a in index.find("link") if a.get("rel") == "stylesheet"]
    assert [s["src"] for s in scripts] == ["app.js"]
    assert [s["href"] for s in sheets] == ["style.css"]
    for name in ("index.html", "app.js", "style.css"):
        assert (SITE / name).is_file(), name


def test_site_is_under_50_kb():
    total = sum(p.stat().st_size for p in site_files())
    assert total < BUDGET_BYTES, f"Expected site/ under {BUDGET_BYTES} bytes, received: {total}"


@pytest.mark.parametrize("path", site_files(), ids=lambda p: p.name)
def test_no_external_urls(path):
    text = path.read_text(encoding="utf-8")
    found = {url for url in URL.findall(text) if url not in ALLOWED_URLS}
    assert not found, f"Expected no third-party URLs in {path.name}, received: {sorted(found)}"
    assert "@import" not in text
    assert "@font-face" not in text


def test_every_reference_is_a_local_file_or_an_api_route(index):
    api_routes = {route.path for route in ROUTES if route.method == "GET"}
    for tag, attrs in index.tags:
        for name in ("src", "href"):
            ref = attrs.get(name)
            if ref is None:
                continue
            assert not ref.startswith(("http:", "https:", "//", "javascript:")), (tag, ref)
            if ref.startswith("api/"):  # the same origin serves the API (CloudFront: /api/*)
                assert f"/{ref}" in api_routes, f"Expected a GET route /{ref} for <{tag} {name}>"
                continue
            assert (SITE / ref).is_file(), f"Expected site/{ref} for <{tag} {name}>"


def test_nothing_inline_that_the_csp_would_block(index):
    assert not index.script_text, "Expected no inline <script> text"
    assert not index.find("style"), "Expected no <style> element"
    for tag, attrs in index.tags:
        assert "style" not in attrs, f"Expected no style attribute on <{tag}>"
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"Expected no inline event handlers on <{tag}>, received: {handlers}"


def test_favicon_has_no_inline_style():
    favicon = SITE / "favicon.svg"
    if not favicon.is_file():
        pytest.skip("no favicon.svg")
    svg = parse(favicon)
    assert not svg.find("style")
    assert not svg.find("script")
    assert all("style" not in attrs for _, attrs in svg.tags)


def test_page_declares_no_csp_of_its_own(index):
    # The response header (imagerec.http.headers) is the one policy: a <meta> copy drifts, cannot
    # say frame-ancestors, and would only ever be intersected with the header.
    metas = [m for m in index.find("meta") if (m.get("http-equiv") or "").lower() in CSP_NAMES]
    assert metas == []


def test_script_writes_no_html_and_evaluates_no_strings():
    script = (SITE / "app.js").read_text(encoding="utf-8")
    for risky in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style"',
    ):
        assert risky not in script, f"Expected no {risky} in app.js"


def test_inputs_for_picker_and_camera(index):
    inputs = {attrs["id"]: attrs for attrs in index.find("input")}
    picker, camera = inputs["file-input"], inputs["camera-input"]
    assert picker["type"] == camera["type"] == "file"
    assert picker["accept"] == camera["accept"] == "image/*"
    # capture on a multiple-file input makes some phones camera-only: keep them apart
    assert "multiple" in picker
    assert "capture" not in picker
    assert "capture" in camera
    assert "multiple" not in camera


def test_results_region_is_live_and_drop_zone_is_focusable(index):
    by_id = {attrs.get("id"): attrs for _, attrs in index.tags if attrs.get("id")}
    assert by_id["results"].get("aria-live") == "polite"
    assert by_id["dropzone"].get("tabindex") == "0"
    assert by_id["dropzone"].get("role") == "button"
    html = index.find("html")[0]
    assert html.get("lang") == "en"
