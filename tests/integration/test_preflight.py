"""scripts/preflight.py, the checks `make deploy` runs first, against a fake `aws` and `docker`.

The fakes are small programs put first on PATH: `aws` answers each "service operation" from a
JSON file of canned replies (and logs every call), `docker` answers `info` with the exit status
the test chooses. So the real script runs, as `make deploy` runs it, with no account and no Docker.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from scripts import preflight

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = {"Account": "111111111111", "Arn": "arn:aws:iam::111111111111:user/deployer"}
FAKE_AWS = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
with open(os.environ["FAKE_AWS_REPLIES"]) as replies:
    reply = json.load(replies).get(" ".join(args[:2]))
if reply is None:
    sys.stderr.write("fake aws: no reply for " + " ".join(args[:2]))
    sys.exit(2)
sys.stdout.write(json.dumps(reply["stdout"]) if "stdout" in reply else "")
sys.stderr.write(reply.get("stderr", ""))
sys.exit(reply.get("rc", 0))
"""
FAKE_DOCKER = """\
import os, sys
sys.stderr.write(os.environ.get("FAKE_DOCKER_ERROR", ""))
sys.exit(1 if os.environ.get("FAKE_DOCKER_ERROR") else 0)
"""


def account(quota: int, unreserved: int) -> dict[str, Any]:
    limits = {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": unreserved}
    return {"stdout": {"AccountLimit": limits}}


NO_STACK = {
    "rc": 254,
    "stderr": "An error occurred (ValidationError): Stack with id x does not exist",
}


class Fakes:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "aws.log"
        self.replies_file = tmp_path / "replies.json"
        self.replies: dict[str, Any] = {
            "sts get-caller-identity": {"stdout": IDENTITY},
            "lambda get-account-settings": account(1000, 1000),
            "cloudformation describe-stacks": NO_STACK,
        }
        self.env = {
            "PATH": str(self.bin),
            "FAKE_AWS_LOG": str(self.log),
            "FAKE_AWS_REPLIES": str(self.replies_file),
        }
        self.install("aws", FAKE_AWS)
        self.install("docker", FAKE_DOCKER)

    def install(self, name: str, source: str) -> None:
        program = self.bin / name
        program.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)

    def run(self, environment: str, machine: str = "x86_64") -> subprocess.CompletedProcess[str]:
        self.replies_file.write_text(json.dumps(self.replies), encoding="utf-8")
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "preflight.py"),
                environment,
                "--machine",
                machine,
            ],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def calls(self) -> list[str]:
        if not self.log.exists():
            return []
        return [" ".join(json.loads(line)[:2]) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


def failures(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "FAILED" in line]


def test_default_environment_passes_on_a_new_account_without_asking_for_concurrency(
    fakes: Fakes,
) -> None:
    # Given a new account (quota 10), Docker running and valid credentials
    fakes.replies["lambda get-account-settings"] = account(10, 10)
    # When the default environment (what plain `make deploy` deploys) is checked
    result = fakes.run("default")
    # Then every check passes, and nothing asks Lambda: it reserves and provisions nothing
    assert result.returncode == 0, result.stderr
    assert "docker is running" in result.stdout
    assert IDENTITY["Arn"] in result.stdout
    assert not [call for call in fakes.calls() if call.startswith("lambda")]


def test_prod_on_a_new_account_stops_with_one_clear_line(fakes: Fakes) -> None:
    # Given a new account whose quota (10) leaves nothing to reserve
    fakes.replies["lambda get-account-settings"] = account(10, 10)
    # When prod (ReservedConcurrency=25) is checked
    result = fakes.run("prod")
    # Then it fails on one line that says what it asked, what the account has and what to do
    assert result.returncode == 1
    (line,) = failures(result)
    assert "ReservedConcurrency=25" in line
    assert "quota 10" in line
    assert "ENV=default" in line


def test_prod_fits_an_account_with_the_usual_quota(fakes: Fakes) -> None:
    result = fakes.run("prod")
    assert result.returncode == 0, result.stderr
    assert "ReservedConcurrency=25 fits (quota 1000, 1000 unreserved)" in result.stdout


def test_a_redeploy_counts_the_concurrency_its_function_already_holds(fakes: Fakes) -> None:
    # Given prod already deployed, its function reserving 25 of a quota of 130 (105 unreserved)
    fakes.replies.update(
        {
            "lambda get-account-settings": account(130, 105),
            "cloudformation describe-stacks": {
                "stdout": {
                    "Stacks": [
                        {"Outputs": [{"OutputKey": "FunctionName", "OutputValue": "fn-prod"}]}
                    ]
                }
            },
            "lambda get-function-concurrency": {"stdout": {"ReservedConcurrentExecutions": 25}},
        }
    )
    # When prod is checked again
    result = fakes.run("prod")
    # Then its own 25 are counted as available (105 + 25 - 100 = 30 >= 25), so it passes
    assert result.returncode == 0, result.stderr
    assert "lambda get-function-concurrency" in fakes.calls()


def deployed_prod(fakes: Fakes, provisioned: int) -> None:
    """prod already deployed, its live alias holding this provisioned concurrency now."""
    fakes.replies.update(
        {
            "cloudformation describe-stacks": {
                "stdout": {
                    "Stacks": [
                        {"Outputs": [{"OutputKey": "FunctionName", "OutputValue": "fn-prod"}]}
                    ]
                }
            },
            "lambda get-function-concurrency": {"stdout": {"ReservedConcurrentExecutions": 25}},
            "lambda get-provisioned-concurrency-config": {
                "stdout": {"RequestedProvisionedConcurrentExecutions": provisioned}
            },
        }
    )


def test_a_redeploy_above_the_floor_says_what_the_new_version_starts_with(fakes: Fakes) -> None:
    # Given prod deployed, auto scaling having raised its live alias to 12 (the floor is 2)
    deployed_prod(fakes, provisioned=12)
    # When prod is checked before a redeploy
    result = fakes.run("prod")
    # Then it passes, and says the new version starts at the floor and how to keep 12 warm
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if "redeploy:" in ln]
    assert "holds 12 provisioned environments now" in line
    assert "starts with ProvisionedConcurrency=2" in line
    assert "ProvisionedConcurrency=12 in samconfig.toml's [prod]" in line


