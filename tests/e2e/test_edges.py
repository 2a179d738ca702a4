"""The framework's edges through chalice.test.Client: every method a path does not serve gets a
405 problem with `Allow`, before credentials and without touching anything; and every error answer
Chalice would make by itself comes out as our problem+json (chalicelib/api/edges.py).

The paths come from the app (`served_routes`), so a new route is covered the day it is added;
what each path's `Allow` must say is written out here, so the test fails until it says it.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice import (
    BadRequestError,
    Chalice,
    ChaliceUnhandledError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    Response,
    UnauthorizedError,
)
from chalice.app import TooManyRequestsError
from chalice.test import Client

from app import app
from chalicelib.api import edges
from chalicelib.api.errors import NotFound, problem_response
from chalicelib.api.http import problem_errors
from tests.e2e.test_api import create, view
from tests.e2e.test_auth_attacks import BODIES, QUERIES, WholeApp, nothing_changes, whole_app

PROBLEM = "application/problem+json"
ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
METHOD_NOT_ALLOWED = "urn:dispatch:problem:method-not-allowed"
#: Each path and the methods its `Allow` lists.
ALLOW = {
    "/v0.1/dispatch": "POST",
    "/beta/workflows": "POST",
    "/v0.1/dispatch/{dispatch_uuid}": "GET",
    "/v0.1/openapi.json": "GET",
    "/v0.1/dispatch/{dispatch_uuid}/callbacks": "GET",
    "/v0.1/dispatch/{dispatch_uuid}/callbacks/replay": "POST",
    "/v0.1/callbacks": "GET",
    "/sandbox/messages/{message_uuid}/status": "POST",
    "/sandbox/callbacks": "GET, POST",
    "/sandbox/callbacks/outage": "POST",
    "/webhooks/{provider}/{kind}": "GET, POST",
}
#: Methods API Gateway can route, and some it cannot: Chalice's local gateway passes any token on.
METHODS = (*edges.ROUTABLE_METHODS, "TRACE", "CONNECT", "PROPFIND", "BREW")
WRONG = [
    (path, method)
    for path, served in sorted(edges.served_routes(app).items())
    for method in METHODS
    if method not in served
]


@pytest.fixture(scope="module")
def stack() -> Iterator[WholeApp]:
    with whole_app() as built:
        yield built


@pytest.fixture(scope="module")
def targets(stack: WholeApp) -> dict[str, str]:
    """Real resources of the demo application: the wrong method is refused even on them."""
    dispatch_uuid = create(stack)
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    return {"dispatch_uuid": dispatch_uuid, "message_uuid": message_uuid, "provider": "whatsapp", "kind": "status"}


def url(path: str, targets: dict[str, str]) -> str:
    return (path + QUERIES.get(path, "")).format(**targets)


def test_every_path_of_the_app_says_what_it_allows():
    assert edges.served_routes(app) == {path: tuple(allow.split(", ")) for path, allow in ALLOW.items()}
    assert len(WRONG) == sum(len(METHODS) - len(allow.split(", ")) for allow in ALLOW.values())


@pytest.mark.parametrize("credentials", [True, False], ids=["with-credentials", "without"])
@pytest.mark.parametrize("path, method", WRONG, ids=[f"{m} {p}" for p, m in WRONG])
def test_a_method_the_path_does_not_serve_is_a_405_problem_that_changes_nothing(
    stack, targets, caplog, path, method, credentials
):
    headers = stack.basic() if credentials else {"Content-Type": "application/json"}
    # A body the path's own method would take: only the method is wrong.
    body = json.dumps(BODIES.get(path, {"seconds": 60})).encode()
    caplog.set_level(logging.INFO)
    with nothing_changes(stack):
        response = stack.client.http.request(method, url(path, targets), headers=headers, body=body)
    assert response.status_code == 405, response.body
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Allow"] == ALLOW[path]
    problem = json.loads(response.body)
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert problem["type"] == METHOD_NOT_ALLOWED
    assert problem["title"] == "Method not allowed"
    assert method not in problem["detail"] and targets["dispatch_uuid"] not in response.body.decode()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("path", sorted(ALLOW))
def test_options_is_not_answered_for_the_framework_any_more(stack, targets, path):
    """Chalice's local gateway answered OPTIONS itself, 200 with no body: now the app does."""
    response = stack.client.http.request("OPTIONS", url(path, targets))
    assert (response.status_code, response.headers["Content-Type"]) == (405, PROBLEM)


