"""Bulk throughput: `imagerec classify FOLDER --jobs N` on real-size JPEGs, and what it implies
for the cloud batch (Step Functions Distributed Map over Lambda) at a given MaxConcurrency.

Measured here:

* local images/s at ``--jobs 1`` and at the core count, each a fresh ``imagerec classify``
  process over the same folder (wall time from start to exit, model loading included);
* the per-image time at Lambda's thread count (``IMAGEREC_THREADS`` as the settings choose it
  for the function's memory), the mean ``timing_ms.total`` of that run's records.

Derived, not measured: the cloud throughput at ``MaxConcurrency`` batches in flight (each a
Lambda environment classifying one object after another) and the bill per million images from
the stated list prices. The S3 GET of each object is not measured here (no AWS account):
``S3_GET_MS`` is an assumption, stated with the figures.

    .venv/bin/python -m benchmarks.bulk                  # 300 photos, writes bulk.json
    .venv/bin/python -m benchmarks.bulk --photos 60      # a quicker look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.cost import PRICES, lambda_threads
from benchmarks.machine import load_average
from benchmarks.photos import BIG
from benchmarks.plan import PYTHON, ROOT, Json, log
from benchmarks.processes import child_env

RESULTS = ROOT / "benchmarks" / "bulk.json"
DOC = ROOT / "docs" / "bulk.md"
BEGIN, END = "<!-- bulk-figures -->", "<!-- /bulk-figures -->"
MILLION = 1_000_000
# An assumption, not a measurement: time to first byte plus transfer of a ~3.5 MB object from S3
# to Lambda in the same region. It is billed Lambda time, so it is in the per-object cost.
S3_GET_MS = 60.0


@dataclass(frozen=True)
class StepFunctionsPrices:
    """On-demand list prices, us-east-1, checked on ``checked``; free tiers left out."""

    checked: str = "2026-11-25"
    standard_per_transition: float = 0.025 / 1000
    express_per_million_requests: float = 1.00
    express_gb_s: float = 0.00001667  # the first 1,000 GB-hours a month
    express_billed_mb: int = 64  # memory is billed in 64 MB chunks; a one-task child fits one
    express_rounding_ms: int = 100
    source: str = "https://aws.amazon.com/step-functions/pricing/"


SFN_PRICES = StepFunctionsPrices()


@dataclass(frozen=True)
class Cloud:
    """The deployed shape the figures are derived for (template.yaml's parameters)."""

    memory_mb: int = 2048
    batch_size: int = 50
    max_concurrency: tuple[int, ...] = (10, 100, 1000)
    # template.yaml's default; x86_64 is priced too. The time per image is this machine's
    # (x86_64) for both: arm64's cannot be measured here.
    architecture: str = "arm64"


def eval_photos(count: int) -> list[Path]:
    """Up to ``count`` evaluation photos whose longer side is 480–880 px (most of ImageNet's)."""
    from PIL import Image

    from benchmarks.accuracy import eval_dir

    folder = eval_dir()
    if folder is None:
        return []
    chosen = []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as im:
            if 480 <= max(im.size) <= 880:
                chosen.append(path)
        if len(chosen) == count:
            break
    return chosen


def make_folder(directory: Path, count: int) -> tuple[list[Path], str]:
    """``count`` photos in nested folders, and what they are: the evaluation photos of
    480–880 px where they exist, else 12 MP camera-like JPEGs (a few distinct photos, copied:
    the work per file is the same, and making hundreds of noisy 12 MP frames takes minutes)."""
    folder = directory / "photos"
    originals = eval_photos(count)
    kind = "real photos (the evaluation set's, longer side 480–880 px)"
    if not originals:
        from benchmarks.photos import make_photos

        (directory / "originals").mkdir(parents=True)
        originals = make_photos(directory / "originals")["big"]
        kind = f"camera-like {BIG[0]}×{BIG[1]} JPEGs"
    files = []
    for index in range(count):
        path = folder / f"day{index % 7}" / f"IMG_{index:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(originals[index % len(originals)], path)
        files.append(path)
    shutil.rmtree(directory / "originals", ignore_errors=True)
    return files, kind


def run_classify(folder: Path, jobs: int, output: Path, **env: str) -> float:
    """Seconds for one `imagerec classify FOLDER --jobs N --output FILE` process."""
    return run_classify_timed(folder, jobs, output, **env)[0]


def run_classify_timed(folder: Path, jobs: int, output: Path, **env: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, its workers included) of one
    `imagerec classify FOLDER --jobs N --output FILE` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output.unlink(missing_ok=True)
    command = [
        PYTHON,
        "-m",
        "imagerec",
        "classify",
        str(folder),
        "-j",
        str(jobs),
        "-o",
        str(output),
    ]
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=child_env(**env), cwd=ROOT, check=False
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"imagerec classify failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def per_image_ms(output: Path) -> Json:
    totals = [
        json.loads(line)["timing_ms"]["total"]
        for line in output.read_text(encoding="utf-8").splitlines()
    ]
    return {
        "mean": round(statistics.fmean(totals), 2),
        "p50": round(statistics.median(totals), 2),
        "images": len(totals),
    }


def measure(count: int, cores: int | None = None, rounds: int = 1) -> Json:
    """``--jobs 1`` against ``--jobs <cores>``, fresh processes over the same folder, rounds
    interleaved; beside them one process with every core's threads (``IMAGEREC_THREADS``)."""
    cores = cores or max(1, len(os.sched_getaffinity(0)))
    threads = lambda_threads(Cloud().memory_mb)
    results: Json = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "load_average": {"start": load_average()},
        "photos": count,
        "cores": cores,
        "rounds": rounds,
        "local": {},
    }
    variants = {"1": ("1", {}), str(cores): (str(cores), {}),
                "1-all-threads": ("1", {"IMAGEREC_THREADS": str(cores)})}  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="imagerec-bulk-") as scratch:
        files, kind = make_folder(Path(scratch), count)
        results["photo_kind"] = kind
        folder = files[0].parents[1]
        results["photo_bytes"] = round(statistics.fmean(p.stat().st_size for p in files))
        output = Path(scratch) / "records.jsonl"
        for round_no in range(rounds):
            for name, (jobs, env) in variants.items():
                log(f"bulk: {count} photos, {name} job(s), round {round_no + 1}/{rounds}")
                wall, used = run_classify_timed(folder, int(jobs), output, **env)
                seconds[name].append(wall)
                cpu[name].append(used)
        log(f"bulk: per-image time at Lambda's {threads} thread(s), --jobs 1")
        run_classify(folder, 1, output, IMAGEREC_THREADS=str(threads))
        results["lambda_threads"] = threads
        results["per_image_ms"] = per_image_ms(output)
    results["load_average"]["end"] = load_average()
    for name, values in seconds.items():
        best = statistics.median(values)
        results["local"][name] = {
            "seconds": round(best, 2),
            "images_per_s": round(count / best, 2),
            "round_seconds": [round(x, 2) for x in values],
            # The whole run's CPU time: what it costs the machine, however busy it was.
            "cpu_seconds": round(statistics.median(cpu[name]), 2),
        }
    one, many = results["local"]["1"], results["local"][str(cores)]
    results["speedup"] = round(many["images_per_s"] / one["images_per_s"], 2)
    results["speedup_over_one_process"] = round(
        many["images_per_s"] / results["local"]["1-all-threads"]["images_per_s"], 2
    )
    results["cloud"] = derive(results["per_image_ms"]["mean"])
    return results


