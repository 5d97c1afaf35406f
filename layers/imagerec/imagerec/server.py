"""``imagerec serve``: the page and the API on one origin, through the Lambda handler.

Each HTTP request becomes the API Gateway v2 event that API Gateway would send (binary
bodies base64-encoded), and the very handler Lambda runs answers it, so what passes
here passes in Lambda. Static files come from ``site/`` with the headers CloudFront adds.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from imagerec.events import LocalContext, http_event, response_body
from imagerec.headers import SECURITY_HEADERS
from imagerec.settings import Settings
from imagerec.text import human_size

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Bodies a little over the cap are read and dropped so the client sees our 413 rather than
# a reset connection; anything bigger is refused without reading.
DRAIN_LIMIT = 64 * 1024 * 1024
# POST /api/uploads/<id>: the local upload store's form target (imagerec.api's ROUTES).
_UPLOAD_FORM = re.compile(r"^/api/uploads/[^/]+/?$")
CHUNK = 64 * 1024


def default_site_dir() -> Path:
    here = Path.cwd() / "site"
    if (here / "index.html").is_file():
        return here
    # An editable install from the repository: layers/imagerec/imagerec → site/
    return Path(__file__).resolve().parents[3] / "site"


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class RequestHandler(BaseHTTPRequestHandler):
    server: ImagerecHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm the body would wait for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "imagerec"
    sys_version = ""

    # -- plumbing ---------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _log instead

    def _log(self, status: int, size: int, started: float) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        line = (
            f'{self.client_address[0]} "{self.command} {self.path}" {status} {size}B '
            f"{elapsed:.1f}ms"
        )
        print(line, file=self.server.log_stream, flush=True)

    def _send(self, status: int, headers: dict[str, str], body: bytes, started: float) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status, len(body), started)

    def _send_error_json(self, status: HTTPStatus, code: str, message: str, started: float) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self._send(status, {"Content-Type": "application/json"}, body, started)

    def _read_body(self, cap: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(cap)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise _BodyTooLarge  # unreadable length: refuse rather than guess
        if length > cap:
            self._drain(length)
            raise _BodyTooLarge
        return self._read_exact(length)

    def _read_exact(self, length: int) -> bytes:
        data = bytearray()
        while len(data) < length:
            chunk = self.rfile.read(min(CHUNK, length - len(data)))
            if not chunk:
                raise _ClientGone
            data += chunk
        return bytes(data)

    def _read_chunked(self, cap: int) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise _ClientGone
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BodyTooLarge from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            if len(data) + size > cap:
                self.close_connection = True
                raise _BodyTooLarge
            data += self._read_exact(size)
            self.rfile.readline(8)

    def _drain(self, length: int) -> None:
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise _ClientGone
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
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

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
        event = http_event(
            self.command, self.path, self.headers.items(), body, source_ip=self.client_address[0]
        )
        response = self.server.invoke(event)
        headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(int(response.get("statusCode", 500)), headers, response_body(response), started)

    def _static(self, started: float) -> None:
        root = self.server.site_dir
        relative = self.path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
        target = (root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            # JSON like every other error here, so scripts read one shape.
            path = "/" + relative
            message = f"There is no page {path}."
            self._send_error_json(HTTPStatus.NOT_FOUND, "not_found", message, started)
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache", **SECURITY_HEADERS}
        self._send(HTTPStatus.OK, headers, target.read_bytes(), started)

    # http.server dispatches on do_<METHOD>; every method goes through one router.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815


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
        # Powertools' resolver keeps the current request in class attributes, so one
        # invocation runs at a time per process, as in a Lambda environment.
        self._invoke_lock = threading.Lock()

    def body_cap(self, target: str) -> int:
        """The upload form's target takes a whole file sent raw; every other route the
        direct-request cap."""
        path = target.split("?", 1)[0]
        if _UPLOAD_FORM.match(path):
            return self.max_upload_body_bytes
        return self.max_body_bytes

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._invoke_lock:
            return self.handler(event, LocalContext())


def serve(host: str, port: int, settings: Settings, *, workers: int = 1) -> None:
    """Serve until Ctrl-C or SIGTERM, in this process or in ``workers`` pre-forked ones.

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
    print(f"imagerec: serving {base}/{several} (Ctrl-C stops)", flush=True)
    sample = Path("samples/coffee.jpg")
    if sample.is_file():  # run from the repository: a line to paste into another terminal
        curl = f"curl -s -H 'Accept: text/plain' --data-binary @{sample} {base}/api/classify"
        print(f"imagerec: try  {curl}", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if workers <= 1:
        _serve_forever(listener, settings)
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
                    _serve_forever(listener, settings)
                except BaseException:
                    code = 1
                os._exit(code)
            children.append(pid)
        # A worker that dies takes the server down with it, rather than serving at half speed.
        os.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        listener.close()
        print("imagerec: stopped", flush=True)


def _serve_forever(listener: socket.socket, settings: Settings) -> None:
    from imagerec.api import load_handler

    server = ImagerecHTTPServer(
        listener.getsockname()[:2],
        load_handler(settings),
        site_dir=settings.site_dir or default_site_dir(),
        max_body_bytes=settings.max_body_bytes,
        max_upload_body_bytes=settings.max_upload_body_bytes,
        listener=listener,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
