"""Large photos: how far a JPEG may be shrunk while it is decoded, against the full decode.

A JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT domain for a fraction of the full decode's
work; the classifier asks for the smallest scale whose shorter side stays at least
``min_side``. This measures, on the evaluation photos (one per ImageNet class) upscaled to about
12 MP with sensor-like grain and saved as JPEG q=90, for each candidate ``min_side``: top-1
agreement with the full decode, the largest change of any class's probability, top-1 accuracy
against the photos' own classes, and the decode's CPU time.

    .venv/bin/python -m benchmarks.draft                 # 150 photos, writes draft.json
    .venv/bin/python -m benchmarks.draft --photos 40     # a quicker look
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.plan import ROOT, Json, log

RESULTS = ROOT / "benchmarks" / "draft.json"
# The 118 dog classes (151–268) are left out of the evaluation set on purpose.
DOGS_FROM, DOGS = 151, 118
MEGAPIXELS = 12.0
# Shorter sides to keep, as multiples of what the 224 crop needs (256 px): 1/8, 1/4, 1/2 of
# a 4000×3000 photo.
FACTORS = (1, 2, 3)


def class_index(position: int) -> int:
    """The ImageNet index of the evaluation photo at ``position`` in sorted order."""
    return position if position < DOGS_FROM else position + DOGS


def upscaled(path: Path, seed: int) -> bytes:
    """The photo at about 12 MP, with luminance and chroma grain, as a q=90 JPEG."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as source:
        image = source.convert("RGB")
    scale = (MEGAPIXELS * 1e6 / (image.width * image.height)) ** 0.5
    size = (round(image.width * scale), round(image.height * scale))
    pixels = np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    rng = np.random.default_rng(seed)
    grain = rng.standard_normal((size[1], size[0], 1), dtype=np.float32) * 6.0
    chroma = rng.standard_normal((size[1], size[0], 3), dtype=np.float32) * 2.0
    noisy = np.clip(pixels + grain + chroma + 0.5, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=90)
    return out.getvalue()


def measure(count: int) -> Json:
    import numpy as np

    from benchmarks.accuracy import BESIDE, eval_dir
    from imagerec.core.intake import decode_image
    from imagerec.core.preprocess import preprocess
    from imagerec.models.classifier import load_classifier

    folder = eval_dir()
    if folder is None:
        return {"skipped": f"no evaluation photos in $IMAGEREC_EVAL_DIR or {BESIDE}"}
    classifier = load_classifier(runtime="litert", build=False)
    spec = classifier.preprocessing
    needed = round(spec.size / spec.crop_fraction)
    sides: dict[str, int | None] = {"full": None, **{f"{f}x": f * needed for f in FACTORS}}
    files = sorted(folder.iterdir())
    step = max(1, len(files) // count)
    chosen = list(enumerate(files))[::step][:count]
    rows: dict[str, Json] = {
        name: {
            "agree": 0,
            "top5_same": 0,
            "correct": 0,
            "as_taken": 0,
            "max_dp": 0.0,
            "dp": [],
            "cpu_ms": [],
        }
        for name in sides
    }
    shapes: dict[str, list[int]] = {}
    began = time.perf_counter()
    for done, (position, path) in enumerate(chosen, 1):
        data = upscaled(path, seed=position)
        truth = class_index(position)
        tensors, cpu = [], []
        for name, side in sides.items():
            start = time.process_time()
            image = decode_image(data, max_bytes=50_000_000, min_side=side)
            cpu.append((time.process_time() - start) * 1000)
            shapes.setdefault(name, list(image.pixels.shape[:2]))
            tensors.append(preprocess(image.pixels, spec))
        # The photo as it was taken (before upscaling), decoded whole: what the model says of
        # the scene itself, free of any resize the 12 MP copy goes through.
        tensors.append(preprocess(decode_image(path.read_bytes()).pixels, spec))
        *probabilities, original = classifier.predict(np.stack(tensors))
        full = probabilities[0]
        full_top5 = set(np.argsort(-full)[:5].tolist())
        for row, p, ms in zip(rows.values(), probabilities, cpu, strict=True):
            dp = float(np.max(np.abs(p - full)))
            row["agree"] += int(np.argmax(p) == np.argmax(full))
            row["top5_same"] += int(set(np.argsort(-p)[:5].tolist()) == full_top5)
            row["correct"] += int(np.argmax(p) == truth)
            row["as_taken"] += int(np.argmax(p) == np.argmax(original))
            row["max_dp"] = max(row["max_dp"], dp)
            row["dp"].append(dp)
            row["cpu_ms"].append(ms)
        if done % 25 == 0:
            log(f"draft: {done}/{len(chosen)} photos, {time.perf_counter() - began:.0f} s")
    n = len(chosen)
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "photos": n,
        "megapixels": MEGAPIXELS,
        "model": classifier.name,
        "needed_side": needed,
        "candidates": {
            name: {
                "min_side": sides[name],
                "decoded_shape_first_photo": shapes[name],
                "top1_agreement": round(row["agree"] / n, 4),
                "top5_same_set": round(row["top5_same"] / n, 4),
                "top1_accuracy": round(row["correct"] / n, 4),
                "top1_as_taken": round(row["as_taken"] / n, 4),
                "max_abs_dp": round(row["max_dp"], 4),
                "median_max_abs_dp": round(statistics.median(row["dp"]), 4),
                "decode_cpu_ms_p50": round(statistics.median(row["cpu_ms"]), 1),
            }
            for name, row in rows.items()
        },
    }


