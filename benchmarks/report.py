"""docs/benchmarks.md and the README's speed paragraph, rendered from results.json alone.

python -m benchmarks.report            # rewrite docs/benchmarks.md and the README paragraph
python -m benchmarks.report --check    # exit 1 if either differs from the results
python -m benchmarks.report --results r.json --doc b.md --readme README.copy.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from benchmarks import bulk, draft, findings, report_cost
from benchmarks.cost import lambda_costs
from benchmarks.findings import fmt, span
from benchmarks.plan import CHART, DOC, README, RESULTS, Json

SIZES = (("small", "640×480"), ("big", "12 MP"))
# The README paragraph this module owns: from the line starting with it to the blank line.
README_LEAD = "Speed, "
NBSP = "\u00a0"


def header(results: Json) -> list[str]:
    return [
        "# Benchmarks",
        "",
        "imagerec against the usual way (a Flask app calling Keras `MobileNetV2.predict` per",
        "request), measured side by side in one run by `make bench`:"
        f" {results['plan']['rounds']} rounds",
        "of fresh processes and servers, medians and p95 pooled over the rounds. Rendered by",
        "`python -m benchmarks.report` from `benchmarks/results.json` alone; do not edit by",
        "hand. Differences under 5 % are reported as ties.",
        "",
        "![benchmarks](benchmarks.png)",
        "",
        "## Summary",
        "",
        f"- {findings.served_sentence(results)}",
        f"- {findings.cold_sentence(results['cold'])}",
        *[f"- {line}" for line in report_cost.summary_lines(results)],
        "",
    ]


def targets(results: Json) -> list[str]:
    lines = ["## Targets", "", "| target | goal | measured | |", "|---|---|---|---|"]
    for row in results["targets"]:
        verdict = "met" if row["met"] else f"**missed** by {row['missed_by_pct']:.0f} %"
        lines.append(
            f"| {row['target']} | {row['goal']} {row['unit']} | "
            f"{fmt(row['measured'], 2)} {row['unit']} | {verdict} |"
        )
    why = findings.why_missed(results)
    return [*lines, *(["", *why] if why else []), ""]


def ratios(results: Json) -> list[str]:
    """The issue's ratios, each of two figures measured side by side in this run, with the
    absolute figures and the CPU flags they rest on. Empty for runs that predate them."""
    if "batch" not in results:
        return []
    warm, m = results["warm"], results["machine"]
    ours, base = warm["litert"]["small"], warm["baseline"]["small"]
    stages = ours["stages_p50"]
    flags = ", ".join(flag for flag, present in m["flags"].items() if present) or "none of"
    lines = [
        "## Ratios, side by side in this run",
        "",
        f"On {m['cpu']}, {m['cores']} cores, CPU flags {flags} (of "
        f"{', '.join(m['flags'])}, read from /proc/cpuinfo). Each ratio divides two figures "
        "measured in the same run, the variants interleaved.",
        "",
        "| ratio | measured | the two figures |",
        "|---|---|---|",
        f"| ours against the Keras baseline, warm 640×480 p50 (goal ≥ 10×) | "
        f"{fmt(base['p50'] / ours['p50'], 2)}× | {fmt(ours['p50'], 2)} ms against "
        f"{fmt(base['p50'], 2)} ms |",
    ]
    for threads, row in results["batch"].items():
        if threads == "photos":
            continue
        plural = "s" if threads != "1" else ""
        lines.append(
            f"| batched (`classify_many`, batches of {row['batch_size']}) against one at a time, "
            f"{threads} thread{plural}, images/s | {fmt(row['ratio_p50'], 2)}× | "
            f"{fmt(row['batch_ips']['p50'])} against {fmt(row['single_ips']['p50'])} images/s "
            f"({row['images']} real photos a round) |"
        )
    bulk = results.get("bulk")
    if bulk:
        local = bulk["local"]
        lines.append(
            f"| `classify DIR --jobs {bulk['cores']}` against `--jobs 1` (goal ≥ 1.7×) | "
            f"{fmt(bulk['speedup'], 2)}× | {fmt(local[str(bulk['cores'])]['images_per_s'])} "
            f"against {fmt(local['1']['images_per_s'])} images/s, {bulk['photos']} photos |"
        )
    served = results["servers"]["imagerec-litert"]["small"]
    lines.append(
        f"| served (HTTP on loopback) against in-process, 640×480 p50 (goal ≤ 1.15×) | "
        f"{fmt(served['p50'] / ours['p50'], 2)}× | {fmt(served['p50'], 2)} ms against "
        f"{fmt(ours['p50'], 2)} ms (separate processes, same photos) |"
    )
    handler = results.get("lambda", {}).get("small", {})
    if "inprocess" in handler:
        threads = results["lambda"]["threads"]
        lines.append(
            f"| Lambda handler (event in, response out) against `classify` in the same process, "
            f"640×480 p50, {threads} thread{'s' if threads > 1 else ''} | "
            f"{fmt(handler['p50'] / handler['inprocess']['p50'], 2)}× | "
            f"{fmt(handler['p50'], 2)} ms against {fmt(handler['inprocess']['p50'], 2)} ms |"
        )
    big = warm["litert"]["big"]
    lines += [
        f"| 12 MP against 640×480 JPEG, warm p50 (goal ≤ 2.5×) | "
        f"{fmt(big['p50'] / ours['p50'], 2)}× | {fmt(big['p50'], 2)} ms against "
        f"{fmt(ours['p50'], 2)} ms |",
        "",
        "The per-stage floor of the warm 640×480 photo (stage medians, ms): decode "
        f"{fmt(stages.get('decode'), 2)}, preprocess {fmt(stages.get('preprocess'), 2)}, "
        f"inference {fmt(stages.get('inference'), 2)}. Inference alone, with decoding and "
        "preprocessing free, would be "
        f"{fmt(base['p50'] / stages['inference'], 1)}× the baseline: that is the ceiling of "
        f"fp32 arithmetic on this CPU for this model. The 12 MP photo's decode "
        f"({fmt(big['stages_p50'].get('decode'), 2)} ms) is bounded by the entropy (Huffman) "
        "decoding of its whole file, which no DCT scale skips" + floor_of_decode(results) + ".",
        "",
    ]
    return lines


def draft_section(results: Json) -> list[str]:
    lines = draft.render(results.get("draft"))
    if lines and "draft_min_side" in results:
        lines += [
            f"This run's classifier keeps a shorter side of {results['draft_min_side']} px: "
            "the full decode is the least faithful to the photo as taken (TF1's bicubic resize "
            "does not antialias, so 3000 px to 224 in one step aliases), 256 px flips a "
            "512 px reference photo (`tests/unit/test_classifier.py`), and 512 px keeps most "
            "of the gain.",
            "",
        ]
    return lines


def floor_of_decode(results: Json) -> str:
    """The draft study's decode times, full and at the smallest scale, as a clause."""
    candidates = (results.get("draft") or {}).get("candidates", {})
    full, smallest = candidates.get("full"), candidates.get("1x")
    if not full or not smallest:
        return ""
    height, width = smallest["decoded_shape_first_photo"]
    return (
        f": in the draft study below, decoding at {width}×{height} (1/8) still takes "
        f"{fmt(smallest['decode_cpu_ms_p50'])} ms of CPU, the full decode "
        f"{fmt(full['decode_cpu_ms_p50'])} ms"
    )


