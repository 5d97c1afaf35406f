"""template.yaml as CloudFormation will see it: transformed offline by aws-sam-translator.

`sam deploy` sends the SAM template to CloudFormation, which runs the same translator and then
evaluates Conditions with the stack's parameters. These tests do both here, with no AWS account:
`transformed()` runs the translator (no IAM look-ups, a fake ImageUri where `sam deploy` would put
the pushed image), and `deployed()` evaluates Conditions, `Fn::If`, `AWS::NoValue` and parameter
`Ref`s the way CloudFormation does, so each test asserts on what would really be created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from imagerec.http.api import ROUTES
from imagerec.http.headers import (
    CONTENT_SECURITY_POLICY,
    SECURITY_HEADERS,
    security_headers,
    upload_origins,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# `sam deploy --resolve-image-repos` fills ImageUri with the pushed image; any ECR URI will do here.
FAKE_IMAGE_URI = "111111111111.dkr.ecr.us-east-1.amazonaws.com/imagerec:classify-v1"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALIAS = "ClassifyFunctionAliaslive"
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
NO_VALUE = object()

Json = dict[str, Any]


class OfflineManagedPolicies(ManagedPolicyLoader):
    """Answers the translator's managed-policy look-up without calling IAM."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module", autouse=True)
def _region() -> Iterator[None]:
    # The translator asks a boto3 session for the region (to pick the partition); no network.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


def sam_template() -> Json:
    template: Json = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    return template


@cache
def _transform(overrides: tuple[tuple[str, Any], ...]) -> str:
    template = sam_template()
    for spec in template["Resources"].values():
        properties = spec.get("Properties", {})
        if spec["Type"] == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties["ImageUri"] = FAKE_IMAGE_URI
        # `sam deploy` uploads a local DefinitionUri; offline, the file's JSON is inlined instead.
        definition = properties.get("DefinitionUri")
        if spec["Type"] == "AWS::Serverless::StateMachine" and isinstance(definition, str):
            del properties["DefinitionUri"]
            properties["Definition"] = json.loads((ROOT / definition).read_text(encoding="utf-8"))
    output = transform(template, dict(overrides), OfflineManagedPolicies())
    return json.dumps(output)


def transformed(**overrides: Any) -> Json:
    """The CloudFormation template the SAM transform produces for these parameter values."""
    result: Json = json.loads(_transform(tuple(sorted(overrides.items()))))
    return result


