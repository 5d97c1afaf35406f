"""Bulk machinery without the model: walking, records, output files, resume bookkeeping."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from imagerec.bulk.local import (
    CSV_COLUMNS,
    compact_for_resume,
    csv_row,
    error_record,
    open_writer,
    output_format,
    read_records,
    succeeded,
    text_line,
    walk,
)
from imagerec.core.errors import InvalidArgument

pytestmark = pytest.mark.unit

GOOD: dict[str, object] = {
    "filename": "a/cat.jpg",
    "model": {"name": "efficientnet_lite0", "runtime": "litert"},
    "summary": {"label": "cat", "score": 0.852345},
    "predictions": [
        {"index": 282, "label": "tiger cat", "score": 0.612345},
        {"index": 281, "label": "tabby", "score": 0.2},
    ],
    "image": {"width": 640, "height": 480, "format": "JPEG"},
    "timing_ms": {"total": 12.5},
}
BAD = error_record("a/notes.txt", "unsupported_format", "The file is not a supported image.")


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_walk_recurses_in_sorted_order_and_skips_hidden_files_and_folders(tmp_path: Path) -> None:
    # Given a tree with nested folders, a hidden file and a hidden folder
    for name in ["b.jpg", "a.png", "sub/z.jpg", "sub/deeper/y.jpg", ".DS_Store", ".git/x.jpg"]:
        touch(tmp_path / name)
    touch(tmp_path / "sub" / ".hidden.jpg")
    # When walked
    found = walk([str(tmp_path)])
    # Then every visible file is there once, in a stable order, and nothing hidden
    relative = [os.path.relpath(path, tmp_path) for path in found]
    assert relative == ["a.png", "b.jpg", "sub/deeper/y.jpg", "sub/z.jpg"]


def test_walk_keeps_named_files_even_missing_and_skips_the_output_file(tmp_path: Path) -> None:
    # Given a folder holding the output file itself, and a missing file named explicitly
    touch(tmp_path / "photo.jpg")
    output = touch(tmp_path / "results.jsonl")
    missing = str(tmp_path / "gone.jpg")
    # When walked with the output excluded
    found = walk([str(tmp_path), missing, f"{tmp_path}/./photo.jpg"], exclude=output)
    # Then the output is not classified, and named paths stay (normalised) so they get a record
    assert found == [str(tmp_path / "photo.jpg"), missing, str(tmp_path / "photo.jpg")]


def test_walk_does_not_follow_a_symlink_loop(tmp_path: Path) -> None:
    # Given a folder containing a link to itself
    touch(tmp_path / "photo.jpg")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    # When walked, then it ends, with the photo once
    assert walk([str(tmp_path)]) == [str(tmp_path / "photo.jpg")]


def test_text_line_is_the_apis_one_line_per_file() -> None:
    assert text_line(GOOD) == (
        "a/cat.jpg: a cat (85.2%), most likely a tiger cat (61.2%), tabby (20.0%)"
    )
    assert text_line(BAD) == "a/notes.txt: error: The file is not a supported image."
    assert succeeded(GOOD)
    assert not succeeded(BAD)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_records_written_are_read_back(tmp_path: Path, suffix: str) -> None:
    # Given a success and an error written to a file of either format
    path = tmp_path / f"out{suffix}"
    writer = open_writer(path)
    writer.write(GOOD)
    writer.write(BAD)
    writer.close()
    # When read back
    records = list(read_records(path))
    # Then the filenames, labels, scores and errors survive the round trip
    assert [r["filename"] for r in records] == ["a/cat.jpg", "a/notes.txt"]
    assert records[0]["predictions"] == GOOD["predictions"]
    assert records[0]["summary"] == GOOD["summary"]
    assert records[1]["error"] == BAD["error"]


def test_csv_has_the_documented_columns_and_top_k_as_json(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer(path)
    writer.write(GOOD)
    writer.write(BAD)
    writer.close()
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["label"] == "tiger cat"
    assert float(rows[0]["score"]) == pytest.approx(0.612345)
    # The summary people read is a column of its own, empty when the model is not sure
    assert rows[0]["summary"] == "cat"
    assert float(rows[0]["summary_score"]) == pytest.approx(0.852345)
    assert rows[1]["summary"] == ""
    assert json.loads(rows[0]["top_k"])[1]["label"] == "tabby"
    assert rows[0]["error_code"] == ""
    assert rows[1]["label"] == ""
    assert rows[1]["error_code"] == "unsupported_format"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_compact_for_resume_keeps_one_success_per_file_and_drops_failures(
    tmp_path: Path, suffix: str
) -> None:
    # Given an output with a success, a failure, a duplicate and a line cut short by a crash
    path = tmp_path / f"out{suffix}"
    writer = open_writer(path)
    for record in (GOOD, BAD, GOOD):
        writer.write(record)
    writer.close()
    with path.open("a") as stream:
        stream.write('{"filename": "a/half' if suffix == ".jsonl" else "a/half.jpg,lab")
    # When compacted for a resume
    done = compact_for_resume(path)
    # Then only the success is left, once, and the file is well formed for appending
    assert done == {"a/cat.jpg"}
    assert [r["filename"] for r in read_records(path)] == ["a/cat.jpg"]
    appended = open_writer(path, append=True)
    appended.write(BAD)
    appended.close()
    assert [r["filename"] for r in read_records(path)] == ["a/cat.jpg", "a/notes.txt"]


def test_an_output_name_must_say_its_format(tmp_path: Path) -> None:
    assert output_format(tmp_path / "x.JSONL") == "jsonl"
    assert output_format(tmp_path / "x.csv") == "csv"
    with pytest.raises(InvalidArgument, match=r"Expected an output file ending in \.jsonl"):
        output_format(tmp_path / "x.txt")


@pytest.mark.parametrize(
    "options",
    [["--model", "nope"], ["--jobs", "0"], ["-o", "x.txt"], ["--resume"]],
)
def test_bad_options_fail_once_before_any_output_is_written(
    tmp_path: Path, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an earlier output file and a folder to classify
    from imagerec.cli import main

    output = tmp_path / "earlier.jsonl"
    output.write_text(json.dumps(GOOD) + "\n")
    touch(tmp_path / "photos" / "a.jpg")
    args = ["classify", str(tmp_path / "photos"), *options]
    if "-o" not in options and "--resume" not in options:
        args += ["-o", str(output)]
    # When run with a bad option
    status = main(args)
    # Then it is one line and exit 2, and the earlier output is untouched
    assert status == 2
    assert capsys.readouterr().err.startswith("imagerec: error: ")
    assert list(read_records(output)) == [GOOD]


def test_a_photo_with_no_label_above_min_confidence_is_done_not_failed() -> None:
    # Given a classification whose predictions min_confidence filtered away
    empty = {**GOOD, "filename": "a/blur.jpg", "predictions": [], "summary": None}
    # Then it counts as done, reads as one line, and fits a CSV row
    assert succeeded(empty)
    assert text_line(empty) == "a/blur.jpg: no label reaches the minimum confidence"
    row = csv_row(empty)
    assert (row["label"], row["score"], row["top_k"]) == ("", "", "[]")


def test_the_verbose_summary_gives_the_jobs_and_each_stage_per_image() -> None:
    # Given a run's summary with two classified images
    from imagerec.bulk.local import Summary

    summary = Summary(done=2, seconds=0.5, jobs=2, first_record_s=0.25)
    summary.add_timing({"decode": 2.0, "preprocess": 3.0, "inference": 10.0, "total": 15.5})
    summary.add_timing({"decode": 4.0, "preprocess": 1.0, "inference": 12.0, "total": 17.5})
    # When it is written plainly and verbosely
    plain, verbose = summary.line(), summary.line(verbose=True)
    # Then the plain line has the rate only, the verbose one the stage means too
    assert plain == "imagerec: 2 done, 0 failed in 0.5 s (4.0 images/s)"
    assert verbose == (
        f"{plain}; 2 jobs, first record at 0.25 s; per image in its job (ms): "
        "decode 3.0, preprocess 2.0, inference 11.0, total 16.5"
    )


def test_each_job_gets_one_thread_unless_imagerec_threads_says_otherwise(tmp_path: Path) -> None:
    from imagerec.bulk.local import per_job
    from imagerec.core.settings import Settings

    cache = str(tmp_path)
    assert per_job(Settings.from_env({"IMAGEREC_CACHE_DIR": cache})).threads == 1
    chosen = Settings.from_env({"IMAGEREC_THREADS": "3", "IMAGEREC_CACHE_DIR": cache})
    assert per_job(chosen).threads == 3
