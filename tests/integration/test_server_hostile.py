"""`imagerec serve` against slow, idle, greedy and malformed clients, over real loopback
sockets. The handler is the real one over the stand-in classifier (no model to load), the
deadlines are short so each case ends in seconds; no assertion is about how fast."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from imagerec.core.settings import Settings
from imagerec.http import server as server_module
from imagerec.http.api import create_handler
from imagerec.http.server import ImagerecHTTPServer
from tests.conftest import ROOT
from tests.standin import StandInClassifier

pytestmark = pytest.mark.integration

MAX_CONNECTIONS = 12
# Far longer than any deadline below: "answered within the timeout", never "how fast".
PATIENCE = 20


def start(idle: float, header: float, body: float) -> ImagerecHTTPServer:
    settings = Settings(threads=1)
    server = ImagerecHTTPServer(
        ("127.0.0.1", 0),
        create_handler(StandInClassifier(settings), settings),
        site_dir=ROOT / "site",
        max_body_bytes=settings.max_body_bytes,
        log_stream=io.StringIO(),
        idle_timeout=idle,
        header_timeout=header,
        body_timeout=body,
        max_connections=MAX_CONNECTIONS,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return server


@pytest.fixture(scope="module")
def httpd() -> Iterator[ImagerecHTTPServer]:
    server = start(idle=1, header=2, body=2)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def patient_httpd() -> Iterator[ImagerecHTTPServer]:
    """Idle connections live 5 s: time to open a dozen on a busy machine before any closes."""
    server = start(idle=5, header=5, body=5)
    yield server
    server.shutdown()
    server.server_close()


def connect(httpd: ImagerecHTTPServer) -> socket.socket:
    return socket.create_connection(httpd.server_address[:2], timeout=PATIENCE)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or PATIENCE passes: then the test fails)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def exchange(httpd: ImagerecHTTPServer, raw: bytes) -> tuple[int, dict[str, object], bytes]:
    """Send raw bytes, read until close; the status, the JSON error (if any) and the reply."""
    with connect(httpd) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused connections are closed by the server at once; read its answer
        reply = read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    document = json.loads(body) if b"application/json" in head else {}
    return status, document, reply


def health(httpd: ImagerecHTTPServer) -> int:
    status, _, _ = exchange(
        httpd, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    return status


def wait_for_connections(httpd: ImagerecHTTPServer, count: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while httpd.open_connections != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpd.open_connections == count


def test_an_idle_connection_is_closed_without_an_answer(httpd: ImagerecHTTPServer) -> None:
    # Given a client that connects and says nothing
    with connect(httpd) as sock:
        # When it waits / Then the server closes it (within PATIENCE), sending nothing
        assert read_all(sock) == b""


def test_a_slowloris_client_gets_a_408_and_is_closed(httpd: ImagerecHTTPServer) -> None:
    # Given a client that sends its headers a byte at a time, never finishing
    with connect(httpd) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.settimeout(0.2)
        reply = b""
        for _ in range(PATIENCE * 5):
            try:
                sock.sendall(b"a")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            reply += chunk
    # Then the header deadline answers it with a JSON 408
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in reply


def test_a_body_shorter_than_its_content_length_gets_a_408(httpd: ImagerecHTTPServer) -> None:
    with connect(httpd) as sock:
        sock.sendall(
            b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
        )
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in reply


def test_a_body_sent_a_byte_at_a_time_gets_a_408(httpd: ImagerecHTTPServer) -> None:
    # Given a client that announces 1,000 bytes and trickles them out, one at a time
    with connect(httpd) as sock:
        sock.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sock.settimeout(0.2)
        reply = b""
        for _ in range(PATIENCE * 5):
            try:
                sock.sendall(b"x")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            reply += chunk
    # Then the body deadline (not a per-read timeout) answers it with a JSON 408
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in reply


def test_idle_connections_beyond_the_cap_are_refused_and_others_still_answered(
    patient_httpd: ImagerecHTTPServer,
) -> None:
    httpd = patient_httpd
    wait_for_connections(httpd, 0)
    with ExitStack() as stack:
        # Given the server holding as many idle connections as it allows, less one
        idle = [stack.enter_context(connect(httpd)) for _ in range(MAX_CONNECTIONS - 1)]
        wait_for_connections(httpd, MAX_CONNECTIONS - 1)
        # When another client asks / Then it is answered
        assert health(httpd) == 200
        # And when more connect than the cap allows, the extra ones get a clean JSON 503
        idle.append(stack.enter_context(connect(httpd)))
        wait_for_connections(httpd, MAX_CONNECTIONS)
        status, document, reply = exchange(httpd, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503
        assert document["error"]["code"] == "server_busy"  # type: ignore[index]
        assert b"Connection: close" in reply
        # And the idle ones do not live forever: each is closed by the server
        for sock in idle:
            assert read_all(sock) == b""
    wait_for_connections(httpd, 0)
    assert health(httpd) == 200


REQUEST = b"POST /api/classify HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (REQUEST + b"Content-Length: 12abc\r\n\r\n", 400, "bad_request"),
        (REQUEST + b"Content-Length: -1\r\n\r\n", 400, "bad_request"),
        (REQUEST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400, "bad_request"),
        (REQUEST + b"Content-Length: 5, 6\r\n\r\nabcdef", 400, "bad_request"),
        (
            REQUEST
            + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
            "bad_request",
        ),
        (REQUEST + b"Transfer-Encoding: gzip\r\n\r\n", 400, "bad_request"),
        (REQUEST + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n", 400, "bad_request"),
        (
            REQUEST + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            REQUEST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 120 + b"\r\n", 431, "headers_too_large"),
        (b"BR(EW /api/health HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented"),
        (b"QUERY /api/health HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /api/health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /api/health HTTP/1.1 extra\r\n\r\n", 400, "bad_request"),
        (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
        (b"GET /" + b"a" * 256 + b"/b.js HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
        (b"GET /" + b"%00" + b" HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
    ],
    ids=[
        "length-not-a-number",
        "length-negative",
        "lengths-conflict",
        "length-list-conflict",
        "length-and-chunked",
        "unknown-transfer-coding",
        "chunk-negative",
        "chunk-0x",
        "chunk-overlong",
        "414",
        "431-long",
        "431-many",
        "501",
        "405-unknown-method",
        "505",
        "bad-request-line",
        "static-nul",
        "static-256",
        "static-escaped-nul",
    ],
)
def test_malformed_requests_get_a_json_error_in_the_api_shape(
    httpd: ImagerecHTTPServer, raw: bytes, status: int, code: str
) -> None:
    got_status, document, reply = exchange(httpd, raw)
    assert got_status == status, reply[:200]
    assert document["error"]["code"] == code  # type: ignore[index]
    assert document["error"]["message"]  # type: ignore[index]
    # And the server goes on answering
    assert health(httpd) == 200


def test_accept_failing_for_want_of_descriptors_backs_off(
    httpd: ImagerecHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a listening socket whose accept() fails with EMFILE, and a record of pauses
    pauses: list[float] = []
    monkeypatch.setattr(server_module.time, "sleep", pauses.append)

    class Exhausted:
        def accept(self) -> tuple[socket.socket, object]:
            raise OSError(errno.EMFILE, "Too many open files")

    probe = ImagerecHTTPServer.__new__(ImagerecHTTPServer)
    probe.socket = Exhausted()  # type: ignore[assignment]
    probe._backoff = server_module._ACCEPT_BACKOFF[0]
    # When accept is tried again and again
    for _ in range(8):
        with pytest.raises(OSError, match="Too many open files"):
            probe.get_request()
    # Then each failure waits, longer each time up to a second, instead of spinning
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_waiting_bodies_are_held_to_a_budget(httpd: ImagerecHTTPServer) -> None:
    # Given the whole body budget taken
    budget = httpd._budget
    taken = httpd.reserve(budget)
    try:
        # When another body wants room / Then after the body deadline it is refused (503)
        with pytest.raises(server_module._Busy):
            httpd.reserve(1)
    finally:
        httpd.release(taken)
    # And once released, room is there again
    httpd.release(httpd.reserve(1))
