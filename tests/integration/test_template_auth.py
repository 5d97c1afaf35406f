"""Who may call what, in template.yaml (issue 20): the Auth choice, the authorizer on the routes,
the anonymous page routes, the upload quotas and what the classify role may read. Offline: the
same SAM transform and Condition evaluation as test_template.py; cfn-lint checks each mode's
translated template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagerec.core.settings import Settings
from imagerec.http.api import AUTHORIZED_PATHS, ROUTES
from tests.integration.test_template import (
    Json,
    _statements,
    deployed,
    only,
    resource,
    sam_template,
    transformed,
)
from tests.integration.test_template_bulk import cfn_lint

pytestmark = pytest.mark.integration

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE"
JWT = {"Auth": "jwt", "JwtIssuer": ISSUER, "JwtAudience": "client-a,client-b"}
MODES: dict[str, dict[str, str]] = {"none": {}, "iam": {"Auth": "iam"}, "jwt": JWT}
PUBLIC = ("/api/public/classify", "/api/public/uploads", "/api/{proxy+}")


@pytest.fixture(scope="module", autouse=True)
def _region() -> Iterator[None]:
    # The translator asks a boto3 session for the region (to pick the partition); no network.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


def security(template: Json) -> dict[tuple[str, str], Any]:
    """Each route's OpenAPI security requirement in the deployed HTTP API (None: open)."""
    _, api = only(template, "AWS::ApiGatewayV2::Api")
    body = api["Properties"]["Body"]
    return {
        (method, path): operation.get("security")
        for path, item in body["paths"].items()
        for method, operation in item.items()
    }


def schemes(template: Json) -> Json:
    _, api = only(template, "AWS::ApiGatewayV2::Api")
    found: Json = api["Properties"]["Body"]["components"]["securitySchemes"]
    return found


def variables(template: Json) -> dict[str, Any]:
    found: dict[str, Any] = resource(template, "ClassifyFunction")[1]["Properties"]["Environment"][
        "Variables"
    ]
    return found


def test_auth_defaults_to_none_and_offers_iam_and_jwt() -> None:
    parameters = sam_template()["Parameters"]
    assert parameters["Auth"]["Default"] == "none"
    assert parameters["Auth"]["AllowedValues"] == ["none", "iam", "jwt"]
    assert parameters["AnonymousDrops"]["AllowedValues"] == ["allowed", "refused"]
    assert parameters["AnonymousDrops"]["Default"] == "allowed"


def test_none_puts_no_authorizer_anywhere_and_tells_the_function() -> None:
    # Given / When the default (a public demo)
    template = deployed()
    # Then no route has an authorizer, and no JWT authorizer exists
    assert set(security(template).values()) == {None}
    assert "Jwt" not in schemes(template)
    # And the function knows: every caller is anonymous, so S3 references are refused
    env = variables(template)
    assert (env["IMAGEREC_AUTH"], env["IMAGEREC_ANONYMOUS"]) == ("none", "allowed")
    settings = Settings.from_env({"IMAGEREC_AUTH": "none", "IMAGEREC_ANONYMOUS": "allowed"})
    assert settings.auth == "none"


@pytest.mark.parametrize(("mode", "requirement"), [("iam", "AWS_IAM"), ("jwt", "Jwt")])
def test_iam_and_jwt_put_the_authorizer_on_classify_and_uploads(
    mode: str, requirement: str
) -> None:
    # Given Auth=iam or jwt, anonymous drops allowed (the default)
    template = deployed(**MODES[mode])
    found = security(template)
    # Then the routes where S3 objects may be named, and bulk work done, need the authorizer
    assert {path for _, path in found if path in AUTHORIZED_PATHS} == AUTHORIZED_PATHS
    for path in AUTHORIZED_PATHS:
        assert found[("post", path)] == [{requirement: []}], path
    # And the page's routes and the fallback stay open for anonymous photo drops
    for (_, path), value in found.items():
        if path in PUBLIC:
            assert value is None, path
    # And health, models and the document are open in every mode
    for path in ("/api/health", "/api/models", "/api/openapi.json"):
        assert found[("get", path)] is None
    assert variables(template)["IMAGEREC_AUTH"] == mode
    assert variables(template)["IMAGEREC_ANONYMOUS"] == "allowed"


def test_the_authorized_paths_are_the_api_routes_that_take_s3_references() -> None:
    # The handler's table and the template agree: classify and uploads, each with a public twin.
    paths = {route.path for route in ROUTES}
    assert paths >= AUTHORIZED_PATHS
    for path in AUTHORIZED_PATHS:
        assert path.replace("/api/", "/api/public/") in paths


def test_jwt_authorizer_takes_the_issuer_and_audiences() -> None:
    scheme = schemes(deployed(**JWT))["Jwt"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {
        "issuer": ISSUER,
        "audience": ["client-a", "client-b"],
    }


def test_a_jwt_deploy_without_issuer_or_audience_is_stopped_by_a_rule() -> None:
    # CloudFormation checks Rules before it creates anything.
    (rule,) = sam_template()["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Auth"}, "jwt"]}
    asserted = json.dumps(rule["Assertions"])
    assert '"Ref": "JwtIssuer"' in asserted
    assert '"Ref": "JwtAudience"' in asserted


