"""Vonage sends: the exact Messages API v1 request for every content type each channel takes,
and every answer classified as an id, a permanent failure (fail over now) or a transient one."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from chalicelib.adapters.providers import vonage
from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.api.request_models import CONTENT_TYPES
from chalicelib.api.validation import parse_create_request
from chalicelib.domain.model import Channel, Step
from chalicelib.service.applications import generate_key_pair
from chalicelib.service.ports import ProviderError
from tests.webhooks.stack import FakeResponse, ScriptedSession

EVENTS = Path(__file__).parents[2] / "events" / "vonage"
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
MESSAGE_UUID = "0b9e7a34-1f2d-4c5e-9a8b-7c6d5e4f3a21"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
URL = "https://api.nexmo.com/v1/messages"
TIMEOUT = (1.5, 4.0)
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()


def provider(session: ScriptedSession, **overrides: str) -> vonage.VonageProvider:
    credentials = {
        "application_id": APPLICATION_ID,
        "private_key": PRIVATE_KEY,
        "signature_secret": "s3cret-signature",
        **overrides,
    }
    context = ProviderContext(
        credentials={k: v for k, v in credentials.items() if v},
        session=session,
        clock=lambda: NOW,
        aws_client=lambda name: None,
        timeout=TIMEOUT,
    )
    return vonage.build(context)


def step(item: dict[str, Any]) -> Step:
    """A step as the API builds it: the item goes through the real request validation."""
    (spec,) = parse_create_request({"template": "failover", "workflow": [item]})
    return Step(index=0, spec=spec, message_uuid=MESSAGE_UUID)


def item(channel: str, content: dict, sender: dict, to: dict, **blocks: Any) -> dict[str, Any]:
    return {
        "from": {"type": channel, **sender},
        "to": {"type": channel, **to},
        "message": {"content": content, **blocks},
    }


def accepted() -> ScriptedSession:
    session = ScriptedSession()
    session.respond(URL, FakeResponse(202, {"message_uuid": "d8f86df1-dec6-442f-870a-2241be27d721"}))
    return session


WA = ({"number": "447700900001"}, {"number": "447700900000"})
FB = ({"id": "1111111111111111"}, {"id": "0000000000000000"})
VIBER = ({"id": "16273"}, {"number": "447700900000"})

# (case, workflow item, the v1 body Vonage must receive)
REQUESTS = [
    (
        "sms text from a sender id",
        item("sms", {"type": "text", "text": "Your code is 123456"}, {"number": "Acme"}, {"number": "447700900000"}),
        {"message_type": "text", "channel": "sms", "to": "447700900000", "from": "Acme", "text": "Your code is 123456"},
    ),
    (
        "mms image with caption",
        item("mms", {"type": "image", "image": {"url": "https://example.com/a.jpg", "caption": "Look"}}, {"number": "12345"}, {"number": "14155550101"}),
        {"message_type": "image", "channel": "mms", "to": "14155550101", "from": "12345",
         "image": {"url": "https://example.com/a.jpg", "caption": "Look"}},
    ),
    (
        "whatsapp text",
        item("whatsapp", {"type": "text", "text": "Hi"}, *WA),
        {"message_type": "text", "channel": "whatsapp", "to": "447700900000", "from": "447700900001", "text": "Hi"},
    ),
    (
        "whatsapp image with caption",
        item("whatsapp", {"type": "image", "image": {"url": "https://example.com/a.jpg", "caption": "Look"}}, *WA),
        {"message_type": "image", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "image": {"url": "https://example.com/a.jpg", "caption": "Look"}},
    ),
    (
        "whatsapp audio",
        item("whatsapp", {"type": "audio", "audio": {"url": "https://example.com/a.mp3"}}, *WA),
        {"message_type": "audio", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "audio": {"url": "https://example.com/a.mp3"}},
    ),
    (
        "whatsapp video",
        item("whatsapp", {"type": "video", "video": {"url": "https://example.com/a.mp4"}}, *WA),
        {"message_type": "video", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "video": {"url": "https://example.com/a.mp4"}},
    ),
    (
        "whatsapp file with caption",
        item("whatsapp", {"type": "file", "file": {"url": "https://example.com/a.pdf", "caption": "Invoice"}}, *WA),
        {"message_type": "file", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "file": {"url": "https://example.com/a.pdf", "caption": "Invoice"}},
    ),
    (
        "whatsapp template with policy and locale",
        item(
            "whatsapp",
            {"type": "template", "template": {"name": "verify", "parameters": [{"default": "Acme"}, {"default": "64873"}]}},
            *WA,
            whatsapp={"policy": "deterministic", "locale": "en-GB"},
        ),
        {"message_type": "template", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "template": {"name": "verify", "parameters": ["Acme", "64873"]},
         "whatsapp": {"policy": "deterministic", "locale": "en_GB"}},
    ),
    (
        "whatsapp template without options gets v1's required locale",
        item("whatsapp", {"type": "template", "template": {"name": "hello", "parameters": []}}, *WA),
        {"message_type": "template", "channel": "whatsapp", "to": "447700900000", "from": "447700900001",
         "template": {"name": "hello", "parameters": []}, "whatsapp": {"locale": "en_US"}},
    ),
    (
        "messenger text with a message tag",
        item("messenger", {"type": "text", "text": "Hi"}, *FB, messenger={"category": "message_tag", "tag": "ACCOUNT_UPDATE"}),
        {"message_type": "text", "channel": "messenger", "to": "0000000000000000", "from": "1111111111111111",
         "text": "Hi", "messenger": {"category": "message_tag", "tag": "ACCOUNT_UPDATE"}},
    ),
    (
        "messenger image (captions are refused at validation: messenger has none)",
        item("messenger", {"type": "image", "image": {"url": "https://example.com/a.png"}}, *FB),
        {"message_type": "image", "channel": "messenger", "to": "0000000000000000", "from": "1111111111111111",
         "image": {"url": "https://example.com/a.png"}},
    ),
    (
        "messenger audio",
        item("messenger", {"type": "audio", "audio": {"url": "https://example.com/a.mp3"}}, *FB),
        {"message_type": "audio", "channel": "messenger", "to": "0000000000000000", "from": "1111111111111111",
         "audio": {"url": "https://example.com/a.mp3"}},
    ),
    (
        "messenger video",
        item("messenger", {"type": "video", "video": {"url": "https://example.com/a.mp4"}}, *FB, messenger={"category": "update"}),
        {"message_type": "video", "channel": "messenger", "to": "0000000000000000", "from": "1111111111111111",
         "video": {"url": "https://example.com/a.mp4"}, "messenger": {"category": "update"}},
    ),
    (
        "messenger file",
        item("messenger", {"type": "file", "file": {"url": "https://example.com/a.zip"}}, *FB),
        {"message_type": "file", "channel": "messenger", "to": "0000000000000000", "from": "1111111111111111",
         "file": {"url": "https://example.com/a.zip"}},
    ),
    (
        "viber text with category and ttl",
        item("viber_service_msg", {"type": "text", "text": "Hi"}, *VIBER, viber_service_msg={"category": "transaction", "ttl": 600}),
        {"message_type": "text", "channel": "viber_service", "to": "447700900000", "from": "16273",
         "text": "Hi", "viber_service": {"category": "transaction", "ttl": 600}},
    ),
    (
        "viber image with caption",
        item("viber_service_msg", {"type": "image", "image": {"url": "https://example.com/a.jpg", "caption": "Look"}}, *VIBER),
        {"message_type": "image", "channel": "viber_service", "to": "447700900000", "from": "16273",
         "image": {"url": "https://example.com/a.jpg", "caption": "Look"}},
    ),
]


@pytest.mark.parametrize(("case", "workflow_item", "expected"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_each_content_type_becomes_the_exact_v1_request(case, workflow_item, expected):
    session = accepted()

    message_id = provider(session).send("dispatch-1", step(workflow_item))

    assert message_id == "d8f86df1-dec6-442f-870a-2241be27d721"
    (call,) = session.calls
    assert (call.method, call.url, call.timeout) == ("POST", URL, TIMEOUT)
    assert call.json == {**expected, "client_ref": "dispatch-1:0"}
    assert set(call.headers) == {"Authorization", "Content-Type", "Accept"}
    assert call.headers["Content-Type"] == call.headers["Accept"] == "application/json"


def test_every_channel_and_content_type_the_api_accepts_is_covered_above():
    covered = {(r[1]["to"]["type"], r[1]["message"]["content"]["type"]) for r in REQUESTS}
    accepted_by_api = {(c.value, kind) for c, kinds in CONTENT_TYPES.items() for kind in kinds}
    assert covered == accepted_by_api


def test_content_types_carry_everything_the_api_accepts():
    assert vonage.VonageProvider.content_types == {c: frozenset(kinds) for c, kinds in CONTENT_TYPES.items()}


def test_the_request_is_authorised_by_a_fresh_rs256_application_token():
    session = accepted()

    provider(session).send("dispatch-1", step(REQUESTS[0][1]))

    scheme, token = session.calls[0].headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, PUBLIC_KEY, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False})
    iat = int(NOW.timestamp())
    assert claims == {"application_id": APPLICATION_ID, "iat": iat, "jti": claims["jti"], "exp": iat + 300}
    assert len(claims["jti"]) == 36


def test_a_rotated_private_key_signs_from_its_first_request():
    session = accepted()
    rotated_private, rotated_public = generate_key_pair()

    provider(session).send("d", step(REQUESTS[0][1]))
    provider(session, private_key=rotated_private).send("d", step(REQUESTS[0][1]))

    first, second = (c.headers["Authorization"][7:] for c in session.calls)
    options = {"verify_exp": False, "verify_iat": False}
    assert jwt.decode(first, PUBLIC_KEY, algorithms=["RS256"], options=options)["application_id"] == APPLICATION_ID
    assert jwt.decode(second, rotated_public, algorithms=["RS256"], options=options)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(second, PUBLIC_KEY, algorithms=["RS256"], options=options)


def test_each_request_gets_its_own_jti():
    session = accepted()
    vonage_provider = provider(session)
    vonage_provider.send("d", step(REQUESTS[0][1]))
    vonage_provider.send("d", step(REQUESTS[0][1]))
    tokens = [c.headers["Authorization"] for c in session.calls]
    jtis = {jwt.decode(t[7:], options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 2


def test_a_regional_api_base_is_used_as_configured():
    session = ScriptedSession()
    session.respond("https://api-eu.vonage.com/v1/messages", FakeResponse(202, {"message_uuid": "m-1"}))

    assert provider(session, api_base="https://api-eu.vonage.com/").send("d", step(REQUESTS[0][1])) == "m-1"
    assert session.calls[0].url == "https://api-eu.vonage.com/v1/messages"


def test_a_private_key_stored_with_escaped_newlines_still_signs():
    session = accepted()
    escaped = PRIVATE_KEY.replace("\n", "\\n")

    provider(session, private_key=escaped).send("d", step(REQUESTS[0][1]))

    token = session.calls[0].headers["Authorization"][7:]
    assert jwt.decode(token, PUBLIC_KEY, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False})


# --- answers -------------------------------------------------------------------------------------

#: fixture → (permanent, code): 401/402/422 fail the same way again, so fail over now; 429, 5xx
#: and gateway errors may pass on a retry of the same channel.
ERRORS = {
    "send_error_401_unauthorized.json": (True, "unathorized"),
    "send_error_401_unprovisioned.json": (True, "unprovisioned"),
    "send_error_402_low_balance.json": (True, "low-balance"),
    "send_error_422_invalid_params.json": (True, "1150"),
    "send_error_422_invalid_recipient.json": (True, "1430"),
    "send_error_422_invalid_sender.json": (True, "1120"),
    "send_error_429_throttled.json": (False, "1000"),
    "send_error_500_internal.json": (False, "1000"),
    "send_error_503_not_json.json": (False, "503"),
}


def test_every_send_fixture_has_an_expectation():
    files = {p.name for p in EVENTS.glob("send_*.json")}
    assert files == set(ERRORS) | {"send_accepted.json"}


def answer(name: str) -> FakeResponse:
    recorded = json.loads((EVENTS / name).read_text())
    return FakeResponse(recorded["status_code"], recorded["body"])


def test_an_accepted_answer_gives_vonages_message_uuid():
    session = ScriptedSession()
    session.respond(URL, answer("send_accepted.json"))
    assert provider(session).send("d", step(REQUESTS[0][1])) == "d8f86df1-dec6-442f-870a-2241be27d721"


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_answers_are_classified(name):
    session = ScriptedSession()
    session.respond(URL, answer(name))

    with pytest.raises(ProviderError) as raised:
        provider(session).send("d", step(REQUESTS[0][1]))

    assert (raised.value.permanent, raised.value.code) == ERRORS[name]
    assert raised.value.reason.startswith(f"Vonage answered {answer(name).status_code}")


def test_the_reason_carries_vonages_title_and_detail():
    session = ScriptedSession()
    session.respond(URL, answer("send_error_422_invalid_recipient.json"))
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d", step(REQUESTS[0][1]))
    assert raised.value.reason == (
        "Vonage answered 422: Invalid recipient: The `to` parameter is invalid for the given channel."
    )


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError("connection refused"), "connection"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(exception, code):
    session = ScriptedSession()
    session.respond(URL, exception)

    with pytest.raises(ProviderError) as raised:
        provider(session).send("d", step(REQUESTS[0][1]))

    assert (raised.value.permanent, raised.value.code) == (False, code)


def test_an_accepted_answer_without_a_message_uuid_is_transient():
    session = ScriptedSession()
    session.respond(URL, FakeResponse(202, {}))
    with pytest.raises(ProviderError) as raised:
        provider(session).send("d", step(REQUESTS[0][1]))
    assert (raised.value.permanent, raised.value.code) == (False, "no_message_uuid")


@pytest.mark.parametrize("missing", ["application_id", "private_key"])
def test_without_application_credentials_nothing_is_sent_and_the_step_fails_over(missing):
    session = accepted()
    with pytest.raises(ProviderError) as raised:
        provider(session, **{missing: ""}).send("d", step(REQUESTS[0][1]))
    assert (raised.value.permanent, raised.value.code) == (True, "not_configured")
    assert session.calls == []


def test_an_unusable_private_key_fails_over_without_quoting_it():
    session = accepted()
    with pytest.raises(ProviderError) as raised:
        provider(session, private_key="not-a-pem-secret-material").send("d", step(REQUESTS[0][1]))
    assert (raised.value.permanent, raised.value.code) == (True, "bad_private_key")
    assert "secret-material" not in raised.value.reason
    assert session.calls == []


def test_logs_name_ids_and_codes_never_the_text_or_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    text_item = item("sms", {"type": "text", "text": "PRIVATE-MESSAGE-TEXT"}, {"number": "Acme"}, {"number": "447700900000"})
    session = accepted()
    provider(session).send("dispatch-1", step(text_item))
    session.respond(URL, answer("send_error_422_invalid_params.json"))
    with pytest.raises(ProviderError):
        provider(session).send("dispatch-1", step(text_item))

    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "PRIVATE-MESSAGE-TEXT" not in logged
    assert PRIVATE_KEY.splitlines()[1] not in logged
    assert "d8f86df1-dec6-442f-870a-2241be27d721" in logged and "1150" in logged


# --- recipient keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workflow_item", "key"),
    [
        (item("sms", {"type": "text", "text": "x"}, {"number": "Acme"}, {"number": "447700900000"}), "sms:447700900000"),
        (item("whatsapp", {"type": "text", "text": "x"}, *WA), "whatsapp:447700900000"),
        (item("messenger", {"type": "text", "text": "x"}, *FB), "messenger:0000000000000000"),
        (item("viber_service_msg", {"type": "text", "text": "x"}, *VIBER), "viber_service_msg:447700900000"),
        (item("mms", {"type": "image", "image": {"url": "https://e.com/a.jpg"}}, {"number": "12345"}, {"number": "14155550101"}), "mms:14155550101"),
    ],
)
def test_recipient_key_is_the_users_address_on_its_channel(workflow_item, key):
    assert provider(ScriptedSession()).recipient_key(step(workflow_item)) == key


def test_build_warns_once_naming_each_missing_credential_and_no_value(caplog):
    caplog.set_level(logging.WARNING)
    provider(ScriptedSession(), signature_secret="", private_key="")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["vonage credentials missing: private_key, signature_secret"]
    assert APPLICATION_ID not in caplog.text


def test_build_is_quiet_when_everything_is_configured(caplog):
    caplog.set_level(logging.WARNING)
    provider(ScriptedSession())
    assert caplog.records == []


def test_channel_of_every_request_is_vonages_name():
    assert {r[2]["channel"] for r in REQUESTS} == {"sms", "mms", "whatsapp", "messenger", "viber_service"}
    assert Channel.VIBER.value == "viber_service_msg"  # ours differs: the mapping is what matters
