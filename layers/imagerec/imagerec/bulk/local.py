"""Bulk classification on one machine: walk paths, classify in worker processes, write records.

``imagerec classify PATH... [--jobs N] [--output FILE] [--resume]`` is a thin layer over
:func:`run`. A record is the API's per-file shape: ``{"filename": ..., **Classification}`` on
success, ``{"filename": ..., "error": {"code", "message"}}`` on failure, so a JSON-lines output
file, ``--json`` and the cloud batch (``imagerec batch``) all read the same way.

A job is one core: ``--jobs N`` classifies in N places at once (this process and N - 1
worker processes), each with one inference thread, so N jobs never fight over the same cores
and throughput grows with N up to the core count (the default). One process with every core's
thread is slower than as many one-thread jobs: decode and preprocessing run on one thread, and
inference on two threads is 1.7x, not 2x, one thread (docs/benchmarks.md). ``IMAGEREC_THREADS``
still sets each job's threads. Workers are separate processes (``spawn``: a fresh interpreter
each, nothing inherited from a parent that holds a model); each is sent a batch of paths,
reads and decodes them itself and sends back records, never pixels. Records come back in input
order, whatever the worker count, which makes two runs' outputs diffable.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import IO, Any, Protocol

from imagerec.core.errors import ImagerecError, InvalidArgument, PayloadTooLarge
from imagerec.core.hierarchy import NO_FILTER, LabelFilter
from imagerec.core.settings import Settings
from imagerec.core.text import result_line, size_over_limit
from imagerec.models.classifier import Classifier, load_classifier

Record = dict[str, Any]

# summary: the answer people read ("cat" for a tiger cat the model is unsure of), empty
# when the model is not sure; label and score are the top class.
CSV_COLUMNS = (
    "filename",
    "summary",
    "summary_score",
    "label",
    "score",
    "top_k",
    "error_code",
    "error_message",
)
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


# --- records -------------------------------------------------------------------------------


def error_record(filename: str, code: str, message: str) -> Record:
    return {"filename": filename, "error": {"code": code, "message": message}}


def succeeded(record: Record) -> bool:
    if "error" in record:
        return False
    # A fresh classification ("model") counts even when min_confidence left no prediction; a
    # CSV row read back needs its labels (a row cut short by a crash has none).
    return bool(record.get("predictions")) or "model" in record


def text_line(record: Record) -> str:
    """One line per file, as the API's text/plain answer: ``name: label (94.5%)``, or
    ``name: error: <message>``."""
    return result_line(record, record["filename"])


def csv_row(record: Record) -> dict[str, str]:
    if "error" in record:
        error = record["error"]
        return {
            "filename": record["filename"],
            "summary": "",
            "summary_score": "",
            "label": "",
            "score": "",
            "top_k": "",
            "error_code": error["code"],
            "error_message": error["message"],
        }
    predictions = record["predictions"]
    best = predictions[0] if predictions else None  # none left above min_confidence
    summary = record.get("summary")
    return {
        "filename": record["filename"],
        "summary": summary["label"] if summary else "",
        "summary_score": f"{summary['score']:.6f}" if summary else "",
        "label": best["label"] if best else "",
        "score": f"{best['score']:.6f}" if best else "",
        "top_k": json.dumps(predictions, separators=(",", ":")),
        "error_code": "",
        "error_message": "",
    }


def record_from_csv(row: dict[str, str]) -> Record:
    if row.get("error_code"):
        return error_record(row["filename"], row["error_code"], row.get("error_message", ""))
    summary = (
        {"label": row["summary"], "score": float(row["summary_score"])}
        if row.get("summary") and row.get("summary_score")
        else None
    )
    return {
        "filename": row["filename"],
        "summary": summary,
        "predictions": json.loads(row["top_k"] or "[]"),
    }


# --- output files ----------------------------------------------------------------------------


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidArgument(
            f"Expected an output file ending in .jsonl or .csv, received: {str(path)!r}"
        )
    return fmt


class RecordWriter(Protocol):
    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, record: Record) -> None:
        # One flushed line per record: an interrupted run leaves every finished file on disk.
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


class CsvWriter:
    def __init__(self, stream: IO[str], *, header: bool) -> None:
        self._stream = stream
        self._writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        if header:
            self._writer.writeheader()

    def write(self, record: Record) -> None:
        self._writer.writerow(csv_row(record))
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def open_writer(path: Path, *, append: bool = False) -> RecordWriter:
    fmt = output_format(path)
    fresh = not append or not path.exists() or path.stat().st_size == 0
    stream = path.open("a" if append else "w", encoding="utf-8", newline="")
    if fmt == "csv":
        return CsvWriter(stream, header=fresh)
    return JsonlWriter(stream)


def read_records(path: Path) -> Iterator[Record]:
    """The records of an earlier output file; a line cut short by a crash is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as stream:
        if output_format(path) == "csv":
            for row in csv.DictReader(stream):
                try:
                    yield record_from_csv(row)
                except (KeyError, TypeError, ValueError):
                    continue
            return
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("filename"), str):
                yield record


