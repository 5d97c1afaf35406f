"""In-process measurements, each in rounds of fresh processes: warm, Lambda handler, cold."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

from benchmarks.children import COLD_CLASSIFY, COLD_HANDLER, IMPORT_TENSORFLOW
from benchmarks.plan import PYTHON, Json, Plan, log
from benchmarks.processes import (
    APP,
    baseline,
    child_env,
    handler_env,
    role,
    run_child,
    time_to_first_line,
)
from benchmarks.stats import pool_runs, summary


def photo_args(photos: dict[str, list[Path]]) -> list[str]:
    return ["--small", *map(os.fspath, photos["small"]), "--big", *map(os.fspath, photos["big"])]


def measure_warm(plan: Plan, photos: dict[str, list[Path]]) -> Json:
    """Rounds of fresh processes, the variants interleaved so that load hits them alike."""
    runs: dict[str, list[Json]] = {"litert": [], "keras": [], "baseline": []}
    for round_no in range(plan.rounds):
        for variant in runs:
            log(f"warm in-process, round {round_no + 1}/{plan.rounds}: {variant}")
            if variant == "baseline":
                args = baseline(
                    "warm", *photo_args(photos),
                    "--reps", str(plan.baseline_small), "--big-reps", str(plan.baseline_big),
                )  # fmt: skip
            else:
                args = role(
                    "warm", variant, *photo_args(photos),
                    "--reps", str(plan.warm_small), "--big-reps", str(plan.warm_big),
                )  # fmt: skip
            runs[variant].append(run_child(args))
    return {variant: pool_runs(variant_runs) for variant, variant_runs in runs.items()}


def measure_lambda(plan: Plan, photos: dict[str, list[Path]]) -> Json:
    """The warm Lambda path at Lambda's thread count: the function's handler, in a process
    whose environment says the function has ``plan.lambda_memory_mb`` of memory, so that
    imagerec's settings choose the threads exactly as they do on Lambda.

    Lambda bills each invocation's duration rounded up to the next millisecond, so the
    figure for cost is the mean of the rounded-up durations (a sum, not a median)."""
    env = child_env(
        IMAGEREC_RUNTIME="litert",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(plan.lambda_memory_mb),
        # The template's Powertools settings; metrics stay on as on Lambda.
        POWERTOOLS_SERVICE_NAME="imagerec",
        POWERTOOLS_METRICS_NAMESPACE="Imagerec",
        POWERTOOLS_TRACER_CAPTURE_RESPONSE="false",
    )
    runs: list[Json] = []
    for round_no in range(plan.rounds):
        log(f"Lambda handler at {plan.lambda_memory_mb} MB, round {round_no + 1}/{plan.rounds}")
        args = role(
            "handler", "--app", os.fspath(APP), *photo_args(photos),
            "--reps", str(plan.lambda_small), "--big-reps", str(plan.lambda_big),
        )  # fmt: skip
        runs.append(run_child(args, env=env))
    pooled = pool_runs(runs)
    for label in ("small", "big"):
        wall = [ms for run in runs for ms in run[label]["wall"]]
        pooled[label]["billed_ms_mean"] = round(statistics.fmean(math.ceil(ms) for ms in wall), 3)
        direct = [ms for run in runs for ms in run[label].get("inprocess", [])]
        if direct:
            pooled[label]["inprocess"] = summary(direct)
    pooled["memory_mb"] = plan.lambda_memory_mb
    pooled["threads"] = runs[0]["threads"]
    pooled["runtime"] = "litert"
    return pooled


def measure_cold(plan: Plan, photo: Path) -> Json:
    """A new process until its first answer, for each way of starting one."""
    path = os.fspath(photo)
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "litert": ([PYTHON, "-c", COLD_CLASSIFY, "litert", path], child_env()),
        "keras": ([PYTHON, "-c", COLD_CLASSIFY, "keras", path], child_env()),
        "baseline": (baseline("cold", path), child_env()),
        "handler-litert": (
            [PYTHON, "-c", COLD_HANDLER, os.fspath(APP), path],
            handler_env(IMAGEREC_RUNTIME="litert"),
        ),
        "handler-keras": (
            [PYTHON, "-c", COLD_HANDLER, os.fspath(APP), path],
            handler_env(IMAGEREC_RUNTIME="keras"),
        ),
        "import-tensorflow": ([PYTHON, "-c", IMPORT_TENSORFLOW], child_env()),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    memory: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(plan.cold_rounds):
        for name, (args, env) in variants.items():
            log(f"cold start, round {round_no + 1}/{plan.cold_rounds}: {name}")
            seconds, payload = time_to_first_line(args, env)
            samples[name].append(seconds)
            if "peak_rss_mb" in payload:
                memory[name].append(payload["peak_rss_mb"])
    return {
        name: {**summary(values), "peak_rss_mb": max(memory[name], default=None)}
        for name, values in samples.items()
    }


def measure_batch(plan: Plan, photos: list[Path], cores: int) -> Json:
    """Batched against one-at-a-time images/s, side by side in each fresh process, at the
    machine's threads and at one thread (Lambda's at the template's memory)."""
    result: Json = {"photos": [p.name for p in photos]}
    for threads in sorted({cores, 1}, reverse=True):
        runs = []
        for round_no in range(plan.rounds):
            log(f"batch against single, {threads} thread(s), round {round_no + 1}/{plan.rounds}")
            args = role(
                "batch", "litert", "--threads", str(threads), "--small", *map(os.fspath, photos),
                "--images", str(plan.batch_images), "--reps", str(plan.batch_reps),
            )  # fmt: skip
            runs.append(run_child(args))
        single = [x for run in runs for x in run["single_ips"]]
        batched = [x for run in runs for x in run["batch_ips"]]
        result[str(threads)] = {
            "images": runs[0]["images"],
            "batch_size": runs[0]["batch_size"],
            "single_ips": summary(single),
            "batch_ips": summary(batched),
            # Each round's batch rate over the single rate measured just before it.
            "ratio_p50": round(
                statistics.median(b / a for a, b in zip(single, batched, strict=True)), 3
            ),
        }
    return result
