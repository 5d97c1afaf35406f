"""Fixtures for the browser tests: the real `imagerec serve` on loopback and Debian's Chromium.

Playwright never downloads a browser here: it drives /usr/bin/chromium (`apt-get install
chromium`), and the tests skip with a clear reason when that is missing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.serving import served

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
RESULT_TIMEOUT_MS = 30_000


# ---- the server ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The real server with default settings."""
    with served(ARTIFACTS / "server.log") as server:
        yield server.base_url


SMALL_CAP_BYTES = 2000


@pytest.fixture(scope="session")
def small_cap_server_url() -> Iterator[str]:
    """A second real server that refuses any upload over SMALL_CAP_BYTES bytes."""
    with served(
        ARTIFACTS / "server-small-cap.log", IMAGEREC_MAX_BYTES=str(SMALL_CAP_BYTES)
    ) as server:
        yield server.base_url


# ---- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python missing")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions and CSP violations seen while a test ran."""

    console_errors: list[str]
    page_errors: list[str]

    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]


@pytest.fixture
def new_page(browser: Any, server_url: str) -> Iterator[Callable[..., Any]]:
    """Make pages on the real server: new_page(viewport=..., color_scheme=..., base_url=...)."""
    contexts: list[Any] = []

    def make(
        *,
        viewport: dict[str, int] = DESKTOP,
        color_scheme: str = "light",
        base_url: str = server_url,
        open_page: bool = True,
        **context_options: Any,
    ) -> Any:
        # Motion off: tests read the settled page (bars, hover colours), not a frame of a
        # CSS transition, which made them race on a busy machine.
        context_options.setdefault("reduced_motion", "reduce")
        context = browser.new_context(
            viewport=viewport,
            color_scheme=color_scheme,
            base_url=base_url,
            accept_downloads=False,
            **context_options,
        )
        context.set_default_timeout(RESULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.problems = PageProblems(console_errors=[], page_errors=[])
        page.on(
            "console",
            lambda msg: (
                page.problems.console_errors.append(msg.text) if msg.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: page.problems.page_errors.append(str(error)))
        if open_page:
            page.goto("/")
            page.wait_for_selector("#dropzone")
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    """A desktop-sized page (1280×800, light) on the real server."""
    return new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ---- real photos that ship inside Python packages ---------------------------------------------


@dataclass(frozen=True)
class Photo:
    name: str
    mime: str
    data: bytes
    path: Path | None = None


def _packaged(package: str, relative: str) -> Path:
    path = Path(str(resources.files(package).joinpath(relative)))
    if not path.is_file():
        pytest.skip(f"Expected the sample photo {relative} in {package}, received: no such file")
    return path


def _photo(path: Path, mime: str) -> Photo:
    return Photo(name=path.name, mime=mime, data=path.read_bytes(), path=path)


@pytest.fixture(scope="session")
def coffee() -> Photo:
    """scikit-image's cup of coffee: the model says "espresso"."""
    return _photo(_packaged("skimage", "data/coffee.png"), "image/png")


@pytest.fixture(scope="session")
def chelsea() -> Photo:
    """scikit-image's Chelsea the cat."""
    return _photo(_packaged("skimage", "data/chelsea.png"), "image/png")


@pytest.fixture(scope="session")
def rocket() -> Photo:
    """scikit-image's rocket on its launch pad: the model is not sure ("missile", 25%)."""
    return _photo(_packaged("skimage", "data/rocket.jpg"), "image/jpeg")


@pytest.fixture(scope="session")
def grace_hopper() -> Photo:
    """matplotlib's portrait of Rear Admiral Grace Hopper in uniform."""
    return _photo(_packaged("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), "image/jpeg")


# ---- putting files into the page the ways a person does ----------------------------------------

_FILES_JS = """
(files) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const raw = atob(f.data);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    transfer.items.add(new File([bytes], f.name, { type: f.mime }));
  }
  return transfer;
}
"""


_PASTE_JS = (
    "(files) => {"
    f" const transfer = ({_FILES_JS})(files);"
    ' const event = new ClipboardEvent("paste",'
    " { clipboardData: transfer, bubbles: true, cancelable: true });"
    " document.body.dispatchEvent(event);"
    " }"
)


def _payload(photos: list[Photo]) -> str:
    return json.dumps(
        [
            {"name": p.name, "mime": p.mime, "data": base64.b64encode(p.data).decode("ascii")}
            for p in photos
        ]
    )


def drop_files(page: Any, *photos: Photo, target: str = "#dropzone") -> None:
    """Drag files over the drop zone and drop them, as a desktop browser would."""
    transfer = page.evaluate_handle(f"({_FILES_JS})({_payload(list(photos))})")
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(target, event, {"dataTransfer": transfer})
    transfer.dispose()


def paste_files(page: Any, *photos: Photo) -> None:
    """Paste files from the clipboard onto the page (a ClipboardEvent carrying them)."""
    page.evaluate(_PASTE_JS, json.loads(_payload(list(photos))))


def wait_for_cards(page: Any, count: int) -> list[Any]:
    """Wait until `count` cards have finished (a result or a problem); return them in page order."""
    page.wait_for_function(
        """(n) => {
          const cards = document.querySelectorAll("#results .card");
          return cards.length === n &&
            [...cards].every((c) => c.dataset.state === "done" || c.dataset.state === "error");
        }""",
        arg=count,
        timeout=RESULT_TIMEOUT_MS,
    )
    return page.locator("#results .card").all()


# ---- the helpers above, as fixtures for the tests -----------------------------------------------


@pytest.fixture
def drop() -> Callable[..., None]:
    return drop_files


@pytest.fixture
def paste() -> Callable[..., None]:
    return paste_files


@pytest.fixture
def finished_cards() -> Callable[[Any, int], list[Any]]:
    return wait_for_cards


@pytest.fixture
def file_of() -> Callable[[str, str, bytes], Photo]:
    """Build an in-memory file to drop: file_of("notes.txt", "text/plain", b"...")."""
    return lambda name, mime, data: Photo(name=name, mime=mime, data=data)


def _ignore(_chooser: Any) -> None:
    return None


def open_file_chooser(page: Any, action: Callable[[], None]) -> Any:
    """Run `action` and return the file chooser it opens.

    Adding a "filechooser" listener asks the browser to intercept choosers without waiting
    for a reply, so a key press right after can race it (puppeteer#6040 describes the same
    race). A listener added first plus one round trip makes interception certain.
    """
    page.on("filechooser", _ignore)
    page.evaluate("0")
    with page.expect_file_chooser() as chooser:
        action()
    return chooser.value


@pytest.fixture
def file_chooser() -> Callable[[Any, Callable[[], None]], Any]:
    return open_file_chooser


def save_screenshot(page: Any, path: Path) -> None:
    """Screenshot the whole page by growing the viewport to fit it.

    Playwright's full_page capture in Chromium briefly drops mobile emulation, so a phone
    page would be drawn with desktop pointer media queries; a tall viewport keeps them.
    """
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.mouse.move(0, 0)  # no hover effects in the picture
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


@pytest.fixture
def screenshot(artifacts: Path) -> Callable[[Any, str], Path]:
    """screenshot(page, "phone.png") saves the whole page under test-artifacts/browser/."""

    def take(page: Any, name: str) -> Path:
        path = artifacts / name
        save_screenshot(page, path)
        return path

    return take
