"""The served path: ``imagerec serve`` and the baseline's Flask app over HTTP on loopback."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from benchmarks.loadgen import Deployment, Server, http_latency, load_level, running
from benchmarks.plan import HOST, PYTHON, Json, Plan, log
from benchmarks.processes import baseline, child_env
from benchmarks.stats import pool_runs, summary


def imagerec_server(runtime: str, *, workers: int = 1) -> Deployment:
    command = [str(Path(PYTHON).with_name("imagerec")), "serve"]
    name = f"imagerec-{runtime}"
    if workers > 1:  # pre-forked processes on one socket; each gets cores ÷ workers threads
        command += ["--workers", str(workers)]
        name += f"-{workers}w"
    env = child_env(IMAGEREC_RUNTIME=runtime)
    return Deployment(name, [Server(name, [*command, "--host", HOST], "/api/classify", env)])


def baseline_server() -> Deployment:
    server = Server("baseline", baseline("serve", "--host", HOST), "/predict", child_env())
    return Deployment("baseline", [server])


def pool_levels(runs_by_level: dict[str, list[Json]]) -> Json:
    """Each load level's medians over the rounds."""
    levels: Json = {}
    for clients, runs in runs_by_level.items():
        pooled_latency = [run["latency_ms"]["p50"] for run in runs if run["completed"]]
        levels[clients] = {
            "images_per_s": round(statistics.median(r["images_per_s"] for r in runs), 2),
            "round_images_per_s": [r["images_per_s"] for r in runs],
            "latency_p50_ms": round(statistics.median(pooled_latency), 3)
            if pooled_latency
            else None,
            "latency_p95_ms": round(
                statistics.median(r["latency_ms"].get("p95", 0.0) for r in runs), 3
            ),
            "failed": sum(r["failed"] for r in runs),
        }
    return levels


def measure_servers(plan: Plan, photos: dict[str, list[Path]]) -> Json:
    """Rounds of fresh servers: the cold start, one client's latency, then each load level."""
    small = [p.read_bytes() for p in photos["small"]]
    big = [p.read_bytes() for p in photos["big"]]
    factories: dict[str, Callable[[], Deployment]] = {
        "imagerec-litert": lambda: imagerec_server("litert"),
        "imagerec-litert-2w": lambda: imagerec_server("litert", workers=2),
        "imagerec-keras": lambda: imagerec_server("keras"),
        "baseline": baseline_server,
    }
    raw: dict[str, Json] = {
        name: {"cold": [], "small": [], "big": [], "levels": {}, "rss": []} for name in factories
    }
    for round_no in range(plan.rounds):
        for name, factory in factories.items():
            log(f"HTTP, round {round_no + 1}/{plan.rounds}: {name}")
            with running(factory(), small[0]) as server:
                into = raw[name]
                into["cold"].append(server.cold_start_s)
                into["small"].append(http_latency(server, small, plan.http_small))
                into["big"].append(http_latency(server, big, plan.http_big))
                for clients in plan.levels:
                    level = load_level(server, small, clients, plan.level_seconds)
                    into["levels"].setdefault(str(clients), []).append(level)
                into["rss"].append(server.peak_rss_mb())
    result: Json = {}
    for name, data in raw.items():
        sizes = pool_runs(
            [
                {"small": small_run, "big": big_run, "peak_rss_mb": 0.0}
                for small_run, big_run in zip(data["small"], data["big"], strict=True)
            ]
        )
        result[name] = {
            "cold_start_s": summary(data["cold"]),
            "small": sizes["small"],
            "big": sizes["big"],
            "levels": pool_levels(data["levels"]),
            "peak_rss_mb": max(data["rss"]),
        }
    return result
