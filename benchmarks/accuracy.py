"""``make eval``: top-1, top-5 and how the summaries fare, per model, on 882 real photos.

The photos are ImageNet's, one per class, named ``<synset>_<name>.JPEG`` (see the eval
folder's README): the true class is the synset's position among the 1,000 sorted synsets,
the order of the classes in ``imagenet_hierarchy.json``. Each model classifies every photo
with the real classifier (LiteRT), and the summary is judged:

- *given*: the photo has a summary at all (not "not sure");
- *right*: the summary is the true class or a familiar category above it ("dog" for a
  beagle);
- *vague*: the summary is a category above the true class but not a familiar one ("animal",
  "mammal"): true, and useless. The rule never answers those, so this should stay 0.

The figures go into docs/accuracy.md between its ``eval`` markers.
Run: ``.venv/bin/python -m benchmarks.accuracy [model ...]`` (``make eval``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from imagerec.core.hierarchy import DATA_FILE, imagenet_hierarchy
from imagerec.models.classifier import Classifier, load_classifier
from imagerec.models.registry import published_top1

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "accuracy.md"
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"
# The maintainers' photos sit beside the repository (as CI has them).
BESIDE = ROOT.parent / "shared" / "eval" / "imagenet-sample"


def eval_dir() -> Path | None:
    """IMAGEREC_EVAL_DIR, else ../shared/eval/imagenet-sample beside the repository; None when
    that is not a folder."""
    chosen = os.environ.get("IMAGEREC_EVAL_DIR", "").strip()
    folder = Path(chosen) if chosen else BESIDE
    return folder if folder.is_dir() else None


def class_synsets() -> list[str]:
    """The 1,000 synset ids in class-index order (sorted, as in every ImageNet model)."""
    text = resources.files("imagerec").joinpath("data", DATA_FILE).read_text("utf-8")
    return [wnid for wnid, _, _ in json.loads(text)["classes"]]


def photos(folder: Path) -> list[tuple[Path, int]]:
    """Every eval photo with its true class index, in file-name order."""
    index = {wnid: i for i, wnid in enumerate(class_synsets())}
    found = sorted(folder.glob("n*.JPEG"))
    return [(path, index[path.name.split("_", 1)[0]]) for path in found]


@dataclass(frozen=True)
class Figures:
    model: str
    photos: int
    top1: float
    top5: float
    given: float  # share of photos with a summary
    right: float  # share of the given summaries that are right
    vague: float  # share of the given summaries that are a broad level above the class
    broad: int  # summaries naming a node that is not a familiar category (must be 0)

    def row(self) -> str:
        published = published_top1(self.model)
        return (
            f"| {self.model} | {published if published is not None else '–'}% | "
            f"{self.top1:.1%} | {self.top5:.1%} | {self.given:.1%} | {self.right:.1%} | "
            f"{self.vague:.1%} |"
        ).replace("%", " %")


def measure(classifier: Classifier, sample: Sequence[tuple[Path, int]]) -> Figures:
    """Classify each photo as the API does and judge its top-5 and its summary."""
    hierarchy = imagenet_hierarchy()
    top1 = top5 = given = right = vague = broad = 0
    for path, truth in sample:
        result = classifier.classify(path.read_bytes(), top_k=5)
        indices = [p.index for p in result.predictions]
        top1 += indices[0] == truth
        top5 += truth in indices
        summary = result.summary
        if summary is None:
            continue
        given += 1
        if summary.label not in classifier.labels and summary.label not in hierarchy.familiar:
            broad += 1
        if summary.label == classifier.labels[truth] or hierarchy.is_familiar_ancestor(
            summary.label, truth
        ):
            right += 1
        elif summary.label in hierarchy.parents[truth]:
            vague += 1
    n = len(sample)
    return Figures(
        classifier.name, n, top1 / n, top5 / n, given / n, right / max(given, 1),
        vague / max(given, 1), broad,
    )  # fmt: skip


def table(figures: Sequence[Figures]) -> str:
    header = (
        "| model | published top-1 | top-1 | top-5 | summary given | right, where given "
        "| vague, where given |\n|---|---|---|---|---|---|---|"
    )
    return "\n".join([header, *(f.row() for f in figures)])


def write_doc(text: str, doc: Path = DOC) -> None:
    content = doc.read_text("utf-8")
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    doc.write_text(f"{content[:start]}\n{text}\n{content[end:]}", "utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    args = parser.parse_args(argv)
    folder = eval_dir()
    if folder is None:
        print("no eval photos: set IMAGEREC_EVAL_DIR (see docs/accuracy.md)", file=sys.stderr)
        return 2
    sample = photos(folder)
    figures = []
    for name in args.models:
        classifier = load_classifier(name, runtime="litert", build=False)
        figures.append(measure(classifier, sample))
        print(figures[-1], file=sys.stderr, flush=True)
    text = f"{len(sample)} photos from `{folder.name}/`, LiteRT, top-5 kept.\n\n{table(figures)}"
    print(text)
    if not args.no_write:
        write_doc(text)
    return 0 if all(f.broad == 0 for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
