"""The classify image as functions/classify/Dockerfile and template.yaml describe it: its
instructions, its final stage's environment and command, and each function's handler string and
literal environment. Tests read these instead of repeating them, so a change to the Dockerfile
or the template is a change to what they run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from tests.conftest import ROOT

DOCKERFILE = ROOT / "functions" / "classify" / "Dockerfile"
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class FunctionVenv:
    """A fresh venv with what the image's final stage installs (tests/integration/conftest.py)."""

    python: Path
    # pip's verbose log of installing layers/imagerec there, for what the build warned of.
    package_log: str


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for every line of the Dockerfile, continuations joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    """The instructions after the last FROM: what the served image is made of."""
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from + 1 :]


def _arg_defaults(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(args.split("=", 1) for op, args in steps if op == "ARG" and "=" in args)


def base_image() -> str:
    return _arg_defaults(instructions())["BASE_IMAGE"]


def image_python() -> str:
    """The base image's Python, "3.13" for public.ecr.aws/lambda/python:3.13.<date>."""
    match = re.search(r":(3\.\d+)\.", base_image())
    assert match, base_image()
    return match[1]


def image_environment() -> dict[str, str]:
    """The final stage's ENV, with its ARG defaults substituted (as `docker build` does)."""
    steps = final_stage()
    defaults = _arg_defaults(steps)
    env: dict[str, str] = {}
    for op, args in steps:
        if op == "ENV":
            for pair in args.split():
                name, value = pair.split("=", 1)
                env[name] = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m[1]], value)
    return env


def image_command() -> list[str]:
    """The final stage's CMD (exec form): the handler string Lambda starts by default."""
    commands = [json.loads(args) for op, args in final_stage() if op == "CMD"]
    assert len(commands) == 1, commands
    return list(commands[0])


@cache
def _template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    return parsed


def function_properties(logical_id: str) -> dict[str, Any]:
    resource = _template()["Resources"][logical_id]
    assert resource["Type"] == "AWS::Serverless::Function", logical_id
    properties: dict[str, Any] = resource["Properties"]
    return properties


def function_command(logical_id: str) -> list[str]:
    """What Lambda runs for this function: its ImageConfig Command, else the image's CMD."""
    command = function_properties(logical_id).get("ImageConfig", {}).get("Command")
    return list(command) if command else image_command()


def function_environment(logical_id: str) -> dict[str, str]:
    """The function's environment variables whose values are literal strings in the template
    (those made by intrinsic functions, such as bucket names, exist only in a stack)."""
    variables = function_properties(logical_id).get("Environment", {}).get("Variables", {})
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def parameter_default(name: str) -> Any:
    return _template()["Parameters"][name]["Default"]
