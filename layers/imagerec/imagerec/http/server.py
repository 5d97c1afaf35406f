"""``imagerec serve``: the page and the API on one origin, through the Lambda handler.

waitress (a WSGI server) holds the connections: idle ones cost no thread, and it caps bodies,
headers and connections. What is ours is the adapter: each request becomes the API Gateway v2
event API Gateway would send, and the very handler Lambda runs answers it, so what passes here
passes in Lambda; static files come from ``site/``. Three hooks on waitress's own classes keep
the API's contract for what waitress answers by itself: errors in the API's JSON shape, a cap
per route, and deadlines on a request's headers and body (waitress only closes a connection
that goes quiet, so a client trickling one byte a second would otherwise hold it for ever).
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import os
import re
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import BadRequest, Error, RequestEntityTooLarge

from imagerec.core.settings import Settings
from imagerec.core.text import human_size
from imagerec.http.events import LocalContext, http_event, response_body
from imagerec.http.headers import security_headers, upload_origins

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# POST /api/uploads/<id>: the local upload store's form target (imagerec.http.api's ROUTES).
_UPLOAD_FORM = re.compile(r"^/api/uploads/[^/]+/?$")
# Bodies a little over the cap are read and dropped so the client sees our 413 rather than
# a reset connection; anything bigger is refused without reading.
DRAIN_LIMIT = 64 * 1024 * 1024
# The request line and headers, together; beyond it a JSON 431.
MAX_HEADER_BYTES = 64 * 1024
# Statuses waitress answers by itself, as codes in the API's error shape.
ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_TIMEOUT: "request_timeout",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "headers_too_large",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
    HTTPStatus.NOT_IMPLEMENTED: "not_implemented",
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


def page_headers(settings: Settings) -> dict[str, str]:
    """The one policy (imagerec.http.headers), with the upload bucket's origins when uploads
    go to S3: the page then POSTs photos there, as it does behind CloudFront."""
    origins: tuple[str, ...] = ()
    if settings.upload_bucket:
        origins = upload_origins(settings.upload_bucket, settings.aws_region)
        if settings.s3_endpoint_url:  # a local S3 (moto, MinIO): presigned POSTs go there
            parts = urlsplit(settings.s3_endpoint_url)
            origins = (f"{parts.scheme}://{parts.netloc}",)
    return security_headers(origins)


# -- the adapter: one WSGI request → one API Gateway event → the handler ----------------------


class App:
    """The WSGI application: ``/api/*`` through the Lambda handler, anything else from the
    site folder; every answer carries the security headers CloudFront adds."""

    def __init__(
        self,
        handler: Handler,
        *,
        site_dir: Path,
        headers: dict[str, str],
        log_stream: IO[str] = sys.stderr,
    ) -> None:
        self.handler = handler
        self.site_dir = site_dir.resolve()
        self.headers = headers
        self._replaced = {name.lower() for name in headers} | _HOP_BY_HOP
        self.log_stream = log_stream
        # Powertools' resolver keeps the current request in class attributes, so one
        # invocation runs at a time per process, as in a Lambda execution environment.
        self._invoke_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/"
        path = target.split("?", 1)[0]
        if path == "/api" or path.startswith("/api/"):
            status, headers, body = self._api(environ, method, target)
        elif method in {"GET", "HEAD"}:
            status, headers, body = self._static(environ.get("PATH_INFO") or "/", path)
        else:
            status, headers, body = _error(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here."
            )
        start_response(
            f"{status} {_phrase(status)}",
            [*headers.items(), *self.headers.items(), ("Content-Length", str(len(body)))],
        )
        self._log(environ, status, len(body), started)
        return [b"" if method == "HEAD" else body]

    def _api(self, environ: dict[str, Any], method: str, target: str) -> _Reply:
        # waitress has read the body whole (to a temporary file past 512 kB) within the route's
        # cap (_Parser below) before the request gets here.
        body = environ["wsgi.input"].read()
        headers = [
            (name[5:].replace("_", "-").lower(), value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        ]
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers.append((name.replace("_", "-").lower(), environ[name]))
        with self._invoke_lock:
            # The event (a base64 copy of the body) is built only once the handler is free.
            event = http_event(method, target, headers, body, source_ip=environ["REMOTE_ADDR"])
            response = self.handler(event, LocalContext())
        out = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out[name] = ", ".join(values)
        # The policy's headers replace the handler's, as CloudFront's Override does; waitress
        # frames the response itself (length, keep-alive).
        out = {k: v for k, v in out.items() if k.lower() not in self._replaced}
        return int(response.get("statusCode", 500)), out, response_body(response)

    def _static(self, path_info: str, raw_path: str) -> _Reply:
        target = self._static_target(path_info)
        if target is None:
            # JSON like every other error here, so scripts read one shape.
            shown = raw_path if len(raw_path) <= 100 else raw_path[:100] + "…"
            return _error(HTTPStatus.NOT_FOUND, f"There is no page {shown}.")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
        return HTTPStatus.OK, headers, target.read_bytes()

    def _static_target(self, path_info: str) -> Path | None:
        """The file a GET names inside the site folder, or None: never outside it, and never
        an exception for a path the file system cannot represent (NUL, over-long names)."""
        relative = path_info.lstrip("/") or "index.html"
        if "\x00" in relative or any(len(part) > 255 for part in relative.split("/")):
            return None
        try:
            target = (self.site_dir / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(self.site_dir) or not target.is_file():
                return None
        except (OSError, ValueError):
            return None
        return target

    def _log(self, environ: dict[str, Any], status: int, size: int, started: float) -> None:
        elapsed = f" {(time.perf_counter() - started) * 1000:.1f}ms"
        target = environ.get("REQUEST_URI") or ""
        self.log_line(
            environ["REMOTE_ADDR"], environ["REQUEST_METHOD"], target, status, size, elapsed
        )

    def log_line(
        self, client: str, method: str, target: str, status: int, size: int, elapsed: str = ""
    ) -> None:
        """One line per answer, waitress's own error answers included."""
        shown = target if len(target) <= 200 else target[:200] + "…"
        line = f'{client} "{method} {shown}" {status} {size}B{elapsed}'
        print(line.encode("ascii", "backslashreplace").decode(), file=self.log_stream, flush=True)


_Reply = tuple[int, dict[str, str], bytes]
_HOP_BY_HOP = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})


def _phrase(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Unknown"


def _error(status: HTTPStatus, message: str) -> _Reply:
    body = error_json(ERROR_CODES.get(status, "bad_request"), message)
    return status, {"Content-Type": "application/json"}, body


# -- hooks on waitress: JSON errors, a cap per route, request deadlines -----------------------


class _RequestTimeout(Error):  # type: ignore[misc]
    code = 408
    reason = "Request Timeout"


class _VersionNotSupported(Error):  # type: ignore[misc]
    code = 505
    reason = "HTTP Version Not Supported"


class _ErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own error answers (400, 413, 431, 501...) in the API's JSON shape."""

    def execute(self) -> None:
        error = self.request.error
        status = HTTPStatus(error.code)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.response_headers.extend(self.channel.server.page_headers.items())
        body = error_json(ERROR_CODES.get(status, "bad_request"), _message(status, error.body))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        server = self.channel.server
        # A request line that did not parse has no method or path.
        method, path = getattr(self.request, "command", ""), getattr(self.request, "path", "")
        server.application.log_line(self.channel.addr[0], method, path, error.code, len(body))


def _message(status: HTTPStatus, detail: str) -> str:
    if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return f"The request body is over the {detail} limit."
    if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
        return f"The request line and headers are over the {human_size(MAX_HEADER_BYTES)} limit."
    if status == HTTPStatus.REQUEST_TIMEOUT:
        return f"The request {detail} took too long to arrive."
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return "The server failed to answer; see its log."
    return f"{status.phrase}: {detail.rstrip('.')}."


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's parser, with the start of each phase noted for the deadlines, the route's
    own body cap (waitress has one for all), and only the HTTP versions it speaks."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.body_rcv: Any = None  # waitress's, or our _Drain
        self.started = time.monotonic()  # made when the request's first bytes arrive
        self.body_started = 0.0

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        if not self.headers_finished or (
            self.error and not isinstance(self.error, RequestEntityTooLarge)
        ):
            return consumed
        cap = self.adj.route_cap(self.path)
        if not self.body_started:
            self.body_started = time.monotonic()
            if self.version not in ("1.0", "1.1"):
                self._fail(_VersionNotSupported(f"HTTP/{self.version}"))
            elif self.chunked and "CONTENT_LENGTH" in self.headers:
                # RFC 9112 §6.1: a framing a proxy in front might read the other way.
                self._fail(BadRequest("a request cannot have both Content-Length and chunked"))
            elif self.content_length > cap:
                # Refused from Content-Length, before any of it is read. A body not far over
                # is read and dropped first, so the client, still sending, gets our 413 and
                # not a reset; a bigger one is answered at once and the connection closed.
                if self.content_length <= DRAIN_LIMIT and not self.completed:
                    self.body_rcv.getbuf().close()  # waitress's, still empty
                    self.body_rcv = _Drain(self.content_length)
                else:
                    self._fail(RequestEntityTooLarge(human_size(cap)))
            return consumed
        if isinstance(self.body_rcv, _Drain):
            if self.completed:
                self._fail(RequestEntityTooLarge(human_size(cap)))
        elif self.body_bytes_received > cap:  # chunked, counted as it arrives
            self._fail(RequestEntityTooLarge(human_size(cap)))
        return consumed

    def _fail(self, error: Error) -> None:
        self.error = error
        self.completed = True


class _Drain:
    """A body receiver (waitress's interface) that counts the bytes and keeps none."""

    error = None
    completed = False

    def __init__(self, length: int) -> None:
        self.remain = length

    def received(self, data: bytes) -> int:
        taken = min(len(data), self.remain)
        self.remain -= taken
        self.completed = self.remain == 0
        return taken

    def __len__(self) -> int:
        return 0

    def getbuf(self) -> _Drain:  # the parser closes its receiver's buffer when done
        return self

    def close(self) -> None:
        pass


class _Channel(HTTPChannel):  # type: ignore[misc]
    parser_class = _Parser
    error_task_class = _ErrorTask


class _Adjustments(Adjustments):  # type: ignore[misc]
    """waitress's settings, plus ours: the deadlines and the upload form's cap."""

    header_timeout: float = Settings.header_timeout
    body_timeout: float = Settings.body_timeout
    max_upload_body_bytes: int = 0
    max_direct_body_bytes: int = 0

    def route_cap(self, path: str) -> int:
        """The upload form's target takes a whole file sent raw; every other route the
        direct-request cap."""
        if _UPLOAD_FORM.match(path or ""):
            return self.max_upload_body_bytes
        return self.max_direct_body_bytes


class Server(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server, with our channel (parser, error answers) and deadlines."""

    channel_class = _Channel
    page_headers: dict[str, str]

    def run(self) -> None:
        """Serve until Ctrl-C (our SIGTERM too) or ``stop()``; then every connection closes."""
        try:
            super().run()
        finally:
            self.task_dispatcher.shutdown()
            wasyncore.close_all(self._map)

    def stop(self) -> None:
        """From any thread: the loop closes everything, and ``run()`` returns."""
        self.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))

    def maintenance(self, now: float) -> None:
        """waitress's idle sweep, and the deadlines: a request whose headers (or body) have
        not all arrived in time gets a JSON 408 and the connection closes."""
        moment = time.monotonic()
        for channel in list(self.active_channels.values()):
            request = channel.request
            if request is None or request.completed:
                if not channel.requests and channel.last_activity < now - self.adj.channel_timeout:
                    channel.will_close = True
                continue
            if request.headers_finished:
                late = moment - request.body_started > self.adj.body_timeout
                what = "body"
            else:
                late = moment - request.started > self.adj.header_timeout
                what = "headers"
            if late:
                with channel.requests_lock:
                    if not request.headers_finished:
                        request.parse_header(b"GET / HTTP/1.1\r\n")  # what the task reads
                    request._fail(_RequestTimeout(what))
                    channel.request = None
                    channel.requests.append(request)
                    if len(channel.requests) == 1:
                        self.add_task(channel)


def create_server(
    handler: Handler,
    settings: Settings,
    *,
    listener: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    log_stream: IO[str] = sys.stderr,
    threads: int = 4,
) -> Server:
    """A waitress server for the handler, on ``listener`` (a worker shares its parent's) or a
    new socket on host:port; ``run()`` serves until Ctrl-C or ``stop()``."""
    if listener is None:
        listener = _listen(host, port)
    headers = page_headers(settings)
    app = App(
        handler,
        site_dir=settings.site_dir or default_site_dir(),
        headers=headers,
        log_stream=log_stream,
    )
    adj = _Adjustments(
        sockets=[listener],
        threads=threads,
        connection_limit=_connection_limit(settings.max_connections),
        channel_timeout=settings.idle_timeout,
        cleanup_interval=1,
        asyncore_use_poll=True,  # select() stops at descriptor 1024
        max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=max(DRAIN_LIMIT, settings.max_upload_body_bytes) + 1,
        ident="imagerec",
        clear_untrusted_proxy_headers=False,  # the handler sees the headers as they came
        expose_tracebacks=False,
    )
    adj.header_timeout = settings.header_timeout
    adj.body_timeout = settings.body_timeout
    adj.max_direct_body_bytes = settings.max_body_bytes
    adj.max_upload_body_bytes = settings.max_upload_body_bytes
    server = Server(
        app,
        map={},
        _sock=listener,
        adj=adj,
        bind_socket=False,
        sockinfo=(listener.family, listener.type, listener.proto, listener.getsockname()),
    )
    server.page_headers = headers
    return server


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=1024)
    # Accepted connections inherit it: headers and body go out as two writes, and with Nagle's
    # algorithm the body would wait for the client's delayed ACK on every keep-alive request.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


def _connection_limit(wanted: int) -> int:
    """The cap on open connections, within the descriptors this process may open (raised to
    the hard limit if need be: a laptop's soft limit is often 1024, or 256)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + 64  # the model, the listener, log files, waitress's own
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = wanted if soft == resource.RLIM_INFINITY else max(1, min(wanted, soft - 64))
    return limit + 2  # waitress counts its listener and its wake-up pipe among them


# -- the command ------------------------------------------------------------------------------


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
    threads, is how a laptop classifies for several clients in parallel.
    """
    listener = _listen(host, port)
    bound_host, bound_port = str(listener.getsockname()[0]), listener.getsockname()[1]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    base = f"http://{shown}:{bound_port}"
    several = f" with {workers} worker processes" if workers > 1 else ""
    # waitress says "queue depth is 1" whenever a request waits for a thread: not news here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

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
        _run(listener, settings, make_handler)
        print("imagerec: stopped", flush=True)
        return
    settings = settings.per_worker(workers)
    _run_workers(workers, term, lambda: _run(listener, settings, make_handler))
    listener.close()
    print("imagerec: stopped", flush=True)


def _run_workers(count: int, term: set[signal.Signals], run: Callable[[], None]) -> None:
    """``count`` forked children running ``run``, until one exits or we get Ctrl-C/SIGTERM;
    then each is stopped and reaped."""
    children: list[int] = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, term)
                    run()
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


def _run(
    listener: socket.socket, settings: Settings, make_handler: Callable[[Settings], Handler]
) -> None:
    create_server(make_handler(settings), settings, listener=listener).run()
