"""The summaries hold on real photos: a floor under `make eval`'s figures, on a fixed subset.

Every ninth of the 882 eval photos (98, in file-name order), Lite0 on LiteRT, judged by the
same code as `make eval` (benchmarks/accuracy.py). On this subset Lite0 measured top-1 90/98,
a summary for 88 and 86 of those right; the floors leave room for a runtime's last digits,
not for a worse rule.
"""

from __future__ import annotations

import pytest

from benchmarks.accuracy import eval_dir, measure, photos
from imagerec.models.classifier import load_classifier

pytestmark = [pytest.mark.integration, pytest.mark.model]

EVERY = 9


def test_lite0_summaries_are_given_and_right_on_real_photos() -> None:
    folder = eval_dir()
    if folder is None:
        pytest.skip(
            "Expected the eval photos in $IMAGEREC_EVAL_DIR or ../shared/eval/imagenet-sample "
            "beside the repository, received: none"
        )
    sample = photos(folder)[::EVERY]
    assert len(sample) == 98
    classifier = load_classifier("efficientnet_lite0", runtime="litert", build=False)

    figures = measure(classifier, sample)

    assert figures.top1 >= 0.85
    assert figures.given >= 0.85
    assert figures.right >= 0.95
    # Never a broad level ("animal", "mammal"), and so never vague
    assert figures.broad == 0
    assert figures.vague == 0
