"""Client routes: create a dispatch (and its 2018 alias), read one back, fetch the OpenAPI document."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.auth import caller
from chalicelib.api.body import decode_json_body
from chalicelib.api.http import ANY_CONTENT_TYPE, json_response, problem_errors, request_bytes
from chalicelib.api.presenters import dispatch_view
from chalicelib.api.validation import is_issued_uuid, parse_create_request
from chalicelib.bootstrap import get_services
from chalicelib.domain.application import Application
from chalicelib.domain.errors import DispatchNotFound

bp = Blueprint(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@bp.route("/v0.1/dispatch", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def create_dispatch() -> Response:
    return _create(id_field="dispatch_uuid")


@bp.route("/beta/workflows", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def create_workflow() -> Response:
    """The 2018 Workflows API path: same request, same dispatch, older id field name."""
    return _create(id_field="workflow_uuid")


@bp.route("/v0.1/dispatch/{dispatch_uuid}", methods=["GET"])
@problem_errors
def get_dispatch(dispatch_uuid: str) -> Response:
    services = get_services()
    caller = _caller()  # credentials first: a stranger learns nothing from the id's form
    if not is_issued_uuid(dispatch_uuid):
        raise DispatchNotFound("not an id this service issues")
    dispatch = services.dispatches.get(caller, dispatch_uuid)
    return json_response(dispatch_view(dispatch))


@bp.route("/v0.1/openapi.json", methods=["GET"])
@problem_errors
def openapi_document() -> Response:
    return json_response(_openapi())


def _create(id_field: str) -> Response:
    request = bp.current_request
    application = _caller()
    body = decode_json_body(request_bytes(request), request.headers.get("content-type"))
    specs = parse_create_request(body, get_services().carried)
    dispatch_uuid = get_services().dispatches.create(application, specs)
    return json_response(
        {id_field: dispatch_uuid},
        status=202,
        headers={"Location": f"/v0.1/dispatch/{dispatch_uuid}"},
    )


def _caller() -> Application:
    return caller(get_services(), bp.current_request.headers.get("authorization"))


@functools.lru_cache(maxsize=1)
def _openapi() -> Any:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
