"""Smoke test of a deployed stack: is it up, does it classify, is the page served safely?

    python scripts/smoke.py [--stack NAME]        (make smoke [ENV=dev])

The stack is --stack, else $AWS_SAM_STACK_NAME. Its Outputs (read with boto3) give the URLs:
1. GET  $ApiUrl/api/health and $SiteUrl/api/health (the API, then through CloudFront): 200;
2. POST $SiteUrl/api/public/classify (the page's route) with events/classify-jpeg.json's photo:
   200 and predictions;
3. GET  $SiteUrl/: 200, HTML, and every header of imagerec/http/headers.py with its value.
One line per check; the exit status is 1 if any failed. Needs boto3 only (the SAM venv has it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import runpy
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parents[1]
PHOTO_EVENT = ROOT / "events" / "classify-jpeg.json"
# Plain data with no imports, so it is read without installing the app and its dependencies.
HEADERS_MODULE = ROOT / "layers" / "imagerec" / "imagerec" / "http" / "headers.py"
TIMEOUT_S = 30.0
REQUIRED_OUTPUTS = ("ApiUrl", "SiteUrl")


class SmokeError(Exception):
    """A check that failed; the message is the line the user reads."""


def security_headers() -> dict[str, str]:
    headers: dict[str, str] = runpy.run_path(str(HEADERS_MODULE))["SECURITY_HEADERS"]
    return headers


def stack_outputs(stack: str) -> dict[str, str]:
    try:
        client = boto3.client("cloudformation")
        (described,) = client.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise SmokeError(f"cannot read stack {stack}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise SmokeError(f"stack {stack} has no output {', '.join(missing)}")
    return outputs


def fetch(
    method: str, url: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    if not url.startswith(("https://", "http://")):
        raise SmokeError(f"{method} {url}: not an http(s) URL")
    # The scheme is checked just above, so urlopen never reads file: or other URLs.
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()
    except (urllib.error.URLError, OSError) as error:
        raise SmokeError(f"{method} {url}: {error}") from error


def expect_json(method: str, url: str, status: int, body: bytes) -> Any:
    if status != 200:
        raise SmokeError(f"{method} {url} -> {status}: {body[:200]!r}")
    try:
        return json.loads(body)
    except ValueError as error:
        raise SmokeError(f"{method} {url} -> 200 but not JSON: {body[:200]!r}") from error


def normalised(value: str) -> list[str]:
    """A header value's directives, so spacing and case (HSTS's includeSubDomains) do not count."""
    return [" ".join(part.split()).lower() for part in value.split(";") if part.strip()]


# --- the checks: each returns its "ok" detail or raises SmokeError ---------------------------


def check_health(base_url: str) -> str:
    url = f"{base_url}/api/health"
    status, _, body = fetch("GET", url)
    health = expect_json("GET", url, status, body)
    return f"GET {url} -> 200 {json.dumps(health, sort_keys=True)[:120]}"


def check_classify(base_url: str) -> str:
    event = json.loads(PHOTO_EVENT.read_text(encoding="utf-8"))
    photo = base64.b64decode(event["body"])
    # The page's anonymous route: open whatever Auth is, unless anonymous drops are refused.
    url = f"{base_url}/api/public/classify"
    status, _, body = fetch("POST", url, photo, event["headers"]["content-type"])
    result = expect_json("POST", url, status, body)
    predictions = result.get("predictions") if isinstance(result, dict) else None
    if not predictions:
        raise SmokeError(f"POST {url} -> 200 but no predictions: {body[:200]!r}")
    top = predictions[0]
    return f"POST {url} ({len(photo)} B photo) -> {top['label']} {top['score']:.3f}"


def without_upload_origins(policy: str, upload_bucket: str | None) -> str:
    """The CSP less the upload bucket's own origins, which CloudFront adds to connect-src."""
    if not upload_bucket:
        return policy
    prefix = f"https://{upload_bucket}.s3."
    directives = [
        " ".join(word for word in directive.split() if not word.startswith(prefix))
        for directive in policy.split(";")
    ]
    return "; ".join(directive for directive in directives if directive)


def check_page(site_url: str, upload_bucket: str | None = None) -> str:
    url = f"{site_url}/"
    status, headers, body = fetch("GET", url)
    if status != 200 or b"<html" not in body.lower():
        raise SmokeError(f"GET {url} -> {status}, not the page")
    received = {name.lower(): value for name, value in headers.items()}
    wrong = []
    for name, value in security_headers().items():
        got = received.get(name.lower())
        if got is not None and name.lower() == "content-security-policy":
            got = without_upload_origins(got, upload_bucket)
        if got is None or normalised(got) != normalised(value):
            wrong.append(f"{name}: expected {value!r}, received {got!r}")
    if wrong:
        raise SmokeError(f"GET {url} security headers differ: {'; '.join(wrong)}")
    return f"GET {url} -> 200 with all {len(security_headers())} security headers"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=os.environ.get("AWS_SAM_STACK_NAME"))
    args = parser.parse_args(argv)
    if not args.stack:
        print("smoke: no stack: pass --stack NAME or set AWS_SAM_STACK_NAME", file=sys.stderr)
        return 1
    try:
        outputs = stack_outputs(args.stack)
    except SmokeError as error:
        print(f"smoke: FAILED  {error}", file=sys.stderr)
        return 1
    api_url, site_url = outputs["ApiUrl"].rstrip("/"), outputs["SiteUrl"].rstrip("/")
    checks: list[tuple[str, Callable[[], str]]] = [
        ("health (API)", lambda: check_health(api_url)),
        ("health (site)", lambda: check_health(site_url)),
        ("classify", lambda: check_classify(site_url)),
        ("page", lambda: check_page(site_url, outputs.get("UploadBucketName"))),
    ]
    failures = 0
    for name, check in checks:
        started = time.perf_counter()
        try:
            detail = check()
        except SmokeError as error:
            print(f"smoke: FAILED  {name}: {error}", file=sys.stderr)
            failures += 1
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"smoke: ok      {name}: {detail} ({elapsed_ms:.0f} ms)")
    print(f"smoke: {args.stack}: {len(checks) - failures} of {len(checks)} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
