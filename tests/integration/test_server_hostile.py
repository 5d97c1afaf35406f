"""`imagerec serve` against slow, idle, greedy and malformed clients, over real loopback
sockets. Most cases run its server in-process over the real handler and the stand-in classifier
(no model to load), with short deadlines so each ends in seconds; the hundreds-of-connections
case runs the real command. No assertion is about how fast."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from imagerec.core.settings import Settings
from imagerec.http.api import create_handler
from imagerec.http.server import Server
from tests.serving import address, in_process, served
from tests.standin import StandInClassifier

pytestmark = pytest.mark.integration

MAX_CONNECTIONS = 12
# Far longer than any deadline below: "answered within the timeout", never "how fast".
PATIENCE = 20


@contextlib.contextmanager
def start(idle: int, header: int, body: int) -> Iterator[Server]:
    settings = Settings(
        threads=1,
        idle_timeout=idle,
        header_timeout=header,
        body_timeout=body,
        max_connections=MAX_CONNECTIONS,
        max_bytes=100_000,
    )
    with in_process(create_handler(StandInClassifier(settings), settings), settings) as server:
        yield server


@pytest.fixture(scope="module")
def httpd() -> Iterator[Server]:
    with start(idle=1, header=2, body=2) as server:
        yield server


@pytest.fixture
def patient_httpd() -> Iterator[Server]:
    """Idle connections live 5 s: time to open a dozen on a busy machine before any closes."""
    with start(idle=5, header=5, body=5) as server:
        yield server


def connect(httpd: Server | tuple[str, int]) -> socket.socket:
    where = httpd if isinstance(httpd, tuple) else address(httpd)
    return socket.create_connection(where, timeout=PATIENCE)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or PATIENCE passes: then the test fails)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def exchange(httpd: Server | tuple[str, int], raw: bytes) -> tuple[int, dict[str, object], bytes]:
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


def health(httpd: Server | tuple[str, int]) -> int:
    status, _, _ = exchange(
        httpd, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    return status


def open_channels(httpd: Server) -> int:
    return len(httpd.active_channels)


def wait_for_connections(httpd: Server, count: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while open_channels(httpd) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_channels(httpd) == count


def test_an_idle_connection_is_closed_without_an_answer(httpd: Server) -> None:
    # Given a client that connects and says nothing
    with connect(httpd) as sock:
        # When it waits / Then the server closes it (within PATIENCE), sending nothing
        assert read_all(sock) == b""


def test_a_slowloris_client_gets_a_408_and_is_closed(httpd: Server) -> None:
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


def test_a_body_shorter_than_its_content_length_gets_a_408(httpd: Server) -> None:
    with connect(httpd) as sock:
        sock.sendall(
            b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
        )
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in reply


def test_a_body_sent_a_byte_at_a_time_gets_a_408(httpd: Server) -> None:
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


def test_connections_beyond_the_cap_wait_until_the_idle_ones_are_closed(
    patient_httpd: Server,
) -> None:
    httpd = patient_httpd
    wait_for_connections(httpd, 0)
    with ExitStack() as stack:
        # Given the server holding as many idle connections as it allows, less one
        idle = [stack.enter_context(connect(httpd)) for _ in range(MAX_CONNECTIONS - 1)]
        wait_for_connections(httpd, MAX_CONNECTIONS - 1)
        # When another client asks / Then it is answered
        assert health(httpd) == 200
        # And when the cap is full, one more is not served while the idle ones are open
        idle.append(stack.enter_context(connect(httpd)))
        wait_for_connections(httpd, MAX_CONNECTIONS)
        late = stack.enter_context(connect(httpd))
        late.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        late.settimeout(1)
        with pytest.raises(TimeoutError):
            late.recv(1)
        assert open_channels(httpd) == MAX_CONNECTIONS
        # And the idle ones do not live for ever: each is closed by the server
        for sock in idle:
            assert read_all(sock) == b""
        # Then the one that waited is answered
        late.settimeout(PATIENCE)
        assert read_all(late).startswith(b"HTTP/1.1 200")
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
        (REQUEST + b"Transfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"),
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
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 9000 + b"\r\n", 431, "headers_too_large"),
        (b"BR(EW /api/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
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
        "501-unknown-transfer-coding",
        "chunk-negative",
        "chunk-0x",
        "chunk-overlong",
        "431-long-line",
        "431-long",
        "431-many",
        "400-method-not-a-token",
        "405-unknown-method",
        "505",
        "bad-request-line",
        "static-nul",
        "static-256",
        "static-escaped-nul",
    ],
)
def test_malformed_requests_get_a_json_error_in_the_api_shape(
    httpd: Server, raw: bytes, status: int, code: str
) -> None:
    got_status, document, reply = exchange(httpd, raw)
    assert got_status == status, reply[:200]
    assert document["error"]["code"] == code  # type: ignore[index]
    assert document["error"]["message"]  # type: ignore[index]
    # And the server goes on answering
    assert health(httpd) == 200


def test_a_chunked_body_over_the_cap_gets_a_413_as_it_arrives(httpd: Server) -> None:
    # Given a chunked body that grows past the direct-request cap (~200 kB here)
    chunk = b"x" * 65_536
    raw = REQUEST + b"Transfer-Encoding: chunked\r\n\r\n"
    raw += (b"10000\r\n" + chunk + b"\r\n") * 5 + b"0\r\n\r\n"
    # When it is sent / Then the answer is a JSON 413 in the API's shape
    status, document, _ = exchange(httpd, raw)
    assert status == 413
    assert document["error"]["code"] == "payload_too_large"  # type: ignore[index]


# --- hundreds of idle and slow connections against the real command ----------------------------

IDLE, SLOW_HEADERS, SLOW_BODIES = 400, 50, 50
TRICKLE_ROUNDS = 10


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def timed_health(where: tuple[str, int]) -> tuple[int, float]:
    started = time.perf_counter()
    status = health(where)
    return status, (time.perf_counter() - started) * 1000


@pytest.mark.slow
def test_hundreds_of_idle_and_slow_connections_leave_health_answering_and_memory_bounded(
    tmp_path: Path,
) -> None:
    with served(tmp_path / "serve.log") as server, ExitStack() as stack:
        where = ("127.0.0.1", server.port)
        assert health(where) == 200
        idle_rss = rss_kb(server.process.pid)
        # Given 400 connections that say nothing, 50 that trickle their headers and 50 that
        # trickle a body, all open at once
        for _ in range(IDLE):
            stack.enter_context(connect(where))
        slow_headers = [stack.enter_context(connect(where)) for _ in range(SLOW_HEADERS)]
        for sock in slow_headers:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow_bodies = [stack.enter_context(connect(where)) for _ in range(SLOW_BODIES)]
        for sock in slow_bodies:
            sock.sendall(
                b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            )
        # When the slow ones go on trickling, a byte each per round, and a client asks for health
        answers = []
        for _ in range(TRICKLE_ROUNDS):
            for sock in slow_headers + slow_bodies:
                sock.sendall(b"a")
            answers.append(timed_health(where))
            time.sleep(0.2)
        held_rss = rss_kb(server.process.pid)
    # Then every health request was answered while they were held (its own timeout is 2 s)
    latencies = sorted(ms for _, ms in answers)
    print(
        f"health with {IDLE} idle + {SLOW_HEADERS + SLOW_BODIES} slow connections: "
        f"median {latencies[len(latencies) // 2]:.1f} ms, max {latencies[-1]:.1f} ms; "
        f"RSS {idle_rss // 1024} MB idle, {held_rss // 1024} MB held"
    )
    assert [status for status, _ in answers] == [200] * TRICKLE_ROUNDS
    # And the server's memory grew by less than 100 MB for them
    assert held_rss - idle_rss < 100 * 1024
