"""`imagerec classify FOLDER --jobs N --output FILE [--resume]` end to end, with the real model
and real worker processes, on a generated tree of photos, broken files and text."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from imagerec.bulk.local import read_records, walk
from imagerec.cli import main
from imagerec.models.classifier import load_classifier
from tests.conftest import PHOTOS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, str | None]:
    """A folder tree; maps each file that must get a record to its expected top-1 label, or
    None for an error. Hidden files hold real photos, so classifying them would show."""
    root = tmp_path / "photos"
    expected: dict[str, str | None] = {}

    def put(relative: str, data: bytes, label: str | None, *, hidden: bool = False) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if not hidden:
            expected[str(path)] = label

    for index, (name, (source, label)) in enumerate(sorted(PHOTOS.items())):
        put(f"{name}{source.suffix}", source.read_bytes(), label)
        put(f"trip/day{index}/{name}{source.suffix}", source.read_bytes(), label)
    rocket = PHOTOS["rocket"][0].read_bytes()
    put("trip/broken.jpg", rocket[: len(rocket) // 3], None)
    put("notes.txt", b"these are not photos\n", None)
    put("trip/empty.png", b"", None)
    put(".secret.jpg", rocket, None, hidden=True)
    put(".thumbnails/rocket.jpg", rocket, None, hidden=True)
    return expected


def photos_root(tree: dict[str, str | None]) -> str:
    # The first file put is at the top of the tree
    return str(Path(next(iter(tree))).parent)


def check_records(records: list[dict[str, object]], tree: dict[str, str | None]) -> None:
    # Exactly one record per visible file, right labels, error records for the bad ones
    by_name = {str(record["filename"]): record for record in records}
    assert len(records) == len(by_name) == len(tree)
    assert set(by_name) == set(tree)
    for filename, label in tree.items():
        record = by_name[filename]
        if label is None:
            assert "error" in record, filename
        else:
            assert record["predictions"][0]["label"] == label, filename  # type: ignore[index]


def test_folder_with_two_jobs_gives_one_record_per_file_and_exits_non_zero(
    tree: dict[str, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the tree and a JSON-lines output file
    output = tmp_path / "results.jsonl"
    # When classified with two worker processes
    status = main(["classify", photos_root(tree), "--jobs", "2", "--output", str(output)])
    out, err = capsys.readouterr()
    records = list(read_records(output))
    # Then every visible file has one record, hidden ones none, and the bad files are errors
    check_records(records, tree)
    codes = {Path(str(r["filename"])).name: r["error"]["code"] for r in records if "error" in r}  # type: ignore[index]
    assert codes == {
        "broken.jpg": "corrupt_image",
        "notes.txt": "unsupported_format",
        "empty.png": "empty_body",
    }
    # And records come in walk order, whatever the workers' finishing order
    assert [r["filename"] for r in records] == walk([photos_root(tree)])
    # And the run fails, says so in one summary line, one line per bad file, and nothing on stdout
    assert status == 1
    assert out == ""
    assert err.count(": error: ") == 3
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"imagerec: {len(tree) - 3} done, 3 failed in ")
    assert summary.endswith("images/s)")
    assert "Traceback" not in err


def test_bulk_answers_are_those_of_classifying_each_file_alone(
    tree: dict[str, str | None], tmp_path: Path
) -> None:
    # Given the records of a two-worker run
    output = tmp_path / "results.jsonl"
    main(["classify", photos_root(tree), "-j", "2", "-k", "3", "-o", str(output)])
    # When each photo is classified alone, in this process with its default threads
    classifier = load_classifier()
    for record in read_records(output):
        if "error" in record:
            continue
        alone = classifier.classify(Path(record["filename"]).read_bytes(), 3).to_dict()
        # Then labels and scores are the same
        assert record["predictions"] == alone["predictions"], record["filename"]
        assert record["image"] == alone["image"]


def test_resume_redoes_nothing_that_succeeded_and_retries_the_failures(
    tree: dict[str, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a finished run, whose first success we mark so that a redo would show
    root = photos_root(tree)
    output = tmp_path / "results.jsonl"
    assert main(["classify", root, "-j", "2", "-o", str(output)]) == 1
    records = list(read_records(output))
    marked = next(r for r in records if "error" not in r)
    marked["predictions"][0]["label"] = "left alone by --resume"
    output.write_text("".join(json.dumps(r) + "\n" for r in records))
    # And the broken file is then repaired
    broken = next(name for name in tree if name.endswith("broken.jpg"))
    shutil.copyfile(PHOTOS["rocket"][0], broken)
    tree[broken] = PHOTOS["rocket"][1]
    capsys.readouterr()
    # When the run is resumed
    status = main(["classify", root, "-j", "2", "-o", str(output), "--resume"])
    err = capsys.readouterr().err
    after = list(read_records(output))
    by_name = {r["filename"]: r for r in after}
    # Then the marked success was not redone, the repaired file now succeeds,
    # and there is still exactly one record per file
    assert by_name[marked["filename"]]["predictions"][0]["label"] == "left alone by --resume"
    assert by_name[broken]["predictions"][0]["label"] == PHOTOS["rocket"][1]
    tree[marked["filename"]] = "left alone by --resume"
    check_records(after, tree)
    # And only the three earlier failures were attempted
    done_before = len(tree) - 3
    assert f"2 failed, {done_before} skipped (already done)" in err
    assert err.strip().splitlines()[-1].startswith("imagerec: 1 done, 2 failed")
    assert status == 1


def test_csv_output_and_its_resume(
    tree: dict[str, str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CSV output of the tree, one worker
    root = photos_root(tree)
    output = tmp_path / "results.csv"
    assert main(["classify", root, "-j", "1", "-o", str(output)]) == 1
    with output.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    # Then it has a header and one row per file: label, score and top-k, or an error code
    assert list(rows[0]) == [
        "filename",
        "summary",
        "summary_score",
        "label",
        "score",
        "top_k",
        "error_code",
        "error_message",
    ]
    assert {row["filename"] for row in rows} == set(tree)
    for row in rows:
        label = tree[row["filename"]]
        if label is None:
            assert row["error_code"]
            assert not row["label"]
        else:
            assert row["label"] == label
            assert json.loads(row["top_k"])[0]["label"] == label
            assert 0 < float(row["score"]) <= 1
            # The summary column holds what people read ("cat"), or nothing when not sure
            if row["summary"]:
                assert float(row["summary_score"]) >= float(row["score"])
    capsys.readouterr()
    # When resumed with nothing changed
    assert main(["classify", root, "-j", "1", "-o", str(output), "--resume"]) == 1
    # Then only the failures are tried again, and the CSV still has one row per file
    assert "0 done, 3 failed" in capsys.readouterr().err
    with output.open(newline="") as stream:
        again = list(csv.DictReader(stream))
    assert sorted(row["filename"] for row in again) == sorted(tree)


def test_without_output_each_file_is_one_line_on_stdout(
    tree: dict[str, str | None], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the tree, classified with the default jobs and no output file
    status = main(["classify", photos_root(tree)])
    out, err = capsys.readouterr()
    # Then each photo is one "file: label (score%)" line (led by a familiar summary: "a cat
    # (92.0%), most likely a tiger cat (41.4%)", or "not sure, maybe a missile (25.3%)"), and
    # each bad file one error line
    lines = out.splitlines()
    assert len(lines) == sum(label is not None for label in tree.values())
    for line in lines:
        filename, rest = line.split(": ", 1)
        label = tree[filename]
        assert rest.startswith(f"{label} (") or re.search(
            rf"(, most likely|^not sure, maybe) an? {label} \(", rest
        )
        assert rest.endswith("%)")
    assert err.count(": error: ") == 3
    assert status == 1
