"""The API end to end: the seed's examples, failover on deadline and on rejection, auth,
tenant isolation, error bodies, and signed callbacks arriving in the sink."""
from __future__ import annotations

import json
import uuid

import pytest

MESSENGER_TO_SMS = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "messenger", "id": "1111111111111111"},
            "to": {"type": "messenger", "id": "0000000000000000"},
            "message": {"content": {"type": "text", "text": "This is a Facebook Messenger Message sent from the Dispatch API"}},
            "failover": {"expiry_time": 600, "condition_status": "read"},
        },
        {
            "from": {"type": "sms", "number": "447700900001"},
            "to": {"type": "sms", "number": "447700900000"},
            "message": {"content": {"type": "text", "text": "This is an SMS sent from the Dispatch API"}},
        },
    ],
}

VIBER_TO_SMS = {
    "template": "failover",
    "workflow": [
        {
            "from": {"type": "viber_service_msg", "id": "12345"},
            "to": {"type": "viber_service_msg", "number": "447700900000"},
            "message": {"content": {"type": "text", "text": "This is a Viber Service Message sent from the Dispatch API"}},
            "failover": {"expiry_time": 600, "condition_status": "delivered"},
        },
        MESSENGER_TO_SMS["workflow"][1],
    ],
}


def with_expiry(body: dict, seconds: int) -> dict:
    body = json.loads(json.dumps(body))
    body["workflow"][0]["failover"]["expiry_time"] = seconds
    return body


def create(stack, body=MESSENGER_TO_SMS, headers=None) -> str:
    response = stack.post("/v0.1/dispatch", body, headers)
    assert response.status_code == 202, response.body
    dispatch_uuid = response.json_body["dispatch_uuid"]
    assert uuid.UUID(dispatch_uuid).version == 4
    return dispatch_uuid


def view(stack, dispatch_uuid: str) -> dict:
    response = stack.get(f"/v0.1/dispatch/{dispatch_uuid}")
    assert response.status_code == 200, response.body
    return response.json_body


def inject(stack, message_uuid: str, status: str, headers=None):
    return stack.post(f"/sandbox/messages/{message_uuid}/status", {"status": status}, headers)


def received(stack, dispatch_uuid: str) -> list[dict]:
    stack.deliver_callbacks()
    response = stack.get(f"/sandbox/callbacks?dispatch_uuid={dispatch_uuid}")
    assert response.status_code == 200, response.body
    return response.json_body


# --- the seed examples -------------------------------------------------------------------------


def test_messenger_to_sms_with_basic_auth(stack):
    dispatch_uuid = create(stack)
    d = view(stack, dispatch_uuid)
    assert d["status"] == "in_progress"
    first, second = d["messages"]
    assert (first["channel"], first["phase"], first["status"]) == ("messenger", "waiting", "submitted")
    assert (first["condition_status"], first["expiry_time"]) == ("read", 600)
    assert second["phase"] == "pending" and second["message_uuid"] != first["message_uuid"]


def test_viber_to_sms_with_a_jwt(stack):
    dispatch_uuid = create(stack, VIBER_TO_SMS, stack.bearer())
    assert view(stack, dispatch_uuid)["messages"][0]["channel"] == "viber_service_msg"


def test_the_2018_workflows_path_answers_with_a_workflow_uuid(stack):
    response = stack.post("/beta/workflows", MESSENGER_TO_SMS)
    assert response.status_code == 202
    assert view(stack, response.json_body["workflow_uuid"])["template"] == "failover"


# --- failover ----------------------------------------------------------------------------------


def test_no_status_before_the_deadline_fails_over_to_sms(stack):
    dispatch_uuid = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    stack.clock.advance(14)
    stack.fire_due_checks(dispatch_uuid)  # early: nothing is due yet
    assert view(stack, dispatch_uuid)["messages"][1]["phase"] == "pending"
    stack.clock.advance(1)
    stack.timer.pending[(dispatch_uuid, 0)] = stack.clock.now()
    assert stack.fire_due_checks(dispatch_uuid) == 1
    first, second = view(stack, dispatch_uuid)["messages"]
    assert first["outcome"] == "expired" and second["phase"] == "waiting"
    assert _seconds_between(first["sent_at"], second["sent_at"]) == pytest.approx(15, abs=0.01)
    assert inject(stack, second["message_uuid"], "delivered").status_code == 202
    callbacks = received(stack, dispatch_uuid)
    assert all(c["signature_valid"] for c in callbacks)
    bodies = [c["body"] for c in callbacks]
    assert [b.get("status") for b in bodies] == ["submitted", "submitted", "delivered", "completed"]
    assert bodies[-1]["completed_by"] == second["message_uuid"]