def derive(per_image: float, cloud: Cloud = Cloud()) -> Json:
    """Cloud throughput and the bill per million images, from the per-image time."""
    per_object_ms = per_image + S3_GET_MS
    batch_ms = cloud.batch_size * per_object_ms
    batches = math.ceil(MILLION / cloud.batch_size)
    gb = cloud.memory_mb / 1024
    lambda_duration = MILLION * per_object_ms / 1000 * gb * PRICES.gb_s(cloud.architecture)
    lambda_requests = batches / MILLION * PRICES.lambda_per_million_requests
    child_ms = math.ceil(batch_ms / SFN_PRICES.express_rounding_ms) * (
        SFN_PRICES.express_rounding_ms
    )
    express_duration = (
        batches * child_ms / 1000 * SFN_PRICES.express_billed_mb / 1024 * SFN_PRICES.express_gb_s
    )
    express_requests = batches / MILLION * SFN_PRICES.express_per_million_requests
    # The parent (Standard) is billed per state transition; counted as one per child started
    # plus the few states around the map, a generous reading of the pricing page.
    transitions = batches + 3
    standard = transitions * SFN_PRICES.standard_per_transition
    total = lambda_duration + lambda_requests + express_duration + express_requests + standard
    other = "x86_64" if cloud.architecture == "arm64" else "arm64"
    other_total = total + lambda_duration * (
        PRICES.gb_s(other) / PRICES.gb_s(cloud.architecture) - 1
    )
    throughput = {
        str(concurrency): round(concurrency * 1000 / per_object_ms, 1)
        for concurrency in cloud.max_concurrency
    }
    return {
        "assumptions": {**asdict(cloud), "s3_get_ms": S3_GET_MS},
        "per_object_ms": round(per_object_ms, 1),
        "images_per_s_at_max_concurrency": throughput,
        "hours_per_million_at_max_concurrency": {
            key: round(MILLION / value / 3600, 2) for key, value in throughput.items()
        },
        "usd_per_million": {
            "lambda_duration": round(lambda_duration, 2),
            "lambda_requests": round(lambda_requests, 2),
            "express_children_requests": round(express_requests, 2),
            "express_children_duration": round(express_duration, 2),
            "standard_transitions": round(standard, 2),
            "total": round(total, 2),
            f"total_on_{other}": round(other_total, 2),
        },
        "prices": {
            "lambda_gb_s": PRICES.gb_s(cloud.architecture),
            "lambda_per_million_requests": PRICES.lambda_per_million_requests,
            **asdict(SFN_PRICES),
            "lambda_source": "https://aws.amazon.com/lambda/pricing/",
        },
    }


