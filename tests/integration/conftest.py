"""The classify image's contents, assembled once per session without Docker: a fresh venv with
its final stage's pins, the model its build stage exports, its task root, and the runtime
interface client that starts it. Built only when a test asks (they take a minute)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.function_image import FunctionVenv, final_stage

CONSTRAINTS = ROOT / "constraints.txt"
REQUIREMENTS = ROOT / "functions" / "classify" / "requirements.txt"


@pytest.fixture(scope="session")
def function_venv(tmp_path_factory: pytest.TempPathFactory) -> FunctionVenv:
    """A fresh venv holding only what the image's final stage installs: its pinned
    requirements, then the package with its declared dependencies (all already there)."""
    env_dir = tmp_path_factory.mktemp("function") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "--quiet", "--only-binary=:all:", "-c", CONSTRAINTS, "-r", REQUIREMENTS],
        check=True,
    )
    package = subprocess.run(
        [*pip, "-v", "-c", CONSTRAINTS, ROOT / "layers/imagerec"],
        capture_output=True,
        text=True,
        check=True,
    )
    return FunctionVenv(python, package.stdout + package.stderr)


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model as the image's build stage exports it (`imagerec build-model --export`),
    from the development venv's already built cache."""
    models = tmp_path_factory.mktemp("opt") / "models"
    subprocess.run([ROOT / ".venv/bin/imagerec", "build-model", "--export", models], check=True)
    return models


@pytest.fixture(scope="session")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """${LAMBDA_TASK_ROOT}: the files the final stage copies there, and nothing else."""
    root = tmp_path_factory.mktemp("var") / "task"
    root.mkdir()
    for op, args in final_stage():
        if op != "COPY" or "--from=" in args:
            continue
        *sources, destination = shlex.split(args)
        if destination.rstrip("/") == "${LAMBDA_TASK_ROOT}":
            for source in sources:
                shutil.copy2(ROOT / source, root)
    assert any(root.iterdir()), "the final stage copies nothing into ${LAMBDA_TASK_ROOT}"
    return root


@pytest.fixture(scope="session")
def runtime_client(function_venv: FunctionVenv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric at its pin (constraints.txt), in a folder of its own beside the function's
    packages, as the Lambda base image keeps its own in /var/runtime."""
    runtime_dir = tmp_path_factory.mktemp("var") / "runtime"
    pip = [str(function_venv.python), "-m", "pip", "install", "--disable-pip-version-check"]
    target = ["--target", str(runtime_dir)]
    subprocess.run(
        [*pip, "--quiet", "--only-binary=:all:", "-c", str(CONSTRAINTS), *target, "awslambdaric"],
        check=True,
    )
    return runtime_dir
