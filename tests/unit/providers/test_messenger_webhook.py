"""Messenger webhooks: every fixture in tests/events/messenger → the exact normalised events; the
signature check on raw bytes; the GET handshake."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.messenger import build
from chalicelib.domain.model import Channel, Condition, MessageStatus, StatusEvent, Step, StepSpec
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    RecipientStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from tests.webhooks.meta_signing import hub_signature

EVENTS = Path(__file__).parents[2] / "events" / "messenger"
SECRET = "messenger-app-secret-0123"
VERIFY_TOKEN = "meatyhamhock"
CREDENTIALS = {"page_access_token": "EAAB-page-token", "app_secret": SECRET, "verify_token": VERIFY_TOKEN}

PAGE = "1067280970047460"
PSID = "6598743310227405"
PSID2 = "7104392158812245"
KEY = f"{PAGE}:{PSID}"
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
MID2 = "m_Qy2Xm1rX7nS7pB6pHc0b8w4yQ1xj3tY8cQ9dZ0aR5eKpN2uW6vL4sT8gJ3hF1mC7bV0nX9zA2qE5rU4iO6pY3w"
IN_MID = "m_1Zt9_Ys3kB7H5rVq0aN8xWm2cLd4pF6gJ8hK0jM2nP4qR6sT8uV0wX2yZ4aB6cD8eF0gH2iJ4kL6mN8oP0qR2s"
T = 1750857384000  # ms: 2025-06-25T13:16:24Z


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).replace(microsecond=(ms % 1000) * 1000)


def provider(credentials: dict[str, str] | None = None):
    context = ProviderContext(
        credentials=CREDENTIALS if credentials is None else credentials,
        session=None,
        clock=lambda: datetime.now(timezone.utc),
        aws_client=lambda name: None,
    )
    return build(context)


def raw(name: str) -> bytes:
    return (EVENTS / f"{name}.json").read_bytes()


def request(body: bytes, headers: dict[str, str] | None = None, query: dict[str, str] | None = None):
    return WebhookRequest(headers=headers or {}, body=body, query=query or {})


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": hub_signature(body, secret)}


def delivered(mid: str) -> ProviderStatus:
    return ProviderStatus(mid, StatusEvent(MessageStatus.DELIVERED))


def watermark(status: MessageStatus, ms: int, psid: str = PSID) -> RecipientStatus:
    return RecipientStatus(f"{PAGE}:{psid}", at(ms), status)


def inbound(content: dict[str, Any], *, mid: str = IN_MID, ms: int = T + 300, reply_to: str | None = None):
    return InboundMessage(
        provider_message_id=mid,
        sender_key=KEY,
        to={"type": "messenger", "id": PAGE},
        from_={"type": "messenger", "id": PSID},
        content=content,
        timestamp=at(ms),
        context_message_id=reply_to,
    )


UNSUPPORTED = {"type": "unsupported"}

#: Every webhook fixture and the batch it must parse to.
EXPECTED: dict[str, WebhookBatch] = {
    # Meta's own example: the mid it lists is the id the send returned.
    "delivery_mids": WebhookBatch(statuses=(delivered("mid.1458668856218:ed81099e15d3f4f233"),)),
    "delivery_several_mids": WebhookBatch(statuses=(delivered(MID), delivered(MID2))),
    # No mids: "everything before the watermark", for the person, not a message.
    "delivery_watermark": WebhookBatch(
        recipient_statuses=(watermark(MessageStatus.DELIVERED, T + 200),)
    ),
    "read": WebhookBatch(recipient_statuses=(watermark(MessageStatus.READ, 1458668856253),)),
    "echo": WebhookBatch(ignored=1),
    "inbound_text": WebhookBatch(inbound=(inbound({"type": "text", "text": "Where is my parcel?"}),)),
    "inbound_reply": WebhookBatch(inbound=(inbound({"type": "text", "text": "STOP"}, reply_to=MID),)),
    "inbound_quick_reply": WebhookBatch(inbound=(inbound({"type": "text", "text": "Tomorrow"}),)),
    "inbound_image": WebhookBatch(
        inbound=(
            inbound(
                {"type": "image", "image": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc"}}
            ),
        )
    ),
    "inbound_audio": WebhookBatch(
        inbound=(
            inbound({"type": "audio", "audio": {"url": "https://cdn.fbsbx.com/v/t59.3654-21/audioclip.mp4?_nc_cat=1&oh=abc"}}),
        )
    ),
    "inbound_video": WebhookBatch(
        inbound=(
            inbound({"type": "video", "video": {"url": "https://video.xx.fbcdn.net/v/t42.3356-2/clip.mp4?_nc_cat=1&oh=abc"}}),
        )
    ),
    "inbound_file": WebhookBatch(
        inbound=(inbound({"type": "file", "file": {"url": "https://cdn.fbsbx.com/v/t59.2708-21/invoice.pdf?_nc_cat=1&oh=abc"}}),)
    ),
    # Two photos sent together: two relayed messages, each with a stable id of its own.
    "inbound_several_images": WebhookBatch(
        inbound=(
            inbound({"type": "image", "image": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/one.jpg"}}),
            inbound(
                {"type": "image", "image": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/two.jpg"}}, mid=f"{IN_MID}#1"
            ),
        )
    ),
    "inbound_sticker": WebhookBatch(
        inbound=(inbound({"type": "image", "image": {"url": "https://scontent.xx.fbcdn.net/v/t39.1997-6/thumbsup.png"}}),)
    ),
    "inbound_location": WebhookBatch(
        inbound=(inbound({"type": "location", "location": {"lat": 51.5072, "long": -0.1276}}),)
    ),
    # The link preview is dropped: the text already carries the link.
    "inbound_link_share": WebhookBatch(
        inbound=(inbound({"type": "text", "text": "see https://example.com/track/123"}),)
    ),
    "inbound_fallback_only": WebhookBatch(inbound=(inbound(UNSUPPORTED),)),
    "inbound_template_share": WebhookBatch(inbound=(inbound(UNSUPPORTED),)),
    # Two entries: a delivery by mid and another person's read; a user message, an echo of ours
    # (ignored) and a postback (ignored).
    "batched": WebhookBatch(
        statuses=(delivered(MID),),
        recipient_statuses=(watermark(MessageStatus.READ, T + 700, psid=PSID2),),
        inbound=(inbound({"type": "text", "text": "Thanks!"}, ms=T + 940),),
        ignored=2,
    ),
    # The handover protocol's standby channel carries the same events.
    "standby": WebhookBatch(
        recipient_statuses=(watermark(MessageStatus.READ, T + 700),),
        inbound=(inbound({"type": "text", "text": "Hello?"}, ms=T + 810),),
    ),
    "postback": WebhookBatch(ignored=1),
    "reaction": WebhookBatch(ignored=1),
    "feed_change": WebhookBatch(ignored=1),
}

MALFORMED = [
    "malformed_instagram_object",
    "malformed_entry_not_a_list",
    "malformed_delivery_without_watermark",
    "malformed_watermark_not_a_number",
    "malformed_read_without_sender",
    "malformed_message_without_mid",
    "malformed_message_without_timestamp",
]


def test_every_webhook_fixture_has_an_expectation():
    webhook_fixtures = {p.stem for p in EVENTS.glob("*.json") if not p.stem.startswith("send_")}
    assert webhook_fixtures == set(EXPECTED) | set(MALFORMED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_each_fixture_parses_to_its_events_on_either_route(name, kind):
    body = raw(name)
    messenger = provider()
    messenger.verify(request(body, signed(body)))
    assert messenger.parse(request(body), kind) == EXPECTED[name]


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_payload_is_refused(name):
    with pytest.raises(WebhookMalformed):
        provider().parse(request(raw(name)), "status")


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"object": "page"}', b'{"object": "page", "entry": [1]}'])
def test_a_body_that_is_not_a_page_notification_is_malformed(body):
    with pytest.raises(WebhookMalformed):
        provider().parse(request(body), "status")


def test_a_malformed_reason_names_the_field_not_the_users_text():
    body = json.dumps(
        {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": T, "message": {"text": "my secret"}}]}]}
    ).encode()
    with pytest.raises(WebhookMalformed) as caught:
        provider().parse(request(body), "inbound")
    assert "message.mid" in str(caught.value)
    assert "my secret" not in str(caught.value)


def test_an_unknown_event_is_logged_by_its_key_only(caplog):
    caplog.set_level("INFO", logger="chalicelib.adapters.providers.messenger.webhook")
    assert provider().parse(request(raw("reaction")), "status") == WebhookBatch(ignored=1)
    [record] = [r for r in caplog.records if r.getMessage() == "messenger event ignored"]
    assert record.event == "reaction"  # type: ignore[attr-defined]
    assert "love" not in caplog.text


def test_a_numeric_id_is_read_as_a_string():
    body = json.dumps(
        {"object": "page", "entry": [{"id": int(PAGE), "messaging": [{"sender": {"id": int(PSID)}, "recipient": {"id": int(PAGE)}, "read": {"watermark": T}}]}]}
    ).encode()
    assert provider().parse(request(body), "status") == WebhookBatch(recipient_statuses=(watermark(MessageStatus.READ, T),))


def test_the_watermarks_name_the_person_as_recipient_key_does_for_our_send():
    spec = StepSpec(
        channel=Channel.MESSENGER,
        to={"type": "messenger", "id": PSID},
        sender={"type": "messenger", "id": PAGE},
        message={"content": {"type": "text", "text": "hi"}},
        condition=Condition.READ,
        expiry_time=600,
    )
    messenger = provider()
    key = messenger.recipient_key(Step(index=0, spec=spec, message_uuid="m-1"))
    batch = messenger.parse(request(raw("delivery_watermark")), "status")
    message = messenger.parse(request(raw("inbound_text")), "inbound").inbound[0]
    assert key == batch.recipient_statuses[0].recipient == message.sender_key == KEY


def test_a_watermark_keeps_its_milliseconds():
    [status] = provider().parse(request(raw("delivery_watermark")), "status").recipient_statuses
    assert status.watermark == datetime(2025, 6, 25, 13, 16, 24, 200_000, tzinfo=timezone.utc)


# --- signature ----------------------------------------------------------------------------------


def test_a_signed_body_is_accepted():
    body = raw("read")
    provider().verify(request(body, signed(body)))


def test_upper_case_hex_is_accepted():
    body = raw("read")
    header = signed(body)["x-hub-signature-256"]
    provider().verify(request(body, {"x-hub-signature-256": "sha256=" + header[7:].upper()}))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-hub-signature-256": ""},
        {"x-hub-signature-256": "sha256="},
        {"x-hub-signature": "sha1=0123456789abcdef0123456789abcdef01234567"},
        {"x-hub-signature-256": "sha256=zz\u00e9"},
    ],
    ids=["missing", "empty", "no-digest", "sha1-only", "junk"],
)
def test_a_missing_or_unusable_signature_is_refused(headers):
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(raw("read"), headers))


def test_a_signature_by_another_secret_is_refused():
    body = raw("read")
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(body, signed(body, "another-apps-secret")))


def test_the_signature_covers_the_raw_bytes_not_the_json():
    body = raw("read")
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reserialised != body
    with pytest.raises(WebhookUnauthorized):
        provider().verify(request(reserialised, signed(body)))


def test_without_an_app_secret_everything_is_refused_and_build_says_so(caplog):
    caplog.set_level("WARNING", logger="chalicelib.adapters.providers.messenger")
    body = raw("read")
    messenger = provider({"page_access_token": "EAAB-page-token", "verify_token": VERIFY_TOKEN})
    with pytest.raises(WebhookUnauthorized):
        messenger.verify(request(body, signed(body, "")))
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.getMessage() == "messenger credentials missing: app_secret"
    assert record.missing == ["app_secret"]  # type: ignore[attr-defined]


def test_with_every_credential_build_warns_of_nothing(caplog):
    caplog.set_level("WARNING", logger="chalicelib.adapters.providers.messenger")
    provider()
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


# --- handshake ----------------------------------------------------------------------------------


def handshake(token: str = VERIFY_TOKEN, mode: str = "subscribe", answer: str = "1158201444") -> dict[str, str]:
    return {"hub.mode": mode, "hub.challenge": answer, "hub.verify_token": token}


def test_the_handshake_answers_the_challenge():
    assert provider().challenge(request(b"", query=handshake())) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        handshake(token="guess"),
        handshake(mode="unsubscribe"),
        handshake(answer="<script>"),
        handshake(answer=""),
        {},
    ],
    ids=["wrong-token", "wrong-mode", "unsafe-challenge", "no-challenge", "not-a-handshake"],
)
def test_a_handshake_that_is_not_ours_gets_no_answer(query):
    assert provider().challenge(request(b"", query=query)) is None


def test_without_a_verify_token_no_handshake_is_answered():
    messenger = provider({"page_access_token": "EAAB-page-token", "app_secret": SECRET})
    assert messenger.challenge(request(b"", query=handshake(token=""))) is None
