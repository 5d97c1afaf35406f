"""The composition root: settings → the built model, loaded and warmed → a handler.

Lambda calls these at module scope (``functions/classify/app.py`` and ``batch.py``), so the
init phase does the loading; ``imagerec serve`` and ``imagerec invoke`` call the same ones: one
path through the code. They never build a model: ``make setup``, ``imagerec build-model`` and
the image build do. This module sits above every layer it wires (docs/architecture.md).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from imagerec.core.settings import Settings
from imagerec.models.classifier import load_classifier

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from imagerec.bulk.s3 import BatchHandler
    from imagerec.http.api import Handler
    from imagerec.models.classifier import Classifier


def load_handler(settings: Settings | None = None) -> Handler:
    """The HTTP API's handler over the built model."""
    # Each root imports only what it wires: the batch function never loads the HTTP API.
    from imagerec.http.api import create_handler, logger

    settings = settings or Settings.from_env()
    return create_handler(_ready_classifier(settings, logger), settings)


def load_batch_handler(settings: Settings | None = None) -> BatchHandler:
    """The batch function's handler over the built model."""
    from aws_lambda_powertools import Logger

    from imagerec.bulk.s3 import create_batch_handler

    settings = settings or Settings.from_env()
    # The service name is the function's POWERTOOLS_SERVICE_NAME (imagerec-batch).
    logger = Logger(stream=sys.stderr)
    return create_batch_handler(_ready_classifier(settings, logger))


def _ready_classifier(settings: Settings, logger: Logger) -> Classifier:
    """The built model, loaded and warmed, with one log line that shows the init's cost."""
    start = time.perf_counter()
    classifier = load_classifier(settings=settings, build=False)
    classifier.warm_up()
    logger.info(
        "model ready",
        extra={
            "model": classifier.name,
            "runtime": classifier.runtime,
            "threads": settings.threads,
            "init_ms": round((time.perf_counter() - start) * 1000, 1),
        },
    )
    return classifier