def test_a_redeploy_at_the_floor_or_a_first_deploy_has_nothing_to_carry_over(
    fakes: Fakes,
) -> None:
    # Given prod at its floor of 2, then no prod stack at all
    deployed_prod(fakes, provisioned=2)
    at_floor = fakes.run("prod")
    fakes.replies["cloudformation describe-stacks"] = NO_STACK
    first = fakes.run("prod")
    # Then neither suggests a change
    for result in (at_floor, first):
        assert result.returncode == 0, result.stderr
        (line,) = [ln for ln in result.stdout.splitlines() if "redeploy:" in ln]
        assert "the new version starts with 2" in line


def test_no_running_docker_or_finch_fails_with_what_to_start(fakes: Fakes) -> None:
    # Given Docker installed but not answering, and no Finch
    fakes.env["FAKE_DOCKER_ERROR"] = (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"
    )
    # When any environment is checked
    result = fakes.run("dev")
    # Then exactly that check fails, on one line, naming the cause and the fix
    assert result.returncode == 1
    (line,) = failures(result)
    assert "Cannot connect to the Docker daemon" in line
    assert "finch not installed" in line
    assert "start Docker" in line


def test_invalid_credentials_fail_and_skip_the_account_checks(fakes: Fakes) -> None:
    # Given expired credentials
    fakes.replies["sts get-caller-identity"] = {
        "rc": 254,
        "stderr": "An error occurred (ExpiredToken): The security token included in the request "
        "is expired",
    }
    # When prod is checked
    result = fakes.run("prod")
    # Then one line says so and how to fix it, and nothing else asks the account
    assert result.returncode == 1
    (line,) = failures(result)
    assert "expired" in line
    assert "aws sso login" in line
    assert fakes.calls() == ["sts get-caller-identity"]


def test_an_unknown_environment_is_one_line_listing_the_valid_ones(fakes: Fakes) -> None:
    result = fakes.run("staging")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "preflight: ENV=staging is not in samconfig.toml; use one of: default, dev, prod"
    ]
    assert fakes.calls() == []


# --- the pure parts, in process ---------------------------------------------------------------


def plan(**overrides: Any) -> preflight.Plan:
    values: dict[str, Any] = {
        "environment": "test",
        "stack_name": "imagerec-test",
        "architecture": "arm64",
        "provisioned": 0,
        "max_provisioned": 5,
        "reserved": 0,
    }
    values.update(overrides)
    return preflight.Plan(**values)


@pytest.mark.parametrize("machine", ["arm64", "aarch64"])
def test_an_arm_machine_cannot_build_the_x86_64_image(machine: str) -> None:
    # Given an Apple Silicon (or Graviton) machine and an x86_64 target
    with pytest.raises(preflight.PreflightError) as raised:
        preflight.check_platform(plan(architecture="x86_64"), machine)
    # Then the failure says why and offers both ways out
    message = str(raised.value)
    assert "TensorFlow" in message
    assert "Architecture=arm64" in message
    assert "x86_64 machine or in CI" in message
    # And the arm64 image builds natively there
    assert "arm64 image on" in preflight.check_platform(plan(architecture="arm64"), machine)


def test_reserved_concurrency_below_the_provisioned_maximum_is_refused() -> None:
    broken = plan(reserved=10, provisioned=2, max_provisioned=20)
    with pytest.raises(preflight.PreflightError, match="ReservedConcurrency=10 is below"):
        preflight.check_concurrency(broken)


def test_template_defaults_are_read_as_cloudformation_reads_them() -> None:
    # Given the template's parameters, parsed by a real YAML parser
    parameters = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))["Parameters"]
    # When preflight reads the defaults without one
    defaults = preflight.template_defaults((ROOT / "template.yaml").read_text(encoding="utf-8"))
    # Then it finds the same value for every parameter
    assert defaults == {name: str(spec["Default"]) for name, spec in parameters.items()}
