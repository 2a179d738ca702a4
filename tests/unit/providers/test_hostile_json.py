"""Every provider's JSON parse site against bodies Python's `json` mishandles.

Each must refuse them as its module refuses any malformed payload: `WebhookMalformed` (a 400 to
a signed request) where the body was verified first, `NotSnsMessage` (then a 401) for the SNS
envelope, whose signature is inside the JSON; never RecursionError, a digit-limit ValueError or
a silently accepted value.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from chalicelib.adapters.providers.aws_sms import events, sns
from chalicelib.adapters.providers.messenger import webhook as messenger
from chalicelib.adapters.providers.viber import webhook as viber
from chalicelib.adapters.providers.vonage import webhook as vonage
from chalicelib.adapters.providers.whatsapp import webhook as whatsapp
from chalicelib.service.webhooks import WebhookMalformed, WebhookRequest

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)

#: (name, body): each is refused by the strict parser, whatever the provider.
HOSTILE: list[tuple[str, bytes]] = [
    ("100,000 deep", b"[" * 100_000),
    ("100,000 deep objects", b'{"a":' * 100_000),
    ("65 deep", b"[" * 65 + b"]" * 65),
    ("duplicate key", b'{"object": "page", "object": "whatsapp_business_account", "entry": []}'),
    ("duplicate event", b'{"event": "seen", "event": "delivered", "timestamp": 1, "message_token": 1}'),
    ("5,001 digits", b'{"message_token": ' + b"1" * 5001 + b"}"),
    ("1e400", b'{"timestamp": 1e400}'),
    ("NaN", b'{"timestamp": NaN}'),
    ("lone surrogate", rb'{"message_uuid": "\ud800", "status": "delivered"}'),
    ("invalid UTF-8", b'{"a": "\xff"}'),
    ("overlong UTF-8", b'{"a": "\xc0\xaf"}'),
    ("truncated", b'{"a": '),
    ("empty", b""),
]

ids = [name for name, _ in HOSTILE]

Parse = Callable[[bytes], Any]

PARSERS: dict[str, Parse] = {
    "vonage status": lambda body: vonage.parse(body, "status", lambda: NOW),
    "vonage inbound": lambda body: vonage.parse(body, "inbound", lambda: NOW),
    "viber": lambda body: viber.parse(body, {"type": "viber_service_msg", "id": "bot"}),
    "whatsapp": whatsapp.parse,
    "messenger": messenger.parse,
    "aws_sms Message": lambda body: events.notification_batch(
        # Message is text; bytes that are not UTF-8 arrive as lone surrogates, if at all.
        body.decode("utf-8", "surrogateescape"), "id", NOW
    ),
}


@pytest.mark.parametrize("parser", list(PARSERS), ids=list(PARSERS))
@pytest.mark.parametrize("body", [b for _, b in HOSTILE], ids=ids)
def test_a_verified_body_that_is_not_strict_json_is_malformed(parser: str, body: bytes) -> None:
    with pytest.raises(WebhookMalformed) as caught:
        PARSERS[parser](body)
    reason = str(caught.value)
    assert "Error" not in reason and "sys." not in reason and len(reason) < 400


@pytest.mark.parametrize("body", [b for _, b in HOSTILE], ids=ids)
def test_an_sns_envelope_that_is_not_strict_json_is_not_an_sns_message(body: bytes) -> None:
    with pytest.raises(sns.NotSnsMessage):
        sns.parse_message(body)


@pytest.mark.parametrize("body", [b for _, b in HOSTILE], ids=ids)
def test_viber_verify_leaves_an_unreadable_signed_body_to_parse(body: bytes) -> None:
    """The freshness check reads the body after the signature: an unreadable one is not stale,
    it is malformed, and `parse` says so."""
    request = WebhookRequest(headers={viber.SIGNATURE_HEADER: viber.signature(body, "token")}, body=body)
    viber.verify(request, "token", NOW)  # no exception: signed, and no readable time to judge


def test_a_duplicated_key_is_named_in_the_reason() -> None:
    with pytest.raises(WebhookMalformed) as caught:
        vonage.parse(b'{"status": "delivered", "status": "read"}', "status", lambda: NOW)
    assert "'status'" in str(caught.value)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"object": "whatsapp_business_account", "entry": "x"}', "not a WhatsApp notification: entry must be an array"),
        (b'{"object": "whatsapp_business_account", "entry": [1]}', "not a WhatsApp notification: entry.0 must be an object"),
        (b'{"entry": []}', "not a WhatsApp notification: object is required"),
    ],
)
def test_a_meta_payload_of_the_wrong_shape_is_refused_in_our_words(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookMalformed) as caught:
        whatsapp.parse(body)
    assert str(caught.value) == reason  # not pydantic's, which names our model classes
