"""aws_sms end to end: a dispatch through the API goes out as SendTextMessage (a real botocore
client answered at its HTTP layer), EUM's events come back as signed SNS notifications on our
routes (the certificate fetched through the scripted session), and the dispatch completes,
fails over or relays the reply, as the condition says."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.adapters import callback_signing
from tests.e2e.test_api import create, view
from tests.webhooks.signature_cases.aws_sms import (
    INBOUND_TOPIC_ARN,
    SNS_KEY,
    TOPIC_ARN,
    body_of,
    cert_url,
    headers_for,
)
from tests.webhooks.stack import FakeResponse, ScriptedSession, post_webhook, provider_stack

EVENTS = Path(__file__).parents[1] / "events" / "aws_sms"
CREDENTIALS = {
    "DISPATCH_AWS_SMS_CONFIGURATION_SET": "dispatch",
    "DISPATCH_AWS_SMS_TOPIC_ARN": f"{TOPIC_ARN},{INBOUND_TOPIC_ARN}",
}
ROUTING = {"sms": "aws_sms"}
SERVICE = "pinpoint-sms-voice-v2"
USER = "447911123456"
OTHER_USER = "14155552671"
SENDER = "447700900001"
TEXT = "Your parcel arrives today"


def sms(to: str, failover: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": {"type": "sms", "number": SENDER},
        "to": {"type": "sms", "number": to},
        "message": {"content": {"type": "text", "text": TEXT}},
    }
    if failover:
        item["failover"] = {"expiry_time": 600, "condition_status": "delivered"}
    return item


SMS_THEN_WHATSAPP = {
    "template": "failover",
    "workflow": [
        sms(USER),
        {
            "from": {"type": "whatsapp", "number": "15550783881"},
            "to": {"type": "whatsapp", "number": USER},
            "message": {"content": {"type": "text", "text": TEXT}},
        },
    ],
}
SMS_THEN_SMS = {"template": "failover", "workflow": [sms(USER), sms(OTHER_USER, failover=False)]}


class FakeEum:
    """The EUM API at its HTTP layer: each SendTextMessage is recorded as sent on the wire and
    answered with the next scripted (status, body), as AWS would answer it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []

    def accept(self, *message_ids: str) -> None:
        self.answers += [(200, {"MessageId": m}) for m in message_ids]

    def answer(self, request: Any, **_: Any) -> AWSResponse:
        assert request.headers["X-Amz-Target"] == b"PinpointSMSVoiceV2.SendTextMessage"
        self.sent.append(json.loads(request.body))
        status, body = self.answers.pop(0)
        raw = json.dumps(body).encode()

        class Raw:
            def stream(self, **_: Any):
                yield raw

        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, Raw())


@pytest.fixture
def eum(monkeypatch) -> FakeEum:
    fake = FakeEum()
    real_client = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(service, *args, **kwargs)
        if service == SERVICE:
            made.meta.events.register(f"before-send.{SERVICE}.SendTextMessage", fake.answer)
        return made

    # bootstrap hands `boto3.client` to providers as ProviderContext.aws_client.
    monkeypatch.setattr(boto3, "client", client)
    return fake


@pytest.fixture
def url() -> str:
    """A certificate URL no other test used, so this test's stack really fetches it."""
    return cert_url(uuid.uuid4().hex)


@pytest.fixture
def session(url) -> ScriptedSession:
    session = ScriptedSession()
    session.respond(url, FakeResponse(200, SNS_KEY.pem.decode()))
    return session


def event(name: str, message_id: str, **changes: Any) -> dict[str, Any]:
    data = json.loads((EVENTS / name).read_text())
    return {**data, "messageId": message_id, **changes}


def notify(stack, url: str, message: dict[str, Any], kind: str = "status", **kwargs: Any):
    kwargs.setdefault("timestamp", stack.clock.now())
    envelope = SNS_KEY.notification(message, url=url, **kwargs)
    return post_webhook(stack, "aws_sms", kind, body_of(envelope), headers_for(envelope))


def sent_params(dispatch_uuid: str, message: dict[str, Any], to: str, index: int = 0) -> dict[str, Any]:
    return {
        "DestinationPhoneNumber": f"+{to}",
        "OriginationIdentity": f"+{SENDER}",
        "MessageBody": TEXT,
        "MessageType": "TRANSACTIONAL",
        "ConfigurationSetName": "dispatch",
        "Context": {
            "dispatch_uuid": dispatch_uuid,
            "message_uuid": message["message_uuid"],
            "reference": f"{dispatch_uuid}:{index}",
        },
    }


def test_delivered_completes_the_dispatch_and_the_next_message_never_goes(table_name, eum, session, url):
    eum.accept("eum-1")
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, SMS_THEN_WHATSAPP)
        first = view(stack, dispatch_uuid)["messages"][0]
        assert eum.sent == [sent_params(dispatch_uuid, first, USER)]
        response = notify(stack, url, event("event_text_delivered.json", "eum-1"))
        assert response.status_code == 200, response.body
        assert response.json_body == {"applied": 1, "unmatched": 0, "ignored": 0, "relayed": 0}
        d = view(stack, dispatch_uuid)
    assert d["status"] == "completed" and d["completed_by"] == first["message_uuid"]
    first, second = d["messages"]
    assert (first["status"], first["usage"]) == ("delivered", {"price": "0.0429", "currency": "USD"})
    assert second["phase"] == "pending" and len(eum.sent) == 1
    assert [c.url for c in session.to(url)] == [url]  # the certificate came through the session
    statuses = [json.loads(body).get("status") for _, body, _ in session.callbacks()]
    assert statuses == ["submitted", "delivered", "completed"]


