"""Every webhook route against the same attacks: it accepts only what its provider signed.

Each provider module in `signature_cases/` declares a `SignatureCase`. For each: a correctly
signed body is accepted (200) and applied; a tampered body, a wrong secret, a missing signature,
a stale one (where the scheme signs a time) and a deployment with no secret configured are all
401 on both routes (`/status` and `/inbound`), and nothing is applied.

"Nothing applied" is shown twice over. Every provider's stack holds a real dispatch, created
through the API, whose first message *is* the message the case's body reports on (its send was
answered with the id the body names; `TARGETS` says how, per provider): the signed body turns it
`delivered`, and after a refused one it reads back exactly as before. And the whole table is read
before and after each refused request: not one item may differ, and no callback may go out.
The attacks on a bad signature share one stack per provider, as subtests: each meets the message
still `submitted` unless an earlier one already failed the test by applying it.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from tests.conftest import TABLE_NAME
from tests.e2e.conftest import Stack
from tests.e2e.test_api import create, view
from tests.webhooks import signature_cases
from tests.webhooks import test_aws_sms_e2e as aws_sms_e2e
from tests.webhooks import test_messenger_e2e as messenger_e2e
from tests.webhooks import test_viber_e2e as viber_e2e
from tests.webhooks import test_vonage_e2e as vonage_e2e
from tests.webhooks import test_whatsapp_e2e as whatsapp_e2e
from tests.webhooks.signature_cases.aws_sms import DELIVERED_EVENT
from tests.webhooks.signature_suite import SignatureCase, SignatureTarget
from tests.webhooks.stack import FakeResponse, ScriptedSession, post_webhook, provider_stack

CASES: list[SignatureCase] = [
    importlib.import_module(f"{signature_cases.__name__}.{info.name}").CASE
    for info in pkgutil.iter_modules(signature_cases.__path__)
]
KINDS = ("status", "inbound")
PROBLEM = "urn:dispatch:problem:webhook-signature"


def _case_body(name: str) -> dict[str, Any]:
    return json.loads(next(c for c in CASES if c.provider == name).body)


def _send_answers(url_prefix: str, response: FakeResponse):
    def script(session: ScriptedSession, _monkeypatch: pytest.MonkeyPatch) -> None:
        session.respond(url_prefix, response)

    return script


def _eum_accepts(message_id: str):
    """aws_sms sends through a botocore client: answer SendTextMessage at its HTTP layer."""

    def script(_session: ScriptedSession, monkeypatch: pytest.MonkeyPatch) -> None:
        eum = aws_sms_e2e.FakeEum()
        eum.accept(message_id)
        real_client = boto3.client

        def client(service: str, *args: Any, **kwargs: Any) -> Any:
            made = real_client(service, *args, **kwargs)
            if service == aws_sms_e2e.SERVICE:
                made.meta.events.register(f"before-send.{service}.SendTextMessage", eum.answer)
            return made

        monkeypatch.setattr(boto3, "client", client)

    return script


_whatsapp_status = _case_body("whatsapp")["entry"][0]["changes"][0]["value"]["statuses"][0]
_messenger_event = _case_body("messenger")["entry"][0]["messaging"][0]

#: Per provider, the dispatch whose first message the case's body reports on.
TARGETS: dict[str, SignatureTarget] = {
    "whatsapp": SignatureTarget(
        whatsapp_e2e.dispatch(to=_whatsapp_status["recipient_id"]),
        _send_answers(whatsapp_e2e.GRAPH, whatsapp_e2e.accepted(_whatsapp_status["id"])),
    ),
    "messenger": SignatureTarget(
        messenger_e2e.dispatch(psid=_messenger_event["sender"]["id"]),
        _send_answers(
            messenger_e2e.GRAPH,
            messenger_e2e.accepted(_messenger_event["delivery"]["mids"][0], _messenger_event["sender"]["id"]),
        ),
    ),
    "viber": SignatureTarget(
        viber_e2e.dispatch(to={"type": "viber_service_msg", "id": _case_body("viber")["user_id"]}),
        _send_answers(
            viber_e2e.SEND_URL,
            FakeResponse(200, {"status": 0, "status_message": "ok", "message_token": _case_body("viber")["message_token"]}),
        ),
    ),
    "vonage": SignatureTarget(
        vonage_e2e.dispatch(),
        _send_answers(vonage_e2e.URL, FakeResponse(202, {"message_uuid": _case_body("vonage")["message_uuid"]})),
        # The case's own key is a placeholder: sending signs a JWT with a real one.
        credentials={"DISPATCH_VONAGE_PRIVATE_KEY": vonage_e2e.PRIVATE_KEY},
    ),
    "aws_sms": SignatureTarget(
        {
            "template": "failover",
            "workflow": [
                aws_sms_e2e.sms(DELIVERED_EVENT["destinationPhoneNumber"].removeprefix("+")),
                aws_sms_e2e.SMS_THEN_WHATSAPP["workflow"][1],
            ],
        },
        _eum_accepts(DELIVERED_EVENT["messageId"]),
    ),
}


@contextmanager
def _targeted(
    case: SignatureCase, monkeypatch: pytest.MonkeyPatch, credentials: Mapping[str, str] | None = None
) -> Iterator[tuple[Stack, str]]:
    """The case's stack, and the dispatch whose first message its body reports on.

    The dispatch is always sent with the case's full credentials. With other `credentials`
    (e.g. no webhook secret, which for Viber is also the send token), the stack handed back is a
    second one over the same table, built with those, acting for the same application."""
    target = TARGETS[case.provider]
    session = case.session() if case.session else ScriptedSession()
    target.script(session, monkeypatch)
    full = {**case.credentials, **target.credentials}
    with provider_stack(TABLE_NAME, case.routing, full, session) as stack:
        dispatch_uuid = create(stack, dict(target.dispatch))
        if credentials is None:
            yield stack, dispatch_uuid
            return
    owner = stack.demo
    with provider_stack(TABLE_NAME, case.routing, {**credentials, **target.credentials}, session) as other:
        other.demo = owner
        yield other, dispatch_uuid


def _table(client: Any) -> list[dict[str, Any]]:
    """Every item of the table, in key order: the whole persistent state of the stack."""
    pages = client.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True)
    return sorted((i for page in pages for i in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _refused_and_nothing_applied(
    stack: Stack, case: SignatureCase, dispatch_uuid: str, body: bytes, headers: Mapping[str, str]
) -> None:
    """Both routes answer 401, and not one item of the table, nor the dispatch as its owner
    reads it, nor the callbacks sent, differ afterwards."""
    session: ScriptedSession = stack.session  # type: ignore[assignment]
    client = boto3.client("dynamodb", region_name="eu-west-1")
    before, dispatch_before, callbacks_before = _table(client), view(stack, dispatch_uuid), session.callbacks()
    for kind in KINDS:
        response = post_webhook(stack, case.provider, kind, body, headers)
        assert response.status_code == 401, (kind, response.body)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json_body["type"] == PROBLEM
    assert _table(client) == before
    assert view(stack, dispatch_uuid) == dispatch_before
    assert session.callbacks() == callbacks_before


def _tampered(body: bytes) -> bytes:
    # One byte changed inside the JSON, so the body still parses.
    index = body.index(b'"') + 1
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def _unsigned(case: SignatureCase) -> tuple[bytes, Mapping[str, str]]:
    dropped = {h.lower() for h in case.signature_headers}
    return case.body, {k: v for k, v in case.sign(case.body, case.secret).items() if k.lower() not in dropped}


def _stale(case: SignatureCase) -> tuple[bytes, Mapping[str, str]] | None:
    """Signed correctly but too long ago; None for schemes that sign no time (Meta's)."""
    if case.stale_body is not None:
        return case.stale_body, case.sign(case.stale_body, case.secret)
    if case.sign_stale is not None:
        return case.body, case.sign_stale(case.body, case.secret)
    return None


#: Each attack, as the (body, headers) it posts; None where it does not apply to the scheme.
ATTACKS: dict[str, Callable[[SignatureCase], tuple[bytes, Mapping[str, str]] | None]] = {
    "tampered body": lambda case: (_tampered(case.body), case.sign(case.body, case.secret)),
    "wrong secret": lambda case: (case.body, case.sign(case.body, case.wrong_secret)),
    "missing signature": _unsigned,
    "replayed old signature": _stale,
}

ids = [case.provider for case in CASES]


def test_every_provider_has_a_case_and_a_target():
    from chalicelib.bootstrap import PROVIDER_MODULES

    assert sorted(ids) == sorted(name for name in PROVIDER_MODULES if _implemented(name))
    assert sorted(TARGETS) == sorted(ids)


def _implemented(name: str) -> bool:
    from chalicelib.bootstrap import PROVIDER_MODULES

    return importlib.util.find_spec(PROVIDER_MODULES[name]) is not None


def test_vonage_viber_and_aws_sms_are_attacked_with_stale_signatures():
    """The schemes that sign a time; Meta's (WhatsApp, Messenger) sign none."""
    assert sorted(c.provider for c in CASES if _stale(c) is not None) == ["aws_sms", "viber", "vonage"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_correctly_signed_webhook_is_accepted_and_applied(table_name, monkeypatch, case):
    with _targeted(case, monkeypatch) as (stack, dispatch_uuid):
        assert view(stack, dispatch_uuid)["messages"][0]["status"] == "submitted"
        response = post_webhook(stack, case.provider, case.kind, case.body, case.sign(case.body, case.secret))
        assert response.status_code == 200, response.body
        assert response.json_body["applied"] == 1
        first = view(stack, dispatch_uuid)["messages"][0]
    assert first["status"] == "delivered"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_bad_signature_is_refused_and_applies_nothing(table_name, monkeypatch, subtests, case):
    with _targeted(case, monkeypatch) as (stack, dispatch_uuid):
        for name, attack in ATTACKS.items():
            request = attack(case)
            if request is None:
                continue
            with subtests.test(attack=name):
                _refused_and_nothing_applied(stack, case, dispatch_uuid, *request)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_provider_with_no_secret_configured_refuses_everything(table_name, monkeypatch, case):
    credentials = {
        k: v for k, v in case.credentials.items() if k != f"DISPATCH_{case.provider.upper()}_{case.secret_key.upper()}"
    }
    with _targeted(case, monkeypatch, credentials) as (stack, dispatch_uuid):
        _refused_and_nothing_applied(stack, case, dispatch_uuid, case.body, case.sign(case.body, case.secret))
