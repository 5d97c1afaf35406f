"""`make smoke` (scripts/smoke.py) against a fake stack, and the page's headers on `imagerec serve`.

The fake stack is moto's CloudFormation, reached through real boto3 calls: its Outputs point
ApiUrl and SiteUrl at a real `imagerec serve` on a free loopback port, which stands in for API
Gateway and CloudFront (it sends the same security headers on the page, as the first test shows).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from imagerec.http.headers import SECURITY_HEADERS
from scripts import smoke
from tests.serving import served as serve_command

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STACK = "imagerec-smoke"
# What an HTTP/1.1 server adds to any response; everything else on the page is policy.
TRANSPORT_HEADERS = {
    "content-type",
    "content-length",
    "cache-control",
    "date",
    "server",
    "connection",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real `imagerec serve` (page + API, the real model) on a free loopback port."""
    with serve_command(tmp_path_factory.mktemp("serve") / "serve.log") as server:
        yield server.base_url


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's CloudFormation for every boto3 client made inside the test; no real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def create_stack(**outputs: str) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


@pytest.fixture
def bare_site(tmp_path: Path) -> Iterator[str]:
    """A plain static server with the same page and none of the headers (a broken CDN)."""
    (tmp_path / "index.html").write_bytes((ROOT / "site" / "index.html").read_bytes())
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/", "/app.js", "/api/health", "/api/nope"])
def test_imagerec_serve_sends_exactly_the_security_headers_on_the_page_and_the_api(
    served: str, path: str
) -> None:
    # Given the real local server
    connection = http.client.HTTPConnection("127.0.0.1", int(served.rsplit(":", 1)[1]), timeout=30)
    # When the page, a script, the API and an unknown API route are fetched
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    # Then every header beyond HTTP's own is the one policy, value for value, the same that
    # CloudFront sends on the page and on /api/* (test_template.py proves that side)
    assert response.status == (404 if path == "/api/nope" else 200)
    policy = {
        name: value
        for name, value in response.getheaders()
        if name.lower() not in TRANSPORT_HEADERS
    }
    assert policy == SECURITY_HEADERS


def test_smoke_passes_against_a_stack_whose_outputs_point_at_imagerec_serve(
    served: str,
    cloudformation: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stack whose API and site URLs are the real server, named by AWS_SAM_STACK_NAME
    create_stack(ApiUrl=served, SiteUrl=served + "/", FunctionName="imagerec-smoke-fn")
    monkeypatch.setenv("AWS_SAM_STACK_NAME", STACK)
    # When the smoke test runs
    status = smoke.main([])
    output = capsys.readouterr()
    # Then each of the four checks passes, the classification names the photo's top label
    assert status == 0, output.err
    ok = [line for line in output.out.splitlines() if line.startswith("smoke: ok")]
    assert [line.removeprefix("smoke: ok").split(":")[0].strip() for line in ok] == [
        "health (API)",
        "health (site)",
        "classify",
        "page",
    ]
    (classify,) = [line for line in ok if "classify:" in line]
    event = json.loads((ROOT / "events" / "classify-jpeg.json").read_text(encoding="utf-8"))
    expected = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                f"{served}/api/classify",
                data=base64.b64decode(event["body"]),
                headers={"Content-Type": "image/jpeg"},
            ),
            timeout=30,
        ).read()
    )["predictions"][0]["label"]
    assert f"-> {expected} " in classify
    assert f"all {len(SECURITY_HEADERS)} security headers" in output.out
    assert f"smoke: {STACK}: 4 of 4 checks passed" in output.out


def test_smoke_fails_on_a_page_served_without_the_security_headers(
    served: str, bare_site: str, cloudformation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose API works but whose site is served without the policy (and no /api)
    create_stack(ApiUrl=served, SiteUrl=bare_site)
    # When the smoke test runs on it by name
    status = smoke.main(["--stack", STACK])
    output = capsys.readouterr()
    # Then it fails, the API check still passes, and the page's line names the missing headers
    assert status == 1
    assert "smoke: ok      health (API)" in output.out
    (page,) = [line for line in output.err.splitlines() if "FAILED  page" in line]
    for name in SECURITY_HEADERS:
        assert f"{name}: expected" in page
    assert f"smoke: {STACK}: 1 of 4 checks passed" in output.out


def test_smoke_names_a_missing_stack_and_a_missing_output(
    cloudformation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no stack at all, then one without ApiUrl
    assert smoke.main(["--stack", STACK]) == 1
    assert f"cannot read stack {STACK}" in capsys.readouterr().err
    create_stack(SiteUrl="https://d111111abcdef8.cloudfront.net")
    assert smoke.main(["--stack", STACK]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"smoke: FAILED  stack {STACK} has no output ApiUrl"


def test_smoke_without_a_stack_name_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_SAM_STACK_NAME", raising=False)
    assert smoke.main([]) == 1
    assert "AWS_SAM_STACK_NAME" in capsys.readouterr().err


def test_the_page_check_allows_only_the_upload_bucket_in_connect_src() -> None:
    # Given the CSP CloudFront sends: the package's, plus the upload bucket's two origins
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "connect-src 'self';",
        "connect-src 'self' https://up-1.s3.eu-west-1.amazonaws.com https://up-1.s3.amazonaws.com;",
    )
    # When the smoke test strips that stack's upload bucket / Then it is the package's policy
    stripped = smoke.without_upload_origins(policy, "up-1")
    assert smoke.normalised(stripped) == smoke.normalised(
        SECURITY_HEADERS["Content-Security-Policy"]
    )
    # And another bucket's origin is not excused
    assert smoke.normalised(smoke.without_upload_origins(policy, "other")) != smoke.normalised(
        SECURITY_HEADERS["Content-Security-Policy"]
    )
