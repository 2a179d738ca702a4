"""The callbacks API end to end (chalice test Client, moto DynamoDB, inline delivery): a
dispatch's callbacks and their attempts, a dead callback replayed once the receiver is fixed,
the dead list and its pages, tenant isolation, and query errors as problem+json."""
from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.api.callback_response_models import CallbackList, DispatchCallbacks, ReplayAccepted
from chalicelib.api.response_models import Problem
from tests.e2e.test_api import MESSENGER_TO_SMS, create, inject, view

PROBLEM_JSON = "application/problem+json"


def callbacks_of(stack, dispatch_uuid: str, creds=None) -> list[dict]:
    response = stack.get(f"/v0.1/dispatch/{dispatch_uuid}/callbacks", stack.basic(creds))
    assert response.status_code == 200, response.body
    DispatchCallbacks.model_validate(response.json_body)
    assert response.json_body["dispatch_uuid"] == dispatch_uuid
    return response.json_body["callbacks"]


def dead_page(stack, path: str = "/v0.1/callbacks?state=dead", creds=None) -> dict:
    response = stack.get(path, stack.basic(creds))
    assert response.status_code == 200, response.body
    CallbackList.model_validate(response.json_body)
    return response.json_body


def replay(stack, dispatch_uuid: str, creds=None):
    return stack.client.http.post(
        f"/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", headers=stack.basic(creds), body=""
    )


def without_instance(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k != "instance"}


def create_refused(stack, count: int = 1) -> list[str]:
    """Dispatches whose one callback so far (`submitted`) the receiver refused with 410."""
    stack.session.answers = [410] * count
    created = []
    for _ in range(count):
        created.append(create(stack))
        stack.clock.advance(1)  # distinct dead_at, so the list's order is known
    assert stack.session.answers == [] and len(stack.session.refused) == count
    return created


def test_a_dispatchs_callbacks_are_listed_as_they_were_sent(stack):
    dispatch_uuid = create(stack)
    first = view(stack, dispatch_uuid)["messages"][0]
    assert inject(stack, first["message_uuid"], "read").status_code == 202  # completes it

    listed = callbacks_of(stack, dispatch_uuid)
    assert [(c["seq"], c["type"], c["state"]) for c in listed] == [
        (1, "message_status", "delivered"),
        (2, "message_status", "delivered"),
        (3, "final_report", "delivered"),
    ]
    posts = stack.session.posts
    assert [c["event_id"] for c in listed] == [h["X-Dispatch-Event-Id"] for _, _, h in posts]
    assert [c["payload"] for c in listed] == [json.loads(data) for _, data, _ in posts]
    assert [c["payload"].get("status") for c in listed] == ["submitted", "read", "completed"]
    for c in listed:
        [attempt] = c["attempts"]
        assert attempt["http_status"] == 204 and attempt["error"] is None
        assert (c["next_attempt_at"], c["dead_at"], c["dead_reason"], c["replays"]) == (None, None, None, 0)
    assert dead_page(stack)["callbacks"] == []


def test_a_refused_callback_dies_and_a_replay_delivers_it_once_the_receiver_is_fixed(stack):
    [dispatch_uuid] = create_refused(stack)
    [(_, refused_body, refused_headers, _)] = stack.session.refused
    [dead] = callbacks_of(stack, dispatch_uuid)
    assert (dead["state"], dead["dead_reason"]) == ("dead", "410")
    assert [a["http_status"] for a in dead["attempts"]] == [410]
    assert dead["dead_at"] == dead["attempts"][0]["at"]

    [listed] = dead_page(stack)["callbacks"]
    assert listed == {**dead, "dispatch_uuid": dispatch_uuid}

    # The receiver is fixed: the next POST it gets is answered 204.
    response = replay(stack, dispatch_uuid)
    assert response.status_code == 202, response.body
    assert response.json_body == {"dispatch_uuid": dispatch_uuid, "replaying": 1}
    ReplayAccepted.model_validate(response.json_body)
    assert response.headers["Location"] == f"/v0.1/dispatch/{dispatch_uuid}/callbacks"

    [(_, body, headers)] = stack.session.posts
    assert body == refused_body  # the very same bytes
    assert headers["X-Dispatch-Event-Id"] == refused_headers["X-Dispatch-Event-Id"] == dead["event_id"]
    assert headers["X-Dispatch-Attempt"] == "2"
    [delivered] = callbacks_of(stack, dispatch_uuid)
    assert (delivered["state"], delivered["replays"], delivered["dead_at"], delivered["dead_reason"]) == (
        "delivered", 1, None, None,
    )
    assert [a["http_status"] for a in delivered["attempts"]] == [410, 204]
    assert dead_page(stack)["callbacks"] == []


def test_the_dead_list_pages_without_repeats_and_keeps_state_and_limit(stack):
    created = create_refused(stack, 5)
    seen: list[str] = []
    path: str | None = "/v0.1/callbacks?state=dead&limit=2"
    pages = 0
    while path is not None:
        page = dead_page(stack, path)
        pages += 1
        query = parse_qs(urlsplit(page["_links"]["self"]["href"]).query)
        assert (query["state"], query["limit"]) == (["dead"], ["2"])
        assert len(page["callbacks"]) <= 2
        seen += [c["dispatch_uuid"] for c in page["callbacks"]]
        path = page["_links"].get("next", {}).get("href")
        if path is not None:
            query = parse_qs(urlsplit(path).query)
            assert (query["state"], query["limit"]) == (["dead"], ["2"]) and query["cursor"]
    assert pages == 3
    assert seen == list(reversed(created))  # the latest given up on first, each once
    default = dead_page(stack)
    assert len(default["callbacks"]) == 5 and "next" not in default["_links"]
    assert default["_links"]["self"]["href"] == "/v0.1/callbacks?state=dead&limit=50"