def render(results: Json) -> list[str]:
    """The report's bulk section (Markdown lines), when the run has one."""
    bulk = results.get("bulk")
    if not bulk:
        return []
    heading = "## Bulk classification (`imagerec classify FOLDER --jobs N`, cloud batch)"
    return [heading, "", *figures(bulk)]


def figures(bulk: Json) -> list[str]:
    """The measured and derived figures, as Markdown lines."""
    local, cores = bulk["local"], bulk["cores"]
    cloud = bulk["cloud"]
    usd = cloud["usd_per_million"]
    rates = cloud["images_per_s_at_max_concurrency"]
    kind = bulk.get("photo_kind") or (
        f"camera-like {bulk['photo_size'][0]}×{bulk['photo_size'][1]} JPEGs"
    )
    labels = {"1-all-threads": f"1, with {cores} inference threads (`IMAGEREC_THREADS={cores}`)"}
    over_one = bulk.get("speedup_over_one_process")
    return [
        f"{bulk['photos']} {kind} "
        f"(~{bulk['photo_bytes'] / 1e6:.2f} MB each) in nested folders, one fresh process per "
        f"run (model load included), {bulk.get('rounds', 1)} round(s) interleaved, the median "
        f"shown; measured {bulk['started']}, load average "
        f"{bulk['load_average']['start'][0]} at the start and {bulk['load_average']['end'][0]} at "
        f"the end on {cores} cores.",
        "",
        "| --jobs | seconds | images/s | round seconds | CPU seconds |",
        "|---|---|---|---|---|",
        *(
            f"| {labels.get(jobs, jobs)} | {row['seconds']} | {row['images_per_s']} | "
            f"{', '.join(map(str, row.get('round_seconds', [row['seconds']])))} | "
            f"{row.get('cpu_seconds', '–')} |"
            for jobs, row in local.items()
        ),
        "",
        f"Speed-up from 1 to {cores} jobs: **{bulk['speedup']}×**"
        + (
            f"; {cores} one-thread jobs against one process with {cores} threads: {over_one}×"
            if over_one
            else ""
        )
        + ". Per image at Lambda's "
        f"{bulk['lambda_threads']} thread(s) ({cloud['assumptions']['memory_mb']} MB): "
        f"{bulk['per_image_ms']['mean']} ms mean, plus an assumed "
        f"{cloud['assumptions']['s3_get_ms']:.0f} ms S3 GET (not measured here).",
        "",
        "Derived cloud throughput (each of MaxConcurrency batches is one Lambda environment "
        "classifying objects back to back; cold starts and S3 listing left out): "
        + ", ".join(f"{rate} images/s at MaxConcurrency {c}" for c, rate in rates.items())
        + ".",
        "",
        f"Cost per million images (batches of {cloud['assumptions']['batch_size']}, "
        f"{cloud['assumptions']['architecture']}): Lambda duration ${usd['lambda_duration']:.2f}, "
        f"Lambda requests ${usd['lambda_requests']:.2f}, Express child workflows "
        f"${usd['express_children_requests'] + usd['express_children_duration']:.2f}, "
        f"Standard state transitions ${usd['standard_transitions']:.2f}: "
        f"**${usd['total']:.2f}**"
        + "".join(
            f" (${value:.2f} on {key.removeprefix('total_on_')})"
            for key, value in usd.items()
            if key.startswith("total_on_")
        )
        + f" (list prices us-east-1, {cloud['prices']['checked']}: "
        f"{cloud['prices']['lambda_source']}, {cloud['prices']['source']}).",
        "",
    ]


def with_figures(doc: str, bulk: Json) -> str:
    """``doc`` with the text between the figure markers replaced by this run's figures."""
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + "\n".join(figures(bulk)) + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk", description=__doc__)
    parser.add_argument("--photos", type=int, default=396, help="photos in the folder")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    results = measure(args.photos, rounds=args.rounds)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    for line in render({"bulk": results}):
        print(line)
    if args.out == RESULTS:  # the committed run: docs/bulk.md quotes it
        DOC.write_text(with_figures(DOC.read_text(encoding="utf-8"), results), encoding="utf-8")
        log(f"wrote {args.out} and the figures in {DOC}")
    else:
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
