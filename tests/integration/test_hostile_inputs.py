"""Issue 9's cases against the real `imagerec serve` (the real model, a subprocess on a free
port) and through `imagerec invoke`, and schemathesis checking the server against its own
OpenAPI document. Each case gets a JSON 4xx, or a 200 where the input is valid, while
another client keeps getting answers."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagerec.http.events import http_event
from tests.conftest import ROOT, photo_bytes
from tests.serving import served as serve_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENV = {
    **os.environ,
    "PYTHONUNBUFFERED": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
BIN = Path(sys.executable).parent
MB = 1024 * 1024

# A 40-megapixel image of each kind the issue measured, written small (deflate) by a child
# process, so this test process never holds the frame.
_MAKE_BIG = r"""
import struct, sys, zlib
from PIL import Image
kind, path = sys.argv[1], sys.argv[2]
W, H = 8000, 5000
if kind == "float32.tiff":
    Image.new("F", (W, H), 0.25).save(path, "TIFF", compression="tiff_adobe_deflate")
elif kind == "int32.tiff":
    Image.new("I", (W, H), 70000).save(path, "TIFF", compression="tiff_adobe_deflate")
elif kind == "rgba16.png":
    def chunk(tag, body):
        crc = zlib.crc32(tag + body)
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)
    z = zlib.compressobj(9)
    row = b"\x00" + b"\x40" * (W * 8)
    idat = b"".join(z.compress(row) for _ in range(H)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", W, H, 16, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
    open(path, "wb").write(png + chunk(b"IEND", b""))
elif kind == "rgba.webp":
    Image.new("RGBA", (W, H), (9, 99, 199, 128)).save(path, "WEBP", lossless=True)
"""
BIG = ("float32.tiff", "int32.tiff", "rgba16.png", "rgba.webp")


@pytest.fixture(scope="module")
def big_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("big")
    made = {}
    for kind in BIG:
        path = folder / kind
        subprocess.run([sys.executable, "-c", _MAKE_BIG, kind, str(path)], check=True)
        made[kind] = path.read_bytes()
    return made


def form(disposition: bytes, data: bytes, boundary: bytes = b"b0und") -> bytes:
    return (
        b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n"
        + data + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip


def cases(big: dict[str, bytes]) -> list[tuple[str, str, dict[str, str], bytes, int, str | None]]:
    """(id, target, headers, body, status, error code) for each case under issue 9's Why."""
    photo = photo_bytes("coffee")
    multipart = "multipart/form-data; boundary=b0und"
    tiny = base64.b64encode(photo_bytes("rocket")[:64]).decode()
    return [
        (
            "utf8-filename",
            "/api/classify",
            {"Content-Type": multipart},
            form('form-data; name="image"; filename="猫.png"'.encode(), photo),
            200,
            None,
        ),
        (
            "utf8-field-name",
            "/api/classify",
            {"Content-Type": multipart},
            form('form-data; name="imáge→"; filename="a.png"'.encode(), photo),
            400,
            "missing_image",
        ),
        (
            "long-boundary",
            "/api/classify",
            {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
            form(b'form-data; name="image"', photo, b"b" * 300),
            400,
            "invalid_multipart",
        ),
        (
            "deep-json",
            "/api/classify",
            {"Content-Type": "application/json"},
            b"[" * 1000 + b"]" * 1000,
            400,
            "invalid_json",
        ),
        (
            "3000-images",
            "/api/classify",
            {"Content-Type": "application/json"},
            json.dumps({"images": [tiny] * 3000}).encode(),
            413,
            "too_many_images",
        ),
        (
            "top-k-not-ascii",
            "/api/classify?top_k=%D9%A3",
            {"Content-Type": "image/png"},
            photo,
            400,
            "invalid_argument",
        ),
        ("float32-tiff-40mp", "/api/classify", {}, big["float32.tiff"], 200, None),
        ("int32-tiff-40mp", "/api/classify", {}, big["int32.tiff"], 200, None),
        ("rgba16-png-40mp", "/api/classify", {}, big["rgba16.png"], 200, None),
        # libwebp holds two more frames beside Pillow's: over the memory budget, refused
        ("rgba-webp-40mp", "/api/classify", {}, big["rgba.webp"], 413, "image_too_large"),
        # Issue 20: with Auth=none (the default) nobody may name an S3 object, on any route,
        # and an upload id is 32 hex digits exactly (no trailing newline)
        *(
            (
                f"s3-reference-{i}",
                route,
                {"Content-Type": "application/json"},
                json.dumps({"s3": {"bucket": bucket, "key": key}}).encode(),
                403,
                "s3_references_disabled",
            )
            for i, (route, bucket, key) in enumerate(
                [
                    ("/api/classify", "photos", "cat.jpg"),
                    ("/api/public/classify", "imagerec-uploads-x", "uploads/" + "0" * 32),
                    ("/api/classify", "photos", "../other-bucket/secret.jpg"),
                ]
            )
        ),
        (
            "upload-id-newline",
            "/api/classify",
            {"Content-Type": "application/json"},
            json.dumps({"upload": "0" * 32 + "\n"}).encode(),
            400,
            "invalid_upload_id",
        ),
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`imagerec serve` on a free port: its base URL and process id."""
    folder = tmp_path_factory.mktemp("serve")
    # Its own upload folder: schemathesis asks for forms until the anonymous cap (429), which
    # in the shared cache would hold other servers' forms back for their five minutes.
    with serve_command(
        folder / "serve.log",
        TF_CPP_MIN_LOG_LEVEL="3",
        POWERTOOLS_METRICS_DISABLED="true",
        IMAGEREC_UPLOAD_DIR=str(folder / "uploads"),
    ) as server:
        yield server.base_url, server.process.pid


def fetch(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0])
    return fields


def test_each_case_through_imagerec_serve(
    served: tuple[str, int], big_images: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    base, pid = served
    # Given another client asking for health all along
    stop = threading.Event()
    health: list[int] = []

    def poll() -> None:
        while not stop.wait(0.25):
            health.append(fetch(f"{base}/api/health")[0])

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    peaks = {}
    try:
        for name, target, headers, body, status, code in cases(big_images):
            # When each case is sent
            before = memory_kb(pid)["VmRSS"]
            got, reply = fetch(base + target, body, headers)
            peaks[name] = (memory_kb(pid)["VmHWM"] - before) / 1024
            # Then it gets its JSON answer
            assert got == status, (name, reply[:300])
            document = json.loads(reply)
            if code is not None:
                assert document["error"]["code"] == code, name
            else:
                assert document["predictions"], name
    finally:
        stop.set()
        poller.join()
    # And the other client was answered throughout
    assert health
    assert set(health) == {200}
    # And no accepted 40 MP image grew the server by more than a few hundred MB
    with capsys.disabled():
        print(f"\nserver peak growth over its RSS before each request (MB): {peaks}")
    for name in ("float32-tiff-40mp", "int32-tiff-40mp", "rgba16-png-40mp"):
        assert peaks[name] < 400, peaks


def test_each_case_through_imagerec_invoke(tmp_path: Path, big_images: dict[str, bytes]) -> None:
    # Given an API Gateway event file for each case, and one event file nested 100,000 deep
    paths = []
    expected = []
    for name, target, headers, body, status, code in cases(big_images):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(http_event("POST", target, headers, body)))
        paths.append(str(path))
        expected.append((name, status, code))
    deep = tmp_path / "deep-event.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    # When `imagerec invoke` runs them all
    result = subprocess.run(
        [sys.executable, "-m", "imagerec", "invoke", *paths, str(deep)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    # Then each gets its answer, one JSON line each; the deep file one error line
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(expected)
    for (name, status, code), response in zip(expected, lines, strict=True):
        assert response["statusCode"] == status, (name, response["body"][:300])
        if code is not None:
            assert json.loads(response["body"])["error"]["code"] == code, name
    assert "deep-event.json: error: not an API Gateway event" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


def test_schemathesis_finds_nothing(served: tuple[str, int], tmp_path: Path) -> None:
    base, _ = served
    # Given the document the server serves, saved to a file: loaded from its own URL,
    # schemathesis would leave that operation out
    status, document = fetch(f"{base}/api/openapi.json")
    assert status == 200
    (tmp_path / "openapi.json").write_bytes(document)
    # And schemathesis, a fixed seed and a bounded budget of cases and time
    command = [
        str(BIN / "schemathesis"),
        "run",
        "openapi.json",
        f"--url={base}",
        "--seed=42",
        "--max-examples=15",
        "--max-time=100",
        "--workers=1",
        "--request-timeout=60",
        "--generation-database=none",
        "--suppress-health-check=too_slow,data_too_large,filter_too_much",
        "--checks=not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,response_headers_conformance,unsupported_method",
        "--no-color",
    ]
    # When it runs against the server
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=400, env=ENV
    )
    # Then every answer was in the document and none was a 5xx
    assert re.search(r"Operations:\s+8 selected / 8 total", result.stdout), result.stdout[:2000]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated, result.stdout[-3000:]
    print(f"\nschemathesis: {generated.group(0)} cases")
    assert result.returncode == 0, result.stdout[-6000:]
    assert int(generated.group(1)) > 100
    assert "No issues found" in result.stdout or "passed" in result.stdout
