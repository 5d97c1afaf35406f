"""What the run ran on: CPU, flags, memory, package versions and how busy the machine was."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from pathlib import Path

from benchmarks.plan import Json

PACKAGES = (
    "tensorflow-cpu", "keras", "ai-edge-litert", "onnxruntime", "numpy", "pillow", "flask",
    "waitress", "aws-lambda-powertools",
)  # fmt: skip
# The CPU features that decide how fast the model's kernels can be.
FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def machine() -> Json:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model, flags = "unknown", set[str]()
    for line in cpuinfo.splitlines():
        if line.startswith("model name") and model == "unknown":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    memory = "unknown"
    if Path("/proc/meminfo").exists():
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu": model,
        "arch": platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "flags": {flag: flag in flags for flag in FLAGS},
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions(),
        "baseline_server": "waitress" if importlib.util.find_spec("waitress") else
                           "flask-dev-threaded (werkzeug, threaded=True)",
    }  # fmt: skip


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
