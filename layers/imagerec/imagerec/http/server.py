"""``imagerec serve``: the page and the API on one origin, through the Lambda handler.

Each HTTP request becomes the API Gateway v2 event that API Gateway would send (binary
bodies base64-encoded), and the very handler Lambda runs answers it, so what passes
here passes in Lambda. Static files come from ``site/`` with the headers CloudFront adds.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from imagerec.core.settings import Settings
from imagerec.core.text import human_size
from imagerec.http.events import LocalContext, http_event, response_body
from imagerec.http.headers import SECURITY_HEADERS

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Bodies a little over the cap are read and dropped so the client sees our 413 rather than
# a reset connection; anything bigger is refused without reading.
DRAIN_LIMIT = 64 * 1024 * 1024
# POST /api/uploads/<id>: the local upload store's form target (imagerec.http.api's ROUTES).
_UPLOAD_FORM = re.compile(r"^/api/uploads/[^/]+/?$")
CHUNK = 64 * 1024
# Bodies read but not yet answered, in all, as a multiple of the body cap: requests waiting
# for the handler hold at most this much (the one in the handler included).
BODY_BUDGET_BODIES = 4
# accept() failing for want of file descriptors or memory: wait, rather than spin.
_ACCEPT_BACKOFF = (0.05, 1.0)
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
# A method name as RFC 9110 §9.1 spells one (a token); anything else is not a method at all.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}", re.ASCII)
_MAX_TRAILERS = 32
# http.server's own error statuses, as codes in the API's error shape.
ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.REQUEST_TIMEOUT: "request_timeout",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.REQUEST_URI_TOO_LONG: "uri_too_long",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "headers_too_large",
    HTTPStatus.NOT_IMPLEMENTED: "not_implemented",
    HTTPStatus.SERVICE_UNAVAILABLE: "server_busy",
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "http_version_not_supported",
}


def default_site_dir() -> Path:
    here = Path.cwd() / "site"
    if (here / "index.html").is_file():
        return here
    # An editable install from the repository: layers/imagerec/imagerec/http → site/
    return Path(__file__).resolve().parents[4] / "site"


def error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class _BodyTooLarge(Exception):
    pass


class _BadFraming(Exception):
    """The request's body framing is malformed: a 400, and the connection closes."""


