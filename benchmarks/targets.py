"""The issue's targets on a 2-core machine, and how this run's figures compare with them."""

from __future__ import annotations

from benchmarks.plan import Json

TARGETS = {
    "warm_small_p50_ms": 10.0,
    "warm_big_p50_ms": 60.0,
    "cold_litert_s": 1.0,
    "cold_keras_s": 6.0,
    "speedup_vs_baseline": 10.0,
    "server_4_clients_ips": 150.0,
    "peak_rss_litert_mb": 300.0,
    "big_vs_small": 2.5,
    "served_vs_inprocess": 1.15,
    "handler_vs_inprocess": 1.15,
    "jobs_speedup": 1.7,
}

AT_LEAST = frozenset({"speedup_vs_baseline", "server_4_clients_ips", "jobs_speedup"})


def evaluate(results: Json) -> list[Json]:
    """Each target, the figure measured for it, and whether it was met."""
    warm, cold = results["warm"], results["cold"]
    servers = results["servers"]
    litert_small = warm["litert"]["small"]["p50"]
    shipped = [name for name in ("imagerec-litert", "imagerec-litert-2w") if name in servers]
    best = max(shipped, key=lambda name: servers[name]["levels"]["4"]["images_per_s"])
    rows = [
        ("warm_small_p50_ms", "warm classify 640×480 JPEG, p50 (LiteRT, in-process)", "ms",
         litert_small),
        ("warm_big_p50_ms", "warm classify 12 MP JPEG, p50 (LiteRT, in-process)", "ms",
         warm["litert"]["big"]["p50"]),
        ("cold_litert_s", "cold start to first answer, LiteRT (median)", "s",
         cold["litert"]["p50"]),
        ("cold_keras_s", "cold start to first answer, Keras (median)", "s",
         cold["keras"]["p50"]),
        ("speedup_vs_baseline", "speed-up over the baseline, warm 640×480 p50 (in-process)", "×",
         warm["baseline"]["small"]["p50"] / litert_small),
        ("server_4_clients_ips", f"server throughput at 4 clients, 640×480 ({best})",
         "images/s", servers[best]["levels"]["4"]["images_per_s"]),
        ("peak_rss_litert_mb", "peak memory with LiteRT (in-process, incl. 12 MP)", "MB",
         warm["litert"]["peak_rss_mb"]),
    ]  # fmt: skip
    rows += ratio_rows(results)
    table = []
    for key, name, unit, value in rows:
        target = TARGETS[key]
        sense = "≥" if key in AT_LEAST else "≤"
        met = value <= target if sense == "≤" else value >= target
        off = (value / target - 1) * 100 if sense == "≤" else (1 - value / target) * 100
        table.append(
            {
                "key": key,
                "target": name,
                "unit": unit,
                "goal": f"{sense} {target:g}",
                "measured": round(value, 3),
                "met": met,
                "missed_by_pct": None if met else round(off, 1),
            }
        )
    return table


def ratio_rows(results: Json) -> list[tuple[str, str, str, float]]:
    """The issue's ratios, each of two figures measured side by side in this run."""
    warm = results["warm"]["litert"]
    served = results["servers"]["imagerec-litert"]
    rows = [
        ("big_vs_small", "12 MP against 640×480 JPEG, warm p50 (LiteRT, in-process)", "×",
         warm["big"]["p50"] / warm["small"]["p50"]),
        ("served_vs_inprocess", "served (HTTP, `imagerec serve`) against in-process, "
         "640×480 p50", "×", served["small"]["p50"] / warm["small"]["p50"]),
    ]  # fmt: skip
    handler = results.get("lambda", {}).get("small", {})
    if "inprocess" in handler:
        rows.append(
            ("handler_vs_inprocess", "Lambda handler (event in, response out) against "
             "`classify` in the same process, 640×480 p50", "×",
             handler["p50"] / handler["inprocess"]["p50"])
        )  # fmt: skip
    bulk = results.get("bulk")
    if bulk and str(bulk["cores"]) != "1":
        rows.append(
            ("jobs_speedup", f"`classify DIR --jobs {bulk['cores']}` against `--jobs 1`, images/s",
             "×", bulk["speedup"])
        )  # fmt: skip
    return rows
