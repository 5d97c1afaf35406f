"""The report's Lambda sections: the handler at Lambda's thread count, and the cost per
million images beside Amazon Rekognition's, all from results.json and the stated prices."""

from __future__ import annotations

from benchmarks.cost import PRICES, SOURCES, lambda_costs
from benchmarks.findings import fmt, span
from benchmarks.plan import Json
from imagerec.core.settings import LAMBDA_MB_PER_VCPU

SIZES = (("small", "640×480"), ("big", "12 MP"))


def usd(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def lambda_section(results: Json) -> list[str]:
    lines = ["## Warm Lambda handler at Lambda's thread count (ms)", ""]
    measured = results.get("lambda")
    if not measured:
        return [
            *lines,
            "Not in this run's results (the run predates it): the next `make bench` times",
            "`functions/classify/app.py`'s handler, invoked with API Gateway events in a",
            "process whose environment gives Lambda's memory size, so imagerec's settings",
            "choose the threads as on Lambda. Until then the cost below is composed from parts",
            "of this run.",
            "",
        ]
    lines += [
        f"`functions/classify/app.py`'s handler, invoked with API Gateway events in a process "
        f"that sees {measured['memory_mb']} MB of Lambda memory, so imagerec runs "
        f"{measured['threads']} inference thread{'s' if measured['threads'] > 1 else ''}, as "
        "on Lambda, with the template's Powertools settings (metrics on; X-Ray tracing is off "
        "outside Lambda). *Billed* is the mean of the per-invocation times rounded up to the "
        "next millisecond, as Lambda bills.",
        "",
        "| photo | p50 | p95 | min | billed (mean) | decode | preprocess | inference | "
        "round p50s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, name in SIZES:
        row = measured[size]
        st = row["stages_p50"]
        lines.append(
            f"| {name} | {fmt(row['p50'])} | {fmt(row['p95'])} | {fmt(row['min'])} | "
            f"{fmt(row['billed_ms_mean'])} | {fmt(st.get('decode'))} | "
            f"{fmt(st.get('preprocess'))} | {fmt(st.get('inference'))} | "
            f"{span(row['round_p50'])} |"
        )
    return [*lines, ""]


def basis_text(costs: Json) -> str:
    """Where the per-image duration comes from, in one sentence."""
    small = costs["small"]
    basis = small["basis"]
    threads = basis["threads"]
    plural = "s" if threads > 1 else ""
    if basis["kind"] == "measured":
        big = costs.get("big", {}).get("billed_ms")
        big_text = f" and {fmt(big)} ms for 12 MP" if big else ""
        return (
            f"Duration: this run's warm handler at {threads} thread{plural} (section above), "
            f"billed mean {fmt(small['billed_ms'])} ms for 640×480{big_text}."
        )
    parts = basis["parts"]
    return (
        "Duration: this run has no handler timing at Lambda's thread count (the next "
        "`make bench` adds it), so it is composed from this run's medians: decode "
        f"{fmt(parts['decode'], 2)} + preprocess {fmt(parts['preprocess'], 2)} ms (in-process; "
        f"both run on one thread) + LiteRT inference at {threads} thread{plural} "
        f"{fmt(parts['inference'], 2)} ms (ONNX section) = {fmt(basis['ms'], 2)} ms for "
        f"640×480, billed as {small['billed_ms']} ms{big_composed(costs)}. It leaves out the "
        "handler's event parsing and response."
    )


def share_text(memory_mb: int) -> str:
    """Below 1,769 MB a function gets less than one vCPU, so it runs slower than measured."""
    if memory_mb >= LAMBDA_MB_PER_VCPU:
        return ""
    share = memory_mb / LAMBDA_MB_PER_VCPU
    return (
        f"At this size the function gets {share:.0%} of a vCPU, so it would run more slowly "
        "than the one full core measured here. "
    )


def big_composed(costs: Json) -> str:
    big = costs.get("big")
    if not big or big["basis"]["kind"] != "composed":
        return ""
    return f" (12 MP, composed the same way: {fmt(big['basis']['ms'], 2)} ms)"


def cost_section(results: Json) -> list[str]:
    costs = lambda_costs(results)
    lines = ["## Cost per million images on Lambda, beside Amazon Rekognition", ""]
    if "small" not in costs:
        return [*lines, "Not computable from this run: it lacks the per-image time.", ""]
    basis = costs["small"]["basis"]
    p = PRICES
    cpu = results["machine"]["cpu"]
    lines += [
        f"One invocation per image through the HTTP API, at on-demand list prices in {p.region}"
        f" (checked {p.checked}; free tiers left out): Lambda duration at "
        f"${p.lambda_gb_s_x86_64:.10f} per GB-s on x86_64 and ${p.lambda_gb_s_arm64:.10f} on "
        "arm64, "
        f"Lambda requests at {usd(p.lambda_per_million_requests)} per million, and HTTP API "
        f"requests at {usd(p.http_api_per_million_requests)} per million, metered per started "
        f"{p.http_api_metering_bytes // 1024} KB of request. Not included: CloudFront, data "
        "transfer, CloudWatch logs and provisioned concurrency. Amazon Rekognition "
        f"DetectLabels lists {usd(p.rekognition_per_image * 1000)} per 1,000 images for the "
        "first million in a month.",
        "",
        f"Memory: {basis['memory_mb']} MB (the template's default), which gives "
        f"{basis['threads']} inference thread{'s' if basis['threads'] > 1 else ''} "
        "(memory ÷ 1,769 MB, rounded down, as imagerec's settings choose on Lambda). "
        + share_text(basis["memory_mb"])
        + basis_text(costs),
        "",
        "| photo | billed ms | GB-s | HTTP API requests per photo | x86_64 | arm64 "
        "(same duration assumed) | Rekognition DetectLabels |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, name in SIZES:
        if size not in costs:
            continue
        row = costs[size]
        x86, arm = row["per_million"]["x86_64"], row["per_million"]["arm64"]
        lines.append(
            f"| {name} | {fmt(row['billed_ms'])} | {fmt(x86['gb_s'], 0)} | "
            f"{row['http_api_requests']} | {usd(x86['total_usd'])} | {usd(arm['total_usd'])} | "
            f"{usd(costs['rekognition_usd'])} |"
        )
    small = costs["small"]["per_million"]
    x86 = small["x86_64"]
    lines += [
        "",
        f"For 640×480 photos on x86_64 that is {usd(x86['duration_usd'])} of duration, "
        f"{usd(x86['requests_usd'])} of Lambda requests and {usd(x86['http_api_usd'])} of HTTP "
        f"API requests. {comparison(small['x86_64']['total_usd'], costs['rekognition_usd'])}",
        "",
        f"The times are this machine's ({cpu}); Lambda's CPUs differ, so treat the duration "
        "part as an estimate. Arm64 cannot be measured here (no arm64 machine): its column "
        "assumes the x86_64 duration and differs only by the GB-second price; `make bench` on "
        "a Graviton machine would replace that assumption with a measurement.",
        "",
        "Prices: "
        + "; ".join(f"[{source.what}]({source.url})" for source in SOURCES)
        + ". Memory and thread count: `Plan.lambda_memory_mb` in `benchmarks/plan.py`.",
        "",
    ]
    return lines


def comparison(lambda_usd: float, rekognition_usd: float) -> str:
    ratio = rekognition_usd / lambda_usd
    if ratio >= 1:
        return f"Rekognition's list price for the same million is {ratio:,.0f}× that."
    return f"Rekognition's list price for the same million is {1 / ratio:,.1f}× lower."


def summary_lines(results: Json) -> list[str]:
    costs = lambda_costs(results)
    if "small" not in costs:
        return []
    x86, arm = costs["small"]["per_million"]["x86_64"], costs["small"]["per_million"]["arm64"]
    return [
        f"A million 640×480 photos on Lambda ({costs['small']['basis']['memory_mb']} MB) cost "
        f"about {usd(x86['total_usd'])} on x86_64 and {usd(arm['total_usd'])} on arm64 (same "
        f"duration assumed), against {usd(costs['rekognition_usd'])} for Amazon Rekognition "
        "DetectLabels (list prices; see the cost section)."
    ]


def readme_line(results: Json) -> str:
    costs = lambda_costs(results)
    if "small" not in costs:
        return ""
    x86, arm = costs["small"]["per_million"]["x86_64"], costs["small"]["per_million"]["arm64"]
    threads = costs["small"]["basis"]["threads"]
    return (
        f"On Lambda ({costs['small']['basis']['memory_mb']} MB, so {threads} thread"
        f"{'s' if threads > 1 else ''}; HTTP API; {PRICES.region} list prices) a million "
        f"640×480 photos cost about {usd(x86['total_usd'])} on x86_64 and "
        f"{usd(arm['total_usd'])} on arm64, from this machine's time per image (arm64's cannot "
        "be measured here: its figure assumes the same duration), against "
        f"{usd(costs['rekognition_usd'])} for Amazon Rekognition DetectLabels."
    )
