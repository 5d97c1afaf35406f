"""The bulk benchmark's derived figures: cloud throughput and cost per million, from a per-image
time and the stated prices (arithmetic only; the measurement itself is `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks import bulk

pytestmark = pytest.mark.unit


def test_cloud_throughput_grows_with_max_concurrency_and_time_per_object() -> None:
    # Given 100 ms per image plus the assumed S3 GET
    cloud = bulk.derive(100.0, bulk.Cloud(max_concurrency=(10, 100)))
    per_object = 100.0 + bulk.S3_GET_MS
    # Then each batch in flight classifies objects back to back
    rates = cloud["images_per_s_at_max_concurrency"]
    assert rates["10"] == pytest.approx(10 * 1000 / per_object, abs=0.1)
    assert rates["100"] == pytest.approx(10 * rates["10"], abs=1)
    # And a million images take the matching number of hours
    hours = cloud["hours_per_million_at_max_concurrency"]["10"]
    assert hours == pytest.approx(1_000_000 / rates["10"] / 3600, abs=0.01)


def test_cost_per_million_is_the_sum_of_its_stated_parts() -> None:
    # Given a per-image time, 2048 MB and batches of 50
    cloud = bulk.derive(100.0, bulk.Cloud(memory_mb=2048, batch_size=50, architecture="arm64"))
    usd = cloud["usd_per_million"]
    # Then Lambda duration is a million objects' GB-seconds at the list price
    gb_s = 1_000_000 * (100.0 + bulk.S3_GET_MS) / 1000 * 2
    assert usd["lambda_duration"] == pytest.approx(gb_s * cloud["prices"]["lambda_gb_s"], abs=0.01)
    # And there is one Lambda request, one Express child and one transition per batch of 50
    assert usd["lambda_requests"] == pytest.approx(20_000 / 1e6 * 0.20, abs=0.01)
    assert usd["express_children_requests"] == pytest.approx(20_000 / 1e6 * 1.00, abs=0.01)
    assert usd["standard_transitions"] == pytest.approx(20_003 * 0.025 / 1000, abs=0.01)
    parts = sum(value for key, value in usd.items() if not key.startswith("total"))
    assert usd["total"] == pytest.approx(parts, abs=0.02)


def test_bigger_batches_cut_the_per_batch_charges_not_the_duration() -> None:
    small = bulk.derive(100.0, bulk.Cloud(batch_size=10))["usd_per_million"]
    large = bulk.derive(100.0, bulk.Cloud(batch_size=100))["usd_per_million"]
    assert large["lambda_duration"] == small["lambda_duration"]
    assert large["standard_transitions"] < small["standard_transitions"] / 5
    assert large["total"] < small["total"]


def test_the_report_section_is_absent_without_bulk_results() -> None:
    assert bulk.render({}) == []


def test_docs_quote_the_committed_bulk_run() -> None:
    # docs/bulk.md's figures, re-rendered from benchmarks/bulk.json
    import json

    results = json.loads(bulk.RESULTS.read_text(encoding="utf-8"))
    doc = bulk.DOC.read_text(encoding="utf-8")
    assert bulk.with_figures(doc, results) == doc
    assert f"{results['speedup']}×" in doc


def test_the_other_architecture_differs_only_in_the_lambda_duration_price() -> None:
    usd = bulk.derive(100.0, bulk.Cloud(architecture="arm64"))["usd_per_million"]
    ratio = bulk.PRICES.gb_s("x86_64") / bulk.PRICES.gb_s("arm64")
    expected = usd["total"] + usd["lambda_duration"] * (ratio - 1)
    assert usd["total_on_x86_64"] == pytest.approx(expected, abs=0.02)
    assert usd["total_on_x86_64"] > usd["total"]
