"""Every sentence of the report that states a finding, derived from a run's results.

Nothing here is a constant claim: each comparison is computed, and its wording follows the
numbers (a tie, more or less), so a sentence changes when the data does.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.plan import Json

# Differences smaller than this are called a tie: on a shared machine one variant's rounds
# differ from each other by more than that.
TIE = 0.05
# EfficientNet-Lite0 at 224×224: 0.39 G multiply-adds, ~0.8 GFLOP per image.
MODEL_GFLOP = 0.8
# A 1-minute load average at or above this before the run means other work was running.
BUSY_LOAD = 0.5


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def time_relation(a: float, b: float) -> str:
    """How a time ``a`` compares with a time ``b``, as a predicate: 'takes 9 % less time
    than', 'takes 12 % more time than' or 'is within 5 % of'."""
    change = a / b - 1
    if abs(change) < TIE:
        return f"is within {TIE * 100:.0f} % of"
    return f"takes {abs(change) * 100:.0f} % {'less' if change < 0 else 'more'} time than"


def rate_relation(a: float, b: float) -> str:
    """How a rate ``a`` compares with a rate ``b``: '39 % more than', 'within 5 % of'…"""
    change = a / b - 1
    if abs(change) < TIE:
        return f"within {TIE * 100:.0f} % of"
    return f"{abs(change) * 100:.0f} % {'more' if change > 0 else 'less'} than"


def speed_ratio(a: float, b: float) -> str:
    """A time ``a`` against a time ``b`` as a ratio: 'is 6.4× as fast as' or 'takes 1.3× as
    long as'."""
    ratio = b / a
    return f"is {ratio:.1f}× as fast as" if ratio >= 1 else f"takes {1 / ratio:.1f}× as long as"


def span(values: list[float], digits: int = 1) -> str:
    """The range of per-round figures: '15.2–21.7', or one figure for a single round."""
    low, high = min(values), max(values)
    return fmt(low, digits) if low == high else f"{fmt(low, digits)}–{fmt(high, digits)}"


def onnx_clauses(onnx: Json) -> list[str]:
    """ONNX Runtime against LiteRT at each thread count, inference only."""
    clauses = []
    for threads, row in onnx.get("threads", {}).items():
        ort, litert = row["onnxruntime"]["p50"], row["litert"]["p50"]
        plural = "" if threads == "1" else "s"
        clauses.append(
            f"at {threads} thread{plural} ONNX Runtime {time_relation(ort, litert)} LiteRT "
            f"({fmt(ort, 2)} vs {fmt(litert, 2)} ms p50)"
        )
    return clauses


def onnx_sentence(onnx: Json) -> str:
    clauses = onnx_clauses(onnx)
    if not clauses:
        return ""
    text = "; ".join(clauses)
    return f"{text[0].upper()}{text[1:]}."


def warm_sentence(warm: Json) -> str:
    litert, baseline = warm["litert"], warm["baseline"]
    return (
        f"In-process, LiteRT {speed_ratio(litert['small']['p50'], baseline['small']['p50'])} "
        "the baseline on 640×480 photos (p50); on 12 MP photos it "
        f"{speed_ratio(litert['big']['p50'], baseline['big']['p50'])} the baseline."
    )


def served_sentence(results: Json) -> str:
    """The served path against the in-process figures and the baseline's server."""
    warm, servers = results["warm"]["litert"], results["servers"]
    served, base = servers["imagerec-litert"], servers["baseline"]
    lines = []
    for size, name in (("small", "640×480"), ("big", "12 MP")):
        extra = served[size]["p50"] - warm[size]["p50"]
        lines.append(
            f"a {name} photo takes {fmt(served[size]['p50'])} ms p50 (round p50s "
            f"{span(served[size]['round_p50'])}), {fmt(abs(extra))} ms "
            f"{'more' if extra >= 0 else 'less'} than in-process ({fmt(warm[size]['p50'])} ms)"
        )
    four, base_four = served["levels"]["4"]["images_per_s"], base["levels"]["4"]["images_per_s"]
    return (
        f"Through `imagerec serve` (LiteRT, one process), {lines[0]}, and {lines[1]}. "
        f"Over HTTP it {speed_ratio(served['small']['p50'], base['small']['p50'])} the "
        f"baseline's server on 640×480 photos and serves {fmt(four)} images/s at 4 clients "
        f"against the baseline's {fmt(base_four)}."
    )


