"""Checks that `make deploy ENV=...` can succeed, before it builds or creates anything.

    python3 scripts/preflight.py ENV [--machine ARCH]

One line per check; a failure says what to do and the exit status is 1. Standard library only
(it runs with the system python3, before any venv exists), and the AWS CLI for the account:
- the build platform: an arm64 machine cannot build the x86_64 image (stage 1 runs TensorFlow,
  which aborts under x86_64 emulation);
- a container runtime (Docker, or Finch) that answers;
- valid AWS credentials (`aws sts get-caller-identity`);
- the concurrency the environment asks for (ReservedConcurrency, ProvisionedConcurrency) fits
  the account's unreserved concurrency, of which Lambda always keeps 100 unreserved.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"
TEMPLATE = ROOT / "template.yaml"
# Lambda refuses reserved or provisioned concurrency that would leave fewer unreserved than this.
UNRESERVED_MINIMUM = 100
COMMAND_TIMEOUT_S = 60
ARM_MACHINES = {"arm64", "aarch64"}
X86_MACHINES = {"x86_64", "amd64"}
BINFMT_AARCH64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


class PreflightError(Exception):
    """One failed check; its message is the whole line the user reads."""


@dataclass(frozen=True)
class Plan:
    """What one samconfig environment deploys: the parameters that decide the checks."""

    environment: str
    stack_name: str
    architecture: str
    provisioned: int
    max_provisioned: int
    reserved: int

    @property
    def claim(self) -> int:
        """Concurrency taken from the unreserved pool (provisioned is part of any reservation)."""
        return self.reserved or self.provisioned


def environments(config: dict[str, Any]) -> list[str]:
    return [name for name, section in config.items() if isinstance(section, dict)]


def template_defaults(text: str) -> dict[str, str]:
    """Each parameter's Default in template.yaml, read without a YAML library (none is here)."""
    block = text.split("\nParameters:\n", 1)[1].split("\n\n", 1)[0]
    defaults: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        if match := re.fullmatch(r"  (\w+):\s*", line):
            name = match.group(1)
        elif name and (match := re.fullmatch(r"    Default:\s*(.*?)\s*", line)):
            defaults[name] = match.group(1).strip("\"'")
    return defaults


def load_plan(environment: str) -> Plan:
    with SAMCONFIG.open("rb") as handle:
        config = tomllib.load(handle)
    if environment not in environments(config):
        valid = ", ".join(environments(config))
        raise PreflightError(f"ENV={environment} is not in samconfig.toml; use one of: {valid}")
    section = config[environment]
    pairs = section.get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
    values = template_defaults(TEMPLATE.read_text(encoding="utf-8"))
    values.update(pair.split("=", 1) for pair in pairs)
    return Plan(
        environment=environment,
        stack_name=section["global"]["parameters"]["stack_name"],
        architecture=values["Architecture"],
        provisioned=int(values["ProvisionedConcurrency"]),
        max_provisioned=int(values["MaxProvisionedConcurrency"]),
        reserved=int(values["ReservedConcurrency"]),
    )


def run(*command: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"no answer in {COMMAND_TIMEOUT_S} s")


def error_line(text: str) -> str:
    """The line of a tool's error output that says what went wrong (the AWS CLI's is last)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def aws_json(*arguments: str) -> Any:
    result = run("aws", *arguments, "--output", "json")
    if result.returncode != 0:
        raise PreflightError(f"aws {' '.join(arguments[:2])} failed: {error_line(result.stderr)}")
    return json.loads(result.stdout or "null")


# --- the checks: each returns its "ok" line or raises PreflightError ---------------------------


def check_platform(plan: Plan, machine: str) -> str:
    machine = machine.lower()
    if plan.architecture == "x86_64" and machine in ARM_MACHINES:
        raise PreflightError(
            f"ENV={plan.environment} builds an x86_64 image on this {machine} machine, where "
            "stage 1's TensorFlow aborts under emulation: set Architecture=arm64 in its "
            "parameter_overrides, or build on an x86_64 machine or in CI"
        )
    note = ""
    if plan.architecture == "arm64" and machine in X86_MACHINES:
        note = " (under QEMU emulation: slower"
        if BINFMT_AARCH64.parent.is_dir() and not BINFMT_AARCH64.exists():
            note += "; if sam build fails with 'exec format error', run once: "
            note += "docker run --privileged --rm tonistiigi/binfmt --install arm64"
        note += ")"
    return f"builds the {plan.architecture} image on this {machine} machine{note}"


def check_container_runtime() -> str:
    failures = []
    for tool in ("docker", "finch"):
        if shutil.which(tool) is None:
            failures.append(f"{tool} not installed")
            continue
        result = run(tool, "info")
        if result.returncode == 0:
            return f"{tool} is running"
        failures.append(f"{tool} info: {error_line(result.stderr)}")
    raise PreflightError(
        "no running Docker or Finch, which sam build needs for the image ("
        + "; ".join(failures)
        + "): start Docker Desktop, the Docker daemon or `finch vm start`"
    )


def check_credentials() -> str:
    result = run("aws", "sts", "get-caller-identity", "--output", "json")
    if result.returncode != 0:
        raise PreflightError(
            f"no valid AWS credentials ({error_line(result.stderr)}): run `aws configure`, "
            "`aws sso login` or set AWS_PROFILE"
        )
    identity = json.loads(result.stdout)
    return f"AWS account {identity['Account']} as {identity['Arn']}"


def deployed_function(stack_name: str) -> str | None:
    """The stack's function name, or None before its first deploy."""
    result = run("aws", "cloudformation", "describe-stacks", "--stack-name", stack_name,
                 "--output", "json")  # fmt: skip
    if result.returncode != 0:
        if "does not exist" in result.stderr:
            return None
        raise PreflightError(
            f"aws cloudformation describe-stacks failed: {error_line(result.stderr)}"
        )
    outputs = json.loads(result.stdout)["Stacks"][0].get("Outputs", [])
    names = [o["OutputValue"] for o in outputs if o["OutputKey"] == "FunctionName"]
    return names[0] if names else None