def test_read_before_the_deadline_completes_without_sms(stack):
    dispatch_uuid = create(stack, with_expiry(MESSENGER_TO_SMS, 15))
    first = view(stack, dispatch_uuid)["messages"][0]
    assert inject(stack, first["message_uuid"], "read").status_code == 202
    stack.clock.advance(60)
    assert stack.fire_due_checks(dispatch_uuid) == 0  # the deadline's timer was cancelled
    stack.client.lambda_.invoke("failover_check", {"dispatch_uuid": dispatch_uuid, "step_index": 0})
    d = view(stack, dispatch_uuid)
    assert d["status"] == "completed" and d["completed_by"] == first["message_uuid"]
    assert d["messages"][1]["phase"] == "pending"
    final = [c["body"] for c in received(stack, dispatch_uuid) if "template" in c["body"]]
    assert [f["status"] for f in final] == ["completed"]


def test_rejected_fails_over_at_once(stack):
    dispatch_uuid = create(stack)
    first = view(stack, dispatch_uuid)["messages"][0]
    inject(stack, first["message_uuid"], "rejected")
    first, second = view(stack, dispatch_uuid)["messages"]
    assert first["outcome"] == "rejected" and second["phase"] == "waiting"
    assert [h["status"] for h in first["history"]] == ["submitted", "rejected"]


def test_a_malformed_check_event_is_refused_without_effect(stack):
    result = stack.client.lambda_.invoke("failover_check", {"dispatch_uuid": 7})
    assert result.payload == {"ok": False, "error": "invalid check event"}