def warm(results: Json) -> list[str]:
    lines = [
        "## Warm latency, in-process (ms)",
        "",
        "`classify(bytes)` after warm-up, with the threads imagerec chooses on this machine",
        f"({results['machine']['cores']}); stage medians from `timing_ms`. The baseline is the",
        "same decode → resize → `preprocess_input` → `model.predict` its Flask route runs.",
        "",
        "| variant | photo | p50 | p95 | min | decode | preprocess | inference | round p50s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"litert": "imagerec LiteRT", "keras": "imagerec Keras",
              "baseline": "baseline (MobileNetV2.predict)"}  # fmt: skip
    for key, label in labels.items():
        for size, name in SIZES:
            row = results["warm"][key][size]
            st = row["stages_p50"]
            rounds = ", ".join(fmt(x) for x in row["round_p50"])
            lines.append(
                f"| {label} | {name} | {fmt(row['p50'])} | {fmt(row['p95'])} | "
                f"{fmt(row['min'])} | {fmt(st.get('decode'))} | {fmt(st.get('preprocess'))} | "
                f"{fmt(st.get('inference'))} | {rounds} |"
            )
    return [*lines, "", findings.warm_sentence(results["warm"]), ""]


def cold(results: Json) -> list[str]:
    cold, servers = results["cold"], results["servers"]
    lines = [
        "## Cold start (s)",
        "",
        "A new process until its first answer. *In-process*: `python -c` that imports",
        "imagerec, loads the classifier and classifies one photo (the baseline: imports Keras,",
        "builds MobileNetV2, predicts once). *Handler*: imports `functions/classify/app.py`",
        "(the Lambda init phase: settings, load, warm-up) and invokes its handler with an API",
        "Gateway event. *Server*: spawn until the first HTTP 200.",
        "",
        "| variant | in-process p50 | p95 | handler p50 | server p50 | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for key, server, handler, label in (
        ("litert", "imagerec-litert", "handler-litert", "imagerec LiteRT"),
        ("keras", "imagerec-keras", "handler-keras", "imagerec Keras"),
        ("baseline", "baseline", None, "baseline"),
    ):
        handler_p50 = cold[handler]["p50"] if handler else None
        lines.append(
            f"| {label} | {fmt(cold[key]['p50'], 2)} | {fmt(cold[key]['p95'], 2)} | "
            f"{fmt(handler_p50, 2)} | {fmt(servers[server]['cold_start_s']['p50'], 2)} | "
            f"{fmt(cold[key]['peak_rss_mb'])} |"
        )
    return [*lines, ""]


