"""The function image cannot be built here (no Docker engine), so everything it relies on is
checked another way: the files it copies, its pins, and its final stage's contents installed
into a fresh venv, where the handler must answer with no TensorFlow present."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import check_image_wheels
from tests.conftest import EVENTS, ROOT
from tests.function_image import DOCKERFILE, FunctionVenv, instructions

pytestmark = pytest.mark.integration


def copy_sources() -> list[str]:
    sources = []
    for op, args in instructions():
        if op == "COPY" and "--from=" not in args:
            *paths, _destination = shlex.split(args)
            sources.extend(paths)
    return sources


def test_every_file_the_image_copies_exists_and_is_not_docker_ignored() -> None:
    ignore = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "**", "the context should start from nothing and allow what the image needs"
    allowed = [pattern[1:].rstrip("/") for pattern in ignore if pattern.startswith("!")]
    for source in copy_sources():
        assert (ROOT / source).exists(), source
        assert any(
            source == a or source.startswith(a + "/") or fnmatch.fnmatch(source, a) for a in allowed
        ), source


def test_base_image_is_pinned_and_the_handler_is_the_command() -> None:
    base = next(
        args for op, args in instructions() if op == "ARG" and args.startswith("BASE_IMAGE=")
    )
    assert re.fullmatch(
        r"BASE_IMAGE=public\.ecr\.aws/lambda/python:3\.1[3-9]\.\d{4}\.\d\d\.\d\d\.\d\d", base
    )
    assert ("CMD", '["app.handler"]') in instructions()
    assert "handler" in (ROOT / "functions" / "classify" / "app.py").read_text()


def test_requirements_are_exact_pins_and_the_dev_venv_uses_them() -> None:
    for name in ("requirements.txt", "requirements-build.txt"):
        pins = [
            line
            for line in (ROOT / "functions" / "classify" / name).read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert pins
        pin = r"[A-Za-z0-9_.-]+==[\w.]+"
        marker = r'(; platform_machine == "(x86_64|aarch64)")?'
        assert all(re.fullmatch(pin + marker, line) for line in pins), pins
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r functions/classify/requirements.txt" in dev
    assert "-r functions/classify/requirements-build.txt" in dev
    final_stage = DOCKERFILE.read_text().rsplit("FROM ", 1)[1]
    assert "requirements-build" not in final_stage, "the served image must not carry TensorFlow"


def installed_closure(wanted: list[str], target: check_image_wheels.Target) -> dict[str, str]:
    """Every package ``wanted`` brings in, with its dependencies' dependencies, read from this
    venv's installed metadata (the same pins as the image) with the image's markers."""
    env = check_image_wheels.marker_environment(target)
    found: dict[str, str] = {}
    queue = [Requirement(line) for line in wanted]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        distribution = importlib.metadata.distribution(requirement.name)
        found[name] = distribution.version
        for line in distribution.requires or []:
            dependency = Requirement(line)
            if dependency.marker is None or dependency.marker.evaluate({**env, "extra": ""}):
                queue.append(dependency)
    return found


def test_every_package_the_final_stage_installs_is_pinned_and_the_check_sees_one_left_out() -> None:
    # Given what the image's final stage installs: its requirements, then the package with
    # its declared dependencies (for the image's Python, on arm64)
    target = check_image_wheels.Target("3.13", 34, "aarch64")
    pins = check_image_wheels.requirements_for(check_image_wheels.STAGES["final"], target)
    wanted = pins + check_image_wheels.package_dependencies(target)
    closure = installed_closure(wanted, target)
    # Then every one of them, down to the dependencies' dependencies, is pinned by the stage
    # itself, so installing the package fetches nothing
    assert "tqdm" in closure
    assert "botocore" in closure
    assert check_image_wheels.unpinned(pins, closure) == []
    # And the wheel check names a dependency that only the package declares, once unpinned
    without_tqdm = [pin for pin in pins if not pin.startswith("tqdm")]
    assert check_image_wheels.unpinned(without_tqdm, closure) == [f"tqdm=={closure['tqdm']}"]
    # And one that only a pinned package needs (boto3 needs botocore)
    without_botocore = [pin for pin in pins if not pin.startswith("botocore")]
    assert check_image_wheels.unpinned(without_botocore, closure) == [
        f"botocore=={closure['botocore']}"
    ]


@pytest.mark.slow
def test_final_stage_installs_into_a_fresh_venv_and_answers_without_tensorflow(
    function_venv: FunctionVenv, exported_models: Path, task_root: Path, tmp_path: Path
) -> None:
    # Given a fresh venv holding only what the image's final stage installs (the fixture), with
    # the package's declared dependencies all already there, and a build that warns of nothing
    # (no setuptools deprecation, no data folder left out of the packages)
    python = function_venv.python
    assert "Deprecat" not in function_venv.package_log
    assert "absent from the" not in function_venv.package_log
    # And it brings nothing of its own: every dependency was pinned and installed before it
    lines = function_venv.package_log.splitlines()
    (installed,) = [ln for ln in lines if ln.startswith("Successfully installed")]
    assert installed == "Successfully installed imagerec-0.1.0"
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    # The model as the image's build stage exports it: LiteRT's file, no Keras model
    models = exported_models
    assert not list(models.rglob("*.keras"))
    # When the Lambda entry point is imported there, as the runtime does, and invoked
    script = (
        "import json, sys, app\n"
        "from imagerec.http.events import LocalContext\n"
        f"event = json.load(open({str(EVENTS / 'classify-jpeg.json')!r}))\n"
        "response = app.handler(event, LocalContext())\n"
        "print(json.dumps({'status': response['statusCode'], 'body': json.loads(response['body']),"
        " 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "IMAGEREC_CACHE_DIR": str(models),
        "IMAGEREC_RUNTIME": "litert",
        "AWS_LAMBDA_FUNCTION_NAME": "imagerec-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
        "POWERTOOLS_SERVICE_NAME": "imagerec",
    }
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=task_root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Then it answers espresso with LiteRT, and TensorFlow is neither loaded nor installed
    assert result["status"] == 200
    assert result["body"]["predictions"][0]["label"] == "espresso"
    assert result["body"]["model"]["runtime"] == "litert"
    assert not result["tensorflow"]
    probe = subprocess.run(
        [str(python), "-c", "import tensorflow"], capture_output=True, check=False
    )
    assert probe.returncode != 0
    # And on Lambda the handler publishes EMF metrics (cold start, timings) to stdout
    emf = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"_aws"')]
    names = {
        m["Name"] for blob in emf for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"ColdStart", "DecodeTime", "InferenceTime", "TotalTime"} <= names
