"""The benchmark report: rendered from results alone, every comparison following the data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cost, report
from benchmarks.plan import README, RESULTS
from benchmarks.targets import evaluate

pytestmark = pytest.mark.unit

Json = dict[str, Any]


def timing(p50: float, stages: Json | None = None) -> Json:
    return {
        "n": 3,
        "p50": p50,
        "p95": p50 * 1.2,
        "mean": p50,
        "min": p50 * 0.8,
        "round_p50": [p50 * 0.9, p50, p50 * 1.1],
        "stages_p50": stages or {},
    }


def server(small: float, big: float, ips: float) -> Json:
    level = {
        "images_per_s": ips,
        "round_images_per_s": [ips * 0.95, ips, ips * 1.05],
        "latency_p50_ms": small * 2,
        "latency_p95_ms": small * 3,
        "failed": 0,
    }
    return {
        "cold_start_s": {"n": 3, "p50": 0.7},
        "small": timing(small, {"decode": 2.0, "preprocess": 2.0, "inference": 10.0}),
        "big": timing(big),
        "levels": {"1": level, "4": level, "16": level},
        "peak_rss_mb": 300.0,
    }


def engines(onnxruntime: float, litert: float) -> Json:
    return {
        "onnxruntime": {"p50": onnxruntime, "p95": onnxruntime * 1.1},
        "litert": {"p50": litert, "p95": litert * 1.1},
        "max_abs_diff_vs_litert": 1e-6,
        "top5_equal": True,
    }


def synthetic() -> Json:
    """A small, complete results file with round numbers."""
    stages = {"decode": 4.0, "preprocess": 3.0, "inference": 9.0}
    cold = {"p50": 1.0, "p95": 1.2, "peak_rss_mb": 100.0}
    results: Json = {
        "started": "2026-01-01 00:00:00 +0000",
        "duration_s": 100.0,
        "plan": {"rounds": 3, "level_seconds": 2.5, "lambda_memory_mb": 2048},
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "flags": {"avx2": True, "avx512f": False},
            "memory": "8 GB",
            "kernel": "6.0",
            "python": "3.13.0",
            "versions": {"numpy": "2.0"},
            "baseline_server": "waitress",
        },
        "load_average": {"start": [0.1, 0.1, 0.1], "end": [1.0, 0.5, 0.2]},
        "photos": {
            "small": [{"name": "a-640x480.jpg", "bytes": 100_000}],
            "big": [{"name": "a-4000x3000.jpg", "bytes": 3_500_000}],
        },
        "warm": {
            "litert": {
                **{s: timing(16.0 if s == "small" else 110.0, stages) for s in SIZES},
                "peak_rss_mb": 150.0,
            },
            "keras": {
                **{s: timing(36.0 if s == "small" else 115.0, stages) for s in SIZES},
                "peak_rss_mb": 600.0,
            },
            "baseline": {
                **{s: timing(128.0 if s == "small" else 400.0) for s in SIZES},
                "peak_rss_mb": 700.0,
            },
        },
        "cold": {
            name: dict(cold)
            for name in (
                "litert",
                "keras",
                "baseline",
                "handler-litert",
                "handler-keras",
                "import-tensorflow",
            )
        },
        "servers": {
            "imagerec-litert": server(20.0, 128.0, 50.0),
            "imagerec-litert-2w": server(24.0, 115.0, 70.0),
            "imagerec-keras": server(40.0, 180.0, 24.0),
            "baseline": server(130.0, 350.0, 13.0),
        },
        "onnx": {"threads": {"1": engines(14.0, 14.0), "2": engines(8.0, 10.0)}},
    }
    results["targets"] = evaluate(results)
    return results


SIZES = ("small", "big")


def test_a_comparison_flips_when_the_data_flips() -> None:
    # Given ONNX Runtime quicker than LiteRT at 2 threads
    results = synthetic()
    # When the report is rendered, then it says so, with the figures
    assert "at 2 threads ONNX Runtime takes 20 % less time than LiteRT (8.00 vs 10.00" in (
        report.render(results)
    )
    # Given the same run with the two engines' figures swapped
    flipped = copy.deepcopy(results)
    flipped["onnx"]["threads"]["2"] = engines(10.0, 8.0)
    text = report.render(flipped)
    # Then the sentence turns round, and the old claim is gone
    assert "at 2 threads ONNX Runtime takes 25 % more time than LiteRT (10.00 vs 8.00" in text
    assert "less time than LiteRT (10.00" not in text


def test_close_figures_are_reported_as_a_tie() -> None:
    text = report.render(synthetic())
    assert "At 1 thread ONNX Runtime is within 5 % of LiteRT (14.00 vs 14.00 ms p50)" in text


def test_served_path_is_compared_with_in_process_both_ways() -> None:
    results = synthetic()
    assert "4.0 ms more than in-process (16.0 ms)" in report.render(results)
    results["servers"]["imagerec-litert"]["small"]["p50"] = 12.0
    assert "4.0 ms less than in-process (16.0 ms)" in report.render(results)


def test_machine_load_decides_what_the_report_says_about_it() -> None:
    results = synthetic()
    assert "the machine was otherwise quiet" in report.render(results)
    results["load_average"]["start"] = [1.5, 1.0, 1.0]
    text = report.render(results)
    assert "other work shared the CPU" in text
    assert "otherwise quiet" not in text


def test_cost_per_million_from_duration_memory_and_list_prices() -> None:
    # 21 ms at 2048 MB: 1e6 × 0.021 s × 2 GB = 42,000 GB-s
    x86 = cost.per_million(21, 2048, 100_000, "x86_64")
    arm = cost.per_million(21, 2048, 100_000, "arm64")
    assert x86["gb_s"] == arm["gb_s"] == 42_000
    assert x86["duration_usd"] == pytest.approx(0.70, abs=0.005)
    assert arm["duration_usd"] == pytest.approx(0.56, abs=0.005)
    # Lambda requests $0.20 and HTTP API requests $1.00 per million on both
    assert x86["total_usd"] == pytest.approx(1.90, abs=0.01)
    assert arm["total_usd"] == pytest.approx(1.76, abs=0.01)
    assert cost.rekognition_per_million() == 1000


def test_http_api_meters_large_uploads_as_several_requests() -> None:
    assert cost.http_api_requests(100_000) == 1
    assert cost.http_api_requests(512 * 1024) == 1
    assert cost.http_api_requests(3_500_000) == 7


@pytest.mark.parametrize(("memory", "threads"), [(2048, 1), (3538, 2), (10240, 5), (512, 1)])
def test_lambda_thread_count_follows_memory(memory: int, threads: int) -> None:
    assert cost.lambda_threads(memory) == threads


def test_cost_rests_on_the_measured_handler_when_the_run_has_it() -> None:
    results = synthetic()
    # Without a handler timing, the duration is composed: 4 + 3 ms + 14 ms at 1 thread
    composed = cost.lambda_costs(results)["small"]
    assert composed["basis"]["kind"] == "composed"
    assert composed["billed_ms"] == 21
    results["lambda"] = {
        "memory_mb": 2048,
        "threads": 1,
        "small": {**timing(30.0), "billed_ms_mean": 30.5},
        "big": {**timing(130.0), "billed_ms_mean": 130.4},
    }
    measured = cost.lambda_costs(results)["small"]
    assert (measured["basis"]["kind"], measured["billed_ms"]) == ("measured", 30.5)
    text = report.render(results)
    assert "| 640×480 | 30.0 |" in text  # the handler table
    assert "billed mean 30.5 ms for 640×480" in text


def test_readme_paragraph_is_replaced_in_place() -> None:
    readme = "# x\n\nSpeed, old figures\nover two lines.\n\n## Next\n"
    new = report.replace_paragraph(readme, report.readme_speed(synthetic()))
    assert new.startswith("# x\n\nSpeed, on a 2-core machine without AVX-512")
    assert "old figures" not in new
    assert new.endswith("\n\n## Next\n")


def test_committed_docs_are_those_of_the_committed_results() -> None:
    # The README's speed paragraph and docs/benchmarks.md, re-rendered from results.json
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    readme = README.read_text(encoding="utf-8")
    assert report.squash(report.readme_speed(results)) in report.squash(readme)
    doc = Path(report.DOC).read_text(encoding="utf-8")
    assert report.squash(report.render(results)) == report.squash(doc)


def test_a_function_with_less_than_a_vcpu_is_said_to_run_slower() -> None:
    results = synthetic()
    assert "of a vCPU" not in report.render(results)
    results["plan"]["lambda_memory_mb"] = 1024
    assert "the function gets 58% of a vCPU" in report.render(results)


def lite(top1: float, small: float, big: float, built_ms: float) -> Json:
    stages = {"decode": 4.0, "preprocess": 3.0, "inference": small - 7.0}
    return {
        "input_size": 224,
        "top1_accuracy": top1,
        "build_latency": {"p50_ms": built_ms},
        "warm": {"small": timing(small, stages), "big": timing(big), "peak_rss_mb": 150.0},
    }


def test_the_models_section_weighs_accuracy_against_latency() -> None:
    # Given a run that measured Lite0 and Lite2 and found Lite1 not built
    results = synthetic()
    results["models"] = {
        "efficientnet_lite0": lite(75.1, 16.0, 110.0, 12.5),
        "efficientnet_lite1": {"skipped": "not built: `imagerec build-model efficientnet_lite1`"},
        "efficientnet_lite2": lite(77.6, 32.0, 130.0, 27.0),
    }
    # When the report is rendered
    text = report.render(results)
    # Then each measured model has its row, the unbuilt one says how to build it
    assert "| `efficientnet_lite2` | 224 px | 77.6 % | 32.0 | 38.4 | 25.0 | 130.0 | 27.0 |" in text
    assert "| `efficientnet_lite1` | | | not built: `imagerec build-model" in text
    # And the finding follows the figures
    assert "`efficientnet_lite2` gains 2.5 points of top-1 and takes 100 % more time than" in text
    results["models"]["efficientnet_lite2"] = lite(77.6, 16.4, 110.0, 27.0)
    assert "`efficientnet_lite2` gains 2.5 points of top-1 and is within 5 % of" in (
        report.render(results)
    )


def test_a_run_without_the_models_section_renders_as_before() -> None:
    assert "## Models" not in report.render(synthetic())
