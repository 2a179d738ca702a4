"""The webhook routes with a stand-in provider: what each outcome answers, and that a refused
request applies nothing. (Each real provider's payloads and signatures are tested in
tests/webhooks/.)"""
from __future__ import annotations

import json

from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.webhooks import (
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from tests.e2e.test_api import MESSENGER_TO_SMS, create, view


class StandIn:
    """Reports statuses for sandbox messages; what it does with the next request is settable."""

    name = "sandbox"

    def __init__(self) -> None:
        self.outcome: Exception | WebhookBatch = WebhookBatch()
        self.seen: list[WebhookRequest] = []

    def verify(self, request: WebhookRequest) -> None:
        self.seen.append(request)
        if isinstance(self.outcome, WebhookUnauthorized):
            raise self.outcome

    def parse(self, request: WebhookRequest, kind: str) -> WebhookBatch:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def challenge(self, request: WebhookRequest) -> str | None:
        return request.query.get("hub.challenge") if request.query.get("hub.verify_token") == "ours" else None


def install(stack) -> StandIn:
    stand_in = StandIn()
    stack.services.webhooks["sandbox"] = stand_in
    return stand_in


def post(stack, path: str, body: bytes = b'{"x": 1}', headers=None):
    return stack.client.http.post(path, headers=headers or {"Content-Type": "application/json"}, body=body)


def read_status(stack, dispatch_uuid: str) -> ProviderStatus:
    message_uuid = view(stack, dispatch_uuid)["messages"][0]["message_uuid"]
    return ProviderStatus(message_uuid, StatusEvent(MessageStatus.READ))


def test_a_verified_batch_is_applied_and_counted(stack):
    stand_in = install(stack)
    dispatch_uuid = create(stack, MESSENGER_TO_SMS)
    stand_in.outcome = WebhookBatch(statuses=(read_status(stack, dispatch_uuid),), ignored=1)

    response = post(stack, "/webhooks/sandbox/status", b'{"raw": "bytes"}', {"X-Sig": "s", "Content-Type": "text/plain"})

    assert response.status_code == 200
    assert response.json_body == {"applied": 1, "unmatched": 0, "ignored": 1, "relayed": 0}
    assert view(stack, dispatch_uuid)["status"] == "completed"
    # The provider module gets the exact bytes and lower-cased header names.
    assert stand_in.seen[0].body == b'{"raw": "bytes"}' and stand_in.seen[0].headers["x-sig"] == "s"


def test_a_bad_signature_is_401_and_applies_nothing(stack):
    stand_in = install(stack)
    dispatch_uuid = create(stack, MESSENGER_TO_SMS)
    stand_in.outcome = WebhookUnauthorized("no signature header")

    response = post(stack, "/webhooks/sandbox/status")

    assert response.status_code == 401
    assert response.json_body["type"] == "urn:dispatch:problem:webhook-signature"
    assert view(stack, dispatch_uuid)["status"] == "in_progress"


def test_a_signed_body_that_is_not_a_provider_payload_is_400(stack):
    install(stack).outcome = WebhookMalformed("entry must be a list")
    response = post(stack, "/webhooks/sandbox/inbound")
    assert response.status_code == 400
    assert response.json_body["type"] == "urn:dispatch:problem:webhook-payload"


def test_an_internal_failure_is_500_so_the_provider_retries(stack):
    install(stack).outcome = RuntimeError("table throttled")
    response = post(stack, "/webhooks/sandbox/status")
    assert response.status_code == 500
    assert "throttled" not in json.dumps(response.json_body)  # no internals reach the provider


def test_unknown_providers_and_kinds_are_404(stack):
    install(stack)
    assert post(stack, "/webhooks/nobody/status").status_code == 404
    assert post(stack, "/webhooks/sandbox/anything").status_code == 404
    assert stack.client.http.get("/webhooks/nobody/status").status_code == 404


def test_the_get_handshake_answers_the_challenge_only_with_our_token(stack):
    install(stack)
    ok = stack.client.http.get("/webhooks/sandbox/status?hub.mode=subscribe&hub.verify_token=ours&hub.challenge=1158201444")
    assert ok.status_code == 200 and ok.body == b"1158201444"
    wrong = stack.client.http.get("/webhooks/sandbox/status?hub.mode=subscribe&hub.verify_token=theirs&hub.challenge=1")
    assert wrong.status_code == 403
