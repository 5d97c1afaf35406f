"""The deploy path without an AWS account: samconfig.toml, mk/iac.mk and the site scripts.

samconfig.toml's overrides are checked against template.yaml's parameter constraints (a bad one
would only fail at deploy time), `make -n` shows the commands the targets run, and the scripts
run against a fake `aws` on PATH that records every call and answers describe-stacks.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
ENVIRONMENTS = ("default", "dev", "prod")
OUTPUTS = {
    "SiteBucketName": "imagerec-sitebucket-abc123",
    "DistributionId": "E2EXAMPLE0ABC",
    "SiteUrl": "https://d111111abcdef8.cloudfront.net",
}

# A stand-in for the AWS CLI: appends its argv to $FAKE_AWS_LOG as one JSON line, answers
# `cloudformation describe-stacks` from $FAKE_AWS_OUTPUTS (or fails with the error in
# $FAKE_AWS_STACK_ERROR) and `cloudfront create-invalidation` with an id.
FAKE_AWS = """\
import json, os, re, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["cloudformation", "describe-stacks"]:
    if os.environ.get("FAKE_AWS_STACK_ERROR"):
        sys.stderr.write("An error occurred: " + os.environ["FAKE_AWS_STACK_ERROR"])
        sys.exit(254)
    key = re.search(r"OutputKey=='(\\w+)'", args[args.index("--query") + 1]).group(1)
    print(json.loads(os.environ["FAKE_AWS_OUTPUTS"]).get(key, "None"))
elif args[:2] == ["cloudfront", "create-invalidation"]:
    print("I2J0I21PCUYOIK")
"""


def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def overrides(environment: str) -> dict[str, str]:
    pairs = samconfig()[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(pair.split("=", 1) for pair in pairs)


# --- samconfig.toml ----------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_samconfig_environment_deploys_an_image_stack_with_iam(environment: str) -> None:
    # Given / When one environment of samconfig.toml
    config = samconfig()
    section = config[environment]
    deploy = section["deploy"]["parameters"]
    # Then it names its own stack, creates the image repository and acknowledges the IAM role
    assert config["version"] == 0.1
    assert section["global"]["parameters"]["stack_name"].startswith("imagerec")
    assert deploy["resolve_image_repos"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    # And a re-deploy with no template change still goes on to upload the site
    assert deploy["fail_on_empty_changeset"] is False
    assert "region" not in deploy


def test_samconfig_stack_names_are_distinct() -> None:
    names = [samconfig()[env]["global"]["parameters"]["stack_name"] for env in ENVIRONMENTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_samconfig_overrides_satisfy_the_template_constraints(environment: str) -> None:
    # Given the template's parameters and one environment's overrides
    parameters = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))["Parameters"]
    # When each override is checked as CloudFormation would check it
    for name, value in overrides(environment).items():
        # Then it names a real parameter and meets its constraints
        assert name in parameters, f"Expected a template parameter, received: {name}"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(allowed) for allowed in spec["AllowedValues"]], (name, value)
        if "MinValue" in spec:
            assert float(value) >= spec["MinValue"], (name, value)
        if "MaxValue" in spec:
            assert float(value) <= spec["MaxValue"], (name, value)


def test_dev_is_cheap_and_prod_confirms_its_changesets() -> None:
    # Given / When the dev and prod environments
    dev, prod = overrides("dev"), overrides("prod")
    # Then dev keeps nothing warm and uses less memory; prod keeps some warm and asks first
    assert dev["ProvisionedConcurrency"] == "0"
    assert int(dev["MemorySize"]) < int(prod["MemorySize"])
    assert int(prod["ProvisionedConcurrency"]) >= 1
    assert int(prod["MaxProvisionedConcurrency"]) >= int(prod["ProvisionedConcurrency"])
    assert samconfig()["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert samconfig()["dev"]["deploy"]["parameters"]["confirm_changeset"] is False


def parameters_of(environment: str) -> dict[str, str]:
    """What CloudFormation gets for one environment: the template's defaults, then its overrides."""
    specs = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))["Parameters"]
    return {
        **{name: str(spec["Default"]) for name, spec in specs.items()},
        **overrides(environment),
    }


def test_plain_make_deploy_fits_a_new_account() -> None:
    # Given the environment `make deploy` uses with no arguments
    values = parameters_of("default")
    # Then it neither provisions nor reserves concurrency, which an account with a quota of 10
    # could not give (Lambda keeps 100 unreserved), so the first deploy cannot roll back on it
    assert values["ProvisionedConcurrency"] == "0"
    assert values["ReservedConcurrency"] == "0"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_reserved_concurrency_leaves_room_for_the_provisioned_maximum(environment: str) -> None:
    # Given one environment's concurrency settings
    values = parameters_of(environment)
    reserved, provisioned = (
        int(values["ReservedConcurrency"]),
        int(values["ProvisionedConcurrency"]),
    )
    # Then a ceiling, when set, holds every environment auto scaling may add (they come out of it)
    if reserved and provisioned:
        assert reserved >= int(values["MaxProvisionedConcurrency"]) >= provisioned
    assert values["Architecture"] in {"arm64", "x86_64"}


