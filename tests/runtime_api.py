"""A minimal Lambda Runtime API on loopback, and a function started against it as Lambda starts
it: ``python -m awslambdaric HANDLER`` with ``AWS_LAMBDA_RUNTIME_API`` set.

The runtime interface client polls ``GET /2018-06-01/runtime/invocation/next`` for an event and
its request headers, posts the handler's answer to ``.../invocation/{id}/response`` (or a raised
exception to ``.../invocation/{id}/error``), and an import-time failure to
``/2018-06-01/runtime/init/error``; all three posts are answered 202, as Lambda answers them
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). This double hands out one
event at a time, as one execution environment gets them, and notes when the client first asks
for work: the end of the init phase.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

RUNTIME = "/2018-06-01/runtime"
_RESULT = re.compile(rf"^{RUNTIME}/invocation/([^/]+)/(response|error)$")


@dataclass
class Outcome:
    """What the client posted for one invocation: its handler's return value or its error."""

    kind: str  # "response" or "error"
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeAPI


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _accepted(self) -> None:
        self._answer(HTTPStatus.ACCEPTED, b'{"status":"OK"}', {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        api = self.server.api
        if self.path != f"{RUNTIME}/invocation/next":
            self._answer(HTTPStatus.NOT_FOUND, b"{}", {})
            return
        api.asked_for_work()
        invocation = api.next_invocation()
        if invocation is None:  # the double is closing
            return
        self._answer(HTTPStatus.OK, invocation.event, api.request_headers(invocation))

    def do_POST(self) -> None:
        api = self.server.api
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        if self.path == f"{RUNTIME}/init/error":
            api.record_init_error(Outcome("init_error", body, headers))
            self._accepted()
            return
        match = _RESULT.match(self.path)
        if match is None or not api.record_outcome(match[1], Outcome(match[2], body, headers)):
            self._answer(HTTPStatus.BAD_REQUEST, b'{"errorType":"InvalidRequestID"}', {})
            return
        self._accepted()


class RuntimeAPI:
    """The Runtime API of one execution environment, served on a loopback port."""

    def __init__(self, function_arn: str, timeout_s: float) -> None:
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.first_next_at: float | None = None
        self.init_error: Outcome | None = None
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._invocations: dict[str, _Invocation] = {}
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # The server's side
    def asked_for_work(self) -> None:
        with self._changed:
            if self.first_next_at is None:
                self.first_next_at = time.monotonic()
            self._changed.notify_all()

    def next_invocation(self) -> _Invocation | None:
        while not self._closing.is_set():
            try:
                return self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def request_headers(self, invocation: _Invocation) -> dict[str, str]:
        trace_root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        return {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + self.timeout_s) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": (
                f"Root={trace_root};Parent={secrets.token_hex(8)};Sampled=1"
            ),
        }

    def record_init_error(self, outcome: Outcome) -> None:
        with self._changed:
            self.init_error = outcome
            self._changed.notify_all()

    def record_outcome(self, request_id: str, outcome: Outcome) -> bool:
        invocation = self._invocations.get(request_id)
        if invocation is None or invocation.outcome is not None:
            return False
        invocation.outcome = outcome
        invocation.done.set()
        return True

    # The test's side
    def submit(self, event: Any) -> _Invocation:
        invocation = _Invocation(str(uuid.uuid4()), json.dumps(event).encode())
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def wait_for(self, ready: Any, timeout: float) -> bool:
        with self._changed:
            return bool(self._changed.wait_for(ready, timeout))


class LambdaProcess:
    """One execution environment: the runtime interface client running HANDLER in TASK_ROOT
    against its own RuntimeAPI. Used as a context manager; the process is killed on exit, as
    Lambda ends an environment (it never returns from waiting for the next event)."""

    def __init__(
        self,
        python: Path,
        handler: str,
        task_root: Path,
        env: dict[str, str],
        log_path: Path,
        *,
        function_arn: str,
        timeout_s: float,
    ) -> None:
        self.python = python
        self.handler = handler
        self.task_root = task_root
        self.env = env
        self.log_path = log_path
        self.api = RuntimeAPI(function_arn, timeout_s)
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def __enter__(self) -> LambdaProcess:
        env = {**self.env, "AWS_LAMBDA_RUNTIME_API": self.api.address, "_HANDLER": self.handler}
        with self.log_path.open("wb") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [str(self.python), "-m", "awslambdaric", self.handler],
                cwd=self.task_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.api.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_bytes()[-tail:].decode(errors="replace")

    def wait_for_init(self, timeout: float) -> None:
        """Until the client first asks for work, posts an init error, or exits."""
        api = self.api
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if api.wait_for(lambda: api.first_next_at or api.init_error, 0.2):
                return
            if not self.running:
                return
        raise TimeoutError(f"no /next and no /init/error within {timeout} s:\n{self.log()}")

    @property
    def init_seconds(self) -> float:
        """From process start to its first GET /next: Lambda's init phase."""
        assert self.api.first_next_at is not None, self.log()
        return self.api.first_next_at - self.started_at

    def peak_rss_mib(self) -> float:
        """The process's peak resident set so far (VmHWM), in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
        assert match, status
        return int(match[1]) / 1024

    def invoke(self, event: Any, timeout: float = 120) -> Outcome:
        """Hand one event to the client and wait for what it posts back."""
        invocation = self.api.submit(event)
        deadline = time.monotonic() + timeout
        while not invocation.done.wait(0.2):
            if not self.running:
                raise RuntimeError(f"the function exited (rc {self.exit_code()}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer within {timeout} s:\n{self.log()}")
        assert invocation.outcome is not None
        return invocation.outcome

    def exit_code(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)


def lambda_reserved_environment(
    function_name: str, memory_mb: int, region: str, task_root: Path, runtime_dir: Path, python: str
) -> dict[str, str]:
    """The variables Lambda itself sets in every environment (the ones the code can read),
    with the runtime's directory and the task root on the path as the base image has them."""
    return {
        "PATH": os.environ["PATH"],
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": f"{task_root}{os.pathsep}{runtime_dir}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # The execution role's credentials; fake ones here, for moto.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
