"""Messenger sends through a scripted session: the exact request for each content type and
category, and how each error answer in tests/events/messenger/send_*.json is classified."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from chalicelib.adapters.providers.context import DEFAULT_TIMEOUT, ProviderContext
from chalicelib.adapters.providers.messenger import build, codes
from chalicelib.domain.model import Channel, Condition, Step, StepSpec
from chalicelib.service.ports import ProviderError
from tests.webhooks.stack import FakeResponse, ScriptedSession

EVENTS = Path(__file__).parents[2] / "events" / "messenger"
TOKEN = "EAAB-page-token"
SECRET = "messenger-app-secret-0123"
CREDENTIALS = {"page_access_token": TOKEN, "app_secret": SECRET, "verify_token": "verify"}
PAGE = "1067280970047460"
PSID = "6598743310227405"
URL = f"https://graph.facebook.com/v25.0/{PAGE}/messages"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"


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


def step(content: dict, messenger: dict | None = None, page: str = PAGE, psid: str = PSID) -> Step:
    message: dict = {"content": content}
    if messenger is not None:
        message["messenger"] = messenger
    spec = StepSpec(
        channel=Channel.MESSENGER,
        to={"type": "messenger", "id": psid},
        sender={"type": "messenger", "id": page},
        message=message,
        condition=Condition.READ,
        expiry_time=600,
    )
    return Step(index=0, spec=spec, message_uuid="m-1")


@pytest.fixture
def session() -> ScriptedSession:
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_ok"))
    return session


def sent_body(session: ScriptedSession, content: dict, messenger: dict | None = None) -> dict:
    assert provider(session).send("d-1", step(content, messenger)) == MID
    [call] = session.calls
    return call.json


def test_a_text_goes_to_the_pages_messages_edge_with_the_token_in_a_header(session):
    assert provider(session).send("d-1", step({"type": "text", "text": "Your parcel arrives today"})) == MID

    [call] = session.calls
    assert (call.method, call.url, call.headers, call.params, call.timeout) == ("POST", URL, HEADERS, {"appsecret_proof": PROOF}, DEFAULT_TIMEOUT)
    assert call.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Your parcel arrives today"},
    }
    assert TOKEN not in call.url


@pytest.mark.parametrize(
    ("kind", "media"),
    [
        ("image", {"url": "https://example.com/parcel.png"}),
        ("audio", {"url": "https://example.com/notice.mp3"}),
        ("video", {"url": "https://example.com/howto.mp4"}),
        ("file", {"url": "https://example.com/invoice.pdf"}),
    ],
)
def test_media_are_sent_as_attachments_by_url(session, kind, media):
    assert sent_body(session, {"type": kind, kind: media}) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"attachment": {"type": kind, "payload": {"url": media["url"], "is_reusable": False}}},
    }


@pytest.mark.parametrize("kind", ["image", "file"])
def test_a_caption_is_not_sent_and_not_logged(session, kind, caplog):
    caplog.set_level("INFO", logger="chalicelib.adapters.providers.messenger")
    content = {"type": kind, kind: {"url": "https://example.com/x", "caption": "secret words"}}
    assert sent_body(session, content)["message"] == {
        "attachment": {"type": kind, "payload": {"url": "https://example.com/x", "is_reusable": False}}
    }
    assert "messenger caption not sent" in caplog.text
    assert "secret words" not in caplog.text


@pytest.mark.parametrize(
    ("options", "fields"),
    [
        (None, {"messaging_type": "RESPONSE"}),
        ({}, {"messaging_type": "RESPONSE"}),
        ({"category": "response"}, {"messaging_type": "RESPONSE"}),
        ({"category": "update"}, {"messaging_type": "UPDATE"}),
        ({"category": "message_tag", "tag": "ACCOUNT_UPDATE"}, {"messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"}),
        # v0.1's examples write tags in lower case; Meta's enum is upper case.
        ({"category": "message_tag", "tag": "confirmed_event_update"}, {"messaging_type": "MESSAGE_TAG", "tag": "CONFIRMED_EVENT_UPDATE"}),
        # A tag is only sent with MESSAGE_TAG.
        ({"category": "update", "tag": "ACCOUNT_UPDATE"}, {"messaging_type": "UPDATE"}),
    ],
)
def test_the_category_becomes_the_messaging_type(session, options, fields):
    body = sent_body(session, {"type": "text", "text": "hi"}, options)
    assert body == {"recipient": {"id": PSID}, **fields, "message": {"text": "hi"}}


def test_the_api_version_can_be_configured(session):
    provider(session, {**CREDENTIALS, "api_version": "26.0"}).send("d-1", step({"type": "text", "text": "hi"}))
    assert session.calls[0].url == f"https://graph.facebook.com/v26.0/{PAGE}/messages"


def test_a_malformed_api_version_falls_back_to_the_default(session):
    provider(session, {**CREDENTIALS, "api_version": "latest"}).send("d-1", step({"type": "text", "text": "hi"}))
    assert session.calls[0].url == URL


def test_without_an_app_secret_no_proof_is_sent(session):
    provider(session, {"page_access_token": TOKEN}).send("d-1", step({"type": "text", "text": "hi"}))
    assert session.calls[0].params is None


def test_the_recipient_key_is_page_and_psid():
    assert provider(ScriptedSession()).recipient_key(step({"type": "text", "text": "hi"})) == f"{PAGE}:{PSID}"


@pytest.mark.parametrize("page", ["me/feed", "FB_SENDER_ID", "123/../456", ""])
def test_a_page_id_that_is_not_numeric_never_reaches_the_url(page):
    session = ScriptedSession()
    with pytest.raises(ProviderError) as caught:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}, page=page))
    assert (caught.value.permanent, caught.value.code) == (True, "unsupported_content")
    assert session.calls == []


def test_content_messenger_cannot_carry_fails_over_without_a_call():
    session = ScriptedSession()
    content = {"type": "template", "template": {"name": "t", "parameters": []}}
    with pytest.raises(ProviderError) as caught:
        provider(session).send("d-1", step(content))
    assert (caught.value.permanent, caught.value.code) == (True, "unsupported_content")
    assert session.calls == []


def test_the_content_types_are_every_type_the_api_accepts_on_messenger():
    from chalicelib.api.request_models import CONTENT_TYPES

    assert provider(ScriptedSession()).content_types == {Channel.MESSENGER: frozenset(CONTENT_TYPES[Channel.MESSENGER])}


def test_without_a_token_every_send_fails_over_at_once():
    session = ScriptedSession()
    with pytest.raises(ProviderError) as caught:
        provider(session, {"app_secret": SECRET, "verify_token": "v"}).send("d-1", step({"type": "text", "text": "hi"}))
    assert (caught.value.permanent, caught.value.code) == (True, "not_configured")
    assert session.calls == []


#: Every send fixture that is an error → (permanent, code). Sources: channels.md §2.1 and §8.
ERRORS: dict[str, tuple[bool, str]] = {
    "send_error_551": (True, "551/1545041"),  # the user turned messages off
    "send_error_100_2018001": (True, "100/2018001"),  # no matching user
    "send_error_10_2018278": (True, "10/2018278"),  # outside the 24-hour window
    "send_error_200_2018028": (True, "200/2018028"),  # permission
    "send_error_190": (True, "190/1234567"),  # token
    "send_error_368": (True, "368"),  # policy block
    "send_error_1_99": (True, "1/99"),  # "unknown", caused by missing permissions
    "send_error_2": (True, "2"),  # channels.md §8: seen when the user blocked the Page
    "send_error_2_is_transient": (False, "2"),  # ...unless Meta flags it transient
    "send_error_4": (False, "4"),
    "send_error_4_2018022": (False, "4/2018022"),  # a rate limit, whatever its subcode
    "send_error_32": (False, "32"),
    "send_error_613": (False, "613"),
    "send_error_1200": (False, "1200"),
    "send_error_unknown_400": (True, "12345"),
    "send_error_unknown_503": (False, "12346"),
    "send_error_502_html": (False, "http_502"),
    "send_ok_without_id": (True, "no_message_id"),
}


def test_every_send_fixture_has_an_expectation():
    fixtures = {p.stem for p in EVENTS.glob("send_*.json")}
    assert fixtures == set(ERRORS) | {"send_ok"}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_error_answer_is_classified(name):
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture(name))
    with pytest.raises(ProviderError) as caught:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert (caught.value.permanent, caught.value.code) == ERRORS[name]


def test_the_reason_is_metas_message():
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_error_551"))
    with pytest.raises(ProviderError) as caught:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert caught.value.reason == "(#551) This person isn't available right now."


def test_a_refusal_is_logged_with_codes_never_the_token_or_text(caplog):
    caplog.set_level("INFO", logger="chalicelib.adapters.providers.messenger")
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", fixture("send_error_10_2018278"))
    with pytest.raises(ProviderError):
        provider(session).send("d-1", step({"type": "text", "text": "my private words"}))
    [record] = [r for r in caplog.records if r.getMessage() == "messenger send refused"]
    assert (record.code, record.error_subcode, record.http_status, record.permanent) == (10, 2018278, 400, True)  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text and "my private words" not in caplog.text


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError(f"HTTPSConnectionPool: /{PAGE}/messages?access_token={TOKEN}"), "connection"),
    ],
)
def test_a_timeout_or_connection_error_is_transient(exception, code):
    session = ScriptedSession()
    session.respond("https://graph.facebook.com/", exception)
    with pytest.raises(ProviderError) as caught:
        provider(session).send("d-1", step({"type": "text", "text": "hi"}))
    assert (caught.value.permanent, caught.value.code) == (False, code)
    assert TOKEN not in caught.value.reason


@pytest.mark.parametrize(
    ("code", "subcode", "http", "transient_flag", "permanent"),
    [
        (551, None, 400, False, True),
        (10, 2018065, 400, False, True),
        (250, None, 403, False, True),  # the 200-series is permission
        (613, None, 400, False, False),
        (100, None, 400, True, False),  # Meta's flag wins over the table
        (None, None, 429, False, False),
        (None, None, 500, False, False),
        (None, None, 404, False, True),
    ],
)
def test_the_classification_table(code, subcode, http, transient_flag, permanent):
    assert codes.is_permanent_send_error(code, subcode, http, transient_flag) is permanent
