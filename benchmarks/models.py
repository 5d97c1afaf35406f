"""The EfficientNet-Lite models side by side: what each one's accuracy costs in latency.

Each built model is timed by the same ``warm`` child as the main in-process figures (LiteRT,
the threads imagerec chooses, ``classify(bytes)`` on the same photos), in rounds of fresh
processes with the models interleaved, so load on a shared machine hits them alike. A model
that is not built is reported as skipped (``make bench`` builds them first).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.measure import photo_args
from benchmarks.plan import Json, Plan, log
from benchmarks.processes import child_env, role, run_child
from benchmarks.stats import pool_runs


def measure_models(plan: Plan, photos: dict[str, list[Path]]) -> Json:
    """Per model: pooled warm latency, its published top-1, and its build-time latency."""
    from imagerec.core.settings import Settings
    from imagerec.models.registry import find_artefact, get_spec

    cache_dir = Settings.from_env().cache_dir
    results: Json = {}
    built = []
    for name in plan.models:
        artefact = find_artefact(cache_dir, name)
        spec = get_spec(name)
        if artefact is None:
            results[name] = {"skipped": f"not built: `imagerec build-model {name}`"}
            continue
        built.append(name)
        results[name] = {
            "input_size": spec.preprocessing.size,
            "top1_accuracy": spec.top1_accuracy,
            "build_latency": artefact.manifest.latency or None,
        }
    runs: dict[str, list[Json]] = {name: [] for name in built}
    for round_no in range(plan.rounds):
        for name in built:
            log(f"models, round {round_no + 1}/{plan.rounds}: {name}")
            args = role(
                "warm", "litert", *photo_args(photos),
                "--reps", str(plan.warm_small), "--big-reps", str(plan.warm_big),
            )  # fmt: skip
            run = run_child(args, env=child_env(IMAGEREC_MODEL=name))
            if run.get("model") != name:
                raise RuntimeError(f"asked for {name}, the child loaded {run.get('model')}")
            runs[name].append(run)
    for name, model_runs in runs.items():
        results[name]["warm"] = pool_runs(model_runs)
    return results
