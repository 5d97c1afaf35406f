"""How results and sizes read to people: one line per image, sizes in bytes, KB or MB.

Pure functions over the API's result shape (``Classification.to_dict()`` or an error body),
shared by the CLI's lines and the API's ``Accept: text/plain`` answer so the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Names that take no article: "clothing", "footwear", "sports equipment", "white goods".
_MASS_NOUN = re.compile(
    r"^(clothing|food|furniture|armor|hosiery|produce)$|(wear|ware|equipment|goods)$", re.I
)
# "an admiral", "an umbrella", but "a uniform", "a unicycle", "a user".
_AN = re.compile(r"^([aeio]|u(?!ni|s[eu]))", re.I)


def with_article(label: str) -> str:
    """ "a butterfly", "an admiral", "clothing": ImageNet's first synonym, for a sentence.

    The one a/an rule: the API sends this phrase (``phrase``) so the page never computes it.
    """
    name = label.split(", ")[0].strip()
    if _MASS_NOUN.search(name):
        return name
    return f"{'an' if _AN.match(name) else 'a'} {name}"


def percent(score: float) -> str:
    """0.94487 → '94.5%'."""
    return f"{score * 100:.1f}%"


def phrase(item: Mapping[str, Any]) -> str:
    """A prediction's or summary's phrase as the API sends it, or made from its label."""
    text = item.get("phrase")
    return text if isinstance(text, str) and text else with_article(str(item["label"]))


def leading_summary(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The result's summary when it is a category, not the top class itself."""
    summary: Mapping[str, Any] | None = result.get("summary")
    predictions = result.get("predictions") or []
    if not summary or not predictions or summary["label"] == predictions[0]["label"]:
        return None
    return summary


def result_line(result: Mapping[str, Any], filename: str | None = None) -> str:
    """``coffee.jpg: espresso (94.0%), cup (1.6%)`` or ``notes.txt: error: <message>``.

    Every prediction in ``result`` is shown, best first; without a filename the line starts
    with the label. A familiar category leads when it is the summary:
    ``chelsea.png: a cat (92.0%), most likely a tiger cat (41.4%)``; with no summary the line
    says so: ``rocket.jpg: not sure, maybe a missile (25.3%)``.
    """
    prefix = f"{filename}: " if filename else ""
    error = result.get("error")
    if error is not None:
        return f"{prefix}error: {error['message']}"
    predictions = result["predictions"]
    if not predictions:
        return f"{prefix}no label reaches the minimum confidence"
    labels = [f"{p['label']} ({percent(p['score'])})" for p in predictions]
    best = predictions[0]
    summary = leading_summary(result)
    if summary is not None:
        labels[0] = f"most likely {phrase(best)} ({percent(best['score'])})"
        labels.insert(0, f"{phrase(summary)} ({percent(summary['score'])})")
    elif not result.get("summary"):
        labels[0] = f"not sure, maybe {phrase(best)} ({percent(best['score'])})"
    return prefix + ", ".join(labels)


def _trim(value: float) -> str:
    """Three significant figures, without a trailing '.0': 4.4, 10, 250, 1.25."""
    text = f"{value:.3g}"
    return text if "e" not in text else f"{value:.0f}"


def human_size(n: int) -> str:
    """Bytes as people read them: '900 bytes', '71.3 KB', '10 MB' (powers of 1000)."""
    if n < 1000:
        return f"{n} byte" if n == 1 else f"{n} bytes"
    if n < 1_000_000:
        return f"{_trim(n / 1000)} KB"
    return f"{_trim(n / 1_000_000)} MB"


def size_over_limit(size: int, limit: int) -> tuple[str, str]:
    """Both sizes in the same words, exact when rounding would make them look equal."""
    shown = human_size(size), human_size(limit)
    if shown[0] == shown[1]:
        return f"{size:,} bytes", f"{limit:,} bytes"
    return shown


def human_pixels(n: int) -> str:
    """'40 megapixels', '1.2 megapixels', '250,000 pixels'."""
    if n < 1_000_000:
        return f"{n:,} pixels"
    return f"{_trim(n / 1_000_000)} megapixels"
