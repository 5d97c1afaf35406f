"""Summaries of timing samples: medians, p95 and the pooling of several rounds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from benchmarks.plan import Json


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: Sequence[float]) -> Json:
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50": round(statistics.median(samples), 3),
        "p95": round(percentile(samples, 95), 3),
        "mean": round(statistics.fmean(samples), 3),
        "min": round(min(samples), 3),
    }


def summarise_stages(stages: dict[str, list[float]]) -> Json:
    return {stage: round(statistics.median(values), 3) for stage, values in stages.items()}


def pool_runs(runs: list[Json]) -> Json:
    """Pool the samples of several rounds (fresh processes) of one variant.

    Each run holds ``small`` and ``big``: either ``{"wall": [...], "stages": {...}}`` or a
    bare list of wall times (the baseline's), and ``peak_rss_mb``; optionally ``load_s``.
    """
    pooled: Json = {}
    for label in ("small", "big"):
        wall: list[float] = []
        stages: dict[str, list[float]] = {}
        round_p50: list[float] = []
        for run in runs:
            part = run[label]
            samples = part["wall"] if isinstance(part, dict) else part
            wall += samples
            round_p50.append(round(statistics.median(samples), 3))
            for stage, values in (part.get("stages", {}) if isinstance(part, dict) else {}).items():
                stages.setdefault(stage, []).extend(values)
        pooled[label] = {
            **summary(wall),
            "round_p50": round_p50,
            "stages_p50": summarise_stages(stages),
        }
    pooled["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    if all("load_s" in run for run in runs):
        pooled["load_s"] = summary([run["load_s"] for run in runs])
    return pooled