def test_every_type_the_edges_answer_is_documented():
    documented = set(re.findall(r"`urn:dispatch:problem:([a-z-]+)`", ERRORS_DOC.read_text()))
    answered = {"method-not-allowed", "not-found", "malformed-request", "invalid-request", "unauthorized",
                "forbidden", "payload-too-large", "content-type-header", "too-many-requests", "internal-error"}
    assert answered <= documented


def test_every_view_is_a_problem_errors_view_or_a_405_view():
    """Chalice catches what a view raises before the middleware sees it, so each view must map
    its own errors: `problem_errors` wraps every one (each wrapper shares its code object)."""
    wrapper_code = problem_errors(lambda: Response(body="")).__code__
    unwrapped = [
        f"{method} {path}"
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if entry.view_name != edges.METHOD_NOT_ALLOWED_VIEW and entry.view_function.__code__ is not wrapper_code
    ]
    assert unwrapped == []


# --- the net: Chalice's own error answers, from an app whose views do not wrap themselves ---------

bare = Chalice(app_name="edges-test")
BODY = {"not": "json"}


@bare.route("/bad-request", methods=["POST"])
def bad_request() -> Response:
    raise BadRequestError("a message of Chalice's that must not reach the client")


@bare.route("/not-found")
def not_found() -> Response:
    raise NotFoundError("internal detail")


@bare.route("/too-many")
def too_many() -> Response:
    raise TooManyRequestsError("internal detail")


@bare.route("/conflict")
def conflict() -> Response:
    raise ConflictError("internal detail")


@bare.route("/forbidden")
def forbidden() -> Response:
    raise ForbiddenError("internal detail")


@bare.route("/unauthorized")
def unauthorized() -> Response:
    raise UnauthorizedError("internal detail")


@bare.route("/crash")
def crash() -> Response:
    raise RuntimeError("internal detail")


@bare.route("/unhandled")
def unhandled() -> Response:
    raise ChaliceUnhandledError("internal detail")


@bare.route("/json-body", methods=["POST"])
def json_body() -> Response:
    return Response(body={"got": bare.current_request.json_body})  # Chalice's own parser


@bare.route("/binary")
def binary() -> Response:
    return Response(body=b"\x00", headers={"Content-Type": "application/octet-stream"})


@bare.route("/ok")
def ok() -> Response:
    return Response(body="fine", headers={"Content-Type": "text/plain"})


@bare.route("/ours")
def ours() -> Response:
    return problem_response(NotFound("Our own."), instance="our-instance")


edges.install(bare)


@pytest.fixture(scope="module")
def bare_client() -> Iterator[Client]:
    with Client(bare) as client:
        yield client


@pytest.mark.parametrize(
    "method, path, headers, body, status, slug",
    [
        ("POST", "/bad-request", {}, b"", 400, "malformed-request"),
        ("GET", "/not-found", {}, b"", 404, "not-found"),
        ("GET", "/too-many", {}, b"", 429, "too-many-requests"),
        ("GET", "/conflict", {}, b"", 409, "invalid-request"),
        ("GET", "/forbidden", {}, b"", 403, "forbidden"),
        ("GET", "/unauthorized", {}, b"", 401, "unauthorized"),
        ("GET", "/crash", {}, b"", 500, "internal-error"),
        ("GET", "/unhandled", {}, b"", 500, "internal-error"),
        ("POST", "/json-body", {"Content-Type": "application/json"}, b"{nope", 400, "malformed-request"),
        ("POST", "/json-body", {"Content-Type": "text/plain"}, b"x", 415, "content-type-header"),
        ("GET", "/binary", {}, b"", 400, "malformed-request"),
        ("DELETE", "/ok", {}, b"", 405, "method-not-allowed"),
        ("TRACE", "/ok", {}, b"", 405, "method-not-allowed"),
    ],
)
def test_no_error_answer_of_the_framework_escapes_unproblemed(bare_client, method, path, headers, body, status, slug):
    response = bare_client.http.request(method, path, headers=headers, body=body)
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == PROBLEM
    problem = json.loads(response.body)
    assert problem["type"] == f"urn:dispatch:problem:{slug}"
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert "internal detail" not in response.body.decode() and "Chalice" not in response.body.decode()


def test_the_net_passes_our_own_answers_on_untouched(bare_client):
    fine = bare_client.http.get("/ok")
    assert (fine.status_code, fine.headers["Content-Type"], fine.body) == (200, "text/plain", b"fine")
    own = bare_client.http.get("/ours")
    assert own.status_code == 404
    assert json.loads(own.body) == {
        "type": "urn:dispatch:problem:not-found",
        "title": "Not found",
        "detail": "Our own.",
        "instance": "our-instance",
    }
    assert bare_client.http.request("PUT", "/ours").headers["Allow"] == "GET"
