"""Tenant isolation on every client route: application B, with its own good credentials, aims
at application A's resources and learns nothing and changes nothing.

A has a dispatch whose callback is dead (the receiver answered 410) and one whose callbacks
reached the sandbox sink; B has a dead callback of its own. On each route B gets what the service
documents for another application's resource: the 404 of a resource that does not exist, word for
word, or a list that holds only B's own. After each case A's dispatches, callbacks, dead list
and sink read exactly as they did before any case ran. The routes come from the app (`CLIENT_ROUTES`): a new client
route fails `test_every_client_route_has_an_isolation_case` until it gets a case here.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.test_api import MESSENGER_TO_SMS, create, view
from tests.e2e.test_auth_attacks import CLIENT_ROUTES, WholeApp, route_id, whole_app
from tests.e2e.test_callback_routes import callbacks_of, dead_page, without_instance

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def stack() -> Iterator[WholeApp]:
    with whole_app() as built:
        yield built


@dataclass(frozen=True)
class Resources:
    #: A's dispatch whose one callback so far is dead, and that dispatch's first message.
    dead: str
    message_uuid: str
    #: A's dispatch whose callbacks are in the sandbox sink.
    sunk: str
    #: B's own dispatch with a dead callback.
    b_dead: str
    #: `a_state` once all of the above exists: every case must leave it so.
    baseline: dict[str, Any]


@pytest.fixture(scope="module")
def owned(stack: WholeApp) -> Resources:
    a, b = stack.basic(stack.demo), stack.basic(stack.other)
    stack.session.answers = [410]
    dead = create(stack, headers=a)
    stack.session.answers = [410]
    b_dead = create(stack, headers=b)
    sunk = create(stack, headers=a)
    stack.deliver_callbacks()
    assert stack.session.answers == [] and len(stack.session.refused) == 2
    message_uuid = view(stack, dead)["messages"][0]["message_uuid"]
    baseline = a_state(stack, dead, sunk)
    # Each resource is there to be leaked: A sees it.
    assert [c["state"] for c in baseline["callbacks"][0]] == ["dead"]
    assert baseline["sink"]
    return Resources(dead, message_uuid, sunk, b_dead, baseline)


def a_state(stack: WholeApp, dead: str, sunk: str) -> dict[str, Any]:
    """Everything of A's that B could read or change, read back as A."""
    return {
        "dispatches": [view(stack, d) for d in (dead, sunk)],
        "callbacks": [callbacks_of(stack, d) for d in (dead, sunk)],
        "dead": dead_page(stack)["callbacks"],
        "sink": stack.get(f"/sandbox/callbacks?dispatch_uuid={sunk}").json_body,
        "outage": stack.services.sink.outage_status(stack.demo.application_id, stack.clock.now()),
    }


def as_b(stack: WholeApp, method: str, path: str, body: str = ""):
    return stack.client.http.request(method, path, headers=stack.basic(stack.other), body=body.encode())


def like_a_missing_one(stack: WholeApp, method: str, template: str, a_id: str, body: str = "") -> None:
    """B's request for A's resource gets exactly the 404 of a resource that does not exist."""
    theirs = as_b(stack, method, template.format(a_id), body)
    missing = as_b(stack, method, template.format(str(uuid.uuid4())), body)
    assert theirs.status_code == missing.status_code == 404, theirs.body
    assert theirs.headers["Content-Type"] == PROBLEM_JSON
    assert without_instance(theirs.json_body) == without_instance(missing.json_body)


# --- one case per client route -----------------------------------------------------------------


def _create(path: str) -> Callable[[WholeApp, Resources], None]:
    def case(stack: WholeApp, owned: Resources) -> None:
        # B's dispatch is B's: A cannot read it any more than B can read A's.
        response = stack.post(path, MESSENGER_TO_SMS, stack.basic(stack.other))
        assert response.status_code == 202, response.body
        created = next(iter(response.json_body.values()))
        assert stack.get(f"/v0.1/dispatch/{created}", stack.basic(stack.other)).status_code == 200
        assert stack.get(f"/v0.1/dispatch/{created}", stack.basic(stack.demo)).status_code == 404

    return case


def _dead_list(stack: WholeApp, owned: Resources) -> None:
    listed = [c["dispatch_uuid"] for c in dead_page(stack, creds=stack.other)["callbacks"]]
    assert listed == [owned.b_dead]
    # (A's cursors are refused to B: test_callback_routes.py.) A's list, likewise, is A's alone.
    assert [c["dispatch_uuid"] for c in dead_page(stack)["callbacks"]] == [owned.dead]


def _replay(stack: WholeApp, owned: Resources) -> None:
    sent = (list(stack.session.posts), list(stack.session.refused))
    like_a_missing_one(stack, "POST", "/v0.1/dispatch/{}/callbacks/replay", owned.dead)
    assert (stack.session.posts, stack.session.refused) == sent  # nothing went out again


def _inject(stack: WholeApp, owned: Resources) -> None:
    like_a_missing_one(stack, "POST", "/sandbox/messages/{}/status", owned.message_uuid, '{"status": "read"}')


def _stage_outage(stack: WholeApp, owned: Resources) -> None:
    response = stack.post("/sandbox/callbacks/outage", {"seconds": 5, "status": 503}, stack.basic(stack.other))
    assert response.status_code == 202, response.body
    now = stack.clock.now()
    assert stack.services.sink.outage_status(stack.other.application_id, now) == 503  # B's own only


ISOLATION: dict[tuple[str, str], Callable[[WholeApp, Resources], None]] = {
    ("/v0.1/dispatch", "POST"): _create("/v0.1/dispatch"),
    ("/beta/workflows", "POST"): _create("/beta/workflows"),
    ("/v0.1/dispatch/{dispatch_uuid}", "GET"): lambda s, o: like_a_missing_one(
        s, "GET", "/v0.1/dispatch/{}", o.dead
    ),
    ("/v0.1/dispatch/{dispatch_uuid}/callbacks", "GET"): lambda s, o: like_a_missing_one(
        s, "GET", "/v0.1/dispatch/{}/callbacks", o.dead
    ),
    ("/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", "POST"): _replay,
    ("/v0.1/callbacks", "GET"): _dead_list,
    ("/sandbox/messages/{message_uuid}/status", "POST"): _inject,
    ("/sandbox/callbacks", "GET"): lambda s, o: like_a_missing_one(
        s, "GET", "/sandbox/callbacks?dispatch_uuid={}", o.sunk
    ),
    ("/sandbox/callbacks/outage", "POST"): _stage_outage,
}


def test_every_client_route_has_an_isolation_case():
    assert sorted(ISOLATION) == sorted(CLIENT_ROUTES)


@pytest.mark.parametrize("route", sorted(ISOLATION), ids=route_id)
def test_another_application_learns_and_changes_nothing(stack, owned, route):
    ISOLATION[route](stack, owned)
    assert a_state(stack, owned.dead, owned.sunk) == owned.baseline
