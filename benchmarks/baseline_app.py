"""The baseline: image recognition "the usual way", as most tutorials serve it.

A Flask app that decodes the upload with Pillow, resizes it to 224×224, applies
``mobilenet_v2.preprocess_input`` and calls Keras ``MobileNetV2.predict`` on every request.
Random weights (``weights=None``): the timing is what matters, and nothing is downloaded.

    python benchmarks/baseline_app.py serve --port 8090   # POST a JPEG to /predict
    python benchmarks/baseline_app.py cold PHOTO          # load, answer once, exit
    python benchmarks/baseline_app.py warm --small A.jpg --big B.jpg --reps 20 --big-reps 5

It is served by waitress when that is installed, else by Flask's threaded development
server; ``/health`` says which.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from io import BytesIO
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

SIZE = 224


class BaselineModel:
    """MobileNetV2 behind ``model.predict``, exactly as the tutorials call it."""

    def __init__(self) -> None:
        import keras

        self._model = keras.applications.MobileNetV2(weights=None)
        self._preprocess = keras.applications.mobilenet_v2.preprocess_input

    def top5(self, data: bytes) -> list[int]:
        image = Image.open(BytesIO(data)).convert("RGB").resize((SIZE, SIZE))
        batch = self._preprocess(np.asarray(image, dtype=np.float32)[np.newaxis])
        probabilities = self._model.predict(batch, verbose=0)[0]
        return [int(i) for i in np.argsort(-probabilities)[:5]]


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_name() -> str:
    return "waitress" if importlib.util.find_spec("waitress") else "flask-dev-threaded"


def serve(host: str, port: int) -> None:
    from flask import Flask, jsonify, request

    model = BaselineModel()
    app = Flask("baseline")

    @app.post("/predict")
    def predict() -> Any:
        return jsonify({"top5": model.top5(request.get_data())})

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok", "server": server_name()})

    print(f"baseline: serving http://{host}:{port}/ with {server_name()}", flush=True)
    if server_name() == "waitress":
        waitress = importlib.import_module("waitress")
        waitress.serve(app, host=host, port=port, threads=16, _quiet=True)
    else:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app.run(host=host, port=port, threaded=True)


def cold(photo: Path) -> None:
    """Start to first answer: the parent times this process until the line below."""
    model = BaselineModel()
    top5 = model.top5(photo.read_bytes())
    print(json.dumps({"top5": top5, "peak_rss_mb": peak_rss_mb()}), flush=True)


def warm(small: list[Path], big: list[Path], reps: int, big_reps: int) -> None:
    """Warm per-call latency in-process, in ms, for small and 12 MP photos."""
    model = BaselineModel()
    result: dict[str, Any] = {}
    for label, photos, count in (("small", small, reps), ("big", big, big_reps)):
        blobs = [p.read_bytes() for p in photos]
        model.top5(blobs[0])  # warm: the first predict builds the graph
        samples = []
        for i in range(count):
            start = time.perf_counter()
            model.top5(blobs[i % len(blobs)])
            samples.append((time.perf_counter() - start) * 1000)
        result[label] = samples
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)
    print(f"baseline: small p50 {statistics.median(result['small']):.1f} ms", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8090)
    cold_cmd = commands.add_parser("cold")
    cold_cmd.add_argument("photo", type=Path)
    warm_cmd = commands.add_parser("warm")
    warm_cmd.add_argument("--small", type=Path, nargs="+", required=True)
    warm_cmd.add_argument("--big", type=Path, nargs="+", required=True)
    warm_cmd.add_argument("--reps", type=int, default=20)
    warm_cmd.add_argument("--big-reps", type=int, default=5)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.host, args.port)
    elif args.command == "cold":
        cold(args.photo)
    else:
        warm(args.small, args.big, args.reps, args.big_reps)


if __name__ == "__main__":
    main()
