"""Issue 14, finding 5 (body size): every provider's webhook routes refuse a body over that
provider's documented limit with a 413 problem, before the signature is checked or anything
parsed; nothing is applied and nothing is logged at ERROR. A body at the limit is read on."""
from __future__ import annotations

import json
import logging

import pytest

from chalicelib.api.webhook_routes import MAX_BODY_BYTES
from tests.e2e.test_api import create, view
from tests.webhooks import test_aws_sms_e2e as aws_sms
from tests.webhooks import test_messenger_e2e as messenger
from tests.webhooks import test_viber_e2e as viber
from tests.webhooks import test_vonage_e2e as vonage
from tests.webhooks import test_whatsapp_e2e as whatsapp
from tests.webhooks.stack import ScriptedSession, post_webhook, provider_stack

ROUTING = {
    "whatsapp": "whatsapp",
    "messenger": "messenger",
    "viber_service_msg": "viber",
    "sms": "aws_sms",
    "mms": "vonage",
}
CREDENTIALS = {
    **whatsapp.CREDENTIALS,
    **messenger.CREDENTIALS,
    **viber.CREDENTIALS,
    **aws_sms.CREDENTIALS,
    **vonage.CREDENTIALS,
}
PROVIDERS = sorted(set(ROUTING.values()))


@pytest.fixture
def session() -> ScriptedSession:
    session = ScriptedSession()
    session.respond(whatsapp.GRAPH, whatsapp.accepted())
    session.respond(viber.SEND_URL, viber.answer("send_ok.json"))
    return session


@pytest.fixture
def stack(table_name, session):
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        yield stack


class Spy:
    """Wraps a webhook's verify and parse, counting the calls that reach them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, webhook) -> None:
        self.calls: list[str] = []
        for name in ("verify", "parse"):
            real = getattr(webhook, name)

            def spy(*args, _name=name, _real=real):
                self.calls.append(_name)
                return _real(*args)

            monkeypatch.setattr(webhook, name, spy)


def padded(body: bytes, size: int) -> bytes:
    """`body` grown to exactly `size` bytes with trailing JSON whitespace (still valid JSON)."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_every_provider_with_webhooks_has_a_documented_limit(stack):
    assert set(stack.services.webhooks) == set(MAX_BODY_BYTES) == set(PROVIDERS)
    # Nothing above what API Gateway (10 MB) and a Lambda invocation (6 MB) can carry.
    assert max(MAX_BODY_BYTES.values()) < 6 * 1000 * 1000


@pytest.mark.parametrize("kind", ["status", "inbound"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_body_over_the_limit_is_a_413_before_the_signature_is_checked(stack, monkeypatch, caplog, provider, kind):
    spy = Spy(monkeypatch, stack.services.webhooks[provider])
    body = padded(b"{}", MAX_BODY_BYTES[provider] + 1)

    with caplog.at_level(logging.INFO):
        response = post_webhook(stack, provider, kind, body, {"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(response.body)
    assert problem["type"] == "urn:dispatch:problem:payload-too-large"
    assert str(MAX_BODY_BYTES[provider]) in problem["detail"]
    assert spy.calls == []  # neither verified nor parsed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_body_at_the_limit_goes_on_to_the_signature_check(stack, monkeypatch, caplog, provider):
    spy = Spy(monkeypatch, stack.services.webhooks[provider])
    body = padded(b"{}", MAX_BODY_BYTES[provider])

    with caplog.at_level(logging.INFO):
        response = post_webhook(stack, provider, "status", body, {"Content-Type": "application/json"})

    assert response.status_code == 401  # unsigned: refused by the signature, not by its size
    assert spy.calls == ["verify"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_signed_whatsapp_status_over_3_mib_is_not_applied(stack):
    dispatch_uuid = create(stack, whatsapp.dispatch())
    body = padded(whatsapp.payload("status_delivered"), MAX_BODY_BYTES["whatsapp"] + 1)

    response = post_webhook(stack, "whatsapp", "status", body, whatsapp.signed(body))

    assert response.status_code == 413
    assert view(stack, dispatch_uuid)["status"] == "in_progress"
    # The same status, at a size Meta sends, is applied.
    small = whatsapp.payload("status_delivered")
    assert post_webhook(stack, "whatsapp", "status", small, whatsapp.signed(small)).status_code == 200
    assert view(stack, dispatch_uuid)["status"] == "completed"


def test_a_signed_20_mib_viber_body_is_refused(stack):
    """The body from the issue: 20 MiB, signed with the bot's own token."""
    body = padded(b'{"event":"delivered"}', 20 * 1024 * 1024)
    response = post_webhook(stack, "viber", "status", body, viber.signed(body))
    assert response.status_code == 413