# --- auth and tenants --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json", "Authorization": "Basic bm90OmdpdmVu"},
        {"Content-Type": "application/json", "Authorization": "Bearer not.a.jwt"},
    ],
)
def test_bad_credentials_are_401_problems(stack, headers):
    response = stack.post("/v0.1/dispatch", MESSENGER_TO_SMS, headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert set(response.json_body) == {"type", "title", "detail", "instance"}


def test_expired_jwt_is_refused(stack):
    headers = stack.bearer(exp=int(stack.clock.now().timestamp()) - 60)
    assert stack.post("/v0.1/dispatch", MESSENGER_TO_SMS, headers).status_code == 401


def test_another_applications_dispatch_looks_missing(stack):
    dispatch_uuid = create(stack)
    theirs = stack.get(f"/v0.1/dispatch/{dispatch_uuid}", stack.basic(stack.other))
    missing = stack.get(f"/v0.1/dispatch/{uuid.uuid4()}", stack.basic(stack.other))
    assert theirs.status_code == missing.status_code == 404
    assert {k: v for k, v in theirs.json_body.items() if k != "instance"} == {
        k: v for k, v in missing.json_body.items() if k != "instance"
    }
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    assert inject(stack, message_uuid, "read", stack.basic(stack.other)).status_code == 404
    assert view(stack, dispatch_uuid)["messages"][0]["status"] == "submitted"
    listing = stack.get(f"/sandbox/callbacks?dispatch_uuid={dispatch_uuid}", stack.basic(stack.other))
    assert listing.status_code == 404


# --- request errors ----------------------------------------------------------------------------


def test_invalid_workflow_names_every_bad_field(stack):
    body = with_expiry(MESSENGER_TO_SMS, 5)
    body["workflow"][1]["failover"] = {"expiry_time": 60, "condition_status": "read"}
    response = stack.post("/v0.1/dispatch", body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    names = {p["name"] for p in response.json_body["invalid_parameters"]}
    assert {"workflow[0].failover.expiry_time", "workflow[1].failover"} <= names


def test_wrong_content_type_is_415_and_malformed_json_is_400(stack):
    headers = {**stack.basic(), "Content-Type": "text/plain"}
    assert stack.client.http.post("/v0.1/dispatch", headers=headers, body="{}").status_code == 415
    broken = stack.client.http.post("/v0.1/dispatch", headers=stack.basic(), body='{"template":')
    assert broken.status_code == 400 and broken.json_body["title"] == "Malformed JSON"


def test_an_oversized_body_is_413(stack):
    body = json.dumps({"template": "failover", "padding": "x" * (300 * 1024)})
    response = stack.client.http.post("/v0.1/dispatch", headers=stack.basic(), body=body)
    assert response.status_code == 413


def test_an_internal_error_is_a_500_problem_without_a_trace(stack, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(stack.services.dispatches, "create", explode)
    response = stack.post("/v0.1/dispatch", MESSENGER_TO_SMS)
    assert response.status_code == 500
    assert "secret internals" not in response.body.decode() and "Traceback" not in response.body.decode()
    assert response.json_body["title"] == "Internal error"


def test_the_openapi_document_is_served_without_auth(stack):
    response = stack.client.http.get("/v0.1/openapi.json")
    assert response.status_code == 200
    assert response.json_body["openapi"].startswith("3.")
    assert "/v0.1/dispatch" in response.json_body["paths"]


def test_sandbox_routes_do_not_exist_outside_the_local_stage(stack, monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(stack.services, "settings", replace(stack.services.settings, sandbox_routes=False))
    dispatch_uuid = create(stack)
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    assert inject(stack, message_uuid, "read").status_code == 404
    assert view(stack, dispatch_uuid)["messages"][0]["status"] == "submitted"


def test_the_sink_marks_a_forged_callback_invalid(stack):
    dispatch_uuid = create(stack)
    url, data, headers = stack.session.posts[0]
    forged = data.replace(b"submitted", b"delivered")
    stack.client.http.post("/sandbox/callbacks", headers=headers, body=forged)
    stack.session.posts.clear()
    [stored] = received(stack, dispatch_uuid)
    assert stored["signature_valid"] is False and stored["body"]["status"] == "delivered"


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(b) - parse(a)).total_seconds()


def test_everything_the_service_emits_matches_the_documented_schemas(stack):
    from chalicelib.api.response_models import (
        DispatchView,
        FinalReportCallback,
        MessageStatusCallback,
        Problem,
        ReceivedCallback,
    )

    dispatch_uuid = create(stack)
    first = view(stack, dispatch_uuid)["messages"][0]
    stack.post(
        f"/sandbox/messages/{first['message_uuid']}/status",
        {"status": "rejected", "error": {"code": "1300", "reason": "Not part of the provider network"}},
    )
    second = view(stack, dispatch_uuid)["messages"][1]
    inject(stack, second["message_uuid"], "read")
    DispatchView.model_validate(view(stack, dispatch_uuid))
    listing = received(stack, dispatch_uuid)
    assert len(listing) == 5
    for entry in listing:
        ReceivedCallback.model_validate(entry)
        model = FinalReportCallback if "template" in entry["body"] else MessageStatusCallback
        model.model_validate(entry["body"])
    Problem.model_validate(stack.get(f"/v0.1/dispatch/{uuid.uuid4()}").json_body)
    Problem.model_validate(stack.post("/v0.1/dispatch", {"template": "x"}).json_body)


def test_logs_never_carry_message_text_or_secrets(stack, caplog):
    import logging

    caplog.set_level(logging.INFO)
    body = with_expiry(MESSENGER_TO_SMS, 15)
    body["workflow"][0]["message"]["content"]["text"] = "Your one-time code is 771-204"
    dispatch_uuid = create(stack, body, stack.bearer())
    first = view(stack, dispatch_uuid)["messages"][0]
    inject(stack, first["message_uuid"], "rejected")
    stack.deliver_callbacks()
    stack.post("/v0.1/dispatch", {"template": "failover"}, {**stack.basic(), "Authorization": "Basic eDp5"})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert dispatch_uuid in logged  # the logs do say what happened to the dispatch
    for secret in ("771-204", stack.demo.api_secret, stack.demo.signature_secret, "BEGIN PRIVATE KEY"):
        assert secret not in logged
    assert "Bearer ey" not in logged


def test_another_application_cannot_plant_a_valid_looking_callback(stack):
    from chalicelib.adapters.callback_signing import sign

    dispatch_uuid = create(stack)
    stack.deliver_callbacks()
    forged = json.dumps({"dispatch_uuid": dispatch_uuid, "template": "failover", "status": "completed"}).encode()
    token = sign(forged, stack.other.signature_secret, stack.other.application_id, stack.other.api_key, stack.clock.now())
    stack.client.http.post("/sandbox/callbacks", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, body=forged)
    listing = stack.get(f"/sandbox/callbacks?dispatch_uuid={dispatch_uuid}").json_body
    assert [(c["signature_valid"], c["body"].get("status")) for c in listing] == [(True, "submitted"), (False, "completed")]



def test_a_dispatch_too_large_to_store_is_413(stack, monkeypatch):
    from chalicelib.domain.errors import DispatchTooLarge

    def too_large(*args, **kwargs):
        raise DispatchTooLarge("over 400 KB")

    monkeypatch.setattr(stack.services.dispatches, "create", too_large)
    response = stack.post("/v0.1/dispatch", MESSENGER_TO_SMS)
    assert response.status_code == 413 and response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("status", [503, 500, 410, 400])
def test_a_staged_outage_refuses_callbacks_with_a_documented_problem(stack, status):
    # Found by fuzzing: the sink answered a staged outage with an empty text/plain body, under
    # a status its document did not list.
    from chalicelib.api.response_models import Problem

    assert stack.post("/sandbox/callbacks/outage", {"seconds": 60, "status": status}).status_code == 202
    dispatch_uuid = create(stack)
    [(_, body, headers)] = stack.session.posts
    answer = stack.client.http.post("/sandbox/callbacks", headers=headers, body=body)
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = Problem.model_validate(answer.json_body)
    assert problem.type == "urn:dispatch:problem:sandbox-outage"
    assert received(stack, dispatch_uuid) == []


@pytest.mark.parametrize("body", [{"seconds": True}, {"seconds": "60"}, {"seconds": 60, "status": "503"}])
def test_an_outage_takes_only_json_integers(stack, body):
    # Found by fuzzing: `{"seconds": true}` staged a one-second outage, though the document
    # says integer.
    answer = stack.post("/sandbox/callbacks/outage", body)
    assert answer.status_code == 400
    assert answer.json_body["type"] == "urn:dispatch:problem:invalid-params"
    assert stack.services.sink.outage_status(stack.demo.application_id, stack.clock.now()) is None
