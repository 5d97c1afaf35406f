"""The authorizer contexts API Gateway (HTTP API, payload 2.0) adds to an authorized route's
event: ``requestContext.authorizer.iam`` for SigV4 (Auth=iam), ``.jwt`` for a JWT authorizer
(Auth=jwt). Shapes from the API Gateway developer guide ("Working with AWS Lambda proxy
integrations for HTTP APIs"); values made up."""

from __future__ import annotations

from typing import Any

from scripts.make_events import IAM_CONTEXT

# The same context as the committed event (events/classify-s3-iam.json): Alice signed it.
IAM_ALICE: dict[str, Any] = IAM_CONTEXT
ALICE_ARN: str = IAM_ALICE["iam"]["userArn"]
IAM_BOB: dict[str, Any] = {
    "iam": {**IAM_ALICE["iam"], "userArn": "arn:aws:iam::111122223333:user/bob"}
}
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE"
JWT_CAROL: dict[str, Any] = {
    "jwt": {
        "claims": {
            "iss": ISSUER,
            "sub": "5f1c1a1e-carol",
            "aud": "imagerec-client",
            "exp": "1795687200",
            "token_use": "id",
        },
        "scopes": None,
    }
}
