"""aws_sms webhooks: every fixture to its normalised events, and every way an SNS message can
fail to be ours (signature, certificate URL, topic, age, headers) refused before it is read."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.adapters.providers import aws_sms
from chalicelib.adapters.providers.aws_sms.certificates import CertificateCache, CertificateUnavailable
from chalicelib.adapters.providers.aws_sms.provider import AwsSmsProvider
from chalicelib.adapters.providers.aws_sms.webhook import SubscriptionNotConfirmed
from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.domain.model import MessageStatus, StatusEvent, Usage
from chalicelib.service.ports import MessageHint
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    WebhookBatch,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)
from tests.webhooks.signature_cases.aws_sms import (
    FORGED_KEY,
    INBOUND_TOPIC_ARN,
    SNS_KEY,
    TOPIC_ARN,
    body_of,
    cert_url,
    headers_for,
    iso,
)
from tests.webhooks.stack import FakeResponse, ScriptedSession

FIXTURES = Path(__file__).resolve().parents[2] / "events" / "aws_sms"
PUBLISHED = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
NOW = PUBLISHED + timedelta(seconds=30)
URL = cert_url("unittests")
#: Where the sns_*.json fixtures say their certificate is.
FIXTURE_URL = cert_url("6aad65c2f9911b05cd53efda11f913f9")
NOTIFICATION_ID = "6f1f2e3d-4c5b-4a69-8877-665544332211"
CREDENTIALS = {"topic_arn": f"{TOPIC_ARN}, {INBOUND_TOPIC_ARN}", "configuration_set": "dispatch"}
MID = "0f6c1b2a-8e4d-4b1f-a7c3-5d2e9f8a6b01"


def _no_aws(service: str, **kwargs: Any) -> Any:
    raise AssertionError("webhooks never call AWS APIs")


def make_provider(
    session: ScriptedSession | None = None,
    credentials: dict[str, str] | None = None,
    now: datetime = NOW,
) -> tuple[AwsSmsProvider, ScriptedSession]:
    session = session or certificate_session()
    context = ProviderContext(
        credentials=CREDENTIALS if credentials is None else credentials,
        session=session,
        clock=lambda: now,
        aws_client=_no_aws,
    )
    # A cache of its own: every test fetches (or fails to) through its own session.
    return AwsSmsProvider(context, certificates=CertificateCache()), session


def certificate_session(pem: bytes = SNS_KEY.pem) -> ScriptedSession:
    session = ScriptedSession()
    session.respond(URL, FakeResponse(200, pem.decode()))
    session.respond(FIXTURE_URL, FakeResponse(200, pem.decode()))
    return session


def request_for(envelope: dict[str, Any], **header_changes: str | None) -> WebhookRequest:
    headers = {k.lower(): v for k, v in headers_for(envelope).items()}
    for name, value in header_changes.items():
        headers.pop(name.replace("_", "-"), None)
        if value is not None:
            headers[name.replace("_", "-")] = value
    return WebhookRequest(headers=headers, body=body_of(envelope))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def notification(message: dict[str, Any] | str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("timestamp", PUBLISHED)
    kwargs.setdefault("url", URL)
    kwargs.setdefault("message_id", NOTIFICATION_ID)
    return SNS_KEY.notification(message, **kwargs)


def envelope_for(name: str) -> dict[str, Any]:
    """The fixture as SNS would post it: payloads wrapped in a Notification, envelopes signed."""
    data = fixture(name)
    if name.startswith("sns_"):
        unsigned = {k: v for k, v in data.items() if k not in ("Signature", "SignatureVersion")}
        return SNS_KEY.sign(unsigned, data["SignatureVersion"])
    return notification(data)


# --- every fixture, to what it means ---------------------------------------------------------


def status(
    message_id: str,
    status_: MessageStatus,
    code: str | None = None,
    reason: str | None = None,
    price: str | None = None,
    event_id: str = NOTIFICATION_ID,
) -> WebhookBatch:
    usage = Usage(price, "USD") if price is not None else None
    event = StatusEvent(status_, code, reason, usage, event_id=event_id)
    return WebhookBatch(statuses=(ProviderStatus(message_id, event),))


def failed(status_: MessageStatus, event_type: str, reason: str, price: str | None = "0.0404") -> WebhookBatch:
    return status(MID, status_, event_type, reason, price)


S, D = MessageStatus.SUBMITTED, MessageStatus.DELIVERED
REJ, UND = MessageStatus.REJECTED, MessageStatus.UNDELIVERABLE

EXPECTED: dict[str, WebhookBatch | type[Exception]] = {
    "event_text_successful.json": status("862a8790-60c0-4430-9b2b-658bdexample", D, price="0.09582"),
    # totalMessagePrice 0.0404 + totalCarrierFee 0.0025
    "event_text_delivered.json": status(MID, D, price="0.0429"),
    "event_text_queued.json": status(MID, S),
    "event_text_pending.json": status(MID, S),
    "event_text_sent.json": status(MID, S, price="0.0404"),
    "event_text_invalid.json": failed(UND, "TEXT_INVALID", "Invalid destination phone number", "0.0"),
    "event_text_unreachable.json": failed(
        UND, "TEXT_UNREACHABLE", "Destination phone is switched off or out of network coverage"
    ),
    "event_text_carrier_unreachable_final.json": failed(
        UND, "TEXT_CARRIER_UNREACHABLE", "Carrier network is unreachable"
    ),
    # isFinal false: AWS is still trying, so the message is still in flight.
    "event_text_carrier_unreachable_retrying.json": failed(
        S, "TEXT_CARRIER_UNREACHABLE", "Carrier network is unreachable", None
    ),
    "event_text_blocked.json": failed(REJ, "TEXT_BLOCKED", "Destination phone or carrier blocked the message"),
    "event_text_carrier_blocked.json": failed(
        REJ, "TEXT_CARRIER_BLOCKED", "Carrier blocked the message as malicious or abusive"
    ),
    "event_text_spam.json": failed(REJ, "TEXT_SPAM", "Carrier blocked the message as spam"),
    "event_text_ttl_expired.json": failed(
        REJ, "TEXT_TTL_EXPIRED", "Message was not handed off to the carrier within its time to live", "0.0"
    ),
    "event_text_protect_blocked.json": failed(
        REJ, "TEXT_PROTECT_BLOCKED", "Blocked by the protect configuration", None
    ),
    "event_text_invalid_message.json": failed(REJ, "TEXT_INVALID_MESSAGE", "Message body is invalid", "0.0"),
    "event_text_unknown.json": WebhookBatch(ignored=1),
    "event_voice_completed.json": WebhookBatch(ignored=1),
    "event_without_message_id.json": WebhookMalformed,
    "inbound_two_way.json": WebhookBatch(
        inbound=(
            InboundMessage(
                provider_message_id="cae173d2-66b9-564c-8309-21f858e9fb84",
                sender_key="14255550182",
                to={"type": "sms", "number": "12125550101"},
                from_={"type": "sms", "number": "14255550182"},
                content={"type": "text", "text": "EXAMPLE"},
                timestamp=PUBLISHED,
                context_message_id="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        )
    ),
    "inbound_reply.json": WebhookBatch(
        inbound=(
            InboundMessage(
                provider_message_id="e5b0c7a2-4d1f-5a3e-9b6c-0d8e7f6a5b41",
                sender_key="447911123456",
                to={"type": "sms", "number": "447700900001"},
                from_={"type": "sms", "number": "447911123456"},
                content={"type": "text", "text": "Yes, see you at 3"},
                timestamp=PUBLISHED,
            ),
        )
    ),
    "inbound_without_id.json": WebhookMalformed,
    "sns_subscription_confirmation.json": WebhookBatch(),
    "sns_unsubscribe_confirmation.json": WebhookBatch(),
    # SignatureVersion 1 (SHA1) with a Subject, which is then part of the signed string.
    "sns_notification_with_subject.json": status(
        MID, D, price="0.0404", event_id="22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    ),
    "sns_notification_not_json.json": WebhookMalformed,
}

WEBHOOK_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("send_"))


def test_every_webhook_fixture_has_an_expectation():
    assert sorted(EXPECTED) == WEBHOOK_FIXTURES


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_each_fixture_verifies_and_parses_to_its_events(name, kind):
    provider, _ = make_provider()
    request = request_for(envelope_for(name))
    provider.verify(request)
    expected = EXPECTED[name]
    if isinstance(expected, type):
        with pytest.raises(expected):
            provider.parse(request, kind)
    else:
        assert provider.parse(request, kind) == expected


def test_a_subscription_is_confirmed_by_getting_its_subscribe_url_once():
    provider, session = make_provider()
    envelope = envelope_for("sns_subscription_confirmation.json")
    request = request_for(envelope)
    provider.verify(request)
    provider.parse(request, "status")
    confirm = [c for c in session.calls if "Action=ConfirmSubscription" in c.url]
    assert [(c.method, c.url, c.timeout) for c in confirm] == [("GET", envelope["SubscribeURL"], (3.05, 10.0))]


def test_an_unsubscribe_confirmation_calls_nothing_back():
    provider, session = make_provider()
    request = request_for(envelope_for("sns_unsubscribe_confirmation.json"))
    provider.verify(request)
    assert provider.parse(request, "status") == WebhookBatch()
    assert [c.url for c in session.calls] == [FIXTURE_URL]  # the certificate, nothing else


@pytest.mark.parametrize(
    "answer", [FakeResponse(500, "<Error/>"), FakeResponse(403, "<Error/>"), requests.ConnectionError("down")]
)
def test_a_confirmation_that_fails_is_an_error_so_sns_sends_it_again(answer):
    session = certificate_session()
    session.respond("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", answer)
    provider, _ = make_provider(session)
    request = request_for(envelope_for("sns_subscription_confirmation.json"))
    provider.verify(request)
    with pytest.raises(SubscriptionNotConfirmed):
        provider.parse(request, "status")


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://evil.example/?Action=ConfirmSubscription&Token=1",
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1",
        "https://sns.eu-west-1.amazonaws.com.evil.example/?Action=ConfirmSubscription&Token=1",
        "https://sns.eu-west-1.amazonaws.com/?Action=Publish&Message=hi",
    ],
)
def test_a_signed_confirmation_pointing_anywhere_else_is_refused_and_not_called(subscribe_url):
    provider, session = make_provider()
    data = fixture("sns_subscription_confirmation.json")
    data["SubscribeURL"] = subscribe_url
    unsigned = {k: v for k, v in data.items() if k not in ("Signature", "SignatureVersion")}
    with pytest.raises(WebhookUnauthorized):
        provider.verify(request_for(SNS_KEY.sign(unsigned)))
    assert not [c for c in session.calls if c.url == subscribe_url]


# --- what is refused, and why ----------------------------------------------------------------


DELIVERED = fixture("event_text_delivered.json")


def _resigned(envelope: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`envelope` changed, then signed again by SNS's key: a genuine message with other fields."""
    unsigned = {k: v for k, v in {**envelope, **changes}.items() if k not in ("Signature", "SignatureVersion")}
    return SNS_KEY.sign(unsigned)