def compact_for_resume(path: Path) -> set[str]:
    """Keep only the successful records of ``path`` (one per file) and return their names.

    Failed records are dropped because their files are retried, so the finished output still
    has exactly one record per file. The file is rewritten through a temporary file and an
    atomic rename, so a crash here loses nothing.
    """
    kept: dict[str, Record] = {}
    for record in read_records(path):
        if succeeded(record):
            kept[record["filename"]] = record
    if path.exists():
        temporary = path.with_name(f".resume-{path.name}")
        writer = open_writer(temporary)
        try:
            for record in kept.values():
                writer.write(record)
        finally:
            writer.close()
        temporary.replace(path)
    return set(kept)


# --- walking ---------------------------------------------------------------------------------


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def _is_excluded(path: Path, excluded: Path | None) -> bool:
    # Names first: resolving every path of a large tree would cost a syscall per file.
    return excluded is not None and path.name == excluded.name and path.resolve() == excluded


def walk(paths: Iterable[str], *, exclude: Path | None = None) -> list[str]:
    """Every file to classify, in a stable order.

    A folder is walked recursively, its files sorted by path, skipping hidden files and
    folders (and the output file, should it be inside); symlinked folders are not followed,
    so a loop cannot trap the walk. Anything else named on the command line is kept as given, so a
    missing file becomes an error record rather than vanishing.
    """
    excluded = exclude.resolve() if exclude is not None else None
    found: list[str] = []
    for given in paths:
        if not Path(given).is_dir():
            found.append(os.path.normpath(given))
            continue
        inside: list[Path] = []
        for folder, folders, files in os.walk(given):
            folders[:] = [name for name in folders if not is_hidden(name)]
            for name in files:
                path = Path(folder, name)
                if is_hidden(name) or _is_excluded(path, excluded):
                    continue
                inside.append(path)
        # Sorted by path components, as `find | sort` would list them.
        found.extend(os.path.normpath(path) for path in sorted(inside, key=lambda p: p.parts))
    return found


# --- classifying one file ----------------------------------------------------------------------


def payload_too_large(size: int, max_bytes: int) -> PayloadTooLarge:
    """The error intake gives for a file over the limit, before any byte is read."""
    shown, limit = size_over_limit(size, max_bytes)
    return PayloadTooLarge(f"The file is {shown}; the limit is {limit}.")


def _read(path: str, max_bytes: int) -> bytes:
    # The size is checked before reading, so a huge file is refused without loading it.
    try:
        size = Path(path).stat().st_size
        if Path(path).is_dir():
            raise _FileProblem("not_a_file", "This is a directory, not a file.")
        if size > max_bytes:
            raise payload_too_large(size, max_bytes)
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise _FileProblem("file_not_found", "No such file.") from None
    except IsADirectoryError:
        raise _FileProblem("not_a_file", "This is a directory, not a file.") from None
    except PermissionError:
        raise _FileProblem("unreadable", "Permission denied.") from None
    except OSError as error:
        raise _FileProblem("unreadable", error.strerror or type(error).__name__) from None


class _FileProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def classify_file(
    classifier: Classifier, path: str, top_k: int, label_filter: LabelFilter = NO_FILTER
) -> Record:
    """One file's record: its classification, or the typed error that stopped it."""
    return classify_files(classifier, [path], top_k, label_filter)[0]