def live_provisioned(function: str) -> int:
    """Provisioned concurrency the live alias holds now (what auto scaling last asked for)."""
    result = run("aws", "lambda", "get-provisioned-concurrency-config", "--function-name",
                 function, "--qualifier", "live", "--output", "json")  # fmt: skip
    if result.returncode != 0:
        return 0  # ProvisionedConcurrencyConfigNotFoundException: none configured
    return int(json.loads(result.stdout).get("RequestedProvisionedConcurrentExecutions", 0))


def concurrency_held(stack_name: str) -> int:
    """Concurrency this stack's function already takes from the pool (0 on a first deploy)."""
    function = deployed_function(stack_name)
    if function is None:
        return 0
    reserved = aws_json("lambda", "get-function-concurrency", "--function-name", function)
    if reserved and reserved.get("ReservedConcurrentExecutions"):
        return int(reserved["ReservedConcurrentExecutions"])
    return live_provisioned(function)


def check_redeploy(plan: Plan) -> str:
    """Say what a redeploy does to provisioned concurrency that auto scaling has raised: the
    new version gets the template's ProvisionedConcurrency, warm before the alias moves to it,
    and target tracking scales out again from there (docs/deploy.md, "How it scales")."""
    if plan.provisioned == 0:
        return "no provisioned concurrency to carry over"
    function = deployed_function(plan.stack_name)
    now = live_provisioned(function) if function else 0
    if now <= plan.provisioned:
        return f"the live alias holds {now}; the new version starts with {plan.provisioned}"
    return (
        f"the live alias holds {now} provisioned environments now (auto scaling); the new "
        f"version starts with ProvisionedConcurrency={plan.provisioned} and target tracking "
        f"adds the rest again within minutes. To cut over with {now} warm, set "
        f"ProvisionedConcurrency={now} in samconfig.toml's [{plan.environment}] "
        "parameter_overrides for this deploy, and lower it again after"
    )


def check_concurrency(plan: Plan) -> str:
    if plan.reserved and plan.provisioned and plan.reserved < plan.max_provisioned:
        raise PreflightError(
            f"ENV={plan.environment}: ReservedConcurrency={plan.reserved} is below "
            f"MaxProvisionedConcurrency={plan.max_provisioned}; provisioned concurrency comes out "
            "of the reservation, so raise ReservedConcurrency or lower the maximum"
        )
    if plan.claim == 0:
        return (
            "no reserved or provisioned concurrency asked for; the account's quota is the ceiling"
        )
    limits = aws_json("lambda", "get-account-settings")["AccountLimit"]
    quota = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    available = unreserved + concurrency_held(plan.stack_name) - UNRESERVED_MINIMUM
    what = "ReservedConcurrency" if plan.reserved else "ProvisionedConcurrency"
    if plan.claim > available:
        raise PreflightError(
            f"ENV={plan.environment} asks for {what}={plan.claim}, but this account can spare "
            f"{max(available, 0)} (quota {quota}, {unreserved} unreserved, and Lambda keeps "
            f"{UNRESERVED_MINIMUM} unreserved): deploy ENV=default or ENV=dev, or ask for a higher "
            "'Concurrent executions' quota in Service Quotas"
        )
    return f"{what}={plan.claim} fits (quota {quota}, {unreserved} unreserved)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environment", help="a samconfig.toml environment")
    parser.add_argument("--machine", default=platform.machine(), help="this machine's CPU")
    args = parser.parse_args(argv)
    try:
        plan = load_plan(args.environment)
    except PreflightError as error:
        print(f"preflight: {error}", file=sys.stderr)
        return 1
    checks: list[tuple[str, Callable[[], str]]] = [
        ("platform", lambda: check_platform(plan, args.machine)),
        ("container", check_container_runtime),
        ("credentials", check_credentials),
        ("concurrency", lambda: check_concurrency(plan)),
        ("redeploy", lambda: check_redeploy(plan)),
    ]
    failed: set[str] = set()
    for name, check in checks:
        if name in {"concurrency", "redeploy"} and "credentials" in failed:
            break  # they ask the account, which needs the credentials that just failed
        try:
            print(f"preflight: ok      {name}: {check()}")
        except PreflightError as error:
            print(f"preflight: FAILED  {name}: {error}", file=sys.stderr)
            failed.add(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