def draft_min_side() -> int:
    """The shorter side the default classifier keeps when it drafts a JPEG."""
    from imagerec.models.classifier import load_classifier

    return load_classifier(build=False).draft_min_side


def draft_study(path: Path = RESULTS) -> Json | None:
    """The last ``python -m benchmarks.draft`` (a study of minutes, run on its own), for the
    report; None when there is none."""
    if not path.is_file():
        return None
    study: Json = json.loads(path.read_text(encoding="utf-8"))
    return study


def render(draft: Json | None) -> list[str]:
    """The report's section (Markdown lines), when the run has one."""
    if not draft:
        return []
    lines = ["## Large photos: JPEG draft scale against the full decode", ""]
    if "skipped" in draft:
        return [*lines, f"Skipped: {draft['skipped']}.", ""]
    lines += [
        "Measured on its own by `python -m benchmarks.draft` (it takes minutes), not in the",
        "run above; `make bench` copies its last `benchmarks/draft.json` into the results.",
        "",
        f"{draft['photos']} evaluation photos (one per ImageNet class, dogs left out) upscaled",
        f"to about {draft['megapixels']:g} MP with sensor-like grain, JPEG q=90, measured",
        f"{draft['started']}. Each decoded at the smallest DCT scale whose shorter side stays",
        f"≥ min_side ({draft['needed_side']} px is what the crop needs), then classified",
        f"({draft['model']}); compared with the full decode of the same file, with the answer",
        "for the photo as taken (the source, before upscaling) and with the photo's class.",
        "",
        "| min_side | decoded (first photo) | top-1 = full | top-5 set = full | max \\|Δp\\| | "
        "median max \\|Δp\\| | top-1 = as taken | top-1 accuracy | decode CPU p50 (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in draft["candidates"].items():
        side = "full decode" if row["min_side"] is None else f"{row['min_side']} px ({name})"
        height, width = row["decoded_shape_first_photo"]
        lines.append(
            f"| {side} | {width}×{height} | {row['top1_agreement']:.1%} | "
            f"{row['top5_same_set']:.1%} | {row['max_abs_dp']:.3f} | "
            f"{row['median_max_abs_dp']:.4f} | {row['top1_as_taken']:.1%} | "
            f"{row['top1_accuracy']:.1%} | "
            f"{row['decode_cpu_ms_p50']:.1f} |"
        )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.draft", description=__doc__)
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = measure(args.photos)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
