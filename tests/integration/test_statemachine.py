"""statemachines/*.asl.json checked by a real Amazon States Language validator (asl-validator,
from npm, installed into node_modules by `make setup`), after the DefinitionSubstitutions that
CloudFormation makes, so what is validated is what Step Functions would receive."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))
# Values of the kind CloudFormation substitutes (template.yaml's DefinitionSubstitutions).
SUBSTITUTIONS = {
    "ListObjectsArn": "arn:aws-cn:states:::s3:listObjectsV2",
    "LambdaInvokeArn": "arn:aws-cn:states:::lambda:invoke",
    "PutObjectArn": "arn:aws-cn:states:::s3:putObject",
    "BatchFunctionArn": "arn:aws-cn:lambda:cn-north-1:111111111111:function:imagerec-Batch-1A2B",
    "ResultsBucket": "imagerec-batchresultsbucket-1a2b3c",
    "ResultsPrefix": "batch-results",
    "MaxConcurrency": "10",
    "BatchSize": "50",
    "ToleratedFailurePercentage": "5",
}


def substituted(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\$\{(\w+)\}", lambda match: SUBSTITUTIONS[match[1]], text)


def validate(definition: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATOR.exists():
        pytest.fail("asl-validator is missing: run `make setup` (it runs npm ci)")
    path = tmp_path / "definition.asl.json"
    path.write_text(definition, encoding="utf-8")
    return subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_there_is_a_state_machine_to_check() -> None:
    assert [path.name for path in MACHINES] == ["classify_bucket.asl.json"]


@pytest.mark.parametrize("path", MACHINES, ids=lambda path: path.name)
def test_state_machine_passes_the_asl_validator(path: Path, tmp_path: Path) -> None:
    # Given the definition as Step Functions receives it
    definition = substituted(path)
    # When validated, then the validator accepts it (schema, paths and ARNs)
    result = validate(definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_distributed_map(tmp_path: Path) -> None:
    # Given the definition with a tolerated failure percentage over 100 and a bad path
    definition = json.loads(substituted(MACHINES[0]))
    (state,) = [s for s in definition["States"].values() if s["Type"] == "Map"]
    del state["ToleratedFailurePercentagePath"]
    state["ToleratedFailurePercentage"] = 150
    state["ItemReader"]["Parameters"]["Bucket.$"] = "bucket"
    # When validated, then it is refused: the check above can fail
    result = validate(json.dumps(definition), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
