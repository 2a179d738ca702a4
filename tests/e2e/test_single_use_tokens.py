"""DISPATCH_JWT_SINGLE_USE on, on every client route: a JWT is accepted once, and its second use
is a 401 that changes nothing, whichever route it comes back on; Basic credentials are not
affected, and a refused token is not recorded. (With the setting off, the default, a token is
accepted until it expires: test_auth_attacks.py.)"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chalicelib.api import auth
from tests.e2e.test_api import create, view
from tests.e2e.test_auth_attacks import (
    ATTACKS,
    CLIENT_ROUTES,
    UNAUTHORIZED,
    WholeApp,
    nothing_changes,
    request,
    route_id,
    token_uses_recorded,
    whole_app,
)

PUT = ("dynamodb", "PutItem")


@pytest.fixture(scope="module")
def stack() -> Iterator[WholeApp]:
    with whole_app({"DISPATCH_JWT_SINGLE_USE": "on"}) as built:
        yield built


@pytest.fixture(scope="module")
def targets(stack: WholeApp) -> dict[str, str]:
    dispatch_uuid = create(stack)
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    return {"dispatch_uuid": dispatch_uuid, "message_uuid": message_uuid}


def observable(stack: WholeApp) -> list[object]:
    now = stack.clock.now()
    return [
        list(stack.session.posts),
        list(stack.timer.scheduled),
        [stack.services.sink.outage_status(c.application_id, now) for c in (stack.demo, stack.other)],
    ]


def assert_used(response) -> None:
    assert response.status_code == 401, response.body
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(response.body)
    assert (problem["type"], problem["detail"]) == (UNAUTHORIZED, auth.TOKEN_USED)


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
def test_a_token_is_accepted_once(stack, targets, route):
    header, recorded = stack.bearer()["Authorization"], token_uses_recorded()
    assert 200 <= request(stack, route, targets, header).status_code < 300
    mark, before = len(stack.aws_calls.made), observable(stack)
    assert token_uses_recorded() == recorded + 1
    assert_used(request(stack, route, targets, header))
    # The one write tried is the use's own conditional put, which the first use's item refused.
    assert stack.aws_calls.writes_since(mark) == [PUT]
    assert observable(stack) == before


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
def test_a_token_used_on_another_route_is_used(stack, targets, route):
    header = stack.bearer()["Authorization"]
    elsewhere = ("/v0.1/dispatch/{dispatch_uuid}", "GET")
    if route == elsewhere:
        elsewhere = ("/v0.1/callbacks", "GET")
    assert request(stack, elsewhere, targets, header).status_code == 200
    assert_used(request(stack, route, targets, header))


@pytest.mark.parametrize("route", CLIENT_ROUTES, ids=route_id)
def test_basic_credentials_are_not_single_use(stack, targets, route):
    header, recorded = stack.basic()["Authorization"], token_uses_recorded()
    for _ in range(2):
        assert 200 <= request(stack, route, targets, header).status_code < 300
    assert token_uses_recorded() == recorded


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_a_refused_token_is_not_recorded(stack, targets, attack):
    header = attack.header(stack)
    with nothing_changes(stack):  # no write at all: not even the use's conditional put
        response = request(stack, ("/v0.1/dispatch/{dispatch_uuid}", "GET"), targets, header)
    assert response.status_code == 401
