"""What runs inside a fresh child process: in-process measurements, one JSON line out.

    python -m benchmarks.children warm RUNTIME --small A.jpg … --big B.jpg … --reps N --big-reps M
    python -m benchmarks.children handler --app functions/classify/app.py --small … --big …
    python -m benchmarks.children inference ENGINE --threads N --onnx M.onnx --tflite M.tflite …

The cold-start scripts are ``python -c`` programs, so that nothing but the measured imports
runs before the first answer.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.plan import Json
from benchmarks.processes import peak_rss_mb

# The first answer of a fresh interpreter: import, load the artefact, classify one photo.
COLD_CLASSIFY = """
import sys, json
from imagerec.models.classifier import load_classifier
c = load_classifier(runtime=sys.argv[1], build=False)
label = c.classify(open(sys.argv[2], "rb").read()).predictions[0].label
print(json.dumps({"label": label}), flush=True)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"label": label, "peak_rss_mb": int(hwm) / 1024}), flush=True)
"""

# What the Keras runtime pays before it loads anything.
IMPORT_TENSORFLOW = """
import json, tensorflow
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"peak_rss_mb": int(hwm) / 1024}), flush=True)
"""

# The Lambda init path: import the function's module (it builds the handler: settings, load,
# warm-up), then invoke it once with an API Gateway event. The runtime comes from the
# environment (IMAGEREC_RUNTIME), as on Lambda.
COLD_HANDLER = """
import sys, json, importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from imagerec.http.events import LocalContext, http_event
body = open(sys.argv[2], "rb").read()
event = http_event("POST", "/api/classify", {"content-type": "image/jpeg"}, body)
status = app.handler(event, LocalContext())["statusCode"]
print(json.dumps({"status": status}), flush=True)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"status": status, "peak_rss_mb": int(hwm) / 1024}), flush=True)
"""


def warm(runtime: str, small: list[Path], big: list[Path], reps: int, big_reps: int) -> Json:
    """Load, warm up, then time ``classify`` on each photo size."""
    start = time.perf_counter()
    from imagerec.models.classifier import load_classifier

    classifier = load_classifier(runtime=runtime, build=False)
    classifier.warm_up()
    result: Json = {"model": classifier.name, "load_s": round(time.perf_counter() - start, 3)}
    for label, photos, count in (("small", small, reps), ("big", big, big_reps)):
        blobs = [p.read_bytes() for p in photos]
        classifier.classify(blobs[0])  # the first call of a size fills Pillow/numpy caches
        wall: list[float] = []
        stages: dict[str, list[float]] = {}
        for i in range(count):
            began = time.perf_counter()
            answer = classifier.classify(blobs[i % len(blobs)])
            wall.append((time.perf_counter() - began) * 1000)
            for stage, ms in answer.timing_ms.items():
                stages.setdefault(stage, []).append(ms)
        result[label] = {"wall": wall, "stages": stages}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def load_handler(app: Path) -> Callable[[Json, Any], Json]:
    """The Lambda function's handler, imported from its file as the Lambda runtime does."""
    spec = importlib.util.spec_from_file_location("app", app)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {app}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Json, Any], Json] = module.handler
    return handler


def handler(app: Path, small: list[Path], big: list[Path], reps: int, big_reps: int) -> Json:
    """The warm Lambda path: API Gateway events through the function's handler, timed per
    invocation, with the settings (thread count included) that the environment gives.

    Metrics stay on, as on Lambda: their JSON goes to stdout, here to /dev/null, so that
    stdout carries only this child's answer."""
    from imagerec.core.settings import Settings
    from imagerec.models.classifier import load_classifier

    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        began = time.perf_counter()
        invoke = load_handler(app)
        result: Json = {"load_s": round(time.perf_counter() - began, 3)}
        # The same model at the same threads, called directly, between the invocations: the
        # handler's own cost (event, base64, admission, labels, JSON, metrics) side by side.
        classifier = load_classifier(build=False)
        classifier.warm_up()
        result.update(invocations(invoke, small, big, reps, big_reps, classifier.classify))
    result["threads"] = Settings.from_env().threads
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def invocations(
    invoke: Callable[[Json, Any], Json], small: list[Path], big: list[Path], reps: int,
    big_reps: int, direct: Callable[[bytes], Any] | None = None,
) -> Json:  # fmt: skip
    """Each photo size: a first call, then ``reps`` timed invocations and their stages; with
    ``direct``, each invocation is followed by a timed direct call on the same photo."""
    from imagerec.http.events import LocalContext, http_event

    result: Json = {}
    for label, photos, count in (("small", small, reps), ("big", big, big_reps)):
        blobs = [p.read_bytes() for p in photos]
        events = [
            http_event("POST", "/api/classify", {"content-type": "image/jpeg"}, blob)
            for blob in blobs
        ]
        invoke(events[0], LocalContext())  # the first call of a size fills caches
        if direct is not None:
            direct(blobs[0])
        wall: list[float] = []
        inprocess: list[float] = []
        stages: dict[str, list[float]] = {}
        for i in range(count):
            context = LocalContext()
            began = time.perf_counter()
            response = invoke(events[i % len(events)], context)
            wall.append((time.perf_counter() - began) * 1000)
            if response["statusCode"] != 200:
                raise RuntimeError(f"handler answered {response['statusCode']}: {response}")
            for stage, ms in json.loads(response["body"]).get("timing_ms", {}).items():
                stages.setdefault(stage, []).append(ms)
            if direct is not None:
                began = time.perf_counter()
                direct(blobs[i % len(blobs)])
                inprocess.append((time.perf_counter() - began) * 1000)
        result[label] = {"wall": wall, "stages": stages}
        if inprocess:
            result[label]["inprocess"] = inprocess
    return result


