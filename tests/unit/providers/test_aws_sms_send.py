"""aws_sms sends: the exact SendTextMessage a workflow item becomes (on a real botocore client,
stubbed), and what each AWS answer means for failover (fed to botocore as raw HTTP answers, so
its own error parsing is part of what is tested)."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from chalicelib.adapters.providers.aws_sms.certificates import CertificateCache
from chalicelib.adapters.providers.aws_sms.provider import AwsSmsProvider
from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.domain.model import Channel, Condition, Step, StepSpec
from chalicelib.service.ports import ProviderError
from tests.webhooks.stack import ScriptedSession

FIXTURES = Path(__file__).resolve().parents[2] / "events" / "aws_sms"
SERVICE = "pinpoint-sms-voice-v2"
DISPATCH = "3f1c2b7e-0d4a-4c55-9a55-2f0e8d6b1c00"
MESSAGE = "9d3f6a1b-51e2-4c7a-8f20-6b0a4e2d7c11"
CREDENTIALS = {"configuration_set": "dispatch", "topic_arn": "arn:aws:sns:eu-west-1:123456789012:t"}
TEXT = "Your code is 123456"


def step(
    to: str = "447911123456",
    sender: str = "447700900001",
    content: dict[str, Any] | None = None,
    channel: Channel = Channel.SMS,
) -> Step:
    spec = StepSpec(
        channel=channel,
        to={"type": channel.value, "number": to},
        sender={"type": channel.value, "number": sender},
        message={"content": content or {"type": "text", "text": TEXT}},
        condition=Condition.DELIVERED,
        expiry_time=600,
    )
    return Step(index=0, spec=spec, message_uuid=MESSAGE)


class Clients:
    """Stands in for boto3.client: makes real clients, remembers how, lets a test prepare them."""

    def __init__(self, prepare: Callable[[Any], None] = lambda client: None) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        self.clients: list[Any] = []
        self._prepare = prepare

    def __call__(self, service: str, **kwargs: Any) -> Any:
        self.made.append((service, kwargs))
        client = boto3.client(service, **{"region_name": "eu-west-1", **kwargs})
        self._prepare(client)
        self.clients.append(client)
        return client


def provider(clients: Clients, credentials: dict[str, str] | None = None) -> AwsSmsProvider:
    context = ProviderContext(
        credentials=CREDENTIALS if credentials is None else credentials,
        session=ScriptedSession(),
        clock=lambda: datetime.now(timezone.utc),
        aws_client=clients,
    )
    return AwsSmsProvider(context, certificates=CertificateCache())


def stubbed(expected: dict[str, Any], message_id: str = "0f6c1b2a-8e4d-4b1f-a7c3-5d2e9f8a6b01") -> tuple[Clients, list[Stubber]]:
    stubbers: list[Stubber] = []

    def prepare(client: Any) -> None:
        stubber = Stubber(client)
        stubber.add_response("send_text_message", {"MessageId": message_id}, expected)
        stubber.activate()
        stubbers.append(stubber)

    return Clients(prepare), stubbers


def expected_params(**changes: Any) -> dict[str, Any]:
    params = {
        "DestinationPhoneNumber": "+447911123456",
        "OriginationIdentity": "+447700900001",
        "MessageBody": TEXT,
        "MessageType": "TRANSACTIONAL",
        "ConfigurationSetName": "dispatch",
        "Context": {"dispatch_uuid": DISPATCH, "message_uuid": MESSAGE, "reference": f"{DISPATCH}:0"},
    }
    params.update(changes)
    return params


# --- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "credentials", "expected"),
    [
        pytest.param(step(), CREDENTIALS, expected_params(), id="from a phone number"),
        pytest.param(step(sender="Acme"), CREDENTIALS, expected_params(OriginationIdentity="Acme"), id="from a sender id"),
        pytest.param(step(sender="Acme Co"), CREDENTIALS, expected_params(OriginationIdentity="Acme Co"), id="a sender id with a space is AWS's to judge"),
        pytest.param(step(sender="12345"), CREDENTIALS, expected_params(OriginationIdentity="12345"), id="from a short code"),
        pytest.param(
            step(to="14155552671", content={"type": "text", "text": "Hëllo ✓"}),
            CREDENTIALS,
            expected_params(DestinationPhoneNumber="+14155552671", MessageBody="Hëllo ✓"),
            id="unicode text to another country",
        ),
        pytest.param(
            step(),
            {**CREDENTIALS, "origination_identity": "pool-2f5e0a1b3c4d"},
            expected_params(OriginationIdentity="pool-2f5e0a1b3c4d"),
            id="the configured origination identity overrides from",
        ),
    ],
)
def test_a_text_becomes_exactly_this_send_text_message(item, credentials, expected):
    clients, stubbers = stubbed(expected)
    assert provider(clients, credentials).send(DISPATCH, item) == "0f6c1b2a-8e4d-4b1f-a7c3-5d2e9f8a6b01"
    stubbers[0].assert_no_pending_responses()


def test_the_client_has_the_send_timeouts_no_hidden_retries_and_the_configured_region():
    clients, _ = stubbed(expected_params())
    sender = provider(clients, {**CREDENTIALS, "region": "us-east-1"})
    sender.send(DISPATCH, step())
    [(service, kwargs)] = clients.made
    config = kwargs["config"]
    assert (service, kwargs["region_name"]) == (SERVICE, "us-east-1")
    assert (config.connect_timeout, config.read_timeout) == (3.05, 10.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}


def test_the_client_is_built_once_and_only_when_first_needed():
    clients = Clients(lambda client: _answer_raw(client, [_ok(), _ok()]))
    sender = provider(clients, {**CREDENTIALS})
    assert clients.made == []
    sender.send(DISPATCH, step())
    sender.send(DISPATCH, step())
    assert len(clients.made) == 1 and "region_name" not in clients.made[0][1]


def test_on_the_wire_it_is_one_json_call_to_the_regional_endpoint():
    seen: list[Any] = []
    clients = Clients(lambda client: _answer_raw(client, [_ok()], seen))
    provider(clients).send(DISPATCH, step())
    [request] = seen
    assert request.url == "https://sms-voice.eu-west-1.amazonaws.com/"
    assert request.headers["X-Amz-Target"] == b"PinpointSMSVoiceV2.SendTextMessage"
    assert json.loads(request.body) == expected_params()


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (step(content={"type": "image", "image": {"url": "https://example.com/a.png"}}), "unsupported_content"),
        (step(channel=Channel.WHATSAPP), "unsupported_channel"),
    ],
)
def test_what_sms_cannot_carry_fails_over_without_calling_aws(item, code):
    clients = Clients()
    with pytest.raises(ProviderError) as raised:
        provider(clients).send(DISPATCH, item)
    assert (raised.value.permanent, raised.value.code) == (True, code)
    assert clients.made == []


def test_without_a_configuration_set_nothing_is_sent():
    clients = Clients()
    with pytest.raises(ProviderError) as raised:
        provider(clients, {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:t"}).send(DISPATCH, step())
    assert (raised.value.permanent, raised.value.code) == (True, "not_configured")
    assert clients.made == []


def test_content_types_are_text_on_sms_only():
    assert AwsSmsProvider.content_types == {Channel.SMS: frozenset({"text"})}


@pytest.mark.parametrize(("to", "key"), [("447911123456", "447911123456"), ("14155552671", "14155552671")])
def test_the_recipient_key_is_the_number_as_inbound_sms_names_it_without_plus(to, key):
    assert provider(Clients()).recipient_key(step(to=to)) == key


# --- the answers -----------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any):
        yield self._body


def _ok() -> tuple[int, dict[str, Any]]:
    data = json.loads((FIXTURES / "send_ok.json").read_text())
    return data["status"], data["body"]


def _answer_raw(client: Any, answers: list[Any], seen: list[Any] | None = None) -> None:
    """Answer each SendTextMessage with the next (status, body), or raise the next exception,
    as the HTTP layer would: botocore parses the answer itself."""

    def before_send(request: Any, **_: Any) -> AWSResponse:
        if seen is not None:
            seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "req-1"}
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))

    client.meta.events.register(f"before-send.{SERVICE}.SendTextMessage", before_send)


def _send_answered(*answers: Any) -> str:
    clients = Clients(lambda client: _answer_raw(client, list(answers)))
    return provider(clients).send(DISPATCH, step())


#: Each error fixture: (permanent?, ProviderError.code).
ERRORS: dict[str, tuple[bool, str]] = {
    "send_error_validation_country_blocked.json": (True, "ValidationException:DESTINATION_COUNTRY_BLOCKED"),
    "send_error_validation_sender_id_not_registered.json": (True, "ValidationException:SENDER_ID_NOT_REGISTERED"),
    "send_error_validation_cannot_parse.json": (True, "ValidationException:CANNOT_PARSE"),
    "send_error_conflict_opted_out.json": (True, "ConflictException:DESTINATION_PHONE_NUMBER_OPTED_OUT"),
    "send_error_conflict_not_verified.json": (True, "ConflictException:DESTINATION_PHONE_NUMBER_NOT_VERIFIED"),
    "send_error_resource_not_found.json": (True, "ResourceNotFoundException"),
    "send_error_access_denied.json": (True, "AccessDeniedException:ACCOUNT_DISABLED"),
    "send_error_quota_monthly_spend.json": (True, "ServiceQuotaExceededException:MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"),
    # HTTP 400, yet worth retrying: classification goes by the code.
    "send_error_throttling.json": (False, "ThrottlingException"),
    "send_error_internal.json": (False, "InternalServerException"),
    "send_error_unmodeled_503.json": (False, "ServiceUnavailable"),
    "send_error_unmodeled_400.json": (True, "SomethingNewException"),
}


def test_every_send_error_fixture_has_an_expectation():
    assert sorted(ERRORS) == sorted(p.name for p in FIXTURES.glob("send_error_*.json"))


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_refusal_is_classified(name):
    data = json.loads((FIXTURES / name).read_text())
    with pytest.raises(ProviderError) as raised:
        _send_answered((data["status"], data["body"]))
    assert (raised.value.permanent, raised.value.code) == ERRORS[name]


def test_an_accepted_send_returns_the_message_id():
    assert _send_answered(_ok()) == "0f6c1b2a-8e4d-4b1f-a7c3-5d2e9f8a6b01"


def test_an_answer_without_a_message_id_is_not_retried():
    with pytest.raises(ProviderError) as raised:
        _send_answered((200, {}))
    assert (raised.value.permanent, raised.value.code) == (True, "no_message_id")


ENDPOINT = "https://sms-voice.eu-west-1.amazonaws.com/"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ReadTimeoutError(endpoint_url=ENDPOINT), "timeout"),
        (ConnectTimeoutError(endpoint_url=ENDPOINT), "timeout"),
        (EndpointConnectionError(endpoint_url=ENDPOINT), "connection"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(error, code):
    with pytest.raises(ProviderError) as raised:
        _send_answered(error)
    assert (raised.value.permanent, raised.value.code) == (False, code)


def test_a_client_side_failure_is_permanent():
    with pytest.raises(ProviderError) as raised:
        _send_answered(NoCredentialsError())
    assert (raised.value.permanent, raised.value.code) == (True, "client_error")


def test_neither_text_nor_aws_s_error_message_reaches_logs_or_the_reason(caplog):
    caplog.set_level(logging.DEBUG)
    data = json.loads((FIXTURES / "send_error_conflict_opted_out.json").read_text())
    with pytest.raises(ProviderError) as raised:
        _send_answered((data["status"], data["body"]))
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("chalicelib"))
    assert "DESTINATION_PHONE_NUMBER_OPTED_OUT" in logged
    for secret in (TEXT, "+447911123456", data["body"]["Message"]):
        assert secret not in logged
        assert secret not in raised.value.reason
