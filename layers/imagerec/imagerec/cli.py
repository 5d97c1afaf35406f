"""The ``imagerec`` command line: a thin layer over the classifier and the handler."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from imagerec.core.errors import ConfigError, ImagerecError
from imagerec.core.settings import Settings


def _quiet_powertools() -> None:
    """Off Lambda, Powertools should neither print metrics nor log every request."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "imagerec")


def _error_line(source: str, message: str) -> None:
    """The one line a failure gets: ``<file or imagerec>: error: <message>``."""
    print(f"{source}: error: {message}", file=sys.stderr, flush=True)


def _native_logs(verbose: bool) -> None:
    """TensorFlow's C++ start-up chatter (oneDNN, CPU features, the converter) stays off the
    terminal unless asked for; it reads this before TensorFlow is imported."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "2"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagerec")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.bulk.local import Options, run
    from imagerec.http.uploads import parse_categories

    # People read one line with the best label; --json and --output records match the API's 5.
    records = args.json or args.output
    summary, _ = run(
        Options(
            paths=args.photos,
            jobs=args.jobs,
            top_k=args.top_k if args.top_k is not None else (5 if records else 1),
            model=args.model,
            runtime=args.runtime,
            output=Path(args.output) if args.output else None,
            resume=args.resume,
            json=args.json,
            min_confidence=args.min_confidence,
            include_categories=parse_categories(args.include_categories, "--include-categories"),
            exclude_categories=parse_categories(args.exclude_categories, "--exclude-categories"),
        ),
        settings,
    )
    # The summary is for bulk runs (an output file, a folder) and for people at a terminal;
    # `classify a.jpg b.jpg` in a script prints its lines and nothing else.
    bulk = args.output or any(Path(path).is_dir() for path in args.photos)
    many = summary.done + summary.failed + summary.skipped > 1
    if bulk or (many and sys.stderr.isatty()):
        print(summary.line(verbose=settings.verbose), file=sys.stderr, flush=True)
    return 1 if summary.failed else 0


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.bulk import stepfunctions

    return stepfunctions.run(
        args.url,
        stack_name=args.stack or settings.stack_name,
        top_k=args.top_k,
        output=Path(args.output) if args.output else None,
        wait_for_results=args.wait,
    )


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.models.registry import REGISTRY, custom_artefacts, find_artefact

    rows: list[dict[str, Any]] = []
    for name, spec in REGISTRY.items():
        artefact = find_artefact(settings.cache_dir, name)
        rows.append(
            {
                "name": name,
                "default": name == settings.model,
                "built": artefact is not None,
                "input_size": spec.preprocessing.size,
                "top1_accuracy": spec.top1_accuracy,
                # Measured when the artefact was built (LiteRT, 1 thread, batch 1).
                "latency": (artefact.manifest.latency or None) if artefact else None,
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
                "top1_accuracy": None,
                "latency": manifest.latency or None,
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
        top1 = f"{row['top1_accuracy']:.1f}%" if row["top1_accuracy"] else "-"
        latency = f"{row['latency']['p50_ms']:.1f} ms" if row["latency"] else "-"
        print(
            f"{mark} {row['name']:<20} {row['input_size']:>3}px  {top1:>5}  {latency:>8}  "
            f"{built:<6} {row['description']}"
        )
    print(
        f"\n(* default; artefacts in {settings.cache_dir}. Columns: input size, published "
        "ImageNet top-1, latency (LiteRT inference, 1 thread, CPU-time median, measured at "
        "build), built)"
    )
    return 0


def cmd_build_model(args: argparse.Namespace, settings: Settings) -> int:
    from imagerec.models.registry import build_artefact, export_for_litert

    name = args.name or settings.model
    labels = Path(args.labels) if args.labels else settings.labels_file
    artefact = build_artefact(
        name, settings.cache_dir, labels_file=labels, force=args.force, verbose=settings.verbose
    )
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
    from imagerec.compose import load_handler
    from imagerec.http.events import LocalContext, load_event

    handler = load_handler(settings)
    failures = 0
    for path in args.events:
        try:
            event = load_event(Path(path))
        except OSError as error:
            failures += 1
            _error_line(path, f"{error.strerror or error}.")
            continue
        except ValueError as error:
            failures += 1
            _error_line(path, f"not an API Gateway event: {error}")
            continue
        except RecursionError:
            failures += 1
            _error_line(path, "not an API Gateway event: its JSON nests too deeply.")
            continue
        response = handler(event, LocalContext())
        print(json.dumps(response), flush=True)
    return 1 if failures else 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    _quiet_powertools()
    from imagerec.compose import load_handler
    from imagerec.models.classifier import built_artefact

    try:
        from imagerec.http.server import serve
    except ModuleNotFoundError as error:
        if error.name != "waitress":
            raise
        raise ConfigError(
            "imagerec serve needs waitress: pip install 'imagerec[serve]' (make setup has it)."
        ) from None

    if args.workers < 1:
        raise ConfigError(f"Expected --workers >= 1, received: {args.workers}")
    if args.site:
        settings = replace(settings, site_dir=Path(args.site))
    # Before listening: a missing model is one line, not a server that dies on its first start.
    built_artefact(settings)
    try:
        serve(args.host, args.port, settings, load_handler, workers=args.workers)
    except OSError as error:
        raise ConfigError(_listen_problem(args.host, args.port, error)) from None
    return 0


def _listen_problem(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another imagerec serve?); choose "
            f"another with --port 9000 (make run PORT=9000)."
        )
    if error.errno == errno.EACCES:
        return f"Port {port} needs privileges; choose one above 1023 with --port."
    return f"Cannot listen on {host}:{port}: {error.strerror or error}."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagerec",
        description="What is in this photo? ImageNet labels, offline.",
        epilog="`imagerec COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"imagerec {_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show TensorFlow's and LiteRT's own log lines (default: hidden)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify",
        help="classify image files and folders (walked recursively), one line each",
        description="One line per photo: '<file>: <label> (<score>%%)', led by a summed "
        "category when it is surer than the top class: '<file>: a cat (92.0%%), most likely a "
        "tiger cat (41.4%%)'. A file that fails is "
        "one line on stderr; the rest go on, and the exit status is 1. Folders are walked "
        "recursively (hidden files skipped) by --jobs worker processes; --output writes one "
        "record per file (.jsonl or .csv) and --resume skips the files already done.",
    )
    classify.add_argument("photos", nargs="+", metavar="PATH", help="image files or folders")
    classify.add_argument(
        "--top-k",
        "-k",
        type=int,
        metavar="N",
        help="labels per photo, 1-20 (default: 1, or 5 with --json, as in the API)",
    )
    classify.add_argument(
        "--model",
        "-m",
        metavar="NAME",
        help="a built model: a name from `imagerec models` or a .keras file built with "
        "build-model (default: efficientnet_lite0, or IMAGEREC_MODEL)",
    )
    classify.add_argument(
        "--runtime",
        choices=("auto", "litert", "keras"),
        help="auto serves with LiteRT when it matched Keras at build time "
        "(default: auto, or IMAGEREC_RUNTIME)",
    )
    classify.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line, with the API's fields and a filename",
    )
    classify.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        help="worker processes, each with its own model (default: the cores this process has)",
    )
    classify.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write one record per file to FILE as it finishes: JSON lines (.jsonl) or CSV "
        "(.csv) (default: none, lines on stdout)",
    )
    classify.add_argument(
        "--resume",
        action="store_true",
        help="with --output: skip the files that already have a successful record in it",
    )
    classify.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        metavar="SCORE",
        help="drop labels scoring below it, 0-1; the summary must reach it too (default: 0)",
    )
    classify.add_argument(
        "--include-categories",
        metavar="NAMES",
        help="only classes in these broad categories, e.g. animal,food (default: all)",
    )
    classify.add_argument(
        "--exclude-categories",
        metavar="NAMES",
        help="no classes in these broad categories (default: none)",
    )
    classify.set_defaults(run=cmd_classify)

    batch = commands.add_parser(
        "batch",
        help="classify every image under s3://bucket/prefix on the deployed stack",
        description="Starts the stack's Distributed Map state machine over the bucket and "
        "prefix; with --wait or --output, follows it and writes one record per object, as "
        "`imagerec classify --output` does (docs/bulk.md).",
    )
    batch.add_argument("url", metavar="s3://BUCKET/PREFIX")
    batch.add_argument(
        "--stack", metavar="NAME", help="the deployed stack (default: $AWS_SAM_STACK_NAME)"
    )
    batch.add_argument(
        "--top-k",
        "-k",
        type=int,
        default=5,
        metavar="N",
        help="labels per photo, 1-20 (default: 5)",
    )
    batch.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="wait, then write one record per object to FILE, .jsonl or .csv (default: none)",
    )
    batch.add_argument(
        "--wait",
        action="store_true",
        help="follow the run, then print one line per object (default: print the execution ARN "
        "and return)",
    )
    batch.set_defaults(run=cmd_batch)

    models = commands.add_parser(
        "models", help="list the models", description="The models that can be built or are."
    )
    models.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    models.set_defaults(run=cmd_models)

    build = commands.add_parser(
        "build-model",
        help="build a model into the cache",
        description="Build a model once into the cache (IMAGEREC_CACHE_DIR). The default "
        "model builds offline; keras.applications models download their weights; a .keras "
        "file is then served under its name (my.keras → --model my).",
    )
    build.add_argument(
        "name",
        nargs="?",
        metavar="NAME|FILE.keras",
        help="a name from `imagerec models` or your .keras file (default: efficientnet_lite0)",
    )
    build.add_argument(
        "--labels",
        metavar="FILE",
        help="labels, one per line, for a .keras model (default: IMAGEREC_LABELS)",
    )
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
        "--require-litert (the Lambda image ships this copy; default: no copy)",
    )
    build.set_defaults(run=cmd_build_model)

    invoke = commands.add_parser(
        "invoke",
        help="run API Gateway events through the handler",
        description="Each event file (events/*.json) through the Lambda handler, in-process; "
        "one JSON response per line.",
    )
    invoke.add_argument("events", nargs="+", metavar="EVENT.json", help="event files")
    invoke.set_defaults(run=cmd_invoke)

    serve = commands.add_parser(
        "serve",
        help="serve the page and the API on one origin",
        description="The page and the API on one origin, through the Lambda handler.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument(
        "--site",
        metavar="DIR",
        help="folder of the page (default: ./site, else the repository's site/)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes, each with its own model; one per core classifies for several clients "
        "in parallel "
        "(default: %(default)s)",
    )
    serve.set_defaults(run=cmd_serve)
    return parser


def _stdout_gone() -> None:
    """The reader left (`| head -1`): stop quietly, and let nothing flush into the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _native_logs(args.verbose)
    try:
        settings = Settings.from_env()
        if args.verbose:
            settings = replace(settings, verbose=True)
        status = int(args.run(args, settings))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return status
    except ImagerecError as error:
        _error_line("imagerec", error.message)
        return 2
    except BrokenPipeError:
        _stdout_gone()
        return 128 + signal.SIGPIPE  # what a tool killed by SIGPIPE reports
    except KeyboardInterrupt:
        return 130
