"""The upload flow as a client does it: ask for a form, POST every field then the file.

Shared by the unit tests (events through the handler) and the integration tests (real HTTP
with urllib, as a script or curl would).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any


def form_data(
    fields: dict[str, str], data: bytes, filename: str = "photo.jpg"
) -> tuple[bytes, str]:
    """A multipart/form-data body: every field in order, then the file in a part named "file"."""
    boundary = "----imagerec" + secrets.token_hex(8)
    body = bytearray()
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def http(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with urllib; 4xx/5xx are answers, not exceptions."""
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def upload_and_classify(base: str, data: bytes, top_k: int = 5) -> tuple[int, Any]:
    """The whole flow over HTTP: POST /api/uploads, the form, then classify by id."""
    status, _, text = http("POST", f"{base}/api/uploads")
    assert status == 200, text
    upload = json.loads(text)["upload"]
    body, content_type = form_data(upload["fields"], data)
    status, _, text = http("POST", upload["url"], body, {"Content-Type": content_type})
    assert status == 204, text
    request = json.dumps({"upload": upload["id"], "top_k": top_k}).encode()
    status, _, text = http(
        "POST", f"{base}/api/classify", request, {"Content-Type": "application/json"}
    )
    return status, json.loads(text)