def test_a_final_failure_sends_the_next_message_at_once(table_name, eum, session, url):
    eum.accept("eum-1", "eum-2")
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, SMS_THEN_SMS)
        response = notify(stack, url, event("event_text_unreachable.json", "eum-1"))
        assert response.status_code == 200, response.body
        first, second = view(stack, dispatch_uuid)["messages"]
    assert first["outcome"] == "undeliverable"
    assert first["history"][-1]["error"] == {
        "code": "TEXT_UNREACHABLE",
        "reason": "Destination phone is switched off or out of network coverage",
    }
    assert second["phase"] == "waiting" and second["status"] == "submitted"
    assert eum.sent[1] == sent_params(dispatch_uuid, second, OTHER_USER, index=1)


def test_a_failure_aws_is_still_retrying_does_not_fail_over(table_name, eum, session, url):
    eum.accept("eum-1")
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, SMS_THEN_SMS)
        response = notify(stack, url, event("event_text_carrier_unreachable_retrying.json", "eum-1"))
        assert response.status_code == 200, response.body
        first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["phase"], first["status"]) == ("waiting", "submitted")
    assert second["phase"] == "pending" and len(eum.sent) == 1


def test_an_opted_out_recipient_fails_over_at_send_time(table_name, eum, session):
    eum.answers = [
        (400, {"__type": "ConflictException", "Message": "opted out", "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"}),
        (200, {"MessageId": "eum-2"}),
    ]
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, SMS_THEN_SMS)
        first, second = view(stack, dispatch_uuid)["messages"]
    assert (first["outcome"], first["error"]["code"]) == ("send_failed", "ConflictException:DESTINATION_PHONE_NUMBER_OPTED_OUT")
    assert second["phase"] == "waiting" and [p["DestinationPhoneNumber"] for p in eum.sent] == ["+447911123456", "+14155552671"]


def test_a_reply_is_relayed_signed_to_the_inbound_url(table_name, eum, session, url):
    eum.accept("eum-1")
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        create(stack, SMS_THEN_WHATSAPP)
        reply = json.loads((EVENTS / "inbound_reply.json").read_text())
        response = notify(stack, url, reply, kind="inbound", topic_arn=INBOUND_TOPIC_ARN)
        assert response.status_code == 200, response.body
        assert response.json_body["relayed"] == 1
        [(target, body, headers)] = [c for c in session.callbacks() if c[0] == "https://app.example/inbound"]
        assert callback_signing.verify(headers["Authorization"], body, stack.demo.signature_secret, stack.clock.now())
    relayed = json.loads(body)
    assert relayed["to"] == {"type": "sms", "number": SENDER}
    assert relayed["from"] == {"type": "sms", "number": USER}
    assert relayed["message"] == {"content": {"type": "text", "text": "Yes, see you at 3"}}


def test_a_subscription_confirmation_is_confirmed(table_name, eum, session, url):
    subscribe = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC_ARN}&Token=2336412f"
    session.respond(subscribe, FakeResponse(200, "<ConfirmSubscriptionResponse/>"))
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        envelope = SNS_KEY.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": str(uuid.uuid4()),
                "Token": "2336412f",
                "TopicArn": TOPIC_ARN,
                "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.",
                "SubscribeURL": subscribe,
                "Timestamp": stack.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "SigningCertURL": url,
            }
        )
        response = post_webhook(stack, "aws_sms", "status", body_of(envelope), headers_for(envelope))
    assert response.status_code == 200, response.body
    assert [c.method for c in session.to(subscribe)] == ["GET"]


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamp_offset": timedelta(hours=-2)},
        {"topic_arn": "arn:aws:sns:eu-west-1:999999999999:dispatch-sms-events"},
    ],
    ids=["stale", "foreign topic"],
)
def test_a_stale_or_foreign_notification_is_refused_and_changes_nothing(table_name, eum, session, url, changes):
    eum.accept("eum-1")
    with provider_stack(table_name, ROUTING, CREDENTIALS, session) as stack:
        dispatch_uuid = create(stack, SMS_THEN_SMS)
        offset = changes.pop("timestamp_offset", timedelta(0))
        message = event("event_text_unreachable.json", "eum-1")
        response = notify(stack, url, message, timestamp=stack.clock.now() + offset, **changes)
        first, second = view(stack, dispatch_uuid)["messages"]
    assert response.status_code == 401
    assert (first["phase"], second["phase"]) == ("waiting", "pending") and len(eum.sent) == 1


def test_mms_routed_to_aws_sms_is_refused_at_request_time(table_name, eum, session):
    body = {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "mms", "number": "14155552671"},
                "to": {"type": "mms", "number": "14155550101"},
                "message": {"content": {"type": "image", "image": {"url": "https://example.com/a.png"}}},
            }
        ],
    }
    with provider_stack(table_name, {"sms": "aws_sms", "mms": "aws_sms"}, CREDENTIALS, session) as stack:
        response = stack.post("/v0.1/dispatch", body)
    assert response.status_code == 400, response.body
    reasons = [p["reason"] for p in response.json_body["invalid_parameters"]]
    assert reasons == ["mms is sent through aws_sms, which cannot carry image; use nothing"]
    assert eum.sent == []