def _tampered_message() -> dict[str, Any]:
    envelope = notification(DELIVERED)
    return {**envelope, "Message": envelope["Message"].replace("TEXT_DELIVERED", "TEXT_SUCCESSFUL")}


REFUSED: dict[str, tuple[dict[str, Any], dict[str, str | None]]] = {
    "signed by another key": (FORGED_KEY.notification(DELIVERED, timestamp=PUBLISHED, url=URL), {}),
    "Message changed after signing": (_tampered_message(), {}),
    "Subject added after signing": ({**notification(DELIVERED), "Subject": "hi"}, {}),
    "TopicArn changed after signing": (
        {**notification(DELIVERED), "TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"}, {}
    ),
    "a topic of another account, genuinely signed": (
        notification(DELIVERED, topic_arn="arn:aws:sns:eu-west-1:999999999999:dispatch-sms-events"), {}
    ),
    "an hour and a second old": (notification(DELIVERED, timestamp=NOW - timedelta(hours=1, seconds=1)), {}),
    "six minutes in the future": (notification(DELIVERED, timestamp=NOW + timedelta(minutes=6)), {}),
    "certificate over http": (notification(DELIVERED, url=URL.replace("https://", "http://")), {}),
    "certificate on another host": (
        notification(DELIVERED, url="https://evil.example/SimpleNotificationService-unittests.pem"), {}
    ),
    "certificate on a look-alike host": (
        notification(DELIVERED, url="https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-unittests.pem"), {}
    ),
    "certificate behind user info": (
        notification(DELIVERED, url="https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-unittests.pem"), {}
    ),
    "certificate on another port": (
        notification(DELIVERED, url="https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-unittests.pem"), {}
    ),
    "certificate at another path": (
        notification(DELIVERED, url="https://sns.eu-west-1.amazonaws.com/?Action=Publish&x=.pem"), {}
    ),
    "unknown SignatureVersion": ({**notification(DELIVERED), "SignatureVersion": "3"}, {}),
    "SignatureVersion 1 claimed for a SHA256 signature": ({**notification(DELIVERED), "SignatureVersion": "1"}, {}),
    "Signature not base64": ({**notification(DELIVERED), "Signature": "not base64!"}, {}),
    "no Signature": ({k: v for k, v in notification(DELIVERED).items() if k != "Signature"}, {}),
    "no message type header": (notification(DELIVERED), {"x_amz_sns_message_type": None}),
    "a message type header that disagrees": (notification(DELIVERED), {"x_amz_sns_message_type": "SubscriptionConfirmation"}),
    "an unknown message type": (_resigned(notification(DELIVERED), Type="Publish"), {"x_amz_sns_message_type": "Publish"}),
    "a Timestamp without a zone": (_resigned(notification(DELIVERED), Timestamp="2026-11-24T12:00:00"), {}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_is_not_provably_our_topic_s_message_is_refused(case):
    envelope, header_changes = REFUSED[case]
    provider, _ = make_provider()
    with pytest.raises(WebhookUnauthorized):
        provider.verify(request_for(envelope, **header_changes))


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"Type": "Notification"}'])
def test_a_body_that_is_not_an_sns_message_is_refused(body):
    provider, _ = make_provider()
    request = WebhookRequest(headers={"x-amz-sns-message-type": "Notification"}, body=body)
    with pytest.raises(WebhookUnauthorized):
        provider.verify(request)


def test_certificates_from_anywhere_but_sns_are_never_fetched():
    provider, session = make_provider()
    for case in ("certificate over http", "certificate on another host", "certificate on a look-alike host",
                 "certificate behind user info", "certificate on another port", "certificate at another path"):
        with pytest.raises(WebhookUnauthorized):
            provider.verify(request_for(REFUSED[case][0]))
    assert session.calls == []


def test_no_topic_configured_refuses_even_a_genuine_message():
    provider, session = make_provider(credentials={"configuration_set": "dispatch"})
    with pytest.raises(WebhookUnauthorized, match="topic_arn"):
        provider.verify(request_for(notification(DELIVERED)))
    assert session.calls == []


def test_a_message_just_under_an_hour_old_and_one_from_the_inbound_topic_are_accepted():
    provider, _ = make_provider()
    provider.verify(request_for(notification(DELIVERED, timestamp=NOW - timedelta(minutes=59))))
    provider.verify(request_for(notification(fixture("inbound_reply.json"), topic_arn=INBOUND_TOPIC_ARN)))


def test_the_certificate_is_fetched_once_and_then_reused():
    provider, session = make_provider()
    for _ in range(3):
        provider.verify(request_for(notification(DELIVERED)))
    assert [(c.method, c.url, c.timeout) for c in session.calls] == [("GET", URL, (3.05, 10.0))]


@pytest.mark.parametrize("answer", [FakeResponse(503, ""), FakeResponse(429, ""), requests.Timeout("slow")])
def test_aws_unreachable_for_the_certificate_is_an_error_not_a_refusal(answer):
    session = ScriptedSession()
    session.respond(URL, answer)
    provider, _ = make_provider(session)
    # Not WebhookUnauthorized: the route answers 5xx and SNS retries later.
    with pytest.raises(CertificateUnavailable):
        provider.verify(request_for(notification(DELIVERED)))


@pytest.mark.parametrize("answer", [FakeResponse(404, "<Error/>"), FakeResponse(200, "not a certificate")])
def test_a_certificate_url_aws_does_not_serve_a_certificate_at_is_refused(answer):
    session = ScriptedSession()
    session.respond(URL, answer)
    provider, _ = make_provider(session)
    with pytest.raises(WebhookUnauthorized):
        provider.verify(request_for(notification(DELIVERED)))


def test_challenge_has_nothing_to_answer():
    provider, _ = make_provider()
    assert provider.challenge(WebhookRequest(headers={}, body=b"", query={"hub.challenge": "1"})) is None


# --- parsing details -------------------------------------------------------------------------


def test_prices_stay_exact_decimals():
    provider, _ = make_provider()
    event = {**DELIVERED, "totalMessagePrice": 0.00581, "totalCarrierFee": 0.00302}
    batch = provider.parse(request_for(notification(event)), "status")
    assert batch.statuses[0].event.usage == Usage("0.00883", "USD")


def test_a_failure_without_is_final_fails_over():
    provider, _ = make_provider()
    event = {k: v for k, v in fixture("event_text_unreachable.json").items() if k != "isFinal"}
    batch = provider.parse(request_for(notification(event)), "status")
    assert batch.statuses[0].event.status is MessageStatus.UNDELIVERABLE


@pytest.mark.parametrize("message", ["[1, 2]", '{"hello": "world"}', '{"eventType": 7, "messageId": "x"}'])
def test_a_message_of_another_shape_is_malformed(message):
    provider, _ = make_provider()
    with pytest.raises(WebhookMalformed):
        provider.parse(request_for(notification(message)), "status")


def test_logs_name_event_types_but_never_numbers_or_text(caplog):
    caplog.set_level(logging.DEBUG)
    provider, _ = make_provider()
    for name in ("event_text_unknown.json", "inbound_reply.json", "event_voice_completed.json"):
        provider.parse(request_for(notification(fixture(name))), "inbound")
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "TEXT_UNKNOWN" in logged and "VOICE_COMPLETED" in logged
    for secret in ("447911123456", "447700900001", "see you at 3"):
        assert secret not in logged


def test_build_warns_about_missing_credentials_by_name(caplog):
    context = ProviderContext(credentials={}, session=ScriptedSession(), clock=lambda: NOW, aws_client=_no_aws)
    with caplog.at_level(logging.WARNING):
        provider = aws_sms.build(context)
    assert provider.name == "aws_sms"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["aws_sms credentials missing: configuration_set, topic_arn"]


def test_build_is_quiet_when_configured(caplog):
    context = ProviderContext(credentials=CREDENTIALS, session=ScriptedSession(), clock=lambda: NOW, aws_client=_no_aws)
    with caplog.at_level(logging.WARNING):
        aws_sms.build(context)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_sns_timestamps_are_formatted_as_sns_formats_them():
    assert iso(PUBLISHED) == "2026-11-24T12:00:00.000Z"


@pytest.mark.parametrize(
    ("context", "hint"),
    [
        ({"reference": "3f1c2b7e-0d4a-4c55-9a55-2f0e8d6b1c00:1"}, MessageHint("3f1c2b7e-0d4a-4c55-9a55-2f0e8d6b1c00", 1)),
        ({"reference": "not ours"}, None),
        ({"account": "bar"}, None),
        ("not a map", None),
    ],
)
def test_a_status_carries_the_reference_the_send_left_in_its_context(context, hint):
    provider, _ = make_provider()
    data = {**fixture("event_text_delivered.json"), "context": context}

    [status] = provider.parse(request_for(notification(data)), "status").statuses

    assert status.hint == hint
