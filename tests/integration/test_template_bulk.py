"""The bulk classification part of template.yaml (issue 11), offline: the Distributed Map state
machine, the batch function, the results bucket and IAM scoped to exactly the buckets named.

Uses the same offline SAM transform as test_template.py. The ASL file itself is validated by
asl-validator in test_statemachine.py; here, cfn-lint checks the translated template.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagerec.bulk.stepfunctions import RESULTS_BUCKET_OUTPUT, STATE_MACHINE_OUTPUT
from tests.integration.test_template import (
    FAKE_IMAGE_URI,
    ROOT,
    Json,
    deployed,
    of_type,
    resource,
    sam_template,
    transformed,
)

pytestmark = pytest.mark.integration

ASL = ROOT / "statemachines" / "classify_bucket.asl.json"
CFN_LINT = ROOT / ".venv-sam" / "bin" / "cfn-lint"
# An Express workflow runs for at most 5 minutes; its child runs of the map are Express.
# https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html
EXPRESS_LIMIT_SECONDS = 300
# Lambda's init phase (the model load) may take up to 10 s on top of the function's timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_SECONDS = 10
# The one retried error that means Lambda refused the call before running the function
# (throttling); after any other, the function may have run to its timeout.
NOT_RUN = {"Lambda.TooManyRequestsException"}
# Amazon States Language defaults of a retrier.
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
RETRY_DEFAULTS = {"IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}


@pytest.fixture(scope="module", autouse=True)
def _region() -> Iterator[None]:
    # The translator asks a boto3 session for the region (to pick the partition); no network.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


def definition() -> Json:
    loaded: Json = json.loads(ASL.read_text(encoding="utf-8"))
    return loaded


def the_map(asl: Json) -> Json:
    (state,) = [s for s in asl["States"].values() if s["Type"] == "Map"]
    return state


def evaluate(node: Any, parameters: Json) -> Any:
    """Fn::Sub / Fn::Join / Fn::Split / Ref over parameters, as CloudFormation would (enough for
    the ARNs built from ReadableBuckets). Attributes of resources stay symbolic."""
    if isinstance(node, list):
        return [evaluate(item, parameters) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        value = parameters.get(argument, f"<{argument}>")
        return value.split(",") if argument == "ReadableBuckets" else value
    if function == "Fn::Join":
        delimiter, values = evaluate(argument, parameters)
        if isinstance(values, str):  # deployed() already put the list parameter's text here
            values = values.split(",")
        return delimiter.join(values)
    if function == "Fn::Split":
        delimiter, text = evaluate(argument, parameters)
        return text.split(delimiter)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: evaluate(value, parameters) for name, value in variables.items()}
        values.update({"AWS::Partition": "aws", "AWS::Region": "us-east-1"})
        values["AWS::AccountId"] = "111111111111"
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(values.get(m[1], f"<{m[1]}>")), text)
    if function == "Fn::GetAtt":
        return f"<{argument[0]}.{argument[1]}>"
    return node


def statements(template: Json, role_id: str) -> list[Json]:
    role = template["Resources"][role_id]["Properties"]
    return [
        statement
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def s3_resources(template: Json, role_id: str, action: str) -> set[str]:
    found: set[str] = set()
    for statement in statements(template, role_id):
        actions = statement["Action"]
        if action in (actions if isinstance(actions, list) else [actions]):
            resources = evaluate(statement["Resource"], template["Parameters"])
            found.update(resources if isinstance(resources, list) else [resources])
    return found


# --- the state machine --------------------------------------------------------------------------


def test_state_machine_runs_the_asl_file_with_every_placeholder_substituted() -> None:
    # Given the SAM state machine and its ASL file
    sam = sam_template()["Resources"]["BatchStateMachine"]["Properties"]
    text = ASL.read_text(encoding="utf-8")
    # When we compare the file's ${placeholders} with the DefinitionSubstitutions
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    # Then the definition lives in its own file, and each placeholder has exactly one value
    assert sam["DefinitionUri"] == "statemachines/classify_bucket.asl.json"
    assert placeholders == set(sam["DefinitionSubstitutions"])
    assert sam["Type"] == "STANDARD"


def test_substitutions_are_the_batch_function_the_results_bucket_and_the_parameters() -> None:
    # Given non-default tuning parameters
    template = deployed(BatchMaxConcurrency=250, BatchSize=20, BatchToleratedFailurePercentage=3)
    _, machine = resource(template, "BatchStateMachine")
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    # Then the map reaches exactly this stack's batch function and results bucket, with them
    # And every ARN of the ASL is built in the stack's own partition
    for name, action in (
        ("ListObjectsArn", "s3:listObjectsV2"),
        ("LambdaInvokeArn", "lambda:invoke"),
        ("PutObjectArn", "s3:putObject"),
    ):
        assert substitutions[name] == {"Fn::Sub": f"arn:${{AWS::Partition}}:states:::{action}"}
    assert substitutions["BatchFunctionArn"] == {"Fn::GetAtt": ["BatchFunction", "Arn"]}
    assert substitutions["ResultsBucket"] == {"Ref": "BatchResultsBucket"}
    assert substitutions["MaxConcurrency"] == 250
    assert substitutions["BatchSize"] == 20
    assert substitutions["ToleratedFailurePercentage"] == 3
    # And it is traced and logs its errors to a log group of this stack
    properties = machine["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    (destination,) = properties["LoggingConfiguration"]["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][log_group_id]["Type"] == "AWS::Logs::LogGroup"


def test_the_map_is_distributed_over_an_s3_listing_batched_retried_and_written_to_s3() -> None:
    # Given the ASL's one Map state
    state = the_map(definition())
    # Then it lists the bucket and prefix of the execution input
    assert state["ItemReader"]["Resource"] == "${ListObjectsArn}"
    assert state["ItemReader"]["Parameters"] == {"Bucket.$": "$.bucket", "Prefix.$": "$.prefix"}
    # And runs Express child workflows on batches of keys, as many at once as configured
    assert state["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    assert "MaxItemsPerBatchPath" in state["ItemBatcher"]
    assert state["MaxConcurrencyPath"]
    assert state["ToleratedFailurePercentagePath"]
    assert state["ItemSelector"]["key.$"] == "$$.Map.Item.Value.Key"
    # And each batch is one Lambda call, told where to write its records (the ItemBatcher's
    # BatchInput) and which child it is, retried on throttling and service errors
    (task,) = state["ItemProcessor"]["States"].values()
    assert task["Resource"] == "${LambdaInvokeArn}"
    assert task["Parameters"]["FunctionName"] == "${BatchFunctionArn}"
    assert task["Parameters"]["Payload"] == {
        "Items.$": "$.Items",
        "BatchInput.$": "$.BatchInput",
        "batch.$": "$$.Execution.Id",
    }
    assert state["ItemBatcher"]["BatchInput"] == {
        "results_bucket": "${ResultsBucket}",
        "results_prefix": "${ResultsPrefix}/records",
    }
    errors = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
    assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException"} <= errors
    throttling = next(r for r in task["Retry"] if set(r["ErrorEquals"]) <= NOT_RUN)
    assert throttling["MaxAttempts"] >= 3
    assert throttling["BackoffRate"] > 1
    # And the map's results go to the results bucket, not into the execution's output
    assert state["ResultWriter"] == {
        "Resource": "${PutObjectArn}",
        "Parameters": {"Bucket": "${ResultsBucket}", "Prefix": "${ResultsPrefix}"},
    }


def test_settings_state_turns_the_numeric_substitutions_into_numbers() -> None:
    # Given the Pass state that feeds the map's *Path fields
    asl = definition()
    first = asl["States"][asl["StartAt"]]
    state = the_map(asl)
    parameters = first["Parameters"]
    # Then every path the map reads is set there, from a substitution through StringToJson
    for field in ("MaxConcurrencyPath", "ToleratedFailurePercentagePath"):
        name = state[field].removeprefix("$.")
        assert parameters[f"{name}.$"].startswith("States.StringToJson('${"), field
    batch = state["ItemBatcher"]["MaxItemsPerBatchPath"].removeprefix("$.")
    assert parameters[f"{batch}.$"] == "States.StringToJson('${BatchSize}')"


# --- the batch function -------------------------------------------------------------------------


def test_batch_function_is_the_classify_image_with_the_batch_entry_point() -> None:
    # Given both functions
    template = deployed()
    _, api = resource(template, "ClassifyFunction")
    _, batch = resource(template, "BatchFunction")
    # Then they are one image (same Dockerfile, context and tag), entered at app.batch_handler
    assert batch["Metadata"]["Dockerfile"] == api["Metadata"]["Dockerfile"]
    assert batch["Metadata"]["DockerContext"] == api["Metadata"]["DockerContext"]
    assert batch["Metadata"]["DockerTag"] == api["Metadata"]["DockerTag"]
    assert batch["Properties"]["Code"] == {"ImageUri": FAKE_IMAGE_URI}
    assert batch["Properties"]["ImageConfig"] == {"Command": ["batch.batch_handler"]}
    # And batch.py defines that entry point, and the image ships it next to app.py
    source = ROOT / "functions" / "classify" / "batch.py"
    app = ast.parse(source.read_text(encoding="utf-8"))
    assigned = {
        target.id
        for node in app.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "batch_handler" in assigned
    dockerfile = (ROOT / "functions" / "classify" / "Dockerfile").read_text(encoding="utf-8")
    assert "functions/classify/batch.py" in dockerfile
    # And it keeps the library's own size limit (objects are not carried in a Lambda payload)
    assert "IMAGEREC_MAX_BYTES" not in batch["Properties"]["Environment"]["Variables"]


def retry_waits(retrier: Json) -> list[float]:
    """The longest wait before each retry of a retrier: IntervalSeconds x BackoffRate^n, capped
    at MaxDelaySeconds (FULL jitter waits a random part of it, never more)."""
    spec = {**RETRY_DEFAULTS, **retrier}
    waits = [
        spec["IntervalSeconds"] * spec["BackoffRate"] ** attempt
        for attempt in range(spec["MaxAttempts"])
    ]
    cap = spec.get("MaxDelaySeconds")
    return [min(wait, cap) for wait in waits] if cap else waits


def child_workflow_worst_case(asl: Json, timeout: int) -> float:
    """The longest a child workflow can run: every retrier exhausted, each wait at its longest,
    and every call the function may have run in (the first, and each retry after an error
    other than throttling) taking its whole timeout and a full init phase."""
    (task,) = the_map(asl)["ItemProcessor"]["States"].values()
    retriers = task.get("Retry", [])
    waits = sum(sum(retry_waits(retrier)) for retrier in retriers)
    runs = 1 + sum(
        {**RETRY_DEFAULTS, **retrier}["MaxAttempts"]
        for retrier in retriers
        if not set(retrier["ErrorEquals"]) <= NOT_RUN
    )
    return runs * (timeout + INIT_SECONDS) + waits


def test_a_child_workflow_fits_the_express_limit_at_its_worst() -> None:
    # Given the ASL's retriers and the batch function's timeout in the template
    timeout = resource(deployed(), "BatchFunction")[1]["Properties"]["Timeout"]
    asl = definition()
    (task,) = the_map(asl)["ItemProcessor"]["States"].values()
    # When the worst case is added up (all retries, longest waits, full runs)
    worst = child_workflow_worst_case(asl, timeout)
    # Then it ends before Step Functions stops the Express child at 5 minutes
    assert worst <= EXPRESS_LIMIT_SECONDS, f"{worst} s"
    # And no retrier catches everything (States.ALL would retry a time-out: another full run)
    assert all("States.ALL" not in r["ErrorEquals"] for r in task["Retry"])
    assert "TimeoutSeconds" not in task or task["TimeoutSeconds"] <= timeout + INIT_SECONDS


def test_the_worst_case_counts_every_run_and_wait() -> None:
    # Given the retrier the ASL had before (all errors together, six retries capped at 60 s)
    # and a 240 s timeout, the worst case is 7 runs and 122 s of waits: the sum can fail
    asl = definition()
    (task,) = the_map(asl)["ItemProcessor"]["States"].values()
    task["Retry"] = [
        {
            "ErrorEquals": ["Lambda.TooManyRequestsException", "Lambda.ServiceException"],
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "MaxDelaySeconds": 60,
        }
    ]
    assert child_workflow_worst_case(asl, 240) == 7 * (240 + INIT_SECONDS) + 122
    # And throttling alone costs only its waits
    task["Retry"][0]["ErrorEquals"] = ["Lambda.TooManyRequestsException"]
    assert child_workflow_worst_case(asl, 240) == 240 + INIT_SECONDS + 122


# --- IAM: exactly the buckets involved ------------------------------------------------------------


def test_readable_buckets_are_exactly_what_the_function_reads_and_the_map_lists() -> None:
    # Given two readable buckets
    template = deployed(ReadableBuckets="photos-a,photos-b.example")
    # When we collect the S3 resources of each role
    reads = s3_resources(template, "BatchFunctionRole", "s3:GetObject")
    lists = s3_resources(template, "BatchStateMachineRole", "s3:ListBucket")
    # Then the function reads objects of exactly those buckets and the map lists exactly them
    # (in whatever partition the stack is: "*" there, see template.yaml's BatchFunction)
    assert reads == {"arn:*:s3:::photos-a/*", "arn:*:s3:::photos-b.example/*"}
    assert lists == {"arn:*:s3:::photos-a", "arn:*:s3:::photos-b.example"}
    # And the map writes only under the results prefix of its own results bucket
    writes = s3_resources(template, "BatchStateMachineRole", "s3:PutObject")
    prefix = template["Resources"]["BatchStateMachine"]["Properties"]["DefinitionSubstitutions"][
        "ResultsPrefix"
    ]
    assert writes == {f"<BatchResultsBucket.Arn>/{prefix}/*"}
    # And the function writes its records only under the records prefix the map's BatchInput
    # gives it, and nothing else anywhere
    records_prefix = the_map(definition())["ItemBatcher"]["BatchInput"]["results_prefix"]
    records_prefix = records_prefix.replace("${ResultsPrefix}", prefix)
    assert s3_resources(template, "BatchFunctionRole", "s3:PutObject") == {
        f"<BatchResultsBucket.Arn>/{records_prefix}/*"
    }
    function_actions = {
        action
        for statement in statements(template, "BatchFunctionRole")
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert function_actions == {"s3:GetObject", "s3:PutObject"}


def test_no_readable_buckets_grants_no_bucket_at_all() -> None:
    # Given the default (empty) ReadableBuckets
    template = deployed()
    # Then neither role can read or list any input bucket
    assert s3_resources(template, "BatchFunctionRole", "s3:GetObject") == set()
    assert s3_resources(template, "BatchStateMachineRole", "s3:ListBucket") == set()
    assert "s3:::" not in json.dumps(template["Resources"]["BatchFunctionRole"])


def test_state_machine_role_invokes_only_the_batch_function_and_its_own_children() -> None:
    # Given the state machine role
    template = deployed()
    role = template["Resources"]["BatchStateMachineRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    name = evaluate(
        template["Resources"]["BatchStateMachine"]["Properties"]["StateMachineName"],
        template["Parameters"],
    )
    by_sid = {s["Sid"]: s for s in statements(template, "BatchStateMachineRole")}
    # Then only Step Functions assumes it, it invokes only the batch function,
    # and it starts executions of only this state machine (its Distributed Map children)
    assert principal == {"Service": "states.amazonaws.com"}
    assert evaluate(by_sid["InvokeBatchFunction"]["Resource"], {}) == [
        "<BatchFunction.Arn>",
        "<BatchFunction.Arn>:*",
    ]
    start = evaluate(by_sid["RunChildWorkflows"]["Resource"], template["Parameters"])
    assert start.endswith(f":stateMachine:{name}")
    # And "*" appears only for the log-delivery and X-Ray actions, which allow nothing narrower
    for statement in by_sid.values():
        if statement["Resource"] == "*":
            assert all(a.startswith(("logs:", "xray:")) for a in statement["Action"])


# --- the results bucket and the outputs -----------------------------------------------------------


def test_results_bucket_is_private_encrypted_tls_only_and_expires_results() -> None:
    # Given a 7-day retention
    template = deployed(BatchResultsRetentionDays=7)
    _, bucket = resource(template, "BatchResultsBucket")
    properties = bucket["Properties"]
    # Then it is private, encrypted and owner-enforced
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    # And results expire after the retention, with abandoned uploads cleaned up
    (lifecycle,) = properties["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == 7
    assert lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    # And its policy denies any request without TLS
    policies = [
        p
        for p in of_type(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "BatchResultsBucket"}
    ]
    (policy,) = policies
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_outputs_name_the_state_machine_and_the_results_bucket_for_imagerec_batch() -> None:
    outputs = deployed()["Outputs"]
    assert outputs[STATE_MACHINE_OUTPUT]["Value"] == {"Ref": "BatchStateMachine"}
    assert outputs[RESULTS_BUCKET_OUTPUT]["Value"] == {"Ref": "BatchResultsBucket"}


def test_readable_buckets_parameter_refuses_what_is_not_a_bucket_name() -> None:
    spec = sam_template()["Parameters"]["ReadableBuckets"]
    pattern = re.compile(spec["AllowedPattern"])
    assert spec["Type"] == "CommaDelimitedList"
    assert spec["Default"] == ""
    for good in ["", "photos", "my.photos-2026"]:
        assert pattern.fullmatch(good), good
    for bad in ["*", "Photos", "a", "arn:aws:s3:::photos", "photos/prefix", " photos"]:
        assert not pattern.fullmatch(bad), bad


# --- cfn-lint on what CloudFormation would receive ------------------------------------------------


def with_definition_object(template: Json, mutate: Any = None) -> Json:
    """The translated template with the state machine's DefinitionString (SAM's joined lines)
    given as the equivalent Definition object, which cfn-lint checks against its ASL schema."""
    properties = template["Resources"]["BatchStateMachine"]["Properties"]
    joined = properties.pop("DefinitionString")
    delimiter, lines = joined["Fn::Join"]
    definition = json.loads(delimiter.join(lines))
    if mutate is not None:
        mutate(definition)
    properties["Definition"] = definition
    return template


def cfn_lint(template: Json, path: Path) -> subprocess.CompletedProcess[str]:
    if not CFN_LINT.exists():
        pytest.fail("cfn-lint is missing: run `make iac-tools` (make check does)")
    path.write_text(json.dumps(template), encoding="utf-8")
    return subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cfn_lint_passes_on_the_translated_template(tmp_path: Path) -> None:
    # Given the template as the SAM transform hands it to CloudFormation, and the same with
    # the definition as an object, so that cfn-lint's state machine rules read the ASL too
    translated = transformed(ReadableBuckets="photos-a,photos-b")
    # When cfn-lint checks both, then it reports nothing
    for name, template in (("as-is", translated), ("object", with_definition_object(translated))):
        result = cfn_lint(template, tmp_path / f"{name}.json")
        assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_state_machine(tmp_path: Path) -> None:
    # Given the definition with a state of a type that does not exist
    def break_it(definition: Json) -> None:
        the_map(definition)["Type"] = "Mapp"

    template = with_definition_object(transformed(), break_it)
    # When linted, then cfn-lint refuses it: the check above can fail
    result = cfn_lint(template, tmp_path / "broken.json")
    assert result.returncode != 0
    assert "Mapp" in result.stdout