def test_prod_has_a_cost_ceiling() -> None:
    assert int(parameters_of("prod")["ReservedConcurrency"]) > 0


# --- mk/iac.mk -----------------------------------------------------------------------------------


def make_dry_run(*arguments: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "mk/iac.mk", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


def positions(lines: list[str], *fragments: str) -> list[int]:
    found = []
    for fragment in fragments:
        matches = [index for index, line in enumerate(lines) if fragment in line]
        assert matches, f"Expected a command containing {fragment!r}, received: {lines}"
        found.append(matches[0])
    return found


def test_make_deploy_checks_builds_deploys_then_uploads_the_site() -> None:
    # Given / When a dry run of `make deploy ENV=dev`
    lines = make_dry_run("deploy", "ENV=dev")
    # Then it runs the pre-flight checks, builds, deploys, and uploads the site of the dev
    # stack, in that order
    order = positions(
        lines,
        "scripts/preflight.py dev",
        "sam build --config-env dev",
        "sam deploy --config-env dev",
        "scripts/deploy_site.sh imagerec-dev",
    )
    assert order == sorted(order)


def test_make_deploy_passes_an_explicit_region_to_every_step() -> None:
    lines = make_dry_run("deploy", "ENV=prod", "REGION=eu-west-1")
    (build, deploy, upload) = (
        lines[i] for i in positions(lines, "build", "deploy --", "deploy_site")
    )
    assert "--region eu-west-1" in build
    assert "--region eu-west-1" in deploy
    assert "AWS_DEFAULT_REGION=eu-west-1" in upload


@pytest.mark.parametrize("target", ["deploy", "delete", "smoke"])
def test_an_unknown_env_stops_make_with_one_line_naming_the_valid_ones(target: str) -> None:
    # Given a typo'd environment
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "mk/iac.mk", target, "ENV=staging"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Then make stops before running anything, on one line that lists the real environments
    assert result.returncode != 0
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "ENV=staging is not an environment in samconfig.toml" in line
    assert line.split("use one of: ")[1].removesuffix(".  Stop.").split() == [
        name for name, section in samconfig().items() if isinstance(section, dict)
    ]


def test_make_smoke_reads_the_stack_of_env_or_of_aws_sam_stack_name() -> None:
    (line,) = [line for line in make_dry_run("smoke", "ENV=dev") if "smoke.py" in line]
    assert line.endswith("scripts/smoke.py --stack imagerec-dev")
    (line,) = [
        line
        for line in make_dry_run("smoke", "AWS_SAM_STACK_NAME=my-stack", "REGION=eu-west-1")
        if "smoke.py" in line
    ]
    assert line.startswith("AWS_DEFAULT_REGION=eu-west-1 ")
    assert line.endswith("scripts/smoke.py --stack my-stack")


def test_make_delete_empties_the_bucket_before_deleting_the_stack() -> None:
    # Given / When a dry run of `make delete ENV=prod`
    lines = make_dry_run("delete", "ENV=prod")
    # Then the bucket is emptied first, and sam deletes without prompting
    empty, delete = positions(
        lines, "scripts/empty_site_bucket.sh imagerec-prod", "sam delete --config-env prod"
    )
    assert empty < delete
    assert "--no-prompts" in lines[delete]


def test_make_check_template_runs_the_three_offline_checkers() -> None:
    lines = make_dry_run("check-template")
    order = positions(lines, "cfn-lint template.yaml", "sam validate", "checkov")
    validate, checkov = lines[order[1]], lines[order[2]]
    assert "--lint" in validate
    assert "--region us-east-1" in validate
    assert "--framework cloudformation" in checkov
    assert "--skip-download" in checkov
    assert "BC_SKIP_MAPPING=TRUE" in checkov


# --- scripts/deploy_site.sh and scripts/empty_site_bucket.sh ----------------------------------


@pytest.fixture
def fake_aws(tmp_path: Path) -> dict[str, str]:
    """Environment that puts the fake `aws` first on PATH; calls are logged to aws.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "aws"
    program.write_text(f"#!{sys.executable}\n{FAKE_AWS}", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AWS_LOG": str(tmp_path / "aws.log"),
        "FAKE_AWS_OUTPUTS": json.dumps(OUTPUTS),
    }


@pytest.fixture
def site(tmp_path: Path) -> Path:
    directory = tmp_path / "site"
    directory.mkdir()
    for name in ("index.html", "app.js", "style.css", "favicon.svg"):
        (directory / name).write_text("x", encoding="utf-8")
    return directory


def run_script(name: str, *arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *arguments],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def aws_calls(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["FAKE_AWS_LOG"])
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def option(call: list[str], name: str) -> str | None:
    return call[call.index(name) + 1] if name in call else None


def test_deploy_site_uploads_with_content_types_and_cache_headers(
    fake_aws: dict[str, str], site: Path
) -> None:
    # Given a stack whose outputs name the bucket, the distribution and the URL
    # When the site is deployed
    result = run_script("deploy_site.sh", "imagerec-dev", str(site), env=fake_aws)
    # Then it succeeds and prints the page's URL
    assert result.returncode == 0, result.stderr
    assert OUTPUTS["SiteUrl"] in result.stdout
    calls = aws_calls(fake_aws)
    syncs = [call for call in calls if call[:2] == ["s3", "sync"]]
    bucket = f"s3://{OUTPUTS['SiteBucketName']}/"
    assert all(call[2:4] == [str(site), bucket] for call in syncs)
    by_include = {option(call, "--include"): call for call in syncs if "--include" in call}
    (others,) = [call for call in syncs if "--include" not in call and "--delete" not in call]
    # And pages are never cached without revalidation; scripts and styles briefly
    html = by_include["*.html"]
    assert option(html, "--content-type") == "text/html; charset=utf-8"
    assert option(html, "--cache-control") == "no-cache"
    js, css = by_include["*.js"], by_include["*.css"]
    assert option(js, "--content-type") == "text/javascript; charset=utf-8"
    assert option(css, "--content-type") == "text/css; charset=utf-8"
    for asset in (js, css, others):
        assert option(asset, "--cache-control") == "public, max-age=300"
    # And index.html goes up after the assets, stale objects are removed last
    assert syncs.index(html) > max(syncs.index(js), syncs.index(css))
    assert "--delete" in syncs[-1]
    assert not any("--delete" in call for call in syncs[:-1])
    # And CloudFront is invalidated after the upload
    (invalidation,) = [call for call in calls if call[:2] == ["cloudfront", "create-invalidation"]]
    assert option(invalidation, "--distribution-id") == OUTPUTS["DistributionId"]
    assert option(invalidation, "--paths") == "/*"
    assert calls.index(invalidation) > calls.index(syncs[-1])


def test_deploy_site_stops_before_uploading_when_an_output_is_missing(
    fake_aws: dict[str, str], site: Path
) -> None:
    # Given a stack without the DistributionId output
    env = {**fake_aws, "FAKE_AWS_OUTPUTS": json.dumps({"SiteBucketName": "b", "SiteUrl": "u"})}
    # When the site is deployed
    result = run_script("deploy_site.sh", "imagerec", str(site), env=env)
    # Then it fails, naming the output, and uploads nothing
    assert result.returncode != 0
    assert "DistributionId" in result.stderr
    assert not [call for call in aws_calls(env) if call[0] == "s3"]


def test_deploy_site_refuses_a_folder_without_index_html(
    fake_aws: dict[str, str], tmp_path: Path
) -> None:
    result = run_script("deploy_site.sh", "imagerec", str(tmp_path), env=fake_aws)
    assert result.returncode != 0
    assert "index.html" in result.stderr
    assert aws_calls(fake_aws) == []


def test_empty_site_bucket_removes_every_object(fake_aws: dict[str, str]) -> None:
    # Given / When the bucket of an existing stack is emptied
    result = run_script("empty_site_bucket.sh", "imagerec", env=fake_aws)
    # Then every object of that bucket is removed
    assert result.returncode == 0, result.stderr
    (remove,) = [call for call in aws_calls(fake_aws) if call[:2] == ["s3", "rm"]]
    assert remove[2] == f"s3://{OUTPUTS['SiteBucketName']}/"
    assert "--recursive" in remove


def test_empty_site_bucket_empties_the_upload_bucket_too(fake_aws: dict[str, str]) -> None:
    # Given a stack with an upload bucket (uploads not classified wait there up to a day)
    env = {**fake_aws, "FAKE_AWS_OUTPUTS": json.dumps({**OUTPUTS, "UploadBucketName": "up-1"})}
    # When it is emptied by its output's name (as `make delete` does) / Then it alone is
    result = run_script("empty_site_bucket.sh", "imagerec", "UploadBucketName", env=env)
    assert result.returncode == 0, result.stderr
    removes = [call[2] for call in aws_calls(env) if call[:2] == ["s3", "rm"]]
    assert removes == ["s3://up-1/"]
    # And `make delete` empties it along with the site and batch results buckets
    delete = (ROOT / "mk" / "iac.mk").read_text().split("\ndelete:")[1].split("\n\n")[0]
    for output in ("UploadBucketName", "BatchResultsBucketName"):
        assert f"scripts/empty_site_bucket.sh $(STACK_NAME) {output}" in delete


def test_empty_site_bucket_is_a_no_op_for_a_missing_stack(fake_aws: dict[str, str]) -> None:
    env = {**fake_aws, "FAKE_AWS_STACK_ERROR": "Stack with id imagerec does not exist"}
    result = run_script("empty_site_bucket.sh", "imagerec", env=env)
    assert result.returncode == 0, result.stderr
    assert "does not exist" in result.stdout
    assert not [call for call in aws_calls(env) if call[0] == "s3"]


def test_empty_site_bucket_fails_on_any_other_error(fake_aws: dict[str, str]) -> None:
    # Given credentials that have expired
    env = {
        **fake_aws,
        "FAKE_AWS_STACK_ERROR": "The security token included in the request is expired",
    }
    # When the bucket is emptied, then it fails loudly instead of pretending there is nothing
    result = run_script("empty_site_bucket.sh", "imagerec", env=env)
    assert result.returncode != 0
    assert "expired" in result.stderr
