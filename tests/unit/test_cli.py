"""The command line: people's lines, JSON lines, and failures that never stop the rest."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from imagerec.cli import build_parser, main
from imagerec.http.events import http_event
from tests.conftest import EVENTS, PHOTOS, ROOT
from tests.forms import form_data
from tests.images import phone_style

pytestmark = [pytest.mark.unit, pytest.mark.model]


def test_classify_prints_one_line_per_file(capsys: pytest.CaptureFixture[str]) -> None:
    # Given two photos / When classified with the defaults
    coffee, rocket = str(PHOTOS["coffee"][0]), str(PHOTOS["rocket"][0])
    assert main(["classify", "--jobs", "1", coffee, rocket]) == 0
    # Then one line each, as the API's text answer has it: "<file>: <label> (<score>%)"
    assert capsys.readouterr().out.splitlines() == [
        f"{coffee}: espresso (94.5%)",
        f"{rocket}: not sure, maybe a missile (25.3%)",
    ]


def test_top_k_puts_the_runners_up_on_the_same_line(capsys: pytest.CaptureFixture[str]) -> None:
    coffee = str(PHOTOS["coffee"][0])
    assert main(["classify", "--top-k", "3", coffee]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{coffee}: espresso (94.5%), ")
    assert len(line.split("), ")) == 3


def test_a_surer_summary_leads_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Given Chelsea, whose confidence the model splits over several cats
    chelsea = str(PHOTOS["chelsea"][0])
    assert main(["classify", chelsea]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    # Then the summed "cat" leads, and the top class follows it
    assert re.fullmatch(
        rf"{re.escape(chelsea)}: a cat \(9\d\.\d%\), most likely an? [a-z ]+ \(\d+\.\d%\)", line
    ), line


def test_json_lines_carry_summary_parents_and_categories(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["classify", "--json", "--exclude-categories", "food,person"]
    assert main([*args, str(PHOTOS["chelsea"][0])]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert result["summary"]["label"] == "cat"
    assert all(p["parents"] for p in result["predictions"][:3])
    names = {c["name"] for c in result["categories"]}
    assert "animal" in names
    assert not names & {"food", "person"}


def test_a_bad_category_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--include-categories", "animals", "x.jpg"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("imagerec: error: Expected include_categories from ")
    assert "animal, " in line  # the message lists the real names


def test_bad_files_are_reported_and_the_rest_still_classified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a text file, a missing file and two photos (a folder would be walked)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    files = [
        str(notes),
        str(tmp_path / "missing.jpg"),
        str(PHOTOS["coffee"][0]),
        str(PHOTOS["rocket"][0]),
    ]
    # When classified with --json, in this process
    status = main(["classify", "--json", "--jobs", "1", "-k", "1", *files])
    out, err = capsys.readouterr()
    # Then every input has one JSON line, in order, the photos still classified, exit non-zero
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["filename"] for r in results] == files
    assert [r.get("error", {}).get("code") for r in results] == [
        "unsupported_format",
        "file_not_found",
        None,
        None,
    ]
    assert results[2]["predictions"][0]["label"] == "espresso"
    assert results[3]["predictions"][0]["label"] == "missile"
    assert status == 1
    assert "Traceback" not in err


def test_human_errors_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(PHOTOS["rocket"][0].read_bytes()[:2000])
    assert main(["classify", "-j", "1", str(broken), str(tmp_path / "gone.png")]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    # One line per failure, and no summary for files named one by one (not a terminal)
    assert err_lines == [
        f"{broken}: error: The image data is corrupt or truncated.",
        f"{tmp_path / 'gone.png'}: error: No such file.",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["classify", "--top-k", "0", "x.jpg"], "Expected top_k between 1 and 20"),
        (["classify", "--model", "nope", "x.jpg"], "Expected a model name in efficientnet_lite0"),
        (["classify", "--model", "../../etc", "x.jpg"], "Expected a model name"),
        # Known but not built: never a build from classify, only how to make one
        (["classify", "-m", "mobilenet_v2", "x.jpg"], "`imagerec build-model mobilenet_v2`"),
        (["serve", "--workers", "0"], "Expected --workers >= 1"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("imagerec: error: ")
    assert says in err


def test_serve_without_its_server_library_is_one_line_with_the_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an install without the `serve` extra (as the Lambda image is): no waitress
    monkeypatch.setitem(sys.modules, "waitress", None)
    monkeypatch.delitem(sys.modules, "imagerec.http.server", raising=False)
    # When imagerec serve starts / Then one line says what to install, before any model loads
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'imagerec[serve]'" in err


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("IMAGEREC_MAX_BYTES", "ten", "Expected IMAGEREC_MAX_BYTES to be an integer"),
        ("IMAGEREC_RUNTIME", "gpu", "Expected IMAGEREC_RUNTIME in auto, litert, keras"),
        ("IMAGEREC_THREADS", "0", "Expected IMAGEREC_THREADS >= 1"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    variable: str,
    value: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["classify", str(PHOTOS["coffee"][0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"imagerec: error: {says}")


def test_a_tiny_byte_cap_is_reported_in_bytes_not_zero_megabytes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGEREC_MAX_BYTES", "1000")
    coffee = str(PHOTOS["coffee"][0])
    assert main(["classify", coffee]) == 1
    assert capsys.readouterr().err.endswith("; the limit is 1 KB.\n")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert re.fullmatch(r"imagerec \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_models_lists_the_default_as_built(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["efficientnet_lite0"]["default"]
    assert rows["efficientnet_lite0"]["built"]
    assert {"mobilenet_v2", "resnet50", "efficientnet_b0"} <= set(rows)
    # And the three Lite models, each with its input size and published top-1
    lite = {n: (rows[n]["input_size"], rows[n]["top1_accuracy"]) for n in rows if "lite" in n}
    assert lite == {
        "efficientnet_lite0": (224, 75.1),
        "efficientnet_lite1": (240, 76.7),
        "efficientnet_lite2": (260, 77.6),
    }
    assert all("latency" in row for row in rows.values())


def test_models_table_shows_accuracy_and_latency(capsys: pytest.CaptureFixture[str]) -> None:
    # Given / When the human listing is printed
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # Then each Lite row carries its input size and top-1, and the footer says what they mean
    row = next(line for line in lines if " efficientnet_lite2 " in line)
    assert "260px" in row
    assert "77.6%" in row
    assert "published ImageNet top-1, latency (LiteRT inference, 1 thread" in " ".join(out.split())


def test_invoke_prints_one_json_response_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        EVENTS / "health.json",
        EVENTS / "classify-jpeg.json",
        EVENTS / "bad-not-an-image.json",
    ]
    assert main(["invoke", *map(str, events)]) == 0
    responses = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["statusCode"] for r in responses] == [200, 200, 415]
    assert json.loads(responses[1]["body"])["predictions"][0]["label"] == "espresso"


def test_invoke_reports_an_unreadable_event_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["invoke", str(bad), str(EVENTS / "health.json")]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["statusCode"] == 200
    assert err.count("\n") == 1
    assert err.startswith(f"{bad}: error: not an API Gateway event: ")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
        else:
            found |= {option for option in action.option_strings if option.startswith("--")}
    return found


def test_the_readme_names_every_option() -> None:
    # Given every long option of every command / Then the README's table names each one
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(o for o in _options(build_parser()) if f"`{o}" not in readme)
    assert not missing, f"README.md does not document {missing}"


def test_every_option_says_what_it_does_and_its_default() -> None:
    for action in _all_actions(build_parser()):
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{action.option_strings} has no help"
        takes_value = action.nargs != 0 and not isinstance(action, argparse._VersionAction)
        if takes_value and action.dest != "help":
            assert "default" in action.help, f"{action.option_strings} does not say its default"


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions += _all_actions(sub)
        else:
            actions.append(action)
    return actions


@pytest.mark.parametrize("name", ["coffee", "grace_hopper"])
def test_heic_and_avif_give_the_jpeg_answer(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one photo as a JPEG and as a phone saves it: HEIC and AVIF, upright and turned
    source = PHOTOS[name][0]
    jpeg = tmp_path / f"{name}.jpg"
    with Image.open(source) as im:
        im.convert("RGB").save(jpeg, "JPEG", quality=95)
    files = [jpeg]
    for fmt, suffix in (("HEIF", "heic"), ("AVIF", "avif")):
        for turned in (False, True):
            path = tmp_path / f"{name}{'-turned' if turned else ''}.{suffix}"
            path.write_bytes(phone_style(source, fmt, turned=turned))
            files.append(path)
    # When the command line classifies them all
    assert main(["classify", "--json", "-k", "1", *map(str, files)]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Then every file gets the JPEG's label, at the JPEG's upright size, in its own format
    labels = {r["filename"]: r["predictions"][0]["label"] for r in results}
    assert set(labels.values()) == {PHOTOS[name][1]}, labels
    sizes = {(r["image"]["width"], r["image"]["height"]) for r in results}
    assert len(sizes) == 1
    assert [r["image"]["format"] for r in results] == ["JPEG", "HEIF", "HEIF", "AVIF", "AVIF"]


def test_invoke_runs_the_upload_flow_with_the_local_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event asking for an upload form
    def run(name: str, raw: dict[str, object]) -> dict[str, object]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(raw))
        assert main(["invoke", str(path)]) == 0
        response: dict[str, object] = json.loads(capsys.readouterr().out)
        return response

    created = run("create", http_event("POST", "/api/uploads", {"host": "localhost:8080"}, b""))
    upload = json.loads(str(created["body"]))["upload"]
    assert upload["url"] == f"http://localhost:8080/api/uploads/{upload['id']}"
    # When the form event, then a classify event, are invoked (each its own run)
    body, content_type = form_data(upload["fields"], PHOTOS["rocket"][0].read_bytes())
    form = http_event("POST", f"/api/uploads/{upload['id']}", {"content-type": content_type}, body)
    assert run("form", form)["statusCode"] == 204
    request = json.dumps({"upload": upload["id"], "top_k": 1}).encode()
    classify = http_event("POST", "/api/classify", {"content-type": "application/json"}, request)
    result = run("classify", classify)
    # Then the upload, stored between runs, is classified
    assert result["statusCode"] == 200
    assert json.loads(str(result["body"]))["predictions"][0]["label"] == "missile"