def classify_files(
    classifier: Classifier, paths: Sequence[str], top_k: int, label_filter: LabelFilter = NO_FILTER
) -> list[Record]:
    """Each file's record, in order; the readable ones classified in batches."""
    records: list[Record | None] = []
    readable: list[bytes] = []
    for path in paths:
        try:
            readable.append(_read(path, classifier.settings.max_bytes))
            records.append(None)
        except (ImagerecError, _FileProblem) as error:
            records.append(error_record(path, error.code, error.message))
    answers = iter(classifier.classify_many(readable, top_k, label_filter=label_filter))
    out: list[Record] = []
    for path, record in zip(paths, records, strict=True):
        if record is None:
            answer = next(answers)
            if isinstance(answer, ImagerecError):
                record = error_record(path, answer.code, answer.message)
            else:
                record = {"filename": path, **answer.to_dict()}
        out.append(record)
    return out


# --- the worker pool ---------------------------------------------------------------------------

_worker: tuple[Classifier, int, LabelFilter] | None = None


def _start_worker(settings: Settings, top_k: int, label_filter: LabelFilter) -> None:
    global _worker  # one classifier per worker process, loaded once
    # The parent built the model before starting workers; a worker never builds.
    _worker = (load_classifier(settings=settings, build=False), top_k, label_filter)


def _work(paths: list[str]) -> list[Record]:
    assert _worker is not None, "the pool initializer did not run"
    classifier, top_k, label_filter = _worker
    return classify_files(classifier, paths, top_k, label_filter)


def per_job(settings: Settings) -> Settings:
    """A job's settings: one inference thread, unless IMAGEREC_THREADS chose the threads."""
    return settings if settings.threads_chosen else replace(settings, threads=1)


def _batches(paths: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(paths), size):
        yield list(paths[start : start + size])


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def classify_paths(
    paths: Sequence[str],
    settings: Settings,
    *,
    jobs: int,
    top_k: int = 5,
    model: str | None = None,
    runtime: str | None = None,
    min_confidence: float = 0.0,
    include_categories: tuple[str, ...] = (),
    exclude_categories: tuple[str, ...] = (),
) -> Iterator[Record]:
    """Classify every path; the records come in input order.

    ``jobs`` 1 classifies in this process; more start ``jobs - 1`` worker processes beside
    it. Each job has one inference thread (:func:`per_job`). The model is loaded before this
    returns, so a bad model name, runtime or top_k fails here, once, before any worker starts
    or any output is written.
    """
    if jobs < 1:
        raise InvalidArgument(f"Expected --jobs >= 1, received: {jobs}")
    jobs = min(jobs, len(paths)) or 1
    settings = per_job(settings)
    # Never a build here: that can take minutes and the network; the error says how.
    classifier = load_classifier(model, runtime=runtime, settings=settings, build=False)
    top_k = classifier.check_top_k(top_k)
    label_filter = classifier.check_filter(min_confidence, include_categories, exclude_categories)
    batches = _batches(paths, classifier.batch_size)
    if jobs == 1:
        return (
            record
            for batch in batches
            for record in classify_files(classifier, batch, top_k, label_filter)
        )
    return _in_workers(list(batches), classifier, jobs, top_k, label_filter)


def _in_workers(
    batches: list[list[str]],
    classifier: Classifier,
    jobs: int,
    top_k: int,
    label_filter: LabelFilter,
) -> Iterator[Record]:
    """``jobs - 1`` worker processes and this one, each a job: this process has its model
    loaded already, so it classifies while the workers start (spawning one costs a core
    about 0.3 s), and whenever the next batch to write is still in a worker, it takes a batch
    of its own instead of waiting. Records are yielded in input order."""
    context = multiprocessing.get_context("spawn")
    initargs = (classifier.settings, top_k, label_filter)
    window = 2 * (jobs - 1)  # batches queued at the workers: enough that none idles
    with context.Pool(jobs - 1, initializer=_start_worker, initargs=initargs) as pool:
        sent: dict[int, AsyncResult[list[Record]]] = {}
        here: dict[int, list[Record]] = {}
        head = upcoming = 0  # the next batch to yield, the next one nobody has taken
        while head < len(batches):
            while upcoming < len(batches) and len(sent) < window:
                sent[upcoming] = pool.apply_async(_work, (batches[upcoming],))
                upcoming += 1
            if head in here:
                yield from here.pop(head)
            elif sent[head].ready() or upcoming == len(batches):
                yield from sent.pop(head).get()
            else:
                here[upcoming] = classify_files(classifier, batches[upcoming], top_k, label_filter)
                upcoming += 1
                continue
            head += 1


# --- a whole run, as the command line does it ------------------------------------------------