@pytest.mark.parametrize(("mode", "requirement"), [("iam", "AWS_IAM"), ("jwt", "Jwt")])
def test_refusing_anonymous_drops_guards_every_classify_and_upload_route(
    mode: str, requirement: str
) -> None:
    template = deployed(**MODES[mode], AnonymousDrops="refused")
    found = security(template)
    for (_, path), value in found.items():
        if path in PUBLIC or path in AUTHORIZED_PATHS:
            assert value == [{requirement: []}], path
    assert variables(template)["IMAGEREC_ANONYMOUS"] == "refused"


def test_refusing_anonymous_drops_means_nothing_without_an_authorizer() -> None:
    template = deployed(AnonymousDrops="refused")
    assert set(security(template).values()) == {None}
    # (IMAGEREC_ANONYMOUS=refused with Auth=none would lock everyone out: never set)
    assert variables(template)["IMAGEREC_ANONYMOUS"] == "allowed"


def test_an_anonymous_deploy_cannot_read_any_bucket() -> None:
    # Given buckets the operator lists for bulk work, and Auth=none
    template = deployed(ReadableBuckets="photos-a,archive.b")
    # When we list every S3 resource the classify role may touch
    _, role = resource(template, "ClassifyFunctionRole")
    text = json.dumps(_statements(role))
    # Then it is the upload bucket only: no listed bucket, whatever a caller sends
    assert "photos-a" not in text
    assert "archive.b" not in text
    # While with an authorizer it may read them (for authorized callers' S3 references)
    _, role = resource(deployed(ReadableBuckets="photos-a", Auth="iam"), "ClassifyFunctionRole")
    assert "arn:*:s3:::photos-a/*" in json.dumps(_statements(role))


def test_upload_quotas_reach_the_function() -> None:
    env = variables(deployed(MaxOpenUploads=5, MaxAnonymousUploads=50))
    assert (env["IMAGEREC_MAX_OPEN_UPLOADS"], env["IMAGEREC_MAX_ANONYMOUS_UPLOADS"]) == (5, 50)
    settings = Settings.from_env(
        {"IMAGEREC_MAX_OPEN_UPLOADS": "5", "IMAGEREC_MAX_ANONYMOUS_UPLOADS": "50"}
    )
    assert (settings.max_open_uploads, settings.max_anonymous_uploads) == (5, 50)
    parameters = sam_template()["Parameters"]
    assert parameters["MaxOpenUploads"]["Default"] == Settings.max_open_uploads
    assert parameters["MaxAnonymousUploads"]["Default"] == Settings.max_anonymous_uploads


def test_stage_throttling_has_safe_defaults() -> None:
    parameters = sam_template()["Parameters"]
    rate, burst = parameters["ThrottlingRateLimit"], parameters["ThrottlingBurstLimit"]
    # Tens of requests a second: a Lambda account's default concurrency (1,000) is never the
    # limit, and a flood is refused by API Gateway (429) before any function runs.
    assert 1 <= rate["Default"] <= 100
    assert rate["Default"] <= burst["Default"] <= 200
    _, stage = only(deployed(), "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == rate["Default"]
    assert settings["ThrottlingBurstLimit"] == burst["Default"]


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_translates_to_a_template_cfn_lint_accepts(mode: str, tmp_path: Path) -> None:
    # Given the CloudFormation template SAM makes, with this mode's parameters as defaults
    template = transformed(**MODES[mode])
    for name, value in MODES[mode].items():
        template["Parameters"][name]["Default"] = value
    # When cfn-lint reads it / Then it reports nothing
    result = cfn_lint(template, tmp_path / f"{mode}.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cors_lets_allowed_origins_send_a_bearer_token() -> None:
    # A page on an allowed origin calling an Auth=jwt API sends Authorization: it must pass the
    # preflight (API Gateway answers it before any authorizer).
    template = deployed(AllowedOrigins="https://imagerec.example.com", **JWT)
    _, api = only(template, "AWS::ApiGatewayV2::Api")
    cors = api["Properties"]["Body"]["x-amazon-apigateway-cors"]
    assert {"content-type", "authorization"} <= set(cors["allowHeaders"])


def test_access_logs_say_who_called() -> None:
    # Who named which object is in the access log: the signer's ARN or the token's subject.
    _, stage = only(deployed(**JWT), "AWS::ApiGatewayV2::Stage")
    fields = json.loads(stage["Properties"]["AccessLogSettings"]["Format"])
    assert fields["iamCaller"] == "$context.identity.userArn"
    assert fields["jwtSubject"] == "$context.authorizer.claims.sub"
    assert fields["authorizerError"] == "$context.authorizer.error"
