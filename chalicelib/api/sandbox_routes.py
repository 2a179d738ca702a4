"""Local-stage routes: inject a channel status, and the callback sink that records callbacks
(which can also play a receiver that is down, to watch callbacks being retried).

They answer 404 unless `DISPATCH_SANDBOX_ROUTES` is on, which only the local stage sets.
"""
from __future__ import annotations

from datetime import timedelta

import jwt
from chalice import Blueprint, Response
from pydantic import ValidationError

from chalicelib.adapters.callback_signing import verify
from chalicelib.api.auth import caller
from chalicelib.api.body import decode_json_body
from chalicelib.api.errors import NotFound, RequestInvalid, StagedOutage
from chalicelib.api.http import ANY_CONTENT_TYPE, json_response, problem_errors, request_bytes
from chalicelib.api.request_models import SandboxOutageRequest, SandboxStatusRequest
from chalicelib.api.validation import invalid_parameters, is_issued_uuid
from chalicelib.bootstrap import Services, get_services
from chalicelib.domain.application import Application
from chalicelib.domain.errors import DispatchNotFound
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.callback_payloads import dispatch_uuid_of, iso

bp = Blueprint(__name__)


@bp.route("/sandbox/messages/{message_uuid}/status", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def inject_status(message_uuid: str) -> Response:
    services = _sandbox()
    application = _caller(services)
    if not is_issued_uuid(message_uuid):
        raise NotFound("No message with this message_uuid exists for your application.")
    request = bp.current_request
    given = _parse_status(decode_json_body(request_bytes(request), request.headers.get("content-type")))
    event = StatusEvent(
        status=MessageStatus(given.status),
        error_code=given.error.code if given.error else None,
        error_reason=given.error.reason if given.error else None,
    )
    if not services.dispatches.apply_status("sandbox", message_uuid, event, application.application_id):
        raise NotFound("No message with this message_uuid exists for your application.")
    return json_response({"message_uuid": message_uuid, "status": given.status}, status=202)


@bp.route("/sandbox/callbacks", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def receive_callback() -> Response:
    services = _sandbox()
    request = bp.current_request
    raw = request_bytes(request)
    body = decode_json_body(raw, request.headers.get("content-type"))
    uuid = dispatch_uuid_of(body) if isinstance(body, dict) else None
    owner = services.dispatches.owner_of(uuid) if uuid else None
    if owner is None:
        # Nobody could ever list it: a callback about no known dispatch is dropped.
        return Response(body="", status_code=204)
    down = services.sink.outage_status(owner, services.clock.now())
    if down is not None:
        raise StagedOutage(down)
    valid = _signature_valid(services, request.headers.get("authorization"), raw, owner)
    services.sink.store(uuid, services.clock.now(), valid, body)
    return Response(body="", status_code=204)


@bp.route("/sandbox/callbacks/outage", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def stage_outage() -> Response:
    """The sink refuses the caller's callbacks for a while, as a receiver that is down would."""
    services = _sandbox()
    application = _caller(services)
    request = bp.current_request
    body = decode_json_body(request_bytes(request), request.headers.get("content-type"))
    try:
        outage = SandboxOutageRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestInvalid(
            "Your request parameters did not validate.", invalid_parameters(exc)
        ) from None
    until = services.clock.now() + timedelta(seconds=outage.seconds)
    services.sink.stage_outage(application.application_id, until, outage.status)
    return json_response({"until": iso(until), "status": outage.status}, status=202)


@bp.route("/sandbox/callbacks", methods=["GET"])
@problem_errors
def list_callbacks() -> Response:
    services = _sandbox()
    application = _caller(services)
    params = bp.current_request.query_params
    dispatch_uuid = params.get("dispatch_uuid") if params else None
    if not dispatch_uuid:
        raise RequestInvalid(
            "Name the dispatch whose callbacks to list.",
            [{"name": "dispatch_uuid", "reason": "This query parameter is required."}],
        )
    if not is_issued_uuid(dispatch_uuid):
        raise DispatchNotFound("not an id this service issues")
    services.dispatches.get(application, dispatch_uuid)  # 404 unless it is the caller's
    return json_response(services.sink.list(dispatch_uuid))


def _sandbox() -> Services:
    services = get_services()
    if not services.settings.sandbox_routes or services.sink is None:
        raise NotFound("The sandbox exists only in the local stage.")
    return services


def _caller(services: Services) -> Application:
    return caller(services, bp.current_request.headers.get("authorization"))


def _parse_status(body: object) -> SandboxStatusRequest:
    try:
        return SandboxStatusRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestInvalid(
            "Your request parameters did not validate.", invalid_parameters(exc)
        ) from None


def _signature_valid(services: Services, authorization: str | None, raw: bytes, owner: str) -> bool:
    """Check the callback as its dispatch's owner would: with the owner's secret, and only if
    the token says it is for the owner (another application's valid token proves nothing)."""
    application = services.applications.get(owner)
    if application is None:
        return False
    try:
        secret = services.secrets.get(application.signature_secret_ref)
    except KeyError:
        return False
    if not verify(authorization, raw, secret, services.clock.now()):
        return False
    token = (authorization or "").removeprefix("Bearer ").strip()
    claims = jwt.decode(token, options={"verify_signature": False})  # verified just above
    return bool(claims.get("application_id") == owner)
