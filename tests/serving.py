"""The one way tests start `imagerec serve`: the real command in a subprocess (`served`), or its
server in this process over any handler (`in_process`), both on a free loopback port."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from imagerec.core.settings import Settings
from imagerec.http.server import Handler, Server, create_server
from tests.conftest import ROOT, free_port

# Loading the real model on a busy machine; a server that is not up by then is broken.
START_TIMEOUT_S = 300.0


@dataclass
class Served:
    """A running `imagerec serve`: where it listens, its process and its output."""

    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def health(base_url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base_url}/api/health", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@contextlib.contextmanager
def served(log: Path, *args: str, healthy: bool = True, **env: str) -> Iterator[Served]:
    """`python -m imagerec serve --port P *args` from the repository, with ``env`` added to
    the environment; yields once /api/health answers 200 (or, with ``healthy=False``, once it
    prints its URL), stops it with SIGTERM on the way out unless the test has, and fails the
    test if it does not stop, or wrote a traceback."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "imagerec",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    log.parent.mkdir(parents=True, exist_ok=True)
    # Output goes to a file: a pipe nobody reads would fill up and stall the server.
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, *args], cwd=ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Served(base_url, port, process, log)

    def ready() -> bool:
        return health(base_url) == 200 if healthy else f":{port}/" in server.output()

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"imagerec serve did not start:\n{server.output()[-3000:]}")
            time.sleep(0.25)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            pytest.fail(f"imagerec serve ignored SIGTERM:\n{server.output()[-3000:]}")
    assert "Traceback" not in server.output(), server.output()[-3000:]


@contextlib.contextmanager
def in_process(
    handler: Handler, settings: Settings, log_stream: IO[str] | None = None
) -> Iterator[Server]:
    """The server `imagerec serve` runs, over ``handler``, in a thread of this process; the
    test fails if waitress logged an error (an exception in a request) meanwhile."""
    errors = _Errors()
    logging.getLogger("waitress").addHandler(errors)
    server = create_server(handler, settings, log_stream=log_stream or io.StringIO())
    thread = threading.Thread(target=server.run, name="imagerec-serve", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=30)
        logging.getLogger("waitress").removeHandler(errors)
    assert not errors.records, "\n".join(errors.records)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def address(server: Server) -> tuple[str, int]:
    host, port = server.socket.getsockname()[:2]
    return str(host), int(port)


def base_url(server: Server) -> str:
    host, port = address(server)
    return f"http://{host}:{port}"