def batch(runtime: str, threads: int, photos: list[Path], size: int, rounds: int) -> Json:
    """Images/s for ``size`` photos classified one call each, then in one ``classify_many``
    (batches of the classifier's batch size), alternating ``rounds`` times."""
    from dataclasses import replace

    from imagerec.core.settings import Settings
    from imagerec.models.classifier import load_classifier

    settings = replace(Settings.from_env(), threads=threads, threads_chosen=True)
    classifier = load_classifier(runtime=runtime, settings=settings, build=False)
    classifier.warm_up()
    blobs = [photos[i % len(photos)].read_bytes() for i in range(size)]
    classifier.classify_many(blobs)  # each batch shape allocated once before timing
    for blob in blobs[:2]:
        classifier.classify(blob)
    single: list[float] = []
    batched: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        for blob in blobs:
            classifier.classify(blob)
        single.append(size / (time.perf_counter() - began))
        began = time.perf_counter()
        classifier.classify_many(blobs)
        batched.append(size / (time.perf_counter() - began))
    return {
        "runtime": runtime,
        "threads": threads,
        "images": size,
        "batch_size": classifier.batch_size,
        "single_ips": single,
        "batch_ips": batched,
    }


def inference(
    engine: str, threads: int, onnx_path: Path, tflite_path: Path, photos: list[Path], reps: int
) -> Json:
    """Inference only, one engine per process (two engines' thread pools in one process
    spin against each other): ONNX Runtime or LiteRT on the same preprocessed photos."""
    import numpy as np

    from imagerec.core.intake import decode_image
    from imagerec.core.preprocess import preprocess
    from imagerec.core.runtimes import LiteRTRuntime
    from imagerec.models.classifier import load_classifier

    spec = load_classifier(runtime="litert", build=False).preprocessing
    tensors = [
        preprocess(decode_image(p.read_bytes(), min_side=512).pixels, spec)[np.newaxis]
        for p in photos
    ]
    began = time.perf_counter()
    litert = LiteRTRuntime(tflite_path, threads=threads)
    result: Json = {"engine": engine, "threads": threads}
    if engine == "litert":
        result["load_s"] = round(time.perf_counter() - began, 3)
        run = litert.predict
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        began = time.perf_counter()
        session = ort.InferenceSession(
            os.fspath(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        result["load_s"] = round(time.perf_counter() - began, 3)
        name = session.get_inputs()[0].name

        def run(batch: Any) -> Any:
            return np.asarray(session.run(None, {name: batch})[0])

        diffs, same_top5 = [], True
        for tensor in tensors:
            a, b = run(tensor)[0], litert.predict(tensor)[0]
            diffs.append(float(np.max(np.abs(a - b))))
            top_a = np.argsort(-a, kind="stable")[:5]
            same_top5 &= bool(np.array_equal(top_a, np.argsort(-b, kind="stable")[:5]))
        result.update(max_abs_diff_vs_litert=max(diffs), top5_equal=same_top5)
        result["version"] = ort.__version__
        del litert
    for tensor in tensors * 3:  # warm-up
        run(tensor)
    times = []
    for i in range(reps):
        began = time.perf_counter()
        run(tensors[i % len(tensors)])
        times.append((time.perf_counter() - began) * 1000)
    result["ms"] = times
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a benchmark child process (internal)")
    parser.add_argument("role", choices=("warm", "handler", "inference", "batch"))
    parser.add_argument("variant", nargs="?", default="litert", help="runtime or engine")
    parser.add_argument("--app", type=Path, help="the Lambda function's module")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--tflite", type=Path)
    parser.add_argument("--small", type=Path, nargs="+", default=[])
    parser.add_argument("--big", type=Path, nargs="+", default=[])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--big-reps", type=int, default=5)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args(argv)
    if args.role == "batch":
        result = batch(args.variant, args.threads, args.small, args.images, args.reps)
    elif args.role == "warm":
        result = warm(args.variant, args.small, args.big, args.reps, args.big_reps)
    elif args.role == "handler":
        result = handler(args.app, args.small, args.big, args.reps, args.big_reps)
    else:
        result = inference(
            args.variant, args.threads, args.onnx, args.tflite, args.small, args.reps
        )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