class _ClientGone(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Busy(Exception):
    pass


class _Connection:
    """One open connection, as the watchdog sees it: a deadline for the phase it is in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = math.inf
        self.expired = False

    def arm(self, seconds: float) -> None:
        self.expired = False
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = math.inf


class RequestHandler(BaseHTTPRequestHandler):
    server: ImagerecHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm the body would wait for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "imagerec"
    sys_version = ""
    # Error replies sent before the request line is understood still carry a status line.
    default_request_version = "HTTP/1.1"

    # -- connection lifecycle ---------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)
        self._conn = self.server.connection_for(self.connection)
        self._reserved = 0
        self._replied = False

    def handle_one_request(self) -> None:
        """http.server's own, with an idle wait, a deadline on the request line and headers,
        and a JSON 408 when it passes (the watchdog shuts the reading side at the deadline)."""
        self.command, self.path, self.request_version = "", "", self.default_request_version
        self.raw_requestline = b""
        self._replied = False
        begun = False
        started = time.perf_counter()
        try:
            # Idle: wait for the first byte of a request, at most idle_timeout.
            self.connection.settimeout(self.server.idle_timeout)
            if not cast(io.BufferedReader, self.rfile).peek(1):
                self.close_connection = True
                return
            begun = True
            # Then the request line and headers, all of them within header_timeout.
            self.connection.settimeout(self.server.header_timeout)
            self._conn.arm(self.server.header_timeout)
            self.raw_requestline = self.rfile.readline(65537)
            if self._conn.expired:
                raise _TimedOut
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # parse_request has sent the error (send_error below: JSON)
            if self._conn.expired:
                raise _TimedOut
            self._conn.disarm()
            method = getattr(self, "do_" + self.command, None)
            if method is None and _METHOD.fullmatch(self.command):
                method = self._dispatch  # QUERY, PROPFIND...: routes answer 405 and Allow
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"{self.command} is not supported.")
                return
            method()
            self.wfile.flush()
        except (TimeoutError, _TimedOut):
            if begun and not self._replied:  # an idle connection is just closed
                self._timeout_reply(started, "The request headers took too long to arrive.")
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._conn.disarm()

    def _timeout_reply(self, started: float, message: str) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.settimeout(2)
            self._send(
                HTTPStatus.REQUEST_TIMEOUT,
                {"Content-Type": "application/json"},
                error_json("request_timeout", message),
                started,
            )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error http.server itself raises (400, 414, 431, 501, 505...) as API JSON."""
        status = HTTPStatus(code)
        self.close_connection = True
        body = error_json(ERROR_CODES.get(status, "bad_request"), message or f"{status.phrase}.")
        if not getattr(self, "command", ""):
            self.command = ""
        self._send(status, {"Content-Type": "application/json"}, body, time.perf_counter())

    # -- plumbing ---------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _log instead

    def _log(self, status: int, size: int, started: float) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        path = getattr(self, "path", "") or ""
        shown = path if len(path) <= 200 else path[:200] + "…"
        line = (
            f'{self.client_address[0]} "{getattr(self, "command", "")} {shown!s}" {status} '
            f"{size}B {elapsed:.1f}ms"
        )
        print(
            line.encode("ascii", "backslashreplace").decode(),
            file=self.server.log_stream,
            flush=True,
        )

    def _send(self, status: int, headers: dict[str, str], body: bytes, started: float) -> None:
        self._replied = True
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        # Logged before the body goes out, so a client that has its answer finds the line.
        self._log(status, len(body), started)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error_json(self, status: HTTPStatus, code: str, message: str, started: float) -> None:
        self._send(status, {"Content-Type": "application/json"}, error_json(code, message), started)

    # -- the body -----------------------------------------------------------------------

    def _body_length(self) -> int | None:
        """The Content-Length, or None for a chunked body; _BadFraming if they cannot be
        trusted (RFC 9112 §6.3: a bad or conflicting length is an unrecoverable error)."""
        encodings = [
            e.strip().lower()
            for value in self.headers.get_all("Transfer-Encoding") or []
            for e in value.split(",")
            if e.strip()
        ]
        lengths = {
            part.strip()
            for value in self.headers.get_all("Content-Length") or []
            for part in value.split(",")
        }
        if encodings:
            if encodings != ["chunked"]:
                raise _BadFraming("Only Transfer-Encoding: chunked is supported.")
            if lengths:
                raise _BadFraming("A request cannot have both Content-Length and chunked.")
            return None
        if not lengths:
            return 0
        if len(lengths) > 1:
            raise _BadFraming("The request has conflicting Content-Length values.")
        (length,) = lengths
        if not _DIGITS.fullmatch(length):
            raise _BadFraming(f"Content-Length must be a number of bytes, not {length[:20]!r}.")
        return int(length)

    def _read_body(self, cap: int) -> bytes:
        length = self._body_length()
        if length is not None and length > cap:
            self._drain(length)
            raise _BodyTooLarge
        # Hold the body's bytes in the server-wide budget before reading it.
        self._reserved = self.server.reserve(cap if length is None else length)
        self._conn.arm(self.server.body_timeout)
        self.connection.settimeout(self.server.body_timeout)
        try:
            return self._read_chunked(cap) if length is None else self._read_exact(length)
        finally:
            self._conn.disarm()

    def _read_exact(self, length: int) -> bytes:
        data = bytearray()
        while len(data) < length:
            chunk = self.rfile.read(min(CHUNK, length - len(data)))
            if not chunk:
                raise _TimedOut if self._conn.expired else _ClientGone
            data += chunk
        return bytes(data)

    def _read_line(self, limit: int) -> bytes:
        line = self.rfile.readline(limit)
        if not line.endswith(b"\n"):
            if self._conn.expired:
                raise _TimedOut
            raise _ClientGone if not line else _BadFraming("A chunk line is malformed.")
        return line

    def _read_chunked(self, cap: int) -> bytes:
        data = bytearray()
        while True:
            size_text = self._read_line(1024).split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise _BadFraming("A chunk size is not a hexadecimal number.")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(_MAX_TRAILERS):
                    if self._read_line(8192) in (b"\r\n", b"\n"):
                        return bytes(data)
                raise _BadFraming("Too many trailer fields.")
            if len(data) + size > cap:
                self.close_connection = True
                raise _BodyTooLarge
            data += self._read_exact(size)
            if self._read_line(3) not in (b"\r\n", b"\n"):
                raise _BadFraming("A chunk is longer than its size says.")

    def _drain(self, length: int) -> None:
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        self._conn.arm(self.server.body_timeout)
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise _TimedOut if self._conn.expired else _ClientGone
            remaining -= len(chunk)

    # -- routes -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        started = time.perf_counter()
        try:
            if self.path.split("?", 1)[0].startswith("/api/") or self.path == "/api":
                self._api(started)
            elif self.command in {"GET", "HEAD"}:
                self._static(started)
            else:
                self.close_connection = True  # its body, if any, is not read
                self._send_error_json(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    f"{self.command} is not allowed here.",
                    started,
                )
        except _ClientGone:
            self.close_connection = True
            print(
                f'{self.client_address[0]} "{self.command} {self.path}" client disconnected',
                file=self.server.log_stream,
                flush=True,
            )
        except _TimedOut:
            if not self._replied:
                self._timeout_reply(started, "The request body took too long to arrive.")
        finally:
            self.server.release(self._reserved)
            self._reserved = 0

    def _api(self, started: float) -> None:
        cap = self.server.body_cap(self.path)
        try:
            body = self._read_body(cap)
        except _BodyTooLarge:
            limit = human_size(cap)
            self._send_error_json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "payload_too_large",
                f"The request body is over the {limit} limit.",
                started,
            )
            return
        except _BadFraming as error:
            self.close_connection = True  # the next request's start cannot be found
            self._send_error_json(HTTPStatus.BAD_REQUEST, "bad_request", str(error), started)
            return
        except _Busy:
            self.close_connection = True
            self._send_error_json(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "server_busy",
                "The server is busy with other uploads; try again shortly.",
                started,
            )
            return
        response = self.server.invoke(
            self.command, self.path, self.headers.items(), body, self.client_address[0]
        )
        headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(int(response.get("statusCode", 500)), headers, response_body(response), started)

    def _static(self, started: float) -> None:
        if self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # a body on a GET is not read: do not reuse
        target = self._static_target()
        if target is None:
            # JSON like every other error here, so scripts read one shape.
            path = self.path.split("?", 1)[0]
            shown = path if len(path) <= 100 else path[:100] + "…"
            message = f"There is no page {shown}."
            self._send_error_json(HTTPStatus.NOT_FOUND, "not_found", message, started)
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache", **SECURITY_HEADERS}
        self._send(HTTPStatus.OK, headers, target.read_bytes(), started)

    def _static_target(self) -> Path | None:
        """The file a GET names inside the site folder, or None: never outside it, and never
        an exception for a path the file system cannot represent (NUL, over-long names)."""
        root = self.server.site_dir
        relative = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
        if "\x00" in relative or any(len(part) > 255 for part in relative.split("/")):
            return None
        try:
            target = (root / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.is_file():
                return None
        except (OSError, ValueError):
            return None
        return target

    # http.server dispatches on do_<METHOD>; every method goes through one router.
    # The API answers 405 with an Allow header for a method a route does not take.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815
    do_TRACE = do_CONNECT = _dispatch  # noqa: N815


class ImagerecHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        *,
        site_dir: Path,
        max_body_bytes: int,
        max_upload_body_bytes: int | None = None,
        log_stream: Any = sys.stderr,
        listener: socket.socket | None = None,
        idle_timeout: float = Settings.idle_timeout,
        header_timeout: float = Settings.header_timeout,
        body_timeout: float = Settings.body_timeout,
        max_connections: int = Settings.max_connections,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, RequestHandler, bind_and_activate=listener is None)
        if listener is not None:  # a pre-forked worker shares its parent's listening socket
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()
        self.handler = handler
        self.site_dir = site_dir.resolve()
        self.max_body_bytes = max_body_bytes
        self.max_upload_body_bytes = max_upload_body_bytes or max_body_bytes
        self.log_stream = log_stream
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        # Powertools' resolver keeps the current request in class attributes, so one
        # invocation runs at a time per process, as in a Lambda environment.
        self._invoke_lock = threading.Lock()
        self._connections: dict[socket.socket, _Connection] = {}
        self._connections_lock = threading.Lock()
        # At least one whole upload fits, however small the direct-request cap.
        self._budget = max(BODY_BUDGET_BODIES * max_body_bytes, self.max_upload_body_bytes)
        self._budget_free = threading.Condition()
        self._backoff = _ACCEPT_BACKOFF[0]
        self._watchdog_stop = threading.Event()
        threading.Thread(target=self._watchdog, name="imagerec-watchdog", daemon=True).start()

    def body_cap(self, target: str) -> int:
        """The upload form's target takes a whole file sent raw; every other route the
        direct-request cap."""
        path = target.split("?", 1)[0]
        if _UPLOAD_FORM.match(path):
            return self.max_upload_body_bytes
        return self.max_body_bytes

    # -- connections --------------------------------------------------------------------

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            request = super().get_request()
        except OSError as error:
            if error.errno in _RESOURCE_ERRORS:
                # socketserver returns to select(), which says "readable" at once: without
                # this pause the loop would spin a CPU and answer nobody.
                time.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, _ACCEPT_BACKOFF[1])
            raise
        self._backoff = _ACCEPT_BACKOFF[0]
        return request

    def process_request(self, request: Any, client_address: Any) -> None:
        # Counted here, in the accepting thread, so a burst cannot overshoot the cap.
        with self._connections_lock:
            full = len(self._connections) >= self.max_connections
            if not full:
                self._connections[request] = _Connection(request)
        if full:
            self._refuse(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def _refuse(self, sock: socket.socket) -> None:
        """Beyond the connection cap: a 503 in the API's shape, then close, from this thread."""
        body = error_json("server_busy", "Too many open connections; try again shortly.")
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            sock.settimeout(0.5)
            sock.sendall(head.encode() + body)
            sock.shutdown(socket.SHUT_WR)
            # Closing with the request unread would send a reset, which can destroy the
            # answer before the client reads it: take what has arrived, without waiting.
            sock.setblocking(False)
            sock.recv(65536)
        self.shutdown_request(sock)

    def connection_for(self, sock: socket.socket) -> _Connection:
        with self._connections_lock:
            return self._connections.setdefault(sock, _Connection(sock))

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def _watchdog(self) -> None:
        """Shut the reading side of every connection whose deadline has passed: the handler
        thread blocked in recv() then sees end-of-file, answers 408 and closes."""
        while not self._watchdog_stop.wait(0.25):
            now = time.monotonic()
            with self._connections_lock:
                late = [
                    c for c in self._connections.values() if c.deadline <= now and not c.expired
                ]
            for connection in late:
                connection.expired = True
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RD)

    def server_close(self) -> None:
        self._watchdog_stop.set()
        super().server_close()

    # -- memory held by bodies waiting for the handler ------------------------------------

    def reserve(self, size: int) -> int:
        """Take ``size`` bytes of the body budget, waiting up to body_timeout; _Busy if not."""
        deadline = time.monotonic() + self.body_timeout
        with self._budget_free:
            while self._budget < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Busy
                self._budget_free.wait(remaining)
            self._budget -= size
        return size

    def release(self, size: int) -> None:
        if size:
            with self._budget_free:
                self._budget += size
                self._budget_free.notify_all()

    def invoke(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        with self._invoke_lock:
            # The event (a base64 copy of the body) is built only once the handler is free.
            event = http_event(method, target, headers, body, source_ip=source_ip)
            return self.handler(event, LocalContext())


def serve(
    host: str,
    port: int,
    settings: Settings,
    make_handler: Callable[[Settings], Handler],
    *,
    workers: int = 1,
) -> None:
    """Serve until Ctrl-C or SIGTERM, in this process or in ``workers`` pre-forked ones.

    ``make_handler`` (the composition root's ``load_handler``) runs in each worker.

    Each worker is one process with its own handler and model, as one Lambda execution
    environment is: the handler serves one request at a time, so more workers, not more
    threads, is how a laptop serves clients in parallel.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=128)
    bound_host, bound_port = str(listener.getsockname()[0]), listener.getsockname()[1]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    base = f"http://{shown}:{bound_port}"
    several = f" with {workers} worker processes" if workers > 1 else ""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Installed before the URL is printed: whoever reads it may stop us at once. With workers,
    # a SIGTERM that lands inside os.fork() can be lost, so it is held until every worker
    # exists (each child, then the parent, unblocks it and a pending one is delivered).
    signal.signal(signal.SIGTERM, stop)
    term = {signal.SIGTERM, signal.SIGINT}
    if workers > 1:
        signal.pthread_sigmask(signal.SIG_BLOCK, term)
    print(f"imagerec: serving {base}/{several} (Ctrl-C stops)", flush=True)
    sample = Path("samples/coffee.jpg")
    if sample.is_file():  # run from the repository: a line to paste into another terminal
        curl = f"curl -s -H 'Accept: text/plain' --data-binary @{sample} {base}/api/classify"
        print(f"imagerec: try  {curl}", flush=True)

    if workers <= 1:
        _serve_forever(listener, settings, make_handler)
        print("imagerec: stopped", flush=True)
        return
    settings = settings.per_worker(workers)
    children: list[int] = []
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, term)
                    _serve_forever(listener, settings, make_handler)
                except BaseException:
                    code = 1
                os._exit(code)
            children.append(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, term)
        # A worker that dies takes the server down with it, rather than serving at half speed.
        os.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, term)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        listener.close()
        print("imagerec: stopped", flush=True)


def _serve_forever(
    listener: socket.socket, settings: Settings, make_handler: Callable[[Settings], Handler]
) -> None:
    server = ImagerecHTTPServer(
        listener.getsockname()[:2],
        make_handler(settings),
        site_dir=settings.site_dir or default_site_dir(),
        max_body_bytes=settings.max_body_bytes,
        max_upload_body_bytes=settings.max_upload_body_bytes,
        listener=listener,
        idle_timeout=settings.idle_timeout,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
