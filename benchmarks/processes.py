"""Fresh processes: their environment, their JSON answer, their time to first answer."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.plan import PYTHON, ROOT, Json

APP = ROOT / "functions" / "classify" / "app.py"


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's resident-set high-water mark (VmHWM) in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child_env(**extra: str) -> dict[str, str]:
    """The parent's environment, quiet, plus ``extra`` (settings the child should read)."""
    env = dict(os.environ)
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def handler_env(**extra: str) -> dict[str, str]:
    """For children that call the Lambda handler and print JSON on stdout."""
    # Off Lambda, metrics would be printed to stdout among the child's JSON lines.
    return child_env(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING", **extra)


def role(name: str, *args: str) -> list[str]:
    """The command that runs ``benchmarks.children`` in the role ``name``."""
    return [PYTHON, "-m", "benchmarks.children", name, *args]


def baseline(*args: str) -> list[str]:
    return [PYTHON, "-m", "benchmarks.baseline_app", *args]


def run_child(args: list[str], *, timeout: float = 600, env: dict[str, str] | None = None) -> Json:
    """Run a child process from the repository root; return the JSON on its last stdout line."""
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env or child_env(), cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:4]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    parsed: Json = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def time_to_first_line(args: list[str], env: dict[str, str]) -> tuple[float, Json]:
    """Seconds from spawn until the child's first stdout line; then its last JSON line."""
    with tempfile.TemporaryFile() as errors:
        began = time.perf_counter()
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=ROOT
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        elapsed = time.perf_counter() - began
        rest = process.stdout.read()
        process.wait(timeout=120)
        if process.returncode != 0 or not first:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{args[:3]} failed ({process.returncode}):\n{message}")
    lines = [line for line in [first, *rest.splitlines()] if line.strip()]
    payload: Json = json.loads(lines[-1])
    return elapsed, payload