def deployed(**overrides: Any) -> Json:
    """The transformed template with Conditions applied, as the stack would hold it."""
    template = transformed(**overrides)
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    parameters.update(overrides)
    for name, spec in template["Parameters"].items():
        if spec.get("Type") == "CommaDelimitedList" and isinstance(parameters[name], str):
            parameters[name] = parameters[name].split(",")  # as CloudFormation's Ref gives it
    conditions: dict[str, bool] = {}
    for name, expression in template.get("Conditions", {}).items():
        conditions[name] = bool(_evaluate(expression, parameters, conditions))
    resources = {
        logical_id: _resolve(resource, parameters, conditions)
        for logical_id, resource in template["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    outputs = {
        name: _resolve(output, parameters, conditions)
        for name, output in template.get("Outputs", {}).items()
        if conditions.get(output.get("Condition", ""), True)
    }
    return {**template, "Resources": resources, "Outputs": outputs, "Parameters": parameters}


def _evaluate(expression: Any, parameters: Json, conditions: dict[str, bool]) -> Any:
    if not isinstance(expression, dict) or len(expression) != 1:
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return parameters.get(argument, expression)
    if function == "Condition":
        return conditions[argument]
    if function == "Fn::Equals":
        left, right = (_evaluate(value, parameters, conditions) for value in argument)
        return str(left) == str(right)
    if function == "Fn::Join":
        delimiter, values = argument
        values = _evaluate(values, parameters, conditions)
        if isinstance(values, str):  # a CommaDelimitedList parameter's value
            values = values.split(",")
        return delimiter.join(str(_evaluate(value, parameters, conditions)) for value in values)
    if function == "Fn::Not":
        return not _evaluate(argument[0], parameters, conditions)
    if function == "Fn::And":
        return all(_evaluate(value, parameters, conditions) for value in argument)
    if function == "Fn::Or":
        return any(_evaluate(value, parameters, conditions) for value in argument)
    if function == "Fn::Join":
        delimiter, values = argument
        return _join(delimiter, _evaluate(values, parameters, conditions))
    return expression


def _join(delimiter: str, values: Any) -> Any:
    """Fn::Join, when every part is known; else the expression, unresolved."""
    if isinstance(values, list) and all(isinstance(value, str) for value in values):
        return delimiter.join(values)
    return {"Fn::Join": [delimiter, values]}


def _resolve(node: Any, parameters: Json, conditions: dict[str, bool]) -> Any:
    if isinstance(node, list):
        items = (_resolve(item, parameters, conditions) for item in node)
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref" and argument == "AWS::NoValue":
            return NO_VALUE
        if function == "Ref" and argument in parameters:
            return parameters[argument]
        if function == "Fn::If":
            name, when_true, when_false = argument
            return _resolve(when_true if conditions[name] else when_false, parameters, conditions)
        if function == "Fn::Join":
            delimiter, values = argument
            return _join(delimiter, _resolve(values, parameters, conditions))
        if function == "Fn::Split":
            delimiter, text = (_resolve(value, parameters, conditions) for value in argument)
            if isinstance(text, str):
                return text.split(delimiter)
    resolved = {key: _resolve(value, parameters, conditions) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not NO_VALUE}


def of_type(template: Json, resource_type: str) -> dict[str, Json]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def only(template: Json, resource_type: str) -> tuple[str, Json]:
    found = of_type(template, resource_type)
    assert len(found) == 1, f"Expected one {resource_type}, received: {sorted(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


def resource(template: Json, logical_id: str) -> tuple[str, Json]:
    """One resource by its logical id (for types the stack has more than one of)."""
    found: Json = template["Resources"][logical_id]
    return logical_id, found


def distribution_config(template: Json) -> Json:
    config: Json = only(template, "AWS::CloudFront::Distribution")[1]["Properties"][
        "DistributionConfig"
    ]
    return config


def upload_bucket_name() -> Json:
    """The upload bucket's name expression, which everything that names the bucket repeats."""
    name: Json = sam_template()["Resources"]["UploadBucket"]["Properties"]["BucketName"]
    return name


UPLOAD_ORIGINS = [
    "https://${UploadBucketName}.s3.${AWS::Region}.${AWS::URLSuffix}",
    "https://${UploadBucketName}.s3.${AWS::URLSuffix}",
]


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


# --- the function ------------------------------------------------------------------------------


def test_function_is_a_traced_container_image_built_from_the_classify_dockerfile() -> None:
    # Given the stack with default parameters
    template = deployed()
    # When we look at the one Lambda function
    logical_id, function = resource(template, "ClassifyFunction")
    properties = function["Properties"]
    # Then it is an image function that SAM builds from functions/classify/Dockerfile
    assert logical_id == "ClassifyFunction"
    assert properties["PackageType"] == "Image"
    assert properties["Code"] == {"ImageUri": FAKE_IMAGE_URI}
    assert "Runtime" not in properties
    assert "Handler" not in properties
    metadata = function["Metadata"]
    assert metadata["Dockerfile"] == "functions/classify/Dockerfile"
    assert metadata["DockerContext"] == "."
    assert metadata["DockerTag"]
    assert metadata["DockerTag"] != "latest"
    # And it is traced, sized by the parameter, and times out before API Gateway's 30 s
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["MemorySize"] == 2048
    assert properties["Timeout"] < 30


def test_function_environment_configures_the_app_and_powertools() -> None:
    # Given / When the function's environment
    variables = resource(deployed(), "ClassifyFunction")[1]["Properties"]["Environment"][
        "Variables"
    ]
    # Then Powertools names the service and the metrics namespace, and keeps traces small
    assert variables["POWERTOOLS_SERVICE_NAME"] == "imagerec"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Imagerec"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["IMAGEREC_MODEL"] == "efficientnet_lite0"
    # And both functions build the same image and serve the model it was built with (a
    # mismatch would fail every request, or split the API's answers from the bulk run's)
    for function in ("ClassifyFunction", "BatchFunction"):
        built = sam_template()["Resources"][function]["Metadata"]["DockerBuildArgs"]
        served = resource(deployed(), function)[1]["Properties"]["Environment"]["Variables"]
        assert built["IMAGEREC_MODEL"] == served["IMAGEREC_MODEL"] == variables["IMAGEREC_MODEL"]
    # And the upload cap still fits Lambda's 6 MB synchronous payload once base64 adds a third
    max_bytes = int(variables["IMAGEREC_MAX_BYTES"])
    assert max_bytes * 4 / 3 + 64 * 1024 < LAMBDA_SYNC_PAYLOAD_BYTES
    assert max_bytes >= 4_000_000


@pytest.mark.parametrize("overrides", [{}, {"Architecture": "x86_64", "ProvisionedConcurrency": 2}])
def test_function_leaves_the_runtime_to_the_image(overrides: dict[str, Any]) -> None:
    # Given every function's environment (the API's and the bulk batch's), whatever the parameters
    functions = of_type(deployed(**overrides), "AWS::Lambda::Function")
    for logical_id, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        # Then it sets no runtime: the image's final stage states the one it contains, and a
        # value here (like "auto") could pick a runtime the image lacks and crash every cold start
        assert not any(name.startswith("IMAGEREC_RUNTIME") for name in variables), logical_id


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_function_architecture_follows_the_parameter(architecture: str) -> None:
    # Given / When the stack deployed for one architecture
    functions = of_type(deployed(Architecture=architecture), "AWS::Lambda::Function")
    # Then every function runs on it (and sam build builds the image for that platform)
    for logical_id, function in functions.items():
        assert function["Properties"]["Architectures"] == [architecture], logical_id


def test_architecture_parameter_offers_both_and_defaults_to_graviton() -> None:
    spec = sam_template()["Parameters"]["Architecture"]
    assert sorted(spec["AllowedValues"]) == ["arm64", "x86_64"]
    assert spec["Default"] == "arm64"


def test_function_logs_to_its_own_log_group_with_retention() -> None:
    # Given the function and the log groups
    template = deployed(LogRetentionDays=14)
    properties = resource(template, "ClassifyFunction")[1]["Properties"]
    # When we follow its LoggingConfig
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = template["Resources"][log_group_id]
    # Then it is a log group of this stack with the requested retention
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 14


def _statements(role: Json) -> list[Json]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_function_role_has_only_logging_xray_and_upload_permissions() -> None:
    # Given the role SAM generates for the function, with no readable bucket (the default)
    _, role = resource(deployed(), "ClassifyFunctionRole")
    properties = role["Properties"]
    # When we list its managed policies
    arns = [json.dumps(arn) for arn in properties["ManagedPolicyArns"]]
    # Then it can write logs and traces
    assert len(arns) == 2
    assert any("AWSLambdaBasicExecutionRole" in arn for arn in arns)
    assert any("AWSXrayWriteOnlyAccess" in arn for arn in arns)
    # And put (to sign presigned forms), get and delete objects under uploads/ and forms/ (the
    # markers of open forms) of its upload bucket, and list those two prefixes only (to count a
    # caller's open forms): no other bucket, no other prefix, no wildcard action
    objects, listing = _statements(role)
    assert objects["Effect"] == listing["Effect"] == "Allow"
    assert sorted(objects["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    subs = [resource["Fn::Sub"] for resource in objects["Resource"]]
    assert [template for template, _ in subs] == [
        "arn:${AWS::Partition}:s3:::${UploadBucketName}/uploads/*",
        "arn:${AWS::Partition}:s3:::${UploadBucketName}/forms/*",
    ]
    assert all(names == {"UploadBucketName": upload_bucket_name()} for _, names in subs)
    assert listing["Action"] == "s3:ListBucket"
    template, names = listing["Resource"]["Fn::Sub"]
    assert (template, names) == (
        "arn:${AWS::Partition}:s3:::${UploadBucketName}",
        {"UploadBucketName": upload_bucket_name()},
    )
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["uploads/*", "forms/*"]}}


def test_readable_buckets_get_exactly_object_reads() -> None:
    # Given two operator-allowed buckets, and an authorizer (S3 references need one)
    template = deployed(ReadableBuckets="photos-a,archive.b", Auth="iam")
    _, role = resource(template, "ClassifyFunctionRole")
    # When we look at the statements beyond the uploads ones
    statements = _statements(role)
    assert len(statements) == 3
    reads = statements[2]
    # Then they may read objects (any version) in exactly those buckets, nothing more
    assert reads["Effect"] == "Allow"
    assert sorted(reads["Action"]) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert reads["Resource"] == ["arn:*:s3:::photos-a/*", "arn:*:s3:::archive.b/*"]
    # And the function is told the same list
    function = resource(template, "ClassifyFunction")[1]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["IMAGEREC_READABLE_BUCKETS"] == "photos-a,archive.b"


# --- provisioned concurrency and its auto scaling --------------------------------------------


def test_live_alias_holds_the_provisioned_concurrency() -> None:
    # Given one provisioned environment (prod-like; the default has none)
    template = deployed(ProvisionedConcurrency=1)
    # When we look at the alias SAM publishes
    alias = template["Resources"][ALIAS]
    # Then "live" points at the published version and keeps one environment initialised
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["Name"] == "live"
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert template["Resources"][version_id]["Type"] == "AWS::Lambda::Version"
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": 1
    }


