"""Build the deployable CloudFormation (SAM) template for a stage: `make package STAGE=prod`.

Runs `chalice package` with the merge template `infra/dispatch.json`, which adds what Chalice
cannot declare (the table, the timer state machine, the schedule group, their roles, the callback
queue and its dead-letter queue and alarm) and wires the Lambda environment and the callback
queue's event source to them by reference. Then it gives the REST API a gateway response for
every answer API Gateway can make by itself (`GATEWAY_RESPONSES`), so that those are problem+json
too. Prints the template's path. Packaging needs no AWS account: only a region name, which is set
here if the environment has none.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script, the repository root is not on the path
    sys.path.insert(0, str(ROOT))

from chalicelib.api.edges import unknown_path  # noqa: E402
from chalicelib.api.errors import (  # noqa: E402
    PROBLEM_CONTENT_TYPE,
    ApiError,
    BadGateway,
    Forbidden,
    GatewayTimeout,
    InternalError,
    MalformedRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    problem_document,
)

MERGE_TEMPLATE = ROOT / "infra" / "dispatch.json"
#: Stages meant for AWS; `local` is the emulated stack of `make run` and has no policy file.
AWS_STAGES = ("dev", "prod")
#: The Swagger extension holding the REST API's gateway responses: part of the API's definition,
#: so a change to them is deployed with it (a separate AWS::ApiGateway::GatewayResponse resource
#: would wait for the next deployment of the stage).
GATEWAY_RESPONSES_KEY = "x-amazon-apigateway-gateway-responses"
#: API Gateway's id of the request, as the problem's `instance`: what its logs are searched by.
GATEWAY_INSTANCE = "$context.requestId"
#: A gateway response whose status is None keeps the status API Gateway chose.
KEEP_STATUS = None
_REFUSED = "API Gateway refused the request."
_GATEWAY_FAILED = "The gateway could not complete the request."
#: Every response type API Gateway answers with by itself (botocore's GatewayResponseType), as the
#: problem it answers instead, and its status. No method uses IAM authorization, so API Gateway
#: only looks for a signature on a path or method it does not route (an `Authorization` header
#: there gets INVALID_SIGNATURE rather than MISSING_AUTHENTICATION_TOKEN): all are an unknown path.
#: Methods it cannot route at all (TRACE, CONNECT) are an unknown path too; the others reach the
#: app's 405 (chalicelib/api/edges.py). Authorizers, API keys, usage plans and WAF are not set up,
#: but each of their types is answered all the same, should an operator add one.
GATEWAY_RESPONSES: dict[str, tuple[ApiError, int | None]] = {
    "MISSING_AUTHENTICATION_TOKEN": (unknown_path(), 404),
    "INVALID_SIGNATURE": (unknown_path(), 404),
    "EXPIRED_TOKEN": (unknown_path(), 404),
    "RESOURCE_NOT_FOUND": (unknown_path(), 404),
    "UNAUTHORIZED": (Unauthorized(), 401),
    "ACCESS_DENIED": (Forbidden(_REFUSED), 403),
    "INVALID_API_KEY": (Forbidden(_REFUSED), 403),
    "WAF_FILTERED": (Forbidden(_REFUSED), 403),
    "BAD_REQUEST_PARAMETERS": (MalformedRequest("API Gateway could not read the request."), 400),
    "BAD_REQUEST_BODY": (MalformedRequest("API Gateway could not read the request's body."), 400),
    "REQUEST_TOO_LARGE": (PayloadTooLarge("The request is larger than API Gateway accepts."), 413),
    "UNSUPPORTED_MEDIA_TYPE": (
        UnsupportedMediaType("API Gateway does not take a body of this Content-Type."),
        415,
    ),
    "THROTTLED": (TooManyRequests("Too many requests at once: retry later, more slowly."), 429),
    "QUOTA_EXCEEDED": (TooManyRequests("The request quota is used up: retry later."), 429),
    "DEFAULT_4XX": (ApiError(_REFUSED), KEEP_STATUS),
    "INTEGRATION_FAILURE": (
        BadGateway("The service behind the gateway could not be reached: retry later."),
        502,
    ),
    "INTEGRATION_TIMEOUT": (
        GatewayTimeout(
            "The service did not answer in time; the request may have been applied all the same."
        ),
        504,
    ),
    "API_CONFIGURATION_ERROR": (InternalError(_GATEWAY_FAILED), 500),
    "AUTHORIZER_CONFIGURATION_ERROR": (InternalError(_GATEWAY_FAILED), 500),
    "AUTHORIZER_FAILURE": (InternalError(_GATEWAY_FAILED), 500),
    "DEFAULT_5XX": (
        InternalError("The request failed on its way through the gateway; it may have been applied."),
        KEEP_STATUS,
    ),
}


def package(stage: str, out_dir: Path) -> Path:
    """Package `stage` into `out_dir` (deployment.zip and sam.json) and return the template."""
    if stage not in AWS_STAGES:
        raise ValueError(f"stage must be one of {AWS_STAGES}, not {stage!r}")
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(MERGE_TEMPLATE),
            str(out_dir),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    template = out_dir / "sam.json"
    document = json.loads(template.read_text())  # fail here, not at deploy time, if it is not JSON
    _restore_intrinsics(document, json.loads(MERGE_TEMPLATE.read_text()))
    api = document["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    api[GATEWAY_RESPONSES_KEY] = gateway_responses()
    template.write_text(json.dumps(document, indent=2) + "\n")
    return template


def gateway_responses() -> dict[str, dict[str, Any]]:
    """`GATEWAY_RESPONSES` as API Gateway's Swagger extension declares them."""
    return {
        response_type: _gateway_response(error, status)
        for response_type, (error, status) in GATEWAY_RESPONSES.items()
    }


def _gateway_response(error: ApiError, status: int | None) -> dict[str, Any]:
    headers = {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}
    response: dict[str, Any] = {
        # A static value, quoted as API Gateway's parameter mappings want it.
        "responseParameters": {
            f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()
        },
        # Not VTL: API Gateway only substitutes $context variables into it.
        "responseTemplates": {"application/json": json.dumps(problem_document(error, GATEWAY_INSTANCE))},
    }
    if status is not None:
        response["statusCode"] = str(status)
    return response


def _restore_intrinsics(merged: dict[str, Any], overrides: dict[str, Any]) -> bool:
    """Give every intrinsic function of the merge template back whole; True if any was mangled.

    Chalice merges the two templates dict by dict, key by key, so an intrinsic laid over one of
    Chalice's own comes out holding both: the callback event source's `Queue` becomes
    `{"Fn::Sub": "...:dispatch-callbacks", "Fn::GetAtt": ["CallbackQueue", "Arn"]}`, which
    CloudFormation rejects. An intrinsic is a value, not a mapping to merge: the template's wins.
    """
    changed = False
    for key, value in overrides.items():
        if not isinstance(value, dict) or not isinstance(merged.get(key), dict):
            continue
        if _is_intrinsic(value):
            changed |= merged[key] != value
            merged[key] = value
        else:
            changed |= _restore_intrinsics(merged[key], value)
    return changed


def _is_intrinsic(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or key.startswith("Fn::")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod", choices=AWS_STAGES)
    parser.add_argument("--out", type=Path, help="output folder (default build/<stage>)")
    args = parser.parse_args(argv)
    out = (args.out or ROOT / "build" / args.stage).resolve()
    try:
        template = package(args.stage, out)
    except subprocess.CalledProcessError as error:
        print(f"chalice package failed with exit status {error.returncode}", file=sys.stderr)
        return 1
    print(template)
    return 0


if __name__ == "__main__":
    sys.exit(main())
