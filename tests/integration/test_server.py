"""`imagerec serve` over real HTTP on loopback: the same handler Lambda runs."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imagerec.core.settings import Settings
from imagerec.http.server import Server
from tests.conftest import photo_bytes
from tests.serving import address, in_process, served

pytestmark = pytest.mark.integration

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


SETTINGS = Settings.from_env()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Server, io.StringIO]]:
    from imagerec.compose import load_handler

    log = io.StringIO()
    with in_process(load_handler(SETTINGS), SETTINGS, log) as httpd:
        yield httpd, log


def request(
    server: tuple[Server, io.StringIO],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    port = address(server[0])[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_page_and_api_share_one_origin(server: tuple[Server, io.StringIO]) -> None:
    status, headers, body = request(server, "GET", "/")
    assert status == 200
    assert b"<html" in body.lower()
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = request(server, "GET", "/api/health")
    assert (status, json.loads(body)["warm"]) == (200, True)


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/nope.js"])
def test_static_files_never_escape_the_site_folder(
    server: tuple[Server, io.StringIO], path: str
) -> None:
    status, headers, body = request(server, "GET", path)
    assert status == 404
    assert b"root:" not in body
    # An unknown page answers in the API's error shape, as the cloud's /api/* does
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"


def test_real_photo_over_http(server: tuple[Server, io.StringIO]) -> None:
    status, headers, body = request(
        server,
        "POST",
        "/api/classify?top_k=3",
        photo_bytes("coffee"),
        {"Content-Type": "image/png"},
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    result = json.loads(body)
    assert result["predictions"][0]["label"] == "espresso"
    assert len(result["predictions"]) == 3


def test_text_answer_over_http(server: tuple[Server, io.StringIO]) -> None:
    status, _, body = request(
        server, "POST", "/api/classify", photo_bytes("coffee"), {"Accept": "text/plain"}
    )
    assert status == 200
    assert body.decode().startswith("espresso (")


def test_chunked_upload(server: tuple[Server, io.StringIO]) -> None:
    data = photo_bytes("coffee")
    chunks = (data[i : i + 50_000] for i in range(0, len(data), 50_000))
    port = address(server[0])[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/api/classify",
        body=chunks,
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["predictions"][0]["label"] == "espresso"
    connection.close()


def test_200_concurrent_requests_from_8_clients(
    server: tuple[Server, io.StringIO],
) -> None:
    # Given 8 clients, each with its own keep-alive connection
    photos = [
        photo_bytes("coffee"),
        photo_bytes("chelsea"),
        photo_bytes("rocket"),
        photo_bytes("grace_hopper"),
    ]
    expected = ["espresso", None, "missile", "military uniform"]
    port = address(server[0])[1]

    def client(index: int) -> list[tuple[int, str | None, str | None]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        outcomes = []
        for n in range(25):
            which = (index + n) % len(photos)
            connection.request("POST", "/api/classify", body=photos[which])
            response = connection.getresponse()
            result = json.loads(response.read())
            label = result.get("predictions", [{}])[0].get("label")
            outcomes.append((response.status, label, expected[which]))
        connection.close()
        return outcomes

    # When each sends 25 requests at once
    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for batch in pool.map(client, range(8)) for o in batch]
    # Then all 200 succeed with the right answers
    assert len(outcomes) == 200
    assert all(status == 200 for status, _, _ in outcomes)
    assert all(want is None or got == want for _, got, want in outcomes)


def test_body_over_the_cap_is_refused_before_it_is_read(
    server: tuple[Server, io.StringIO],
) -> None:
    # Given a client that announces a body far over the cap and sends none of it
    port = address(server[0])[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            + f"Content-Length: {SETTINGS.max_upload_body_bytes * 10}\r\n\r\n".encode()
        )
        # When the server answers without waiting for the body, and closes
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        reply_text = reply.decode()
    # Then it is a 413 with a JSON error
    assert reply_text.startswith("HTTP/1.1 413")
    assert '"payload_too_large"' in reply_text


def test_a_body_just_over_the_cap_gets_a_clean_413(
    server: tuple[Server, io.StringIO],
) -> None:
    cap = SETTINGS.max_body_bytes
    status, _, body = request(server, "POST", "/api/classify", b"\0" * (cap + 1))
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_a_client_that_disconnects_mid_upload_does_not_hurt_the_server(
    server: tuple[Server, io.StringIO],
) -> None:
    # Given a client that promises 500 kB, sends 10 kB and hangs up
    port = address(server[0])[1]
    # (its query names it in the log, apart from earlier tests' lines that may still be landing)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/classify?probe=half-upload HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 500000\r\n\r\n" + b"\xff" * 10_000
        )
    # When the next client arrives / Then it is served, and the half request reached nobody
    status, _, _ = request(server, "GET", "/api/health")
    assert status == 200
    assert "half-upload" not in server[1].getvalue()


def test_one_log_line_per_request(server: tuple[Server, io.StringIO]) -> None:
    before = server[1].getvalue().count("\n")
    request(server, "GET", "/api/models")
    # The line is written just after the response, so the client can be a moment ahead of it.
    deadline = time.monotonic() + 5
    while server[1].getvalue().count("\n") == before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a second, wrong line to show up
    lines = server[1].getvalue().splitlines()
    assert len(lines) == before + 1
    assert '"GET /api/models" 200' in lines[-1]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_command_starts_prints_its_url_and_stops_cleanly_on_ctrl_c(
    workers: int, tmp_path: Path
) -> None:
    # Given `imagerec serve` on a free port, with one process or two pre-forked workers
    with served(
        tmp_path / "serve.log", "--workers", str(workers), TF_CPP_MIN_LOG_LEVEL="3"
    ) as server:
        assert f"{server.base_url}/" in server.output().splitlines()[0]

        # When it answers requests from several clients at once
        def classify(_: int) -> int:
            request = urllib.request.Request(
                f"{server.base_url}/api/classify", data=photo_bytes("coffee")
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["predictions"][0]["label"] == "espresso"
                return int(response.status)

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(classify, range(8))) == [200] * 8
        # And then gets Ctrl-C
        server.process.send_signal(signal.SIGINT)
        # Then it stops by itself, with every worker, saying so, with status 0
        assert server.process.wait(timeout=20) == 0
        assert "imagerec: stopped" in server.output()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_serve_with_workers_stops_on_sigterm_sent_while_it_forks(tmp_path: Path) -> None:
    # Given `imagerec serve --workers 2`, stopped the moment it says it is serving (while it
    # forks its workers, when an unblocked SIGTERM could be lost)
    with served(tmp_path / "serve.log", "--workers", "2", healthy=False) as server:
        server.process.send_signal(signal.SIGTERM)
        # Then it still stops by itself, workers and all
        assert server.process.wait(timeout=60) == 0


def test_with_an_upload_bucket_the_page_may_post_to_it_and_nowhere_else() -> None:
    from imagerec.http.api import create_handler
    from imagerec.http.headers import security_headers, upload_origins
    from tests.standin import StandInClassifier

    # Given imagerec serve pointed at a real bucket (IMAGEREC_UPLOAD_BUCKET, AWS_REGION)
    settings = Settings(threads=1, upload_bucket="my-photos", aws_region="eu-west-1")
    handler = create_handler(StandInClassifier(settings), settings)
    with in_process(handler, settings) as httpd:
        # When the page and the API are fetched
        for path in ("/", "/api/health"):
            status, headers, _ = request((httpd, io.StringIO()), "GET", path)
            # Then both carry the policy with that bucket's own origins in connect-src, as
            # CloudFront's does for the stack's bucket
            assert status == 200
            expected = security_headers(upload_origins("my-photos", "eu-west-1"))
            assert {name: headers[name] for name in expected} == expected
            assert (
                "https://my-photos.s3.eu-west-1.amazonaws.com"
                in (headers["Content-Security-Policy"])
            )