def workers_sentence(servers: Json, cores: int) -> str:
    one, two = servers.get("imagerec-litert"), servers.get("imagerec-litert-2w")
    if not (one and two):
        return ""
    clauses = []
    for clients in ("1", "4"):
        a, b = two["levels"][clients]["images_per_s"], one["levels"][clients]["images_per_s"]
        plural = "" if clients == "1" else "s"
        clauses.append(
            f"{fmt(a)} images/s at {clients} client{plural}, {rate_relation(a, b)} one "
            f"process ({fmt(b)})"
        )
    threads = max(1, cores // 2)
    return (
        f"With `--workers 2` (each worker {threads} inference thread{'s' if threads > 1 else ''} "
        f"on this {cores}-core machine), the server handles {clauses[0]}, and "
        f"{clauses[1]}."
    )


def cold_sentence(cold: Json) -> str:
    litert, baseline = cold["litert"]["p50"], cold["baseline"]["p50"]
    return (
        f"A new LiteRT process answers its first photo in {fmt(litert, 2)} s: it "
        f"{speed_ratio(litert, baseline)} the baseline "
        f"({fmt(baseline, 2)} s)."
    )


def load_sentence(results: Json) -> str:
    start, end = results["load_average"]["start"], results["load_average"].get("end", [])
    cores = results["machine"]["cores"]
    figures = f"1-minute load average {fmt(start[0], 2)} before the run"
    if end:
        figures += f", {fmt(end[0], 2)} after it"
    if start[0] >= BUSY_LOAD:
        return (
            f"{figures}, on {cores} cores: other work shared the CPU, so the figures are "
            "pessimistic; the `min` columns show what a quiet moment gives."
        )
    return f"{figures}, on {cores} cores: the machine was otherwise quiet."


def why_missed(results: Json) -> list[str]:
    """One data-backed line per missed target, from the figures of this very run."""
    warm, servers, cold = results["warm"], results["servers"], results["cold"]
    machine = results["machine"]
    onnx = results.get("onnx", {}).get("threads", {})
    missed = {row.get("key") for row in results["targets"] if not row["met"]}
    goals = {row.get("key"): row for row in results["targets"]}
    small = warm["litert"]["small"]
    st = small["stages_p50"]
    cores = machine["cores"]
    avx512 = machine["flags"].get("avx512f", False)
    floor = onnx.get(str(cores), {}).get("litert", {}).get("p50")
    one_core = onnx.get("1", {}).get("litert", {}).get("p50")
    notes: list[str] = []
    if missed & {"warm_small_p50_ms", "speedup_vs_baseline"} and floor:
        budget = float(goals["warm_small_p50_ms"]["goal"].split()[-1])
        rest = (st.get("decode") or 0.0) + (st.get("preprocess") or 0.0)
        if floor >= budget:
            room = f"inference alone exceeds the {fmt(budget, 0)} ms target"
        else:
            room = (
                f"that leaves {fmt(budget - floor, 2)} ms of the {fmt(budget, 0)} ms target for "
                f"decoding and preprocessing, which take {fmt(rest)} ms here"
            )
        ort = [c for c in onnx_clauses(results["onnx"]) if c.startswith(f"at {cores} thread")]
        engine = f" For comparison, {ort[0]}." if ort else ""
        notes.append(
            f"- **640×480 latency / speed-up:** of the {fmt(small['p50'])} ms p50, inference is "
            f"{fmt(st.get('inference'))} ms, decode {fmt(st.get('decode'))} and preprocessing "
            f"{fmt(st.get('preprocess'))}. Inference alone on {cores} threads takes "
            f"{fmt(floor, 2)} ms p50 (ONNX section), {MODEL_GFLOP / floor * 1000:.0f} GFLOP/s "
            f"for a ~{MODEL_GFLOP} GFLOP model on a CPU "
            f"{'with' if avx512 else 'without'} AVX-512: {room}.{engine}"
        )
    if "warm_big_p50_ms" in missed:
        big = warm["litert"]["big"]
        decode = big["stages_p50"].get("decode", 0.0)
        mb = statistics.median(p["bytes"] for p in results["photos"]["big"]) / 1e6
        notes.append(
            f"- **12 MP latency:** decoding is {fmt(decode)} ms of {fmt(big['p50'])} "
            f"({decode / big['p50'] * 100:.0f} %): libjpeg-turbo entropy-decodes all "
            f"{mb:.1f} MB even when the DCT-domain draft scales the photo down (imagerec keeps "
            f"the shorter side at least {results.get('draft_min_side', 768)} px). "
            f"Preprocessing takes {fmt(big['stages_p50'].get('preprocess'))} ms (640×480: "
            f"{fmt(st.get('preprocess'))}) and inference {fmt(big['stages_p50'].get('inference'))}"
            f" ms (640×480: {fmt(st.get('inference'))})."
        )
    if "cold_keras_s" in missed:
        keras = cold["keras"]["p50"]
        tf_import = cold.get("import-tensorflow", {}).get("p50")
        share = (
            f", of which importing TensorFlow alone takes {fmt(tf_import, 2)} s "
            f"({tf_import / keras * 100:.0f} %)"
            if tf_import
            else ""
        )
        notes.append(
            f"- **Keras cold start:** {fmt(keras, 2)} s to the first answer{share}. The "
            f"baseline takes {fmt(cold['baseline']['p50'], 2)} s on the same machine; LiteRT, "
            f"which needs no TensorFlow, takes {fmt(cold['litert']['p50'], 2)} s."
        )
    if "server_4_clients_ips" in missed and one_core:
        best = goals["server_4_clients_ips"]["measured"]
        ceiling = cores * 1000 / one_core
        handler_total = servers["imagerec-litert"]["small"]["stages_p50"].get("total")
        notes.append(
            f"- **Throughput:** one image costs {fmt(one_core)} ms of inference on one thread "
            f"(ONNX section), so {cores} cores cap pure inference at ~{ceiling:.0f} images/s; "
            f"the best server reached {fmt(best)} ({best / ceiling * 100:.0f} % of that), "
            f"after decoding and preprocessing (the handler's own total is "
            f"{fmt(handler_total)} ms per photo), HTTP and event handling, and the load "
            "generator, which shares the same cores."
        )
    if missed & {"peak_rss_litert_mb", "cold_litert_s"}:
        notes.append("- **LiteRT memory or cold start:** see the tables below.")
    bulk = results.get("bulk") or {}
    local = bulk.get("local", {})
    if "jobs_speedup" in missed and "cpu_seconds" in local.get("1", {}):
        one, many = local["1"], local[str(bulk["cores"])]
        notes.append(
            f"- **Bulk jobs:** `--jobs {bulk['cores']}` used {fmt(many['cpu_seconds'], 2)} CPU "
            f"seconds in {fmt(many['seconds'], 2)} s ({many['cpu_seconds'] / many['seconds']:.2f} "
            f"cores), `--jobs 1` {fmt(one['cpu_seconds'], 2)} in {fmt(one['seconds'], 2)} s: the "
            "machine gave the run "
            + ("about one core" if many["cpu_seconds"] / many["seconds"] < 1.3 else "its cores")
            + f" (load average {bulk['load_average']['start'][0]} at its start), so the work, "
            f"{many['cpu_seconds'] / one['cpu_seconds']:.2f}× the CPU of one job, could not "
            "spread over two."
        )
    return ["Why the misses, from this run's figures:", "", *notes] if notes else []


def models_sentence(models: Json) -> str:
    """What each step up in accuracy costs, relative to the smallest measured model."""
    measured = [(name, row) for name, row in models.items() if "warm" in row]
    if len(measured) < 2:
        return ""
    (base_name, base), *others = measured
    base_ms = base["warm"]["small"]["p50"]
    clauses = []
    for name, row in others:
        gain = (row["top1_accuracy"] or 0) - (base["top1_accuracy"] or 0)
        ms = row["warm"]["small"]["p50"]
        clauses.append(
            f"`{name}` gains {gain:.1f} points of top-1 and {time_relation(ms, base_ms)} "
            f"`{base_name}` for a 640×480 photo ({fmt(ms)} against {fmt(base_ms)} ms p50)"
        )
    return "; ".join(clauses) + "."