def test_another_application_cannot_see_or_replay_them(stack):
    dispatch_uuid, _ = create_refused(stack, 2)
    unknown = str(uuid.uuid4())
    for path in (f"/v0.1/dispatch/{dispatch_uuid}", f"/v0.1/dispatch/{dispatch_uuid}/callbacks"):
        theirs = stack.get(path, stack.basic(stack.other))
        missing = stack.get(path.replace(dispatch_uuid, unknown), stack.basic(stack.other))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.headers["Content-Type"] == PROBLEM_JSON
        assert without_instance(theirs.json_body) == without_instance(missing.json_body)

    refused_before = len(stack.session.refused)
    theirs = replay(stack, dispatch_uuid, stack.other)
    missing = replay(stack, unknown, stack.other)
    assert theirs.status_code == missing.status_code == 404
    assert without_instance(theirs.json_body) == without_instance(missing.json_body)
    assert stack.session.posts == [] and len(stack.session.refused) == refused_before  # nothing sent
    assert [c["state"] for c in callbacks_of(stack, dispatch_uuid)] == ["dead"]

    assert dead_page(stack, creds=stack.other)["callbacks"] == []
    mine = dead_page(stack, "/v0.1/callbacks?state=dead&limit=1")
    next_href = mine["_links"]["next"]["href"]
    assert dead_page(stack, next_href)["callbacks"]  # the cursor is good for its application...
    refused = stack.get(next_href, stack.basic(stack.other))
    assert refused.status_code == 400 and refused.headers["Content-Type"] == PROBLEM_JSON
    assert refused.json_body["type"] == "urn:dispatch:problem:invalid-cursor"  # ...and no other


def test_a_dispatch_with_callbacks_on_their_way_replays_every_one(stack):
    dispatch_uuid = create(stack)
    first = view(stack, dispatch_uuid)["messages"][0]
    inject(stack, first["message_uuid"], "rejected")  # fails over to sms: more callbacks
    before = [h["X-Dispatch-Event-Id"] for _, _, h in stack.session.posts]
    stack.session.posts.clear()
    response = replay(stack, dispatch_uuid)
    assert response.json_body["replaying"] == len(before) == len(callbacks_of(stack, dispatch_uuid))
    assert [h["X-Dispatch-Event-Id"] for _, _, h in stack.session.posts] == before  # same order
    assert all(c["replays"] == 1 for c in callbacks_of(stack, dispatch_uuid))


@pytest.mark.parametrize(
    "query, names",
    [
        ("", ["state"]),
        ("?limit=10", ["state"]),
        ("?state=pending", ["state"]),
        ("?state=DEAD", ["state"]),
        ("?state=dead&limit=0", ["limit"]),
        ("?state=dead&limit=101", ["limit"]),
        ("?state=dead&limit=abc", ["limit"]),
        ("?state=dead&limit=1.5", ["limit"]),
        ("?state=dead&limit=-1", ["limit"]),
        ("?state=dead&limit=%2B5", ["limit"]),
        ("?state=dead&limit=" + "9" * 5000, ["limit"]),
        ("?state=dead&state=dead", ["state"]),
        ("?state=dead&limt=3", ["limt"]),
        ("?state=delivered&limit=500", ["limit", "state"]),
    ],
)
def test_bad_list_parameters_are_400_problems_naming_each(stack, query, names):
    response = stack.get(f"/v0.1/callbacks{query}")
    assert response.status_code == 400, response.body
    assert response.headers["Content-Type"] == PROBLEM_JSON
    Problem.model_validate(response.json_body)
    assert response.json_body["type"] == "urn:dispatch:problem:invalid-params"
    assert sorted(p["name"] for p in response.json_body["invalid_parameters"]) == names


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "eyJ9", "%00%01", "x" * 3000])
def test_a_bad_cursor_is_a_400_problem(stack, cursor):
    create_refused(stack, 2)
    response = stack.get(f"/v0.1/callbacks?state=dead&limit=1&cursor={cursor}")
    assert response.status_code == 400, response.body
    assert response.headers["Content-Type"] == PROBLEM_JSON
    Problem.model_validate(response.json_body)
    assert response.json_body["type"] == "urn:dispatch:problem:invalid-cursor"
    assert response.json_body["title"] == "Invalid page cursor"


def test_the_callbacks_api_wants_credentials_before_anything_else(stack):
    dispatch_uuid = create(stack)
    anonymous = {"Content-Type": "application/json"}
    for response in (
        stack.get("/v0.1/callbacks?state=nope", anonymous),
        stack.get(f"/v0.1/dispatch/{dispatch_uuid}/callbacks", anonymous),
        stack.client.http.post(f"/v0.1/dispatch/{dispatch_uuid}/callbacks/replay", headers=anonymous),
    ):
        assert response.status_code == 401 and response.headers["Content-Type"] == PROBLEM_JSON
    assert len(stack.session.posts) == 1  # the replay did not happen


def test_replay_answers_with_a_jwt_too_and_ignores_a_body(stack):
    dispatch_uuid = create(stack, MESSENGER_TO_SMS, stack.bearer())
    response = stack.client.http.post(
        f"/v0.1/dispatch/{dispatch_uuid}/callbacks/replay",
        headers={**stack.bearer(), "Content-Type": "text/plain"},
        body="please",
    )
    assert response.status_code == 202 and response.json_body["replaying"] == 1
