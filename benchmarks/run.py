"""``make bench``: imagerec against the usual way, side by side, in one run.

Measures, with several repetitions (fresh processes and servers each round), medians and p95:

* warm ``classify`` latency in-process for a 640×480 and a 12 MP JPEG, with the stage split
  from ``timing_ms``, for each runtime (LiteRT, Keras) and for the baseline
  (``benchmarks/baseline_app.py``: Flask + Keras ``MobileNetV2.predict``);
* the warm Lambda handler at Lambda's thread count (the cost per million images rests on it);
* cold start: a new process until its first answer, in-process, as the Lambda handler and as
  an HTTP server;
* HTTP latency and throughput at 1, 4 and 16 concurrent clients on loopback;
* peak memory (VmHWM) of every process;
* ONNX Runtime against LiteRT, inference only, one engine per process (evaluation);
* EfficientNet-Lite0/1/2 side by side: warm latency against published top-1.
* bulk throughput, ``imagerec classify FOLDER --jobs N``, and the cloud batch it implies
  (``benchmarks.bulk``).

Writes ``benchmarks/results.json``, then renders ``docs/benchmarks.md``, the README's speed
paragraph and ``docs/benchmarks.png`` from it (``benchmarks.report``).

    .venv/bin/python -m benchmarks                 # the full run (~8 minutes on 2 cores)
    .venv/bin/python -m benchmarks --quick         # a shorter run (~2 minutes)
    .venv/bin/python -m benchmarks --smoke --out "$(mktemp -d)"   # proves the pipeline; not figures
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks import bulk, report
from benchmarks.chart import chart
from benchmarks.draft import draft_min_side, draft_study
from benchmarks.machine import load_average, machine
from benchmarks.measure import measure_batch, measure_cold, measure_lambda, measure_warm
from benchmarks.models import measure_models
from benchmarks.onnx_eval import measure_onnx
from benchmarks.photos import batch_photos, describe_photos, make_photos
from benchmarks.plan import CHART, DOC, README, RESULTS, Json, Plan, log
from benchmarks.served import measure_servers
from benchmarks.targets import evaluate


def measure(plan: Plan, *, skip_onnx: bool) -> Json:
    """Every measurement of one run, with what it ran on."""
    began = time.perf_counter()
    results: Json = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "plan": asdict(plan),
        "machine": machine(),
        "draft_min_side": draft_min_side(),
        "load_average": {"start": load_average()},
    }
    log(f"load average {results['load_average']['start']}; generating photos")
    with tempfile.TemporaryDirectory(prefix="imagerec-bench-") as scratch:
        photos = make_photos(Path(scratch))
        results["photos"] = describe_photos(photos)
        results["warm"] = measure_warm(plan, photos)
        results["lambda"] = measure_lambda(plan, photos)
        results["cold"] = measure_cold(plan, photos["small"][0])
        results["servers"] = measure_servers(plan, photos)
        results["onnx"] = {"skipped": "--skip-onnx"} if skip_onnx else measure_onnx(plan, photos)
        results["models"] = measure_models(plan, photos)
        results["batch"] = measure_batch(plan, batch_photos(photos), results["machine"]["cores"])
    results["bulk"] = bulk.measure(plan.bulk_photos, rounds=plan.bulk_rounds)
    results["draft"] = draft_study()
    results["load_average"]["end"] = load_average()
    results["duration_s"] = round(time.perf_counter() - began, 1)
    results["targets"] = evaluate(results)
    return results


def write(
    results: Json, results_path: Path, doc: Path, chart_path: Path, readme: Path, deploy: Path
) -> None:
    """The results file, then everything rendered from it alone."""
    results_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    report.main(
        ["--results", str(results_path), "--doc", str(doc), "--readme", str(readme),
         "--deploy", str(deploy)]
    )  # fmt: skip
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart(results, chart_path)
    log(f"wrote {results_path}, {doc}, {chart_path} and the speed paragraph of {readme}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="imagerec benchmarks (make bench)"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter run")
    size.add_argument("--smoke", action="store_true", help="every step once; not figures")
    parser.add_argument("--skip-onnx", action="store_true", help="leave out ONNX Runtime")
    parser.add_argument(
        "--out", type=Path, help="write everything (and a README copy) here, not in the repo"
    )
    args = parser.parse_args(argv)
    plan = Plan.smoke() if args.smoke else Plan.quick() if args.quick else Plan()
    if args.smoke and not args.out:
        parser.error("--smoke needs --out: its figures must not replace the committed ones")
    results = measure(plan, skip_onnx=args.skip_onnx)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        readme, deploy = args.out / "README.md", args.out / "deploy.md"
        shutil.copyfile(README, readme)
        shutil.copyfile(report.DEPLOY, deploy)
        write(results, args.out / "results.json", args.out / "benchmarks.md",
              args.out / "benchmarks.png", readme, deploy)  # fmt: skip
    else:
        write(results, RESULTS, DOC, CHART, README, report.DEPLOY)
        # This run's bulk figures are also the ones docs/bulk.md quotes.
        bulk.RESULTS.write_text(json.dumps(results["bulk"], indent=1) + "\n", encoding="utf-8")
        bulk.DOC.write_text(
            bulk.with_figures(bulk.DOC.read_text(encoding="utf-8"), results["bulk"]),
            encoding="utf-8",
        )
    for row in results["targets"]:
        verdict = "met" if row["met"] else f"MISSED by {row['missed_by_pct']} %"
        log(f"{row['target']}: {row['measured']} {row['unit']} ({row['goal']}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
