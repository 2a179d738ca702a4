"""WhatsApp sends through a scripted session: the exact request for each content type, and how
each error answer in tests/events/whatsapp/send_*.json is classified for failover."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from chalicelib.adapters.providers.context import DEFAULT_TIMEOUT, ProviderContext
from chalicelib.adapters.providers.whatsapp import build, codes
from chalicelib.domain.model import Channel, Condition, Step, StepSpec
from chalicelib.service.ports import ProviderError
from tests.webhooks.stack import FakeResponse, ScriptedSession

EVENTS = Path(__file__).parents[2] / "events" / "whatsapp"
CREDENTIALS = {
    "access_token": "EAAG-token",
    "phone_number_id": "106540352242922",
    "app_secret": "app-secret",
    "verify_token": "verify",
}
URL = "https://graph.facebook.com/v23.0/106540352242922/messages"
HEADERS = {"Authorization": "Bearer EAAG-token", "Content-Type": "application/json"}
TO = "16505551234"
OK_ID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"


def fixture(name: str) -> FakeResponse:
    data = json.loads((EVENTS / f"{name}.json").read_text())
    return FakeResponse(data["status"], data["body"])


def provider(session: ScriptedSession, credentials: dict[str, str] | None = None):
    context = ProviderContext(
        credentials=CREDENTIALS if credentials is None else credentials,
        session=session,
        clock=lambda: datetime.now(timezone.utc),
        aws_client=lambda name: None,
    )
    return build(context)


def step(content: dict, whatsapp: dict | None = None, to: str = TO, message_uuid: str = "m-1") -> Step:
    message: dict = {"content": content}
    if whatsapp is not None:
        message["whatsapp"] = whatsapp
    spec = StepSpec(
        channel=Channel.WHATSAPP,
        to={"type": "whatsapp", "number": to},
        sender={"type": "whatsapp", "number": "15550783881"},
        message=message,
        condition=Condition.READ,
        expiry_time=600,
    )
    return Step(index=0, spec=spec, message_uuid=message_uuid)


def envelope(kind: str, body: dict, to: str = TO) -> dict:
    # The reference is the dispatch ("d-1") and step (0) these tests send: statuses echo it.
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: body,
        "biz_opaque_callback_data": "d-1:0",
    }


#: v0.1 content (+ whatsapp block) → the exact Cloud API body.
REQUESTS = {
    "text": (
        {"type": "text", "text": "Your code is 123456"},
        None,
        envelope("text", {"preview_url": False, "body": "Your code is 123456"}),
    ),
    "image": (
        {"type": "image", "image": {"url": "https://cdn.example/p.jpg", "caption": "Your parcel"}},
        None,
        envelope("image", {"link": "https://cdn.example/p.jpg", "caption": "Your parcel"}),
    ),
    "image without caption": (
        {"type": "image", "image": {"url": "https://cdn.example/p.jpg"}},
        None,
        envelope("image", {"link": "https://cdn.example/p.jpg"}),
    ),
    "audio": (
        {"type": "audio", "audio": {"url": "https://cdn.example/a.mp3"}},
        None,
        envelope("audio", {"link": "https://cdn.example/a.mp3"}),
    ),
    "video": (
        {"type": "video", "video": {"url": "https://cdn.example/v.mp4"}},
        None,
        envelope("video", {"link": "https://cdn.example/v.mp4"}),
    ),
    "file": (
        {"type": "file", "file": {"url": "https://cdn.example/docs/Invoice%20042.pdf?sig=abc", "caption": "Invoice"}},
        None,
        envelope(
            "document",
            {"link": "https://cdn.example/docs/Invoice%20042.pdf?sig=abc", "caption": "Invoice", "filename": "Invoice 042.pdf"},
        ),
    ),
    "file without a name in its URL": (
        {"type": "file", "file": {"url": "https://cdn.example/"}},
        None,
        envelope("document", {"link": "https://cdn.example/"}),
    ),
    "template": (
        {"type": "template", "template": {"name": "order_update", "parameters": [{"default": "12345"}, {"default": "Tuesday"}]}},
        {"policy": "deterministic", "locale": "en-GB"},
        envelope(
            "template",
            {
                "name": "order_update",
                "language": {"code": "en_GB"},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": "12345"}, {"type": "text", "text": "Tuesday"}]}
                ],
            },
        ),
    ),
    "template without parameters or locale": (
        {"type": "template", "template": {"name": "hello_world", "parameters": []}},
        None,
        envelope("template", {"name": "hello_world", "language": {"code": "en_US"}}),
    ),
}


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_the_exact_request_for_each_content_type(case):
    content, options, expected = REQUESTS[case]
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok"))

    assert provider(session).send("d-1", step(content, options)) == OK_ID

    [call] = session.calls
    assert (call.method, call.url, call.headers, call.json, call.timeout) == ("POST", URL, HEADERS, expected, DEFAULT_TIMEOUT)


def test_every_content_type_the_api_accepts_on_whatsapp_is_carried():
    from chalicelib.api.request_models import CONTENT_TYPES

    wa = provider(ScriptedSession())
    assert wa.content_types == {Channel.WHATSAPP: frozenset(CONTENT_TYPES[Channel.WHATSAPP])}
    assert {content["type"] for content, _, _ in REQUESTS.values()} == wa.content_types[Channel.WHATSAPP]


def test_api_version_comes_from_the_credentials():
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok"))
    provider(session, {**CREDENTIALS, "api_version": "21.0"}).send("d-1", step({"type": "text", "text": "hi"}))
    assert session.calls[0].url == "https://graph.facebook.com/v21.0/106540352242922/messages"


def test_an_unusable_api_version_falls_back_to_the_default(caplog):
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok"))
    provider(session, {**CREDENTIALS, "api_version": "latest/../x"}).send("d-1", step({"type": "text", "text": "hi"}))
    assert session.calls[0].url == URL
    assert "whatsapp api_version is not like v23.0; using the default" in caplog.messages


def test_a_held_message_is_still_tracked_by_its_id():
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok_held"))
    assert provider(session).send("d-1", step({"type": "text", "text": "hi"}, to="5511987654321")) == "wamid.HELD"


def test_the_recipient_key_is_the_wa_id_meta_resolved():
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok_held"))
    wa = provider(session)
    sent = step({"type": "text", "text": "hi"}, to="5511987654321", message_uuid="m-br")
    wa.send("d-1", sent)
    # Meta answers for the ninth-digit-less wa_id; replies and statuses will name that one.
    assert wa.recipient_key(sent) == "551187654321"


def test_the_recipient_key_is_the_number_when_meta_names_no_wa_id():
    wa = provider(ScriptedSession())
    assert wa.recipient_key(step({"type": "text", "text": "hi"}, to="447911123456")) == "447911123456"


#: send error fixture → (permanent, code).
ERRORS = {
    "send_error_131056": (False, "131056"),
    "send_error_130429": (False, "130429"),
    "send_error_131000": (False, "131000"),
    "send_error_131016": (False, "131016"),
    "send_error_4": (False, "4"),
    "send_error_80007": (False, "80007"),
    "send_error_131026": (True, "131026"),
    "send_error_131047": (True, "131047"),
    "send_error_131048": (True, "131048"),
    "send_error_132001": (True, "132001"),
    "send_error_100": (True, "100"),
    "send_error_190": (True, "190"),
    "send_error_unknown_400": (True, "999001"),
    "send_error_unknown_503": (False, "999002"),
    "send_error_is_transient": (False, "999003"),
    "send_error_502_html": (False, "http_502"),
    "send_ok_without_id": (True, "no_message_id"),
}


def test_every_send_fixture_has_a_case():
    names = {p.stem for p in EVENTS.glob("send_*.json")}
    assert names == set(ERRORS) | {"send_ok", "send_ok_held"}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_error_answer_is_classified(name):
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture(name))
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert (raised.value.permanent, raised.value.code) == ERRORS[name]


def test_the_reason_is_metas_details_text():
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_error_131056"))
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert raised.value.reason == (
        "Message failed to send because there were too many messages sent from this phone number "
        "to the same phone number in a short period of time."
    )


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError("refused"), "connection"),
        (requests.exceptions.SSLError("bad handshake"), "connection"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(failure, code):
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", failure)
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert (raised.value.permanent, raised.value.code) == (False, code)


@pytest.mark.parametrize("missing", ["access_token", "phone_number_id"])
def test_without_send_credentials_the_send_fails_over_at_once(missing):
    session = ScriptedSession()
    credentials = {k: v for k, v in CREDENTIALS.items() if k != missing}
    with pytest.raises(ProviderError) as raised:
        provider(session, credentials).send("d-1", step({"type": "text", "text": "hi"}))
    assert (raised.value.permanent, raised.value.code) == (True, "not_configured")
    assert session.calls == []


def test_content_this_provider_cannot_carry_is_a_permanent_error_without_a_call():
    session = ScriptedSession()
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d-1", step({"type": "custom", "custom": {"type": "location"}}))
    assert (raised.value.permanent, raised.value.code) == (True, "unsupported_content")
    assert session.calls == []


def test_nothing_secret_or_textual_is_logged(caplog):
    caplog.set_level("DEBUG")
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_error_131047"))
    with pytest.raises(ProviderError):
        provider(session).send("d-1", step({"type": "text", "text": "my secret code 998877"}))
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "998877" not in logged and "EAAG-token" not in logged and "24 hours" not in logged
    assert "whatsapp send refused" in caplog.messages


@pytest.mark.parametrize(
    ("code", "http_status", "permanent"),
    [(code, 400, False) for code in sorted(codes.TRANSIENT_CODES)]
    + [(code, 500, True) for code in sorted(codes.PERMANENT_CODES)]
    + [(132000, 400, True), (132016, 400, True), (132999, 400, True)]
    + [(None, 429, False), (None, 500, False), (None, 400, True), (None, 403, True)],
)
def test_the_code_decides_before_the_http_status(code, http_status, permanent):
    assert codes.is_permanent_send_error(code, http_status) is permanent
