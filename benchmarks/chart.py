"""The chart at the top of docs/benchmarks.md, drawn from results.json."""

from __future__ import annotations

from pathlib import Path

from benchmarks.plan import Json
from benchmarks.targets import TARGETS


def chart(results: Json, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warm, servers, cold = results["warm"], results["servers"], results["cold"]
    variants = [("litert", "imagerec LiteRT"), ("keras", "imagerec Keras"),
                ("baseline", "baseline Flask+predict")]  # fmt: skip
    colours = {"litert": "#1b7837", "keras": "#2166ac", "baseline": "#b2182b"}
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.4), dpi=80)

    ax = axes[0]
    width = 0.27
    for i, (key, label) in enumerate(variants):
        values = [warm[key]["small"]["p50"], warm[key]["big"]["p50"]]
        bars = ax.bar([x + (i - 1) * width for x in (0, 1)], values, width, label=label,
                      color=colours[key])  # fmt: skip
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks([0, 1], ["640×480", "12 MP"])
    ax.set_ylabel("ms")
    ax.set_title("Warm latency in-process, p50", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1]
    names = ["litert", "keras", "baseline"]
    values = [cold[name]["p50"] for name in names]
    bars = ax.bar(range(3), values, color=[colours[n] for n in names])
    ax.bar_label(bars, fmt="%.2f s", fontsize=7)
    ax.set_xticks(range(3), ["LiteRT", "Keras", "baseline"])
    ax.set_ylabel("s")
    ax.set_title("Cold start to first answer", fontsize=10)

    ax = axes[2]
    for server, colour, style in (
        ("imagerec-litert", colours["litert"], "-"),
        ("imagerec-litert-2w", colours["litert"], "--"),
        ("imagerec-keras", colours["keras"], "-"),
        ("baseline", colours["baseline"], "-"),
    ):
        if server not in servers:
            continue
        levels = servers[server]["levels"]
        clients = sorted(levels, key=int)
        ax.plot(
            [int(c) for c in clients],
            [levels[c]["images_per_s"] for c in clients],
            marker="o",
            color=colour,
            linestyle=style,
            label=server,
        )
    ax.axhline(TARGETS["server_4_clients_ips"], color="grey", ls="--", lw=0.8)
    ax.annotate("target at 4 clients", (1, TARGETS["server_4_clients_ips"]), fontsize=7,
                color="grey", xytext=(0, -9), textcoords="offset points")  # fmt: skip
    ax.set_ylim(0, TARGETS["server_4_clients_ips"] * 1.1)
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 4, 16], ["1", "4", "16"])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("images/s")
    ax.set_title("HTTP throughput, 640×480", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.9), ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