def test_provisioned_concurrency_is_auto_scaled_on_utilisation() -> None:
    # Given provisioned concurrency between 2 and 8 environments at 60 % target utilisation
    template = deployed(
        ProvisionedConcurrency=2, MaxProvisionedConcurrency=8, TargetUtilization=0.6
    )
    # When we look at Application Auto Scaling
    target_id, target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    _, policy = only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    # Then the live alias is the scalable target, created only after the alias exists
    assert target["DependsOn"] == ALIAS
    assert target["Properties"]["ServiceNamespace"] == "lambda"
    assert target["Properties"]["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert target["Properties"]["ResourceId"] == {"Fn::Sub": "function:${ClassifyFunction}:live"}
    assert target["Properties"]["MinCapacity"] == 2
    assert target["Properties"]["MaxCapacity"] == 8
    assert template["Resources"][ALIAS]["Properties"]["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": 2
    }
    # And target tracking keeps utilisation at the requested fraction
    properties = policy["Properties"]
    assert properties["PolicyType"] == "TargetTrackingScaling"
    assert properties["ScalingTargetId"] == {"Ref": target_id}
    tracking = properties["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 0.6
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"
    }


def test_zero_provisioned_concurrency_turns_it_and_its_scaling_off() -> None:
    # Given ProvisionedConcurrency=0 (the default, which a new account can hold)
    template = deployed()
    # When we look at the alias and at Application Auto Scaling
    alias = template["Resources"][ALIAS]
    # Then the alias still exists (the API invokes it) but keeps nothing warm, and nothing scales
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"]
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    assert "FunctionAliasArn" in template["Outputs"]


# --- the cost ceiling: reserved concurrency ----------------------------------------------------


def test_no_concurrency_is_reserved_by_default_so_a_new_account_can_deploy() -> None:
    # Given / When the defaults (an account with a quota of 10 cannot reserve any concurrency)
    properties = resource(deployed(), "ClassifyFunction")[1]["Properties"]
    # Then nothing is reserved (and never 0, which would throttle every request)
    assert "ReservedConcurrentExecutions" not in properties


def test_reserved_concurrency_caps_the_function() -> None:
    # Given a ceiling of 25 concurrent executions with provisioned concurrency inside it
    template = deployed(
        ReservedConcurrency=25, ProvisionedConcurrency=2, MaxProvisionedConcurrency=20
    )
    # When we look at the function
    properties = resource(template, "ClassifyFunction")[1]["Properties"]
    # Then Lambda never runs more than 25 at once, whatever the traffic
    assert properties["ReservedConcurrentExecutions"] == 25
    spec = sam_template()["Parameters"]["ReservedConcurrency"]
    assert spec["Default"] == 0
    assert spec["MinValue"] == 0


# --- operations: alarms, their e-mail topic, the dashboard --------------------------------------


def alarms(template: Json) -> dict[str, Json]:
    """Each alarm's properties, keyed by the metric it watches (the expression's, for math)."""
    found: dict[str, Json] = {}
    for resource in of_type(template, "AWS::CloudWatch::Alarm").values():
        properties = resource["Properties"]
        if "Metrics" in properties:
            names = [
                q["MetricStat"]["Metric"]["MetricName"]
                for q in properties["Metrics"]
                if "MetricStat" in q
            ]
            found["/".join(sorted(names))] = properties
        else:
            found[properties["MetricName"]] = properties
    return found


def dimensions(properties: Json) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in properties["Dimensions"]}


