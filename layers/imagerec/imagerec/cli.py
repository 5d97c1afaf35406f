"""The ``imagerec`` command line: a thin layer over the classifier and the handler."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from imagerec.errors import ConfigError, ImagerecError
from imagerec.settings import Settings
from imagerec.text import result_line


def _quiet_powertools() -> None:
    """Off Lambda, Powertools should neither print metrics nor log every request."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "imagerec")


def _error_line(source: str, code: str, message: str) -> None:
    print(f"{source}: error [{code}]: {message}", file=sys.stderr)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise _FileProblem("file_not_found", "No such file.") from None
    except IsADirectoryError:
        raise _FileProblem("not_a_file", "This is a directory, not a file.") from None
    except OSError as error:
        raise _FileProblem("unreadable", error.strerror or str(error)) from None


class _FileProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.classifier import load_classifier

    classifier = load_classifier(args.model, runtime=args.runtime, settings=settings)
    # People read one line with the best label; --json matches the API's default.
    wanted = args.top_k if args.top_k is not None else (5 if args.json else 1)
    top_k = classifier.check_top_k(wanted)
    failures = 0
    for path in args.photos:
        try:
            record: dict[str, Any] = classifier.classify(_read(path), top_k).to_dict()
        except (ImagerecError, _FileProblem) as error:
            failures += 1
            code = getattr(error, "code", "error")
            message = getattr(error, "message", str(error))
            record = {"error": {"code": code, "message": message}}
        if args.json:
            print(json.dumps({"filename": path, **record}), flush=True)
        elif "error" in record:
            print(result_line(record, path), file=sys.stderr, flush=True)
        else:
            print(result_line(record, path), flush=True)
    return 1 if failures else 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.models import REGISTRY, custom_artefacts, find_artefact

    rows: list[dict[str, Any]] = []
    for name, spec in REGISTRY.items():
        artefact = find_artefact(settings.cache_dir, name)
        rows.append(
            {
                "name": name,
                "default": name == settings.model,
                "built": artefact is not None,
                "input_size": spec.preprocessing.size,
                "preprocessing": spec.preprocessing.describe(),
                "description": spec.description,
            }
        )
    for custom in custom_artefacts(settings.cache_dir):
        manifest = custom.manifest
        rows.append(
            {
                "name": manifest.name,
                "default": manifest.name == settings.model,
                "built": True,
                "input_size": manifest.preprocessing.size,
                "preprocessing": manifest.preprocessing.describe(),
                "description": manifest.description,
            }
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        mark = "*" if row["default"] else " "
        built = "built" if row["built"] else "-"
        print(f"{mark} {row['name']:<20} {row['input_size']:>4}px  {built:<6} {row['description']}")
    print(f"\n(* default; artefacts in {settings.cache_dir})")
    return 0


def cmd_build_model(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.models import build_artefact, export_for_litert

    name = args.name or settings.model
    labels = Path(args.labels) if args.labels else settings.labels_file
    artefact = build_artefact(name, settings.cache_dir, labels_file=labels, force=args.force)
    if args.export:
        artefact = export_for_litert(artefact, Path(args.export))
    elif args.require_litert and not artefact.manifest.litert_matches:
        raise ConfigError(
            f"LiteRT's answers for {artefact.manifest.name} did not match Keras': "
            f"{artefact.manifest.litert_check}"
        )
    print(artefact.directory)
    return 0


def cmd_invoke(args: argparse.Namespace, settings: Settings) -> int:
    _quiet_powertools()
    from imagerec.api import load_handler
    from imagerec.events import LocalContext, load_event

    handler = load_handler(settings)
    failures = 0
    for path in args.events:
        try:
            event = load_event(Path(path))
        except (OSError, ValueError) as error:
            failures += 1
            _error_line(path, "bad_event", str(error))
            continue
        response = handler(event, LocalContext())
        print(json.dumps(response), flush=True)
    return 1 if failures else 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    _quiet_powertools()
    from imagerec.server import serve

    if args.workers < 1:
        raise ConfigError(f"Expected --workers >= 1, received: {args.workers}")
    if args.site:
        settings = replace(settings, site_dir=Path(args.site))
    serve(args.host, args.port, settings, workers=args.workers)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagerec", description="What is in this photo? ImageNet labels, offline."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser("classify", help="classify image files")
    classify.add_argument("photos", nargs="+", metavar="PHOTO")
    classify.add_argument(
        "--top-k",
        "-k",
        type=int,
        metavar="N",
        help="labels per photo, 1-20 (default: 1, or 5 with --json as in the API)",
    )
    classify.add_argument("--model", "-m", help="model name or a .keras file (default: embedded)")
    classify.add_argument("--runtime", choices=("auto", "litert", "keras"))
    classify.add_argument("--json", action="store_true", help="one JSON object per line")
    classify.set_defaults(run=cmd_classify)

    models = commands.add_parser("models", help="list the models")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=cmd_models)

    build = commands.add_parser("build-model", help="build a model artefact into the cache")
    build.add_argument("name", nargs="?", help="model name or .keras file (default: embedded)")
    build.add_argument("--labels", help="labels file, one per line (for a .keras model)")
    build.add_argument("--force", action="store_true", help="rebuild even if already built")
    build.add_argument(
        "--require-litert",
        action="store_true",
        help="fail unless LiteRT's answers matched Keras' at build time",
    )
    build.add_argument(
        "--export",
        metavar="DIR",
        help="also copy what LiteRT serves (no Keras model) to DIR/<name>; implies "
        "--require-litert (the Lambda image ships this copy)",
    )
    build.set_defaults(run=cmd_build_model)

    invoke = commands.add_parser("invoke", help="run API Gateway events through the handler")
    invoke.add_argument("events", nargs="+", metavar="EVENT.json")
    invoke.set_defaults(run=cmd_invoke)

    serve = commands.add_parser("serve", help="serve the page and the API on one origin")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--site", help="folder of the static page (default: ./site)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes, each with its own model (default: 1)"
    )
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, Settings.from_env()))
    except ImagerecError as error:
        _error_line("imagerec", error.code, error.message)
        return 2
    except KeyboardInterrupt:
        return 130
