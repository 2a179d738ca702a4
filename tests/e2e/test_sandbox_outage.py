"""The sink can play a receiver that is down (`POST /sandbox/callbacks/outage`): it refuses the
caller's callbacks with the staged status until the outage ends, then keeps them again."""
from __future__ import annotations

import json

import pytest

from tests.e2e.test_api import create, received


def stage(stack, body, headers=None):
    return stack.client.http.post(
        "/sandbox/callbacks/outage", headers=headers or stack.basic(), body=json.dumps(body)
    )


def test_the_sink_refuses_callbacks_during_an_outage_and_keeps_them_after(stack):
    staged = stage(stack, {"seconds": 60})
    assert staged.status_code == 202 and staged.json_body["status"] == 503
    dispatch_uuid = create(stack)
    [(_, body, headers)] = stack.session.posts

    during = stack.client.http.post("/sandbox/callbacks", headers=headers, body=body)
    assert during.status_code == 503
    assert received(stack, dispatch_uuid) == []

    stack.clock.advance(60)
    after = stack.client.http.post("/sandbox/callbacks", headers=headers, body=body)
    assert after.status_code == 204
    assert [r["body"]["status"] for r in received(stack, dispatch_uuid)] == ["submitted"]


def test_an_outage_only_affects_the_application_that_staged_it(stack):
    assert stage(stack, {"seconds": 60, "status": 410}, stack.basic(stack.other)).status_code == 202
    dispatch_uuid = create(stack)
    stack.deliver_callbacks()
    assert [r["body"]["status"] for r in received(stack, dispatch_uuid)] == ["submitted"]


@pytest.mark.parametrize(
    "body", [{}, {"seconds": 0}, {"seconds": 3601}, {"seconds": 5, "status": 200}, {"seconds": 5, "x": 1}]
)
def test_a_bad_outage_is_a_400_problem(stack, body):
    answer = stage(stack, body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_an_outage_needs_credentials(stack):
    answer = stage(stack, {"seconds": 5}, {"Content-Type": "application/json"})
    assert answer.status_code == 401