def test_default_alarms_watch_errors_throttles_latency_and_the_5xx_rate() -> None:
    # Given the defaults (no provisioned concurrency, no e-mail) and a 3 s latency threshold
    template = deployed(LatencyAlarmMs=3000)
    found = alarms(template)
    function = {"FunctionName": {"Ref": "ClassifyFunction"}}
    # Then exactly these four alarms exist, none waiting for data that never comes
    assert set(found) == {"5xx/Count", "Errors", "Throttles", "Duration"}
    assert all(a["TreatMissingData"] == "notBreaching" for a in found.values())
    # And any function error or throttle in 5 minutes fires
    for name in ("Errors", "Throttles"):
        alarm = found[name]
        assert (alarm["Namespace"], dimensions(alarm)) == ("AWS/Lambda", function)
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # And latency is the p99 of the function's Duration against the parameter
    latency = found["Duration"]
    assert (latency["Namespace"], dimensions(latency)) == ("AWS/Lambda", function)
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == 3000
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"
    # And the 5xx alarm divides this API's 5xx by its requests, in percent, above 5 %
    rate = found["5xx/Count"]
    queries = {q["Id"]: q for q in rate["Metrics"]}
    (expression,) = [q for q in queries.values() if q.get("ReturnData")]
    assert expression["Expression"] == "IF(requests >= 10, 100 * errors / requests, 0)"
    assert queries["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert queries["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    for query_id in ("errors", "requests"):
        metric = queries[query_id]["MetricStat"]["Metric"]
        assert metric["Namespace"] == "AWS/ApiGateway"
        assert dimensions(metric) == {"ApiId": {"Ref": only(template, "AWS::ApiGatewayV2::Api")[0]}}
    assert (rate["Threshold"], rate["ComparisonOperator"]) == (5, "GreaterThanThreshold")
    # And, with no AlarmEmail, nobody is notified: no topic, no actions
    assert of_type(template, "AWS::SNS::Topic") == {}
    assert all("AlarmActions" not in a and "OKActions" not in a for a in found.values())
    assert "AlarmTopicArn" not in template["Outputs"]


def test_spillover_alarm_watches_the_live_alias_only_with_provisioned_concurrency() -> None:
    # Given provisioned concurrency on
    found = alarms(deployed(ProvisionedConcurrency=2))
    # Then requests spilling past the warm environments of the live alias raise an alarm
    spillover = found["ProvisionedConcurrencySpilloverInvocations"]
    assert dimensions(spillover) == {
        "FunctionName": {"Ref": "ClassifyFunction"},
        "Resource": {"Fn::Sub": "${ClassifyFunction}:live"},
    }
    assert (spillover["Statistic"], spillover["Threshold"]) == ("Sum", 1)
    # And without provisioned concurrency there is nothing to spill over, so no alarm
    assert "ProvisionedConcurrencySpilloverInvocations" not in alarms(deployed())


def test_alarm_email_subscribes_to_a_topic_that_every_alarm_notifies() -> None:
    # Given an e-mail address for alarms, with provisioned concurrency (all five alarms)
    template = deployed(AlarmEmail="ops@example.com", ProvisionedConcurrency=1)
    # When we look at SNS
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, subscription = only(template, "AWS::SNS::Subscription")
    # Then the address is subscribed by e-mail to the one topic
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic_id},
        "Protocol": "email",
        "Endpoint": "ops@example.com",
    }
    # And every alarm tells the topic when it fires and when it clears
    found = alarms(template)
    assert len(found) == 5
    for alarm in found.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_alarm_email_parameter_accepts_one_address_or_nothing() -> None:
    pattern = sam_template()["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, "ops@example.com")
    for bad in ("ops", "a@b", "a@b.com,c@d.com", "a @b.com"):
        assert not re.fullmatch(pattern, bad), bad


def rendered_dashboard(template: Json) -> Json:
    """The dashboard body as CloudWatch receives it, with made-up ids for the Fn::Sub names."""
    body, variables = only(template, "AWS::CloudWatch::Dashboard")[1]["Properties"][
        "DashboardBody"
    ]["Fn::Sub"]
    names = {
        "AWS::Region": "us-east-1",
        only(template, "AWS::ApiGatewayV2::Api")[0]: "a1b2c3",
        "ClassifyFunction": "imagerec-ClassifyFunction-XYZ",
        "LatencyAlarmMs": str(template["Parameters"]["LatencyAlarmMs"]),
    }
    assert variables == {"Alias": {"Fn::Sub": "${ClassifyFunction}:live"}}
    names["Alias"] = names["ClassifyFunction"] + ":live"
    text = re.sub(r"\$\{([\w:]+)\}", lambda m: names[m.group(1)], body)
    result: Json = json.loads(text)
    return result


def test_dashboard_shows_traffic_errors_latency_and_concurrency() -> None:
    # Given / When the dashboard body, rendered as CloudFormation would
    dashboard = rendered_dashboard(deployed(LatencyAlarmMs=4000))
    metrics = [
        tuple(item for item in line if isinstance(item, str))
        for widget in dashboard["widgets"]
        for line in widget["properties"]["metrics"]
    ]
    # Then it is valid JSON whose widgets show this API's and this function's metrics
    by_name = {m[1]: m for m in metrics}
    for name in ("Count", "4xx", "5xx", "Latency"):
        assert by_name[name][:4] == ("AWS/ApiGateway", name, "ApiId", "a1b2c3")
    for name in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"):
        assert by_name[name][:3] == ("AWS/Lambda", name, "FunctionName")
    spillover = by_name["ProvisionedConcurrencySpilloverInvocations"]
    assert spillover[-2:] == ("Resource", "imagerec-ClassifyFunction-XYZ:live")
    # And the latency widget marks the alarm's threshold
    (duration,) = [
        w for w in dashboard["widgets"] if "duration" in w["properties"]["title"].lower()
    ]
    assert duration["properties"]["annotations"]["horizontal"][0]["value"] == 4000
    assert all(w["properties"]["region"] == "us-east-1" for w in dashboard["widgets"])


# --- the HTTP API ------------------------------------------------------------------------------


def test_every_route_invokes_the_live_alias_not_the_bare_function() -> None:
    # Given the HTTP API's OpenAPI body
    template = deployed()
    _, api = only(template, "AWS::ApiGatewayV2::Api")
    paths = api["Properties"]["Body"]["paths"]
    # When we list its routes
    routes = {(method, path) for path, item in paths.items() for method in item}
    # Then they are the API's own routing table, plus the /api/* fallback
    # (less the local store's form target: in the cloud forms go to S3, the fallback answers it)
    cloud_routes = [route for route in ROUTES if "<" not in route.path]
    assert routes == {(route.method.lower(), route.path) for route in cloud_routes} | {
        ("x-amazon-apigateway-any-method", "/api/{proxy+}")
    }
    timeout_ms = resource(template, "ClassifyFunction")[1]["Properties"]["Timeout"] * 1000
    for path, item in paths.items():
        for method, operation in item.items():
            integration = operation["x-amazon-apigateway-integration"]
            uri = integration["uri"]["Fn::Sub"]
            # And each is a payload-2.0 proxy integration with the alias, so provisioned
            # concurrency serves it
            assert "${" + ALIAS + "}" in uri, (method, path, uri)
            assert "${ClassifyFunction.Arn}" not in uri
            assert integration["type"] == "aws_proxy"
            assert integration["payloadFormatVersion"] == "2.0"
            assert timeout_ms < integration["timeoutInMillis"] <= 30_000
    # And API Gateway may invoke only the alias
    permissions = of_type(template, "AWS::Lambda::Permission")
    assert len(permissions) == len(routes)
    for permission in permissions.values():
        assert permission["Properties"]["FunctionName"] == {"Ref": ALIAS}
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_api_stage_is_throttled_and_access_logged() -> None:
    # Given throttling of 20 requests/s with bursts of 40
    template = deployed(ThrottlingRateLimit=20, ThrottlingBurstLimit=40, LogRetentionDays=7)
    # When we look at the API's stage
    _, stage = only(template, "AWS::ApiGatewayV2::Stage")
    properties = stage["Properties"]
    # Then the $default stage (paths reach the function unprefixed) throttles every route
    assert properties["StageName"] == "$default"
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] == 20
    assert properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 40
    # And writes JSON access logs to a log group of this stack with retention
    settings = properties["AccessLogSettings"]
    log_group_id = settings["DestinationArn"]["Fn::GetAtt"][0]
    log_group = template["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 7
    fields = json.loads(settings["Format"])
    assert {"requestId", "ip", "routeKey", "status", "integrationError"} <= set(fields)


def test_cors_is_off_by_default_because_the_page_is_same_origin() -> None:
    # Given / When the default AllowedOrigins (empty)
    _, api = only(deployed(), "AWS::ApiGatewayV2::Api")
    # Then the API answers no CORS preflight at all
    assert "x-amazon-apigateway-cors" not in api["Properties"]["Body"]
    assert "CorsConfiguration" not in api["Properties"]


def test_cors_allows_exactly_the_configured_origins() -> None:
    # Given two allowed origins
    origins = "https://imagerec.example.com,http://localhost:8080"
    # When the template is deployed with them
    _, api = only(deployed(AllowedOrigins=origins), "AWS::ApiGatewayV2::Api")
    cors = api["Properties"]["Body"]["x-amazon-apigateway-cors"]
    # Then only those origins, and only the methods the page uses, are allowed
    assert cors["allowOrigins"] == origins.split(",")
    assert set(cors["allowMethods"]) <= {"GET", "POST", "OPTIONS"}


# --- the site: bucket, OAC, distribution -------------------------------------------------------


def test_site_bucket_is_private_encrypted_and_owner_enforced() -> None:
    # Given / When the one bucket
    _, bucket = resource(deployed(), "SiteBucket")
    properties = bucket["Properties"]
    # Then all four public-access blocks are on
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # And objects are encrypted at rest and ACLs are disabled
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert "WebsiteConfiguration" not in properties
    assert "AccessControl" not in properties


def test_bucket_policy_denies_plain_http_and_admits_only_this_distribution() -> None:
    # Given the bucket policy
    template = deployed()
    bucket_id, _ = resource(template, "SiteBucket")
    distribution_id, _ = only(template, "AWS::CloudFront::Distribution")
    _, policy = resource(template, "SiteBucketPolicy")
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # When we split it into denials and grants
    denials = [s for s in statements if s["Effect"] == "Deny"]
    grants = [s for s in statements if s["Effect"] == "Allow"]
    # Then every request without TLS is denied, on the bucket and on its objects
    (deny,) = denials
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(deny["Resource"]) == 2
    # And the only grant is read access for CloudFront, from this distribution alone
    (grant,) = grants
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert grant["Action"] == "s3:GetObject"
    source_arn = grant["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(":distribution/${" + distribution_id + "}")


def test_distribution_reads_the_bucket_through_origin_access_control_not_oai() -> None:
    # Given the distribution and the origin access control
    template = deployed()
    oac_id, oac = only(template, "AWS::CloudFront::OriginAccessControl")
    bucket_id, _ = resource(template, "SiteBucket")
    config = distribution_config(template)
    # When we find the S3 origin
    (s3_origin,) = [origin for origin in config["Origins"] if "S3OriginConfig" in origin]
    # Then it is this bucket, signed with SigV4 through OAC, and no legacy OAI exists anywhere
    assert s3_origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert s3_origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert s3_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    settings = oac["Properties"]["OriginAccessControlConfig"]
    assert settings["OriginAccessControlOriginType"] == "s3"
    assert settings["SigningBehavior"] == "always"
    assert settings["SigningProtocol"] == "sigv4"
    assert of_type(template, "AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
    assert "origin-access-identity" not in json.dumps(template)


def test_distribution_serves_index_html_over_https_http2_and_http3() -> None:
    # Given the distribution with the PriceClass_200 parameter
    config = distribution_config(deployed(PriceClass="PriceClass_200"))
    default = config["DefaultCacheBehavior"]
    # Then / When it serves the page from the bucket, redirecting plain HTTP, compressed
    assert config["Enabled"] is True
    assert config["DefaultRootObject"] == "index.html"
    assert config["HttpVersion"] == "http2and3"
    assert config["PriceClass"] == "PriceClass_200"
    assert default["TargetOriginId"] == "SiteBucketOrigin"
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["Compress"] is True
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert set(default["AllowedMethods"]) == {"GET", "HEAD"}


def test_api_behaviour_forwards_everything_but_host_to_the_http_api_uncached() -> None:
    # Given the distribution
    template = deployed()
    api_id, _ = only(template, "AWS::ApiGatewayV2::Api")
    config = distribution_config(template)
    # When we find the /api/* behaviour and its origin
    (behaviour,) = config["CacheBehaviors"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    origin = origins[behaviour["TargetOriginId"]]
    # Then /api/* goes to this stack's HTTP API over TLS 1.2, on the page's own origin
    assert behaviour["PathPattern"] == "/api/*"
    assert origin["DomainName"]["Fn::Sub"].startswith("${" + api_id + "}.execute-api.")
    assert "OriginPath" not in origin
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    # And nothing is cached, every viewer header but Host is forwarded, every method allowed
    assert behaviour["CachePolicyId"] == CACHING_DISABLED
    assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(behaviour["AllowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "POST",
        "PATCH",
        "DELETE",
    }
    assert behaviour["ViewerProtocolPolicy"] in {"https-only", "redirect-to-https"}


def test_security_headers_are_strict_and_on_every_response() -> None:
    # Given the response headers policy
    template = deployed()
    policy_id, policy = only(template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp_sub = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert csp_sub[1] == {"UploadBucketName": upload_bucket_name()}
    headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] = csp_sub[0]
    # Then HSTS lasts at least a year, including subdomains
    hsts = headers["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 31_536_000
    assert hsts["IncludeSubdomains"] is True
    # And the CSP allows only this origin, plus blob:/data: images for local previews
    csp = csp_directives(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", *UPLOAD_ORIGINS]
    assert csp["img-src"] == ["'self'", "blob:", "data:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)
    # No other origin, and no wildcard anywhere
    assert not any(
        re.match(r"https?:|\*", source) or "*" in source
        for sources in csp.values()
        for source in sources
        if source not in UPLOAD_ORIGINS
    )
    # And sniffing, framing and referrers are locked down, overriding whatever the origin says
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in {
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }
    assert all(header.get("Override") is True for header in headers.values())
    # When we look at the behaviours, then both the page and the API send these headers
    config = distribution_config(template)
    for behaviour in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": policy_id}


# What a stack's pseudo parameters and its upload bucket's name resolve to, for rendering.
STACK_BUCKET = "imagerec-uploads-4f1c2d3e-5a6b-47c8-9d0e-1f2a3b4c5d6e"
STACK_REGION = "eu-west-1"
STACK_URL_SUFFIX = "amazonaws.com"


def rendered_csp(config: Json) -> str:
    """The CSP CloudFront sends for a stack: the ``!Sub`` resolved as CloudFormation does, the
    folded YAML's line breaks become spaces."""
    template, names = config["ContentSecurityPolicy"]["Fn::Sub"]
    assert names == {"UploadBucketName": upload_bucket_name()}
    values = {
        "UploadBucketName": STACK_BUCKET,
        "AWS::Region": STACK_REGION,
        "AWS::URLSuffix": STACK_URL_SUFFIX,
    }
    policy: str = re.sub(r"\$\{([^}]+)\}", lambda match: values[match[1]], template)
    return policy


def sent_headers(policy: Json) -> dict[str, str]:
    """The headers a ResponseHeadersPolicy makes CloudFront send, rendered as on the wire."""
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    hsts = security["StrictTransportSecurity"]
    directives = [f"max-age={hsts['AccessControlMaxAgeSec']}"]
    directives += ["includeSubDomains"] if hsts.get("IncludeSubdomains") else []
    directives += ["preload"] if hsts.get("Preload") else []
    headers = {
        "Content-Security-Policy": rendered_csp(security["ContentSecurityPolicy"]),
        "Strict-Transport-Security": "; ".join(directives),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": security["FrameOptions"]["FrameOption"],
        "Referrer-Policy": security["ReferrerPolicy"]["ReferrerPolicy"],
    }
    # Only the five security headers above are expected there; anything else would be unchecked.
    assert set(security) == {
        "ContentSecurityPolicy",
        "StrictTransportSecurity",
        "ContentTypeOptions",
        "FrameOptions",
        "ReferrerPolicy",
    }
    for item in config.get("CustomHeadersConfig", {}).get("Items", []):
        headers[item["Header"]] = item["Value"]
    return headers


def test_cloudfront_sends_exactly_the_security_headers_of_imagerec_headers() -> None:
    # Given the response headers policy CloudFront applies to the page and the API
    _, policy = only(deployed(), "AWS::CloudFront::ResponseHeadersPolicy")
    # When we render it as the headers CloudFront sends for a stack
    sent = sent_headers(policy)
    # Then it is the package's one policy with that stack's upload bucket, byte for byte
    # (imagerec serve sends the same, with IMAGEREC_UPLOAD_BUCKET naming that bucket)
    origins = upload_origins(STACK_BUCKET, STACK_REGION, STACK_URL_SUFFIX)
    assert sent == security_headers(origins)
    # And without the bucket's origins, it is what imagerec serve sends with its local store
    csp = csp_directives(sent["Content-Security-Policy"])
    assert csp["connect-src"] == ["'self'", *origins]
    csp["connect-src"] = ["'self'"]
    assert csp == csp_directives(CONTENT_SECURITY_POLICY)


def test_security_header_policy_keeps_the_directives_the_issue_asked_for() -> None:
    # Given the one policy
    csp = csp_directives(SECURITY_HEADERS["Content-Security-Policy"])
    # Then fonts are same-origin, <base> is forbidden, and plain-http subresources are upgraded
    assert csp["font-src"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["upgrade-insecure-requests"] == []
    assert SECURITY_HEADERS["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "geolocation=()" in SECURITY_HEADERS["Permissions-Policy"]


# --- uploads: the private, expiring upload bucket -------------------------------------------------


def test_upload_bucket_is_private_encrypted_owner_enforced_and_expiring() -> None:
    # Given / When the upload bucket
    bucket = deployed()["Resources"]["UploadBucket"]
    properties = bucket["Properties"]
    # Then it is named from the stack id (unique, and known without a !Ref)
    assert properties["BucketName"] == {
        "Fn::Sub": [
            "imagerec-uploads-${StackUuid}",
            {"StackUuid": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}},
        ]
    }
    # And all four public-access blocks are on, it is encrypted, ACLs are disabled
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert "AccessControl" not in properties
    assert "VersioningConfiguration" not in properties  # deleted photos stay deleted
    # And everything under uploads/ is deleted after a day, and so are the forms' markers
    expiry, markers = properties["LifecycleConfiguration"]["Rules"]
    assert expiry["Status"] == "Enabled"
    assert expiry["Prefix"] == "uploads/"
    assert expiry["ExpirationInDays"] == 1
    assert expiry["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert (markers["Status"], markers["Prefix"], markers["ExpirationInDays"]) == (
        "Enabled",
        "forms/",
        1,
    )


def test_upload_bucket_cors_admits_only_the_site_and_allowed_origins() -> None:
    site = {"Fn::Sub": "https://${SiteDistribution.DomainName}"}
    # Given the defaults / Then only POSTs from the site's own origin
    (rule,) = deployed()["Resources"]["UploadBucket"]["Properties"]["CorsConfiguration"][
        "CorsRules"
    ]
    assert rule["AllowedMethods"] == ["POST"]
    assert rule["AllowedOrigins"] == [site]
    # Given AllowedOrigins / Then those as well, and nothing else
    origins = "http://localhost:8000,https://app.example.com"
    (rule,) = deployed(AllowedOrigins=origins)["Resources"]["UploadBucket"]["Properties"][
        "CorsConfiguration"
    ]["CorsRules"]
    assert rule["AllowedOrigins"] == {
        "Fn::Split": [",", {"Fn::Sub": "https://${SiteDistribution.DomainName},${AllowedOrigins}"}]
    }


def test_upload_bucket_policy_denies_plain_http() -> None:
    policy = deployed()["Resources"]["UploadBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "UploadBucket"}
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["UploadBucket", "Arn"]},
        {"Fn::Sub": "${UploadBucket.Arn}/*"},
    ]


def test_function_is_told_its_upload_bucket_and_cap() -> None:
    template = deployed()
    variables = resource(template, "ClassifyFunction")[1]["Properties"]["Environment"]["Variables"]
    assert variables["IMAGEREC_UPLOAD_BUCKET"] == upload_bucket_name()
    assert int(variables["IMAGEREC_MAX_UPLOAD_BYTES"]) == 20_000_000
    assert variables["IMAGEREC_READABLE_BUCKETS"] == ""
    # And POST /api/uploads is a route of the API
    body = only(template, "AWS::ApiGatewayV2::Api")[1]["Properties"]["Body"]
    assert "post" in body["paths"]["/api/uploads"]


def test_readable_buckets_parameter_is_an_empty_list_by_default() -> None:
    spec = sam_template()["Parameters"]["ReadableBuckets"]
    assert (spec["Type"], spec["Default"]) == ("CommaDelimitedList", "")
    pattern = re.compile(spec["AllowedPattern"])
    assert pattern.match("")
    assert pattern.match("my-photos.example")
    assert not pattern.match("s3://bucket")
    assert not pattern.match("Bucket_Name")


# --- outputs, parameters and the template's own hygiene -----------------------------------------


def test_outputs_give_every_value_a_deploy_script_or_test_needs() -> None:
    # Given / When the outputs
    template = deployed()
    outputs = template["Outputs"]
    # Then each one needed downstream exists with a description
    expected = {
        "SiteUrl",
        "ApiUrl",
        "SiteBucketName",
        "DistributionId",
        "FunctionName",
        "FunctionAliasArn",
        "UploadBucketName",
    }
    assert expected <= set(outputs)
    for name, output in outputs.items():
        assert len(output.get("Description", "")) > 10, name
    # And they point at the right resources
    bucket_id, _ = resource(template, "SiteBucket")
    distribution_id, _ = only(template, "AWS::CloudFront::Distribution")
    assert outputs["SiteBucketName"]["Value"] == {"Ref": bucket_id}
    assert outputs["UploadBucketName"]["Value"] == {"Ref": "UploadBucket"}
    assert outputs["DistributionId"]["Value"] == {"Ref": distribution_id}
    assert outputs["FunctionName"]["Value"] == {"Ref": "ClassifyFunction"}
    assert outputs["FunctionAliasArn"]["Value"] == {"Ref": ALIAS}
    assert outputs["SiteUrl"]["Value"]["Fn::Sub"].startswith("https://")
    assert outputs["ApiUrl"]["Value"]["Fn::Sub"].startswith("https://")


def test_every_parameter_is_described_and_constrained() -> None:
    # Given / When the SAM template's parameters
    parameters = sam_template()["Parameters"]
    constraints = {"AllowedValues", "AllowedPattern", "MinValue", "MaxValue"}
    # Then each says what it is for and limits what it accepts
    for name, spec in parameters.items():
        assert spec.get("Description"), name
        assert constraints & set(spec), f"Expected a constraint on {name}, received: {spec}"
    assert parameters["MemorySize"]["Default"] == 2048
    assert parameters["ProvisionedConcurrency"]["Default"] == 0
    assert parameters["ProvisionedConcurrency"]["MinValue"] == 0
    assert parameters["AllowedOrigins"]["Default"] == ""


def test_every_resource_has_a_comment_and_a_documentation_link() -> None:
    # Given the template's text
    lines = TEMPLATE.read_text(encoding="utf-8").splitlines()
    resources = sam_template()["Resources"]
    for logical_id in resources:
        # When we read the comment block right above the resource
        index = lines.index(f"  {logical_id}:")
        comments: list[str] = []
        while lines[index - 1].startswith("  #"):
            index -= 1
            comments.append(lines[index])
        # Then it explains the resource and links to its documentation
        assert comments, f"{logical_id} has no comment"
        assert any("https://docs.aws.amazon.com/" in line for line in comments), logical_id


def test_every_checkov_skip_gives_its_reason() -> None:
    # Given every checkov skip in the template
    skips = [
        (logical_id, skip)
        for logical_id, resource in sam_template()["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    # Then each names one check and says in a sentence why it does not apply
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(skip.get("comment", "")) >= 40, (logical_id, skip)
