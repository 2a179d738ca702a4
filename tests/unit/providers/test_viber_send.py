"""Viber sends against a scripted session: the exact send_message request per content type, and
how each answer (tests/events/viber/send_*.json), HTTP status and network failure is classified."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.viber import build
from chalicelib.domain.model import Channel, Step, StepSpec
from chalicelib.service.ports import ProviderError
from tests.webhooks.stack import FakeResponse, ScriptedSession

EVENTS = Path(__file__).parents[2] / "events" / "viber"
URL = "https://chatapi.viber.com/pa/send_message"
TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
USER = "01234567890A="
MESSAGE_UUID = "8f6a2c1e-4b7d-4e2a-9c3b-1d2e3f4a5b6c"
TIMEOUT = (1.5, 4.0)


def answer(name: str, status_code: int = 200) -> FakeResponse:
    return FakeResponse(status_code, json.loads((EVENTS / name).read_text()))


def make(session: ScriptedSession, credentials: dict | None = None):
    context = ProviderContext(
        credentials={"auth_token": TOKEN, "sender_name": "Acme"} if credentials is None else credentials,
        session=session,
        clock=lambda: datetime(2026, 11, 24, tzinfo=timezone.utc),
        aws_client=lambda name: None,
        timeout=TIMEOUT,
    )
    return build(context)


def step(content: dict, to: dict | None = None, sender_id: str = "12345", **blocks) -> Step:
    spec = StepSpec(
        channel=Channel.VIBER,
        to=to or {"type": "viber_service_msg", "id": USER},
        sender={"type": "viber_service_msg", "id": sender_id},
        message={"content": content, **blocks},
    )
    return Step(index=0, spec=spec, message_uuid=MESSAGE_UUID)


TEXT = {"type": "text", "text": "Your order shipped"}


def sent(session: ScriptedSession) -> dict:
    [call] = session.calls
    assert (call.method, call.url, call.timeout) == ("POST", URL, TIMEOUT)
    assert call.headers == {"X-Viber-Auth-Token": TOKEN}
    return call.json


@pytest.fixture
def session() -> ScriptedSession:
    s = ScriptedSession()
    s.respond(URL, answer("send_ok.json"))
    return s


def test_a_text_is_sent_to_the_viber_user_and_its_token_kept_as_a_string(session):
    assert make(session).send("d-1", step(TEXT)) == "5741311803571721087"
    assert sent(session) == {
        "receiver": USER,
        "sender": {"name": "Acme"},
        "tracking_data": MESSAGE_UUID,
        "type": "text",
        "text": "Your order shipped",
    }


def test_an_image_is_a_picture_with_its_caption_as_text(session):
    content = {"type": "image", "image": {"url": "https://example.com/a.jpg", "caption": "Your receipt"}}
    make(session).send("d-1", step(content))
    assert sent(session) == {
        "receiver": USER,
        "sender": {"name": "Acme"},
        "tracking_data": MESSAGE_UUID,
        "type": "picture",
        "text": "Your receipt",
        "media": "https://example.com/a.jpg",
    }


def test_an_image_without_caption_sends_the_empty_text_viber_requires(session):
    make(session).send("d-1", step({"type": "image", "image": {"url": "https://example.com/a.jpg"}}))
    body = sent(session)
    assert (body["type"], body["text"], body["media"]) == ("picture", "", "https://example.com/a.jpg")


def test_the_avatar_is_sent_when_configured(session):
    make(session, {"auth_token": TOKEN, "sender_name": "Acme", "sender_avatar": "https://example.com/acme.jpg"}).send(
        "d-1", step(TEXT)
    )
    assert sent(session)["sender"] == {"name": "Acme", "avatar": "https://example.com/acme.jpg"}


def test_without_a_sender_name_the_item_s_from_id_names_the_sender_cut_to_28(session):
    make(session, {"auth_token": TOKEN}).send("d-1", step(TEXT, sender_id="A" * 40))
    assert sent(session)["sender"] == {"name": "A" * 28}


def test_the_viber_options_block_has_no_bot_equivalent_and_changes_nothing(session):
    make(session).send("d-1", step(TEXT, viber_service_msg={"category": "promotion", "ttl": 600}))
    assert set(sent(session)) == {"receiver", "sender", "tracking_data", "type", "text"}


def test_the_recipient_key_is_the_viber_user_id(session):
    viber = make(session)
    assert viber.recipient_key(step(TEXT)) == USER
    assert viber.recipient_key(step(TEXT, to={"type": "viber_service_msg", "number": "447911123456"})) is None


def test_it_carries_text_and_image_on_viber_only():
    assert make(ScriptedSession()).content_types == {Channel.VIBER: frozenset({"text", "image"})}


# --- refused before any request ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "item", "code"),
    [
        (None, step(TEXT, to={"type": "viber_service_msg", "number": "447911123456"}), "viber_user_id_required"),
        (None, step({"type": "video", "video": {"url": "https://example.com/v.mp4"}}), "viber_content_not_carried"),
        (None, step({"type": "file", "file": {"url": "https://example.com/f.pdf"}}), "viber_content_not_carried"),
        (None, step({"type": "audio", "audio": {"url": "https://example.com/a.mp3"}}), "viber_content_not_carried"),
        (
            None,
            step({"type": "template", "template": {"name": "t", "parameters": []}}),
            "viber_content_not_carried",
        ),
        ({"sender_name": "Acme"}, step(TEXT), "viber_not_configured"),
    ],
    ids=["phone-number", "video", "file", "audio", "template", "no-auth-token"],
)
def test_what_viber_could_never_take_fails_permanently_without_a_request(session, credentials, item, code):
    with pytest.raises(ProviderError) as raised:
        make(session, credentials).send("d-1", item)
    assert (raised.value.permanent, raised.value.code) == (True, code)
    assert session.calls == []


# --- answers -----------------------------------------------------------------------------------

#: send_*.json → (permanent, code): Viber answers HTTP 200 even when it refuses the message.
ERRORS = {
    "send_invalid_auth_token.json": (True, "viber_2"),
    "send_bad_data.json": (True, "viber_3"),
    "send_receiver_not_registered.json": (True, "viber_5"),
    "send_receiver_not_subscribed.json": (True, "viber_6"),
    "send_webhook_not_set.json": (True, "viber_10"),
    "send_receiver_no_suitable_device.json": (True, "viber_11"),
    "send_too_many_requests.json": (False, "viber_12"),
    "send_general_error.json": (False, "viber_99"),
    "send_no_token.json": (False, "viber_bad_response"),
}


def test_every_send_fixture_is_in_a_table():
    assert {p.name for p in EVENTS.glob("send_*.json")} == set(ERRORS) | {"send_ok.json"}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_refusal_is_classified(name):
    session = ScriptedSession()
    session.respond(URL, answer(name))
    with pytest.raises(ProviderError) as raised:
        make(session).send("d-1", step(TEXT))
    assert (raised.value.permanent, raised.value.code) == ERRORS[name]
    assert TOKEN not in raised.value.reason


def test_the_reason_names_the_code_and_viber_s_message():
    session = ScriptedSession()
    session.respond(URL, answer("send_receiver_not_subscribed.json"))
    with pytest.raises(ProviderError, match="^receiverNotSubscribed: receiverNotSubscribed$"):
        make(session).send("d-1", step(TEXT))


@pytest.mark.parametrize(
    ("status_code", "permanent"),
    [(429, False), (500, False), (502, False), (503, False), (504, False), (400, True), (401, True), (404, True)],
)
def test_http_errors_are_transient_only_when_waiting_can_help(status_code, permanent):
    session = ScriptedSession()
    session.respond(URL, FakeResponse(status_code, {"error": "x"}))
    with pytest.raises(ProviderError) as raised:
        make(session).send("d-1", step(TEXT))
    assert (raised.value.permanent, raised.value.code) == (permanent, f"viber_http_{status_code}")


@pytest.mark.parametrize("body", ["<html>gateway</html>", "[]", '{"status": "0"}', '{"status": true}'])
def test_an_answer_without_a_numeric_status_is_transient(body):
    session = ScriptedSession()
    session.respond(URL, FakeResponse(200, body))
    with pytest.raises(ProviderError) as raised:
        make(session).send("d-1", step(TEXT))
    assert (raised.value.permanent, raised.value.code) == (False, "viber_bad_response")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError("connection refused"), "connection"),
        (requests.exceptions.SSLError("bad certificate"), "connection"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(error, code):
    session = ScriptedSession()
    session.respond(URL, error)
    with pytest.raises(ProviderError) as raised:
        make(session).send("d-1", step(TEXT))
    assert (raised.value.permanent, raised.value.code) == (False, code)
