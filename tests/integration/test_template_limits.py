"""template.yaml at the edges operators reach (issue 21): other partitions than aws, buckets
encrypted with customer-managed KMS keys, and provisioned concurrency across a redeploy.

Uses the offline SAM transform and Conditions of test_template.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.transform import transform

from tests.integration.test_template import (
    ALIAS,
    FAKE_IMAGE_URI,
    ROOT,
    TEMPLATE,
    Json,
    OfflineManagedPolicies,
    deployed,
    only,
    sam_template,
)
from tests.integration.test_template_bulk import statements

pytestmark = pytest.mark.integration

ASL = ROOT / "statemachines" / "classify_bucket.asl.json"
# The roles that read objects from the operator's buckets, and the one that only lists them.
OBJECT_READERS = ("ClassifyFunctionRole", "BatchFunctionRole")
KEYS = [
    "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:eu-west-1:222222222222:key/mrk-1234abcd12ab34cd56ef1234567890ab",
]


@pytest.fixture(scope="module", autouse=True)
def _region() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


def actions(statement: Json) -> list[str]:
    given = statement["Action"]
    return given if isinstance(given, list) else [given]


# --- partitions: aws-cn and GovCloud deploy the same template --------------------------------


def test_no_arn_is_written_in_the_commercial_partition() -> None:
    # Given the template and the state machine's definition as written
    template, asl = TEMPLATE.read_text(encoding="utf-8"), ASL.read_text(encoding="utf-8")
    # Then neither names the aws partition in an ARN
    assert "arn:aws:" not in template
    assert "arn:aws:" not in asl
    # And the ASL has no ARN of its own: each comes from a DefinitionSubstitution
    assert "arn:" not in asl
    # And every ARN of the template starts with the stack's partition, or IAM's wildcard where
    # Fn::Join must build one ARN per bucket (its delimiter takes no functions), or is the
    # pattern that checks the ARNs an operator gives
    prefixes = set(re.findall(r"arn:(?:\$\{AWS::Partition\}|[^:\s]*):", template))
    assert prefixes <= {"arn:${AWS::Partition}:", "arn:*:", "arn:[a-z-]+:"}, prefixes


def test_the_template_translated_in_china_names_only_the_china_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the SAM transform run in cn-north-1, as CloudFormation runs it there (the
    # translator caches the session's region, so it is told, as SAM CLI tells it)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    monkeypatch.setattr(ArnGenerator, "BOTO_SESSION_REGION_NAME", "cn-north-1")
    template = sam_template()
    for spec in template["Resources"].values():
        properties = spec.get("Properties", {})
        if spec["Type"] == "AWS::Serverless::Function":
            properties["ImageUri"] = FAKE_IMAGE_URI
        if spec["Type"] == "AWS::Serverless::StateMachine":
            path = properties.pop("DefinitionUri")
            properties["Definition"] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    parameters = {"ReadableBuckets": "photos", "ProvisionedConcurrency": 1}
    text = json.dumps(transform(template, parameters, OfflineManagedPolicies()))
    # Then what CloudFormation would create there holds no commercial-partition ARN
    assert "arn:aws:" not in text
    assert "arn:aws-cn:iam::aws:policy/" in text  # the managed policies SAM names, translated


# --- KMS: objects encrypted with the operator's keys ----------------------------------------


def test_no_kms_key_is_granted_by_default() -> None:
    # Given the defaults (ReadableKmsKeys empty)
    template = deployed(ReadableBuckets="photos")
    # Then no role may use any KMS key
    for role_id in (*OBJECT_READERS, "BatchStateMachineRole"):
        granted = [a for s in statements(template, role_id) for a in actions(s)]
        assert not [a for a in granted if a.startswith("kms:")], role_id


def test_readable_kms_keys_grant_decrypt_on_exactly_those_keys_through_s3() -> None:
    # Given two customer-managed keys that encrypt objects of the readable buckets, on a stack
    # whose API may read by reference (an Auth mode other than none)
    template = deployed(Auth="iam", ReadableBuckets="photos", ReadableKmsKeys=",".join(KEYS))
    for role_id in OBJECT_READERS:
        kms = [
            s
            for s in statements(template, role_id)
            if any(a.startswith("kms:") for a in actions(s))
        ]
        # Then each role that reads objects may decrypt with exactly those keys, nothing else
        (statement,) = kms
        assert statement["Effect"] == "Allow"
        assert actions(statement) == ["kms:Decrypt"]
        assert statement["Resource"] == KEYS
        # And only when S3 asks on its behalf (reading an object), in this partition
        assert statement["Condition"] == {
            "StringLike": {"kms:ViaService": {"Fn::Sub": "s3.*.${AWS::URLSuffix}"}}
        }
    # And the state machine, which only lists buckets, gets no key
    listed = [a for s in statements(template, "BatchStateMachineRole") for a in actions(s)]
    assert not [a for a in listed if a.startswith("kms:")]


def test_with_auth_none_only_the_batch_function_gets_the_keys() -> None:
    # Given the keys on a public stack, whose API refuses S3 references
    template = deployed(ReadableBuckets="photos", ReadableKmsKeys=",".join(KEYS))
    # Then the API's role may use no key, and the batch function's may decrypt with them
    granted = {
        role_id: [a for s in statements(template, role_id) for a in actions(s)]
        for role_id in OBJECT_READERS
    }
    assert not [a for a in granted["ClassifyFunctionRole"] if a.startswith("kms:")]
    assert "kms:Decrypt" in granted["BatchFunctionRole"]


def test_readable_kms_keys_parameter_takes_key_arns_only() -> None:
    spec = sam_template()["Parameters"]["ReadableKmsKeys"]
    pattern = re.compile(spec["AllowedPattern"])
    assert spec["Type"] == "CommaDelimitedList"
    assert spec["Default"] == ""
    good = [
        "",
        *KEYS,
        "arn:aws-cn:kms:cn-north-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ]
    for value in good:
        assert pattern.fullmatch(value), value
    bad = [
        "*",
        "arn:aws:kms:us-east-1:111111111111:key/*",
        "arn:aws:kms:us-east-1:111111111111:alias/photos",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:*:111111111111:key/1234abcd",
        " " + KEYS[0],
    ]
    for value in bad:
        assert not pattern.fullmatch(value), value


# --- provisioned concurrency across a redeploy ---------------------------------------------


def test_a_redeploy_resets_provisioned_concurrency_to_the_auto_scaling_floor_not_below() -> None:
    # Given provisioned concurrency between 3 and 12 environments
    template = deployed(ProvisionedConcurrency=3, MaxProvisionedConcurrency=12)
    alias = template["Resources"][ALIAS]["Properties"]
    _, target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    # Then the alias's own configuration, which CloudFormation applies to each new version
    # (and allocates before the alias serves it), is the floor auto scaling keeps, so a redeploy
    # never leaves fewer warm environments than ProvisionedConcurrency (docs/deploy.md)
    floor: Any = target["Properties"]["MinCapacity"]
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": floor}
    assert floor == 3
    assert target["DependsOn"] == ALIAS
