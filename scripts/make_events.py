"""Regenerate events/*.json: API Gateway HTTP API (payload 2.0) events for `sam local invoke`,
`imagerec invoke` and the tests.

The photos come from packages (scikit-image, matplotlib), shrunk so the events stay small.
Run: .venv/bin/python scripts/make_events.py
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import matplotlib.cbook
import skimage
from PIL import Image

from imagerec.http.events import http_event

EVENTS = Path(__file__).resolve().parents[1] / "events"
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
BOUNDARY = "----imagerecBoundary7MA4YWxkTrZu0gW"
# requestContext.authorizer of an IAM-authorized route (values made up).
IAM_CONTEXT: dict[str, object] = {
    "iam": {
        "accessKey": "AKIAIOSFODNN7EXAMPLE",
        "accountId": "111122223333",
        "callerId": "AIDACKCEVSQ6C2EXAMPLE",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": "arn:aws:iam::111122223333:user/alice",
        "userId": "AIDACKCEVSQ6C2EXAMPLE",
    }
}


def photo(path: Path, longest: int = 320) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        out = BytesIO()
        im.save(out, "JPEG", quality=90)
        return out.getvalue()


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for name, data in files:
        out += f"--{BOUNDARY}\r\n".encode()
        out += f'Content-Disposition: form-data; name="image"; filename="{name}"\r\n'.encode()
        out += b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def event(
    method: str,
    target: str,
    body: bytes = b"",
    authorizer: dict[str, object] | None = None,
    **headers: str,
) -> dict[str, object]:
    merged = {"host": "localhost:8080", "user-agent": "curl/8.5.0", **headers}
    raw = http_event(method, target, merged, body, authorizer=authorizer)
    # Fixed ids and times keep the files stable when they are regenerated.
    context = raw["requestContext"]
    assert isinstance(context, dict)
    context["requestId"] = f"event-{target.strip('/').replace('/', '-').split('?')[0]}"
    context["time"] = "25/Nov/2026:09:00:00 +0000"
    context["timeEpoch"] = 1795683600000
    return raw


def main() -> None:
    coffee = photo(SKIMAGE_DATA / "coffee.png")
    chelsea = photo(SKIMAGE_DATA / "chelsea.png")
    hopper = photo(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    import base64

    events = {
        "classify-jpeg": event("POST", "/api/classify", coffee, **{"content-type": "image/jpeg"}),
        "classify-multipart": event(
            "POST",
            "/api/classify?top_k=3",
            multipart([("coffee.jpg", coffee), ("chelsea.jpg", chelsea)]),
            **{"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        ),
        "classify-json": event(
            "POST",
            "/api/classify",
            json.dumps({"image": base64.b64encode(chelsea).decode(), "top_k": 3}).encode(),
            **{"content-type": "application/json"},
        ),
        "classify-text": event(
            "POST",
            "/api/classify",
            hopper,
            **{"content-type": "application/octet-stream", "accept": "text/plain"},
        ),
        "health": event("GET", "/api/health"),
        "models": event("GET", "/api/models"),
        "openapi": event("GET", "/api/openapi.json"),
        "bad-empty-body": event("POST", "/api/classify", **{"content-type": "image/jpeg"}),
        "bad-not-an-image": event(
            "POST",
            "/api/classify",
            b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
            **{"content-type": "image/jpeg"},
        ),
        "bad-truncated-jpeg": event(
            "POST", "/api/classify", coffee[: len(coffee) // 2], **{"content-type": "image/jpeg"}
        ),
        "bad-top-k": event(
            "POST", "/api/classify?top_k=99", coffee, **{"content-type": "image/jpeg"}
        ),
        "bad-base64-json": event(
            "POST",
            "/api/classify",
            b'{"image": "not base64 at all!"}',
            **{"content-type": "application/json"},
        ),
        "bad-multipart-no-boundary": event(
            "POST", "/api/classify", b"--x\r\n\r\n", **{"content-type": "multipart/form-data"}
        ),
        # The upload flow: a form (its fields differ each time, so the form POST and the
        # classify-by-id that follow are made from its answer; docs/api.md shows them).
        "uploads-create": event("POST", "/api/uploads"),
        "bad-upload-unknown": event(
            "POST",
            "/api/classify",
            json.dumps({"upload": "0" * 32}).encode(),
            **{"content-type": "application/json"},
        ),
        # Auth=none (and any anonymous caller): refused before S3 is asked, whatever the bucket.
        "bad-s3-reference-anonymous": event(
            "POST",
            "/api/classify",
            json.dumps({"s3": {"bucket": "someone-elses-photos", "key": "cat.jpg"}}).encode(),
            **{"content-type": "application/json"},
        ),
        # What API Gateway sends for an IAM-authorized caller (Auth=iam): classified from S3 by
        # a deployment with Auth=iam; refused unread by one with Auth=none (imagerec invoke).
        "classify-s3-iam": event(
            "POST",
            "/api/classify",
            json.dumps({"s3": {"bucket": "my-photos", "key": "cat.jpg"}}).encode(),
            authorizer=IAM_CONTEXT,
            **{"content-type": "application/json"},
        ),
        "not-found": event("GET", "/api/nothing-here"),
        "method-not-allowed": event("GET", "/api/classify"),
    }
    EVENTS.mkdir(exist_ok=True)
    for name, body in events.items():
        (EVENTS / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(events)} events to {EVENTS}")


if __name__ == "__main__":
    main()
