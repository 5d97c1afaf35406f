"""HTTP on loopback: servers in subprocesses, timed from spawn, and the clients that load them."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.plan import HOST, ROOT, Json
from benchmarks.processes import peak_rss_mb
from benchmarks.stats import summary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    return response.status, response.read()


@dataclass
class Server:
    """A server in a subprocess, timed from spawn to its first 200 on ``path``."""

    name: str
    args: list[str]
    path: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            [*self.args, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=ROOT,
        )

    def wait_ready(self, probe: bytes, timeout: float = 120) -> None:
        """Poll (every 10 ms) until the first classification answers 200."""
        assert self.process is not None
        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
                status, _ = post(connection, self.path, probe)
                connection.close()
            except OSError:
                time.sleep(0.01)
                continue
            if status == 200:
                return
            raise RuntimeError(f"{self.name} answered {status} to its first request")
        raise RuntimeError(f"{self.name} did not answer within {timeout} s")

    def peak_rss_mb(self) -> float:
        """The sum over the process and its children (pre-forked workers)."""
        if not self.process:
            return float("nan")
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return round(sum(peak_rss_mb(p) for p in [str(pid), *children]), 1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Deployment:
    """The servers behind one benchmarked variant; clients share them round-robin."""

    name: str
    servers: list[Server]
    cold_start_s: float = float("nan")

    @property
    def path(self) -> str:
        return self.servers[0].path

    def port(self, client: int) -> int:
        return self.servers[client % len(self.servers)].port

    def start(self, probe: bytes) -> None:
        began = time.perf_counter()
        for server in self.servers:
            server.spawn()
        for server in self.servers:
            server.wait_ready(probe)
        self.cold_start_s = time.perf_counter() - began

    def peak_rss_mb(self) -> float:
        return round(sum(server.peak_rss_mb() for server in self.servers), 1)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@contextmanager
def running(deployment: Deployment, probe: bytes) -> Iterator[Deployment]:
    try:
        deployment.start(probe)
        yield deployment
    finally:
        deployment.stop()


def http_latency(server: Deployment, photos: list[bytes], count: int) -> Json:
    """One client, sequential requests: latency and, for imagerec, the server's stages."""
    connection = http.client.HTTPConnection(HOST, server.port(0), timeout=120)
    wall: list[float] = []
    stages: dict[str, list[float]] = {}
    for i in range(count):
        began = time.perf_counter()
        status, body = post(connection, server.path, photos[i % len(photos)])
        wall.append((time.perf_counter() - began) * 1000)
        if status != 200:
            raise RuntimeError(f"{server.name}: HTTP {status}: {body[:200]!r}")
        for stage, ms in json.loads(body).get("timing_ms", {}).items():
            stages.setdefault(stage, []).append(ms)
    connection.close()
    return {"wall": wall, "stages": stages}


def load_level(server: Deployment, photos: list[bytes], clients: int, seconds: float) -> Json:
    """``clients`` keep-alive connections posting back to back for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    finished = [0.0] * clients
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(k: int) -> None:
        connection = http.client.HTTPConnection(HOST, server.port(k), timeout=120)
        ready.wait()
        i = k
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                status, _ = post(connection, server.path, photos[i % len(photos)])
            except OSError:
                status = 0
                connection.close()
                connection = http.client.HTTPConnection(HOST, server.port(k), timeout=120)
            ended = time.perf_counter()
            if status == 200:
                latencies[k].append((ended - began) * 1000)
            else:
                failures[k] += 1
            finished[k] = ended
            i += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    elapsed = max(finished) - began
    pooled = [ms for per_client in latencies for ms in per_client]
    return {
        "clients": clients,
        "completed": len(pooled),
        "failed": sum(failures),
        "seconds": round(elapsed, 3),
        "images_per_s": round(len(pooled) / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": summary(pooled),
    }