def http(results: Json) -> list[str]:
    servers, machine = results["servers"], results["machine"]
    lines = [
        "## HTTP on loopback (the served path)",
        "",
        "imagerec: `imagerec serve` (the Lambda handler behind `ThreadingHTTPServer`, one",
        "invocation at a time per process); raw JPEG bodies POSTed to `/api/classify`.",
        f"Baseline: `benchmarks/baseline_app.py` on {machine['baseline_server']}. Keep-alive",
        f"connections, {results['plan']['level_seconds']:g} s per level per round.",
        "",
        "| server | 1 client | 4 clients | 16 clients | p50 / p95 at 4 (ms) | "
        "640×480 p50 (ms) | 12 MP p50 (ms) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, server in servers.items():
        lv = server["levels"]
        lines.append(
            f"| {name} | {fmt(lv['1']['images_per_s'])} | {fmt(lv['4']['images_per_s'])} | "
            f"{fmt(lv['16']['images_per_s'])} | {fmt(lv['4']['latency_p50_ms'])} / "
            f"{fmt(lv['4']['latency_p95_ms'])} | {fmt(server['small']['p50'])} | "
            f"{fmt(server['big']['p50'])} | {fmt(server['peak_rss_mb'])} |"
        )
    lines += [
        "",
        "Throughput is images/s (median of the rounds). `imagerec-litert-2w` is",
        "`imagerec serve --workers 2`: pre-forked processes sharing one socket; its RSS is",
        "summed over the parent and the workers. The served path against the in-process",
        "figures and the baseline is in the summary at the top.",
    ]
    workers = findings.workers_sentence(servers, machine["cores"])
    if workers:
        lines += ["", workers]
    stages = servers["imagerec-litert"]["small"]["stages_p50"]
    if stages:
        text = ", ".join(f"{k} {fmt(v, 2)}" for k, v in stages.items())
        lines += ["", f"Server-side stages for a 640×480 photo with LiteRT (ms, p50): {text}."]
    return [*lines, ""]


def onnx(results: Json) -> list[str]:
    onnx = results.get("onnx", {})
    lines = ["## ONNX Runtime (evaluation)", ""]
    if "threads" not in onnx:
        return [*lines, f"Skipped: {onnx.get('skipped', 'not measured')}.", ""]
    lines += [
        "The same model exported from the `.tflite` with tf2onnx, inference only on the",
        "same preprocessed photos; each engine in its own process (two engines' thread",
        "pools in one process spin against each other), alternating, every round (ms):",
        "",
        "| threads | ONNX Runtime p50 | p95 | LiteRT p50 | p95 | max Δp | same top-5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for threads, row in onnx["threads"].items():
        lines.append(
            f"| {threads} | {fmt(row['onnxruntime']['p50'], 2)} | "
            f"{fmt(row['onnxruntime']['p95'], 2)} | {fmt(row['litert']['p50'], 2)} | "
            f"{fmt(row['litert']['p95'], 2)} | {row['max_abs_diff_vs_litert']:.1e} | "
            f"{row['top5_equal']} |"
        )
    return [*lines, "", findings.onnx_sentence(onnx), ""]


def models(results: Json) -> list[str]:
    """EfficientNet-Lite0/1/2: accuracy against latency. Absent from runs made before the
    larger models existed, so those runs' documents stay as they were."""
    if "models" not in results:
        return []
    lines = [
        "## Models: accuracy against latency",
        "",
        "Each EfficientNet-Lite, served by LiteRT in-process as above (`classify(bytes)`,",
        "same photos, rounds interleaved across models). Top-1 is the published ImageNet",
        "figure; the last column is LiteRT inference alone on one thread, in CPU time, measured",
        "when the model was built (what `imagerec models` shows).",
        "",
        "| model | input | top-1 | 640×480 p50 | p95 | inference p50 | 12 MP p50 | at build |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["models"].items():
        if "warm" not in row:
            lines.append(f"| `{name}` | | | {row.get('skipped', 'not measured')} | | | | |")
            continue
        small, big = row["warm"]["small"], row["warm"]["big"]
        built = row.get("build_latency") or {}
        top1 = f"{row['top1_accuracy']:.1f} %" if row.get("top1_accuracy") else "–"
        lines.append(
            f"| `{name}` | {row['input_size']} px | {top1} | {fmt(small['p50'])} | "
            f"{fmt(small['p95'])} | {fmt(small['stages_p50'].get('inference'))} | "
            f"{fmt(big['p50'])} | {fmt(built.get('p50_ms'))} |"
        )
    sentence = findings.models_sentence(results["models"])
    return [*lines, *(["", sentence] if sentence else []), ""]


def machine(results: Json) -> list[str]:
    m = results["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    pkgs = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    photos = results["photos"]
    sizes = ", ".join(f"{p['name']} {p['bytes'] / 1e6:.2f} MB" for p in photos["big"])
    small_sizes = ", ".join(f"{p['bytes'] / 1e3:.0f} KB" for p in photos["small"])
    arch = f" ({m['arch']})" if "arch" in m else ""
    return [
        "## Machine",
        "",
        f"- CPU: {m['cpu']}{arch}, {m['cores']} cores; {flags}",
        f"- memory: {m['memory']}; Linux {m['kernel']}; Python {m['python']}",
        f"- packages: {pkgs}",
        f"- {findings.load_sentence(results)}",
        f"- run at {results['started']} in {results['duration_s']:.0f} s",
        "",
        "## Photos",
        "",
        "scikit-image's `astronaut`, `coffee` and `chelsea` upscaled with LANCZOS plus",
        f"sensor-like grain, saved as JPEG q=90: 640×480 ({small_sizes}); 12 MP ({sizes}).",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                  # full run, ~8 min on 2 cores",
        ".venv/bin/python -m benchmarks --quick      # a shorter run",
        '.venv/bin/python -m benchmarks --smoke --out "$(mktemp -d)" # each step once, no figures',
        ".venv/bin/python -m benchmarks.report       # re-render the docs from results.json",
        ".venv/bin/python -m benchmarks.report --check   # are the docs those of results.json?",
        "```",
        "",
        "Stop other CPU-heavy work first; the run needs the built default model",
        "(`make setup`) and, for the ONNX Runtime rows, `onnxruntime` and `tf2onnx`.",
        "",
    ]


def render(results: Json) -> str:
    sections = [
        header(results),
        targets(results),
        ratios(results),
        warm(results),
        report_cost.lambda_section(results),
        report_cost.cost_section(results),
        bulk.render(results),
        draft_section(results),
        cold(results),
        http(results),
        onnx(results),
        models(results),
        machine(results),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def readme_speed(results: Json) -> str:
    """The README's speed paragraph: the served path's figures with their range over rounds,
    then the cost line."""
    m, servers = results["machine"], results["servers"]
    served, base = servers["imagerec-litert"], servers["baseline"]
    small, big = served["small"], served["big"]
    four = served["levels"]["4"]
    avx = "with" if m["flags"].get("avx512f") else "without"
    workers = servers.get("imagerec-litert-2w", {}).get("levels", {}).get("4")
    more = f" and {fmt(workers['images_per_s'], 0)} with `--workers 2`" if workers else ""
    text = (
        f"{README_LEAD}on a {m['cores']}-core machine {avx} AVX-512 (`make bench`, "
        "[docs/benchmarks.md](docs/benchmarks.md)), through `imagerec serve` over HTTP: a warm "
        f"640×480 photo in {fmt(small['p50'], 0)} ms p50 ({span(small['round_p50'], 0)} across "
        f"{len(small['round_p50'])} rounds), a 12 MP photo in {fmt(big['p50'], 0)} ms "
        f"({span(big['round_p50'], 0)}); {fmt(four['images_per_s'], 0)} images/s from one "
        f"process at 4 clients ({span(four['round_images_per_s'], 0)} across rounds){more}; "
        f"{fmt(served['cold_start_s']['p50'], 2)} s from starting the server to its first answer. "
        "The usual Flask + Keras `model.predict` service, measured side by side, takes "
        f"{fmt(base['small']['p50'], 0)} ms and serves "
        f"{fmt(base['levels']['4']['images_per_s'], 0)} images/s."
    )
    ratios = readme_ratios(results)
    if ratios:
        text = f"{text} {ratios}"
    cost = report_cost.readme_line(results)
    return f"{text} {cost}" if cost else text


def readme_ratios(results: Json) -> str:
    """The side-by-side ratios in one sentence, for runs that have them."""
    if "batch" not in results:
        return ""
    warm = results["warm"]
    small, big = warm["litert"]["small"]["p50"], warm["litert"]["big"]["p50"]
    cores = str(results["machine"]["cores"])
    batch = results["batch"].get(cores) or results["batch"]["1"]
    parts = [
        f"{fmt(warm['baseline']['small']['p50'] / small, 1)}× the Keras baseline in-process",
        f"batches {fmt(batch['ratio_p50'], 2)}× the images/s of one at a time",
    ]
    if results.get("bulk"):
        parts.append(f"`--jobs {cores}` {fmt(results['bulk']['speedup'], 2)}× `--jobs 1`")
    served = results["servers"]["imagerec-litert"]["small"]["p50"]
    parts += [
        f"served over HTTP {fmt(served / small, 2)}× the in-process time",
        f"a 12 MP photo {fmt(big / small, 2)}× a 640×480 one",
    ]
    return f"Side by side in the same run: {', '.join(parts)}."


def replace_paragraph(readme: str, paragraph: str) -> str:
    """``readme`` with the paragraph that starts with README_LEAD replaced."""
    pattern = re.compile(rf"^{re.escape(README_LEAD)}.*?(?=\n\s*\n)", re.MULTILINE | re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"no paragraph starting with {README_LEAD!r} in the README")
    # Keep code spans and "12 MP" on one line: join their spaces before wrapping.
    glued = re.sub(r"`[^`]*`|\d+ MP|\d+ MB", lambda m: m.group(0).replace(" ", NBSP), paragraph)
    wrapped = textwrap.fill(glued, width=100, break_long_words=False, break_on_hyphens=False)
    return pattern.sub(lambda _: wrapped.replace(NBSP, " "), readme, count=1)


DEPLOY = DOC.parent / "deploy.md"
PROVISIONED_GB_S_X86 = 0.0000097222  # docs/deploy.md's provisioned-concurrency duration rate


def deploy_examples(results: Json) -> dict[str, str]:
    """docs/deploy.md's two worked examples, from the handler's measured billed duration."""
    costs = lambda_costs(results)
    if "small" not in costs:
        return {}
    small = costs["small"]
    ms, memory = small["billed_ms"], small["basis"]["memory_mb"]
    how = (
        "the warm Lambda handler's billed mean for a 640×480 photo, measured by `make bench`"
        if small["basis"]["kind"] == "measured"
        else "composed by `make bench` from the stages of a 640×480 photo"
    )
    duration = 100_000 * ms / 1000 * memory / 1024 * PROVISIONED_GB_S_X86
    per_second = 25 * 1000 / ms
    more = "more" if per_second > 100 else "fewer"
    return {
        "cost-example": (
            f"For example, 100,000 classifications of {fmt(ms)} ms each in a month ({how} at "
            f"{memory} MB, [docs/benchmarks.md](benchmarks.md)) add "
            f"`100,000 × {ms / 1000:.4f} s × {memory / 1024:g} GB × ${PROVISIONED_GB_S_X86:.10f} ≈ "
            f"${duration:.2f}` in duration and `$0.02` in requests to the standing $21.90."
        ),
        "ceiling-example": (
            f"At about {fmt(ms)} ms per photo (the same figure), 25 environments serve "
            f"about {per_second:,.0f} photos a second, {more} than `prod`'s throttle of 100 "
            "requests a second lets in."
        ),
    }


def replace_marked(doc: str, examples: dict[str, str]) -> str:
    """``doc`` with the text between each ``<!-- name -->`` and ``<!-- /name -->`` replaced."""
    for name, text in examples.items():
        begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        start, stop = doc.index(begin) + len(begin), doc.index(end)
        glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", NBSP), text)
        wrapped = textwrap.fill(glued, width=96, break_long_words=False, break_on_hyphens=False)
        doc = doc[:start] + "\n" + wrapped.replace(NBSP, " ") + "\n" + doc[stop:]
    return doc


def squash(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="render the benchmark docs from results.json")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--deploy", type=Path, default=DEPLOY)
    parser.add_argument("--chart", type=Path, help=f"also redraw the chart (e.g. {CHART})")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    doc = render(results)
    readme = replace_paragraph(args.readme.read_text(encoding="utf-8"), readme_speed(results))
    outputs = [(args.doc, doc), (args.readme, readme)]
    if args.deploy.is_file():
        deploy = replace_marked(args.deploy.read_text(encoding="utf-8"), deploy_examples(results))
        outputs.append((args.deploy, deploy))
    if args.check:
        stale = [
            str(path)
            for path, wanted in outputs
            if not path.is_file() or squash(path.read_text(encoding="utf-8")) != squash(wanted)
        ]
        for path in stale:
            print(f"{path} is not what {args.results} renders", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs:
        path.write_text(text, encoding="utf-8")
    if args.chart:
        from benchmarks.chart import chart

        chart(results, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
