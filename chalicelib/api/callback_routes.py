"""Client routes for callbacks: a dispatch's callbacks and their attempts, a replay, the dead ones.

Tenant-scoped like the dispatch routes: a dispatch of another application answers the same 404
as `GET /v0.1/dispatch/{dispatch_uuid}`, and the dead list and its cursors are per application.
"""
from __future__ import annotations

from urllib.parse import urlencode

from chalice import Blueprint, Response

from chalicelib.api.auth import caller
from chalicelib.api.errors import InvalidPageCursor, RequestInvalid
from chalicelib.api.http import ANY_CONTENT_TYPE, json_response, problem_errors
from chalicelib.api.presenters import callback_view
from chalicelib.api.validation import is_issued_uuid
from chalicelib.bootstrap import get_services
from chalicelib.domain.application import Application
from chalicelib.domain.errors import DispatchNotFound
from chalicelib.service.callback_history import CallbackHistory
from chalicelib.service.ports import InvalidCursor

bp = Blueprint(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: The states `GET /v0.1/callbacks` can list. Only dead ones are indexed across dispatches.
LISTED_STATES = ("dead",)
LIST_PARAMETERS = ("state", "limit", "cursor")
#: Far longer than any cursor the store issues; a longer one is refused before it is decoded.
MAX_CURSOR_LENGTH = 2048
MAX_NAME_ECHO = 64


@bp.route("/v0.1/dispatch/{dispatch_uuid}/callbacks", methods=["GET"])
@problem_errors
def list_dispatch_callbacks(dispatch_uuid: str) -> Response:
    records = _history().list(_caller(), _issued(dispatch_uuid))
    return json_response(
        {"dispatch_uuid": dispatch_uuid, "callbacks": [callback_view(r) for r in records]}
    )


@bp.route(
    "/v0.1/dispatch/{dispatch_uuid}/callbacks/replay",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,  # it takes no body: whatever comes is ignored, not a 415
)
@problem_errors
def replay_callbacks(dispatch_uuid: str) -> Response:
    replaying = _history().replay(_caller(), _issued(dispatch_uuid))
    return json_response(
        {"dispatch_uuid": dispatch_uuid, "replaying": replaying},
        status=202,
        headers={"Location": f"/v0.1/dispatch/{dispatch_uuid}/callbacks"},
    )


@bp.route("/v0.1/callbacks", methods=["GET"])
@problem_errors
def list_callbacks() -> Response:
    application = _caller()  # credentials first: a stranger learns nothing from a 400
    state, limit, cursor = _list_query()
    try:
        records, next_cursor = _history().dead(application, limit, cursor)
    except InvalidCursor:
        raise InvalidPageCursor(
            "This cursor was not issued for your list of callbacks: list again without it."
        ) from None
    links = {"self": {"href": _href(state, limit, cursor)}}
    if next_cursor is not None:
        links["next"] = {"href": _href(state, limit, next_cursor)}
    return json_response(
        {"callbacks": [callback_view(r, with_dispatch=True) for r in records], "_links": links}
    )


def _list_query() -> tuple[str, int, str | None]:
    """(state, limit, cursor) from the query string; every problem with it is reported at once.

    Unknown or repeated parameters are refused, as unknown body fields are: a misspelt `limt`
    silently ignored would hand back a page the caller did not ask for."""
    params = bp.current_request.query_params
    given = {name: params.getlist(name) for name in params} if params else {}
    values: dict[str, str] = {}
    invalid: list[dict[str, str]] = []
    for name in sorted(given):
        if name not in LIST_PARAMETERS:
            # Cut short: the name is the caller's text, echoed back.
            invalid.append({"name": name[:MAX_NAME_ECHO], "reason": "Unknown query parameter."})
        elif len(given[name]) != 1:
            invalid.append({"name": name, "reason": "Give this query parameter once."})
        else:
            values[name] = given[name][0]
    state = values.get("state")
    if state is None and not any(p["name"] == "state" for p in invalid):
        invalid.append({"name": "state", "reason": "Required; the only supported value is dead."})
    elif state is not None and state not in LISTED_STATES:
        invalid.append({"name": "state", "reason": "Only dead callbacks can be listed: state=dead."})
    limit = DEFAULT_LIMIT
    if "limit" in values:
        raw = values["limit"]
        # Not int() alone: it also takes " 5", "+5", "5_0", other scripts' digits, and raises
        # on thousands of digits.
        if raw.isascii() and raw.isdecimal() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT:
            limit = int(raw)
        else:
            invalid.append(
                {"name": "limit", "reason": f"Must be a whole number from 1 to {MAX_LIMIT}."}
            )
    if invalid:
        raise RequestInvalid("The query parameters did not validate.", invalid)
    cursor = values.get("cursor")
    if cursor is not None and not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise InvalidPageCursor("This is not a cursor of this list: list again without it.")
    assert state is not None
    return state, limit, cursor


def _href(state: str, limit: int, cursor: str | None) -> str:
    query = [("state", state), ("limit", str(limit))]
    if cursor is not None:
        query.append(("cursor", cursor))
    return "/v0.1/callbacks?" + urlencode(query)


def _issued(dispatch_uuid: str) -> str:
    """The path's id, or the 404 of an unknown dispatch when it is not of a form we issue.
    Called after `_caller()` (arguments are evaluated in order): credentials come first."""
    if not is_issued_uuid(dispatch_uuid):
        raise DispatchNotFound("not an id this service issues")
    return dispatch_uuid


def _history() -> CallbackHistory:
    history: CallbackHistory = get_services().callback_history
    return history


def _caller() -> Application:
    return caller(get_services(), bp.current_request.headers.get("authorization"))
