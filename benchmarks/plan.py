"""What a run measures, and where it writes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "benchmarks.png"
README = ROOT / "README.md"
PYTHON = sys.executable
HOST = "127.0.0.1"

Json = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """How much to measure. Every figure is pooled over ``rounds`` fresh processes."""

    rounds: int = 3
    warm_small: int = 40
    warm_big: int = 8
    baseline_small: int = 20
    baseline_big: int = 5
    cold_rounds: int = 3
    http_small: int = 20
    http_big: int = 5
    levels: tuple[int, ...] = (1, 4, 16)
    level_seconds: float = 2.5
    onnx_reps: int = 40
    # The Lambda function's memory (template.yaml's default): it sets the thread count.
    lambda_memory_mb: int = 2048
    lambda_small: int = 40
    lambda_big: int = 8
    # The models compared side by side (accuracy against latency); each must be built.
    models: tuple[str, ...] = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    # Photos for `imagerec classify FOLDER --jobs N` (benchmarks.bulk): the evaluation
    # photos of 480–880 px, or as many 12 MP JPEGs where those are absent.
    bulk_photos: int = 396
    bulk_rounds: int = 2
    # Batched against single: this many real photos a round, in `classify_many` and one by one.
    batch_images: int = 16
    batch_reps: int = 4

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            rounds=1,
            warm_small=15,
            warm_big=3,
            baseline_small=8,
            baseline_big=2,
            cold_rounds=1,
            http_small=8,
            http_big=2,
            level_seconds=1.5,
            onnx_reps=10,
            lambda_small=15,
            lambda_big=3,
            bulk_photos=120,
            bulk_rounds=1,
            batch_reps=2,
        )

    @classmethod
    def smoke(cls) -> Plan:
        """The least that still runs every step once: proves the pipeline, measures nothing."""
        return cls(
            rounds=1,
            warm_small=2,
            warm_big=1,
            baseline_small=1,
            baseline_big=1,
            cold_rounds=1,
            http_small=2,
            http_big=1,
            levels=(1, 4, 16),
            level_seconds=0.3,
            onnx_reps=2,
            lambda_small=2,
            lambda_big=1,
            bulk_photos=4,
            bulk_rounds=1,
            batch_images=4,
            batch_reps=1,
        )


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