STAGES = ("decode", "preprocess", "inference", "total")


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    jobs: int = 1
    # Seconds from the start until the first record came back: loading, workers starting.
    first_record_s: float | None = None
    # Per stage, the milliseconds summed over the classified images (their timing_ms).
    stage_ms: dict[str, float] = field(default_factory=dict)
    timed: int = 0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def add_timing(self, timing_ms: dict[str, float]) -> None:
        self.timed += 1
        for stage in STAGES:
            self.stage_ms[stage] = self.stage_ms.get(stage, 0.0) + timing_ms.get(stage, 0.0)

    def line(self, *, verbose: bool = False) -> str:
        skipped = f", {self.skipped} skipped (already done)" if self.skipped else ""
        text = (
            f"imagerec: {self.done} done, {self.failed} failed{skipped} in "
            f"{self.seconds:.1f} s ({self.rate:.1f} images/s)"
        )
        if not verbose:
            return text
        jobs = f"{self.jobs} job{'s' if self.jobs > 1 else ''}"
        first = (
            "" if self.first_record_s is None else f", first record at {self.first_record_s:.2f} s"
        )
        stages = ""
        if self.timed:
            means = ", ".join(
                f"{stage} {self.stage_ms[stage] / self.timed:.1f}" for stage in STAGES
            )
            stages = f"; per image in its job (ms): {means}"
        return f"{text}; {jobs}{first}{stages}"


@dataclass(frozen=True)
class Options:
    paths: Sequence[str]
    jobs: int | None = None
    top_k: int = 5
    model: str | None = None
    runtime: str | None = None
    output: Path | None = None
    resume: bool = False
    json: bool = False
    min_confidence: float = 0.0
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()


def run(
    options: Options,
    settings: Settings,
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> tuple[Summary, list[Record]]:
    """Walk, skip what is done, classify, write each record as it comes; return the summary.

    Per-file lines go to ``out`` (human lines, or JSON lines with ``json``) unless an output
    file takes the records; errors go to ``err``, one line each. The progress bar shows only
    when ``err`` is a terminal.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if options.output is not None:
        output_format(options.output)  # a bad extension fails before any work
    if options.resume and options.output is None:
        raise InvalidArgument("Expected --output FILE with --resume, received: no --output")
    paths = walk(options.paths, exclude=options.output)
    done: set[str] = set()
    if options.resume and options.output is not None:
        done = compact_for_resume(options.output)
    todo = [path for path in paths if path not in done]
    jobs = options.jobs if options.jobs is not None else available_cores()
    summary = Summary(skipped=len(paths) - len(todo), jobs=max(1, min(jobs, len(todo))))
    failures: list[Record] = []
    start = time.perf_counter()
    records = classify_paths(
        todo,
        settings,
        jobs=jobs,
        top_k=options.top_k,
        model=options.model,
        runtime=options.runtime,
        min_confidence=options.min_confidence,
        include_categories=options.include_categories,
        exclude_categories=options.exclude_categories,
    )
    writer = (
        open_writer(options.output, append=options.resume) if options.output is not None else None
    )
    try:
        with _progress(len(todo), err) as progress:
            for record in records:
                if summary.first_record_s is None:
                    summary.first_record_s = time.perf_counter() - start
                if writer is not None:
                    writer.write(record)
                if succeeded(record):
                    summary.done += 1
                    summary.add_timing(record.get("timing_ms", {}))
                    if writer is None:
                        progress.write(_stdout_line(record, options.json), out)
                else:
                    summary.failed += 1
                    failures.append(record)
                    if writer is None and options.json:
                        progress.write(_stdout_line(record, True), out)
                    else:
                        progress.write(text_line(record), err)
                progress.update()
    finally:
        summary.seconds = time.perf_counter() - start
        if writer is not None:
            writer.close()
    return summary, failures


def _stdout_line(record: Record, as_json: bool) -> str:
    return json.dumps(record, ensure_ascii=False) if as_json else text_line(record)


class _Progress:
    """tqdm on a terminal; plain prints otherwise (piped output stays clean)."""

    def __init__(self, total: int, err: IO[str]) -> None:
        self._bar: Any = None
        if total > 1 and err.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", file=err, dynamic_ncols=True, leave=False)

    def write(self, line: str, stream: IO[str]) -> None:
        if self._bar is not None:
            self._bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _progress(total: int, err: IO[str]) -> _Progress:
    return _Progress(total, err)
