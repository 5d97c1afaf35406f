"""ONNX Runtime against LiteRT on the same model, inference only (an evaluation)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from benchmarks.plan import PYTHON, Json, Plan, log
from benchmarks.processes import child_env, role, run_child
from benchmarks.stats import summary

THREADS = (1, 2)


def onnx_model(cache_dir: Path, tflite: Path) -> Path | None:
    """The ONNX export of the LiteRT model (tf2onnx, cached); None when unavailable."""
    if not (importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tf2onnx")):
        return None
    target = cache_dir / "bench" / "efficientnet_lite0.onnx"
    if target.is_file() and target.stat().st_mtime >= tflite.stat().st_mtime:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log("converting the .tflite to ONNX with tf2onnx (once; cached)")
    subprocess.run(
        [PYTHON, "-m", "tf2onnx.convert", "--tflite", os.fspath(tflite),
         "--output", os.fspath(target), "--opset", "17"],
        check=True, capture_output=True, env=child_env(), timeout=600,
    )  # fmt: skip
    return target


def measure_onnx(plan: Plan, photos: dict[str, list[Path]]) -> Json:
    from imagerec.core.settings import Settings
    from imagerec.models.registry import find_artefact

    settings = Settings.from_env()
    artefact = find_artefact(settings.cache_dir, settings.model)
    if artefact is None:
        return {"skipped": "model not built"}
    tflite = artefact.path("tflite")
    path = onnx_model(settings.cache_dir, tflite)
    if path is None:
        return {"skipped": "onnxruntime or tf2onnx not installed"}
    small = [os.fspath(p) for p in photos["small"]]
    samples: dict[tuple[str, int], list[float]] = {}
    extra: dict[tuple[str, int], Json] = {}
    for round_no in range(plan.rounds):
        log(f"ONNX Runtime vs LiteRT, round {round_no + 1}/{plan.rounds}")
        for threads in THREADS:
            for engine in ("litert", "onnxruntime"):
                args = role(
                    "inference", engine, "--threads", str(threads),
                    "--onnx", os.fspath(path), "--tflite", os.fspath(tflite),
                    "--reps", str(plan.onnx_reps), "--small", *small,
                )  # fmt: skip
                run = run_child(args)
                samples.setdefault((engine, threads), []).extend(run.pop("ms"))
                extra[(engine, threads)] = run
    result: Json = {"threads": {}}
    for threads in THREADS:
        ort_extra = extra[("onnxruntime", threads)]
        result["threads"][str(threads)] = {
            "onnxruntime": summary(samples[("onnxruntime", threads)]),
            "litert": summary(samples[("litert", threads)]),
            "max_abs_diff_vs_litert": ort_extra["max_abs_diff_vs_litert"],
            "top5_equal": ort_extra["top5_equal"],
        }
        result["ort_version"] = ort_extra["version"]
    return result
