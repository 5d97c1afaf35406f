"""The security headers as Chromium receives them from the real `imagerec serve`: the page, its
script and the API all carry the one policy (imagerec.http.headers), the one CloudFront sends
(tests/integration/test_template.py proves that side against template.yaml)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from imagerec.http.headers import SECURITY_HEADERS

pytestmark = [pytest.mark.browser]

# What any HTTP/1.1 response carries beside the policy.
TRANSPORT = {"content-type", "content-length", "cache-control", "date", "server", "connection"}


def test_the_page_and_the_api_reach_the_browser_with_the_one_policy(new_page):
    # Given a browser that records every response it receives
    page = new_page(open_page=False)
    received = {}
    page.on("response", lambda response: received.setdefault(urlsplit(response.url).path, response))
    # When it opens the page and the page's own origin answers a fetch of /api/health
    page.goto("/")
    page.wait_for_selector("#dropzone")
    assert page.evaluate("fetch('/api/health').then(r => r.status)") == 200
    # Then the page, its script and the API each came with exactly the policy's headers
    expected = {name.lower(): value for name, value in SECURITY_HEADERS.items()}
    for path in ("/", "/app.js", "/api/health"):
        headers = received[path].all_headers()
        policy = {name: value for name, value in headers.items() if name not in TRANSPORT}
        assert policy == expected, path
    assert not page.problems.csp_violations()
