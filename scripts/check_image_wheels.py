"""Resolve the function image's pins exactly as the image's pip would, without Docker.

`docker build` cannot run here, and a venv on this machine (a newer glibc) hides pins that have
no wheel for the image. So for each stage of functions/classify/Dockerfile and each Lambda
architecture, this asks pip to resolve the same requirements for the base image's Python and
only the platform tags its glibc accepts, binary wheels only, and fails on anything unresolved.

Each stage also installs layers/imagerec with its declared dependencies, so those are resolved
with the pins, and every package pip would install (the dependencies of the dependencies too)
must be pinned in the stage's own requirement files: a package left to the constraints file
alone, or to nothing, is one the image's pip fetches on its own, and the check fails on it.

    python scripts/check_image_wheels.py                  # both architectures
    python scripts/check_image_wheels.py --arch aarch64   # one
    python scripts/check_image_wheels.py --base public.ecr.aws/lambda/python:3.11.2026.02.28.00
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "functions" / "classify" / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"
FUNCTION = ROOT / "functions" / "classify"
PACKAGE = ROOT / "layers" / "imagerec" / "pyproject.toml"
# What each stage of the Dockerfile installs, in the order it installs them.
STAGES = {
    "final": ("requirements.txt",),
    "build": ("requirements.txt", "requirements-build.txt"),
}
ARCHES = ("x86_64", "aarch64")
# Lambda's Python base images: 3.12 and later run on Amazon Linux 2023 (glibc 2.34); older ones
# on Amazon Linux 2 (glibc 2.26).
GLIBC_BY_PYTHON = {"3.9": 26, "3.10": 26, "3.11": 26, "3.12": 34, "3.13": 34, "3.14": 34}
# The oldest manylinux each architecture has wheels for (aarch64 began with manylinux2014).
OLDEST_GLIBC = {"x86_64": 5, "aarch64": 17}
LEGACY = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}


@dataclass(frozen=True)
class Target:
    python: str  # "3.13"
    glibc_minor: int  # 34 for glibc 2.34
    arch: str

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


def base_image(dockerfile: Path) -> str:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if not match:
        raise SystemExit(f"{dockerfile}: no `ARG BASE_IMAGE=...` line")
    return match.group(1)


def python_of(image: str) -> str:
    """public.ecr.aws/lambda/python:3.13.2026.06.05.14 → 3.13."""
    pattern = r"public\.ecr\.aws/lambda/python:(3\.\d+)(\.[\w.-]+)?(@sha256:\w+)?"
    match = re.fullmatch(pattern, image)
    if not match:
        raise SystemExit(f"Expected a public.ecr.aws/lambda/python image, received: {image}")
    return match.group(1)


def platform_tags(glibc_minor: int, arch: str) -> list[str]:
    """Every platform tag a pip on that glibc accepts, newest first."""
    oldest = OLDEST_GLIBC[arch]
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, oldest - 1, -1)]
    tags += [f"{alias}_{arch}" for alias, minor in LEGACY.items() if oldest <= minor <= glibc_minor]
    return tags


def marker_environment(target: Target) -> dict[str, str]:
    env: dict[str, str] = dict(default_environment())
    env.update(
        platform_machine=target.arch,
        python_version=target.python,
        python_full_version=f"{target.python}.0",
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
    )
    return env


def requirements_for(files: tuple[str, ...], target: Target) -> list[str]:
    """The pins the image's pip would install: markers evaluated for the target, not for us."""
    env = marker_environment(target)
    pins: list[str] = []
    for name in files:
        for line in (FUNCTION / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(env):
                requirement.marker = None
                pins.append(str(requirement))
    return pins


def package_dependencies(target: Target) -> list[str]:
    """What ``pip install layers/imagerec`` (no extras) asks for, for the target's markers."""
    declared = tomllib.loads(PACKAGE.read_text())["project"]["dependencies"]
    env = marker_environment(target)
    wanted = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(env):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted


def pinned_names(pins: list[str]) -> set[str]:
    """The packages the stage's requirement files pin to one exact version."""
    names: set[str] = set()
    for pin in pins:
        requirement = Requirement(pin)
        if any(spec.operator in {"==", "==="} for spec in requirement.specifier):
            names.add(canonicalize_name(requirement.name))
    return names


@dataclass(frozen=True)
class Resolution:
    returncode: int
    stderr: str
    installs: dict[str, str]  # canonical name → version pip would install


def resolve(pins: list[str], target: Target) -> Resolution:
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n")
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
            "--target", str(Path(scratch) / "target"), "--report", str(report),
            "--python-version", target.python, "--implementation", "cp", "--abi", target.abi,
            *(f"--platform={tag}" for tag in platform_tags(target.glibc_minor, target.arch)),
            "-c", str(CONSTRAINTS), "-r", str(requirements),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        installs: dict[str, str] = {}
        if done.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                metadata = item["metadata"]
                installs[canonicalize_name(metadata["name"])] = metadata["version"]
        return Resolution(done.returncode, done.stderr, installs)


def unpinned(pins: list[str], installs: dict[str, str]) -> list[str]:
    """``name==version`` of each package pip would install that the stage's files do not pin."""
    pinned = pinned_names(pins)
    return sorted(f"{name}=={version}" for name, version in installs.items() if name not in pinned)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", choices=ARCHES, help="default: both")
    parser.add_argument("--base", help="base image (default: the Dockerfile's BASE_IMAGE)")
    args = parser.parse_args(argv)
    image = args.base or base_image(DOCKERFILE)
    python = python_of(image)
    if python not in GLIBC_BY_PYTHON:
        raise SystemExit(f"Unknown glibc for the Lambda Python {python} base image: {image}")
    failures = 0
    for arch in args.arch or ARCHES:
        target = Target(python, GLIBC_BY_PYTHON[python], arch)
        for stage, files in STAGES.items():
            pins = requirements_for(files, target)
            result = resolve(pins + package_dependencies(target), target)
            where = f"{image} {arch} {stage} stage (glibc 2.{target.glibc_minor})"
            if result.returncode != 0:
                failures += 1
                errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR")]
                print(f"FAIL: {where}:", *(errors or result.stderr.splitlines()[-3:]), sep="\n  ")
                continue
            loose = unpinned(pins, result.installs)
            if loose:
                failures += 1
                print(
                    f"FAIL: {where}: installed but not pinned in {' + '.join(files)}:",
                    *loose,
                    sep="\n  ",
                )
                continue
            print(
                f"ok: {where}: every pin has a binary wheel, and all {len(result.installs)} "
                "packages it installs are pinned"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
