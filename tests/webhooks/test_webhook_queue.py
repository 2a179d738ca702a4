"""Issue 14, finding 5 (work per request): a large signed batch is queued on SQS in chunks and
answered at once; the `apply_webhooks` function applies the chunks; a chunk that fails is
redelivered (or its rest requeued) until every event is applied, and nothing is relayed twice.

The bound is on work, not time: how many table and queue calls the request makes. Runs through
chalice.test.Client with moto's DynamoDB and SQS, and Lambda's event source done by
`scripts.sqs_event_source.poll_once`, as tests/e2e/test_aws_backends.py does for callbacks.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters import sqs_webhook_queue, webhook_codec
from chalicelib.adapters.sqs_webhook_queue import SqsWebhookQueue
from scripts.sqs_event_source import poll_once, queue_arn
from tests.e2e.test_api import create, view
from tests.webhooks.stack import ScriptedSession, post_webhook, provider_stack
from tests.webhooks.test_whatsapp_e2e import CREDENTIALS, GRAPH, USER, accepted, signed

REGION = "eu-west-1"
#: Repository calls a queued request makes, whatever the batch holds (its queue calls are one
#: SendMessageBatch per ten chunks of 100 events).
REPOSITORY_CALLS_PER_QUEUED_REQUEST = 0


def wamid(n: int) -> str:
    return f"wamid.batch{n:06d}"


def notification(statuses: list[dict[str, Any]], messages: list[dict[str, Any]] = ()) -> bytes:  # type: ignore[assignment]
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    }
    if statuses:
        value["statuses"] = statuses
    if messages:
        value["messages"] = list(messages)
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def status(message_id: str, name: str = "delivered") -> dict[str, Any]:
    return {"id": message_id, "status": name, "timestamp": "1750857390", "recipient_id": USER}


def reply(message_id: str, text: str) -> dict[str, Any]:
    return {"from": USER, "id": message_id, "timestamp": "1750857391", "type": "text", "text": {"body": text}}


class Queue:
    """The moto queue the app puts chunks on, and what Lambda's event source would do with it."""

    def __init__(self, client: Any, url: str, dead_letters: str) -> None:
        self.sqs, self.url, self.dead_letters = client, url, dead_letters
        self.results: list[dict[str, Any]] = []

    def drain(self, client: Any, limit: int = 1000) -> int:
        """Receive one message at a time and invoke apply_webhooks, until the queue is empty."""
        arn = queue_arn(self.sqs, self.url)

        def invoke(event: dict[str, Any]) -> None:
            self.results.append(client.lambda_.invoke("apply_webhooks", event).payload)

        received = 0
        while (batch := poll_once(self.sqs, self.url, arn, invoke, batch_size=1)) and received < limit:
            received += batch
        return received

    def depth(self, url: str | None = None) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)["Attributes"]
        return sum(int(value) for value in attributes.values())

    def totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for result in self.results:
            if isinstance(result, dict) and "chunks" in result:
                totals.update(result)
        return totals


@pytest.fixture
def queue(table_name, monkeypatch) -> Queue:
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="webhooks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="webhooks",
        Attributes={
            # Redelivery at once, where AWS would wait the visibility timeout.
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    # The stack's settings name no queue (inline); the app gets this one as AWS would give it.
    monkeypatch.setattr(bootstrap, "build_webhook_queue", lambda settings: SqsWebhookQueue(sqs, url))
    # A chunk's rest comes round again at once here.
    monkeypatch.setattr(sqs_webhook_queue, "REQUEUE_DELAY_SECONDS", 0)
    return Queue(sqs, url, dlq)


@pytest.fixture
def stack(table_name, queue):
    session = ScriptedSession()
    session.respond(GRAPH, accepted())
    with provider_stack(table_name, {"whatsapp": "whatsapp"}, CREDENTIALS, session) as stack:
        yield stack


def counted(stack, queue: Queue) -> Counter[str]:
    """Counts the table's and the queue's calls from now on, by `service:operation`."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[":".join(event_name.split(".")[1:3])] += 1

    stack.services.webhook_service._repo._client.meta.events.register("before-call.dynamodb.*", count)
    queue.sqs.meta.events.register("before-call.sqs.*", count)
    return calls


def dispatches(stack, count: int) -> list[tuple[str, str]]:
    """`count` dispatches whose WhatsApp message went out; (dispatch_uuid, wamid) each."""
    made = []
    for n in range(count):
        stack.session.respond(GRAPH, accepted(wamid(n)))
        made.append((create(stack, whatsapp_dispatch()), wamid(n)))
    return made


def whatsapp_dispatch() -> dict[str, Any]:
    from tests.webhooks.test_whatsapp_e2e import dispatch

    return dispatch("delivered")


class CountingRepository:
    """A repository that counts the calls made on it, by method."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


@pytest.fixture
def memory_stack(queue):
    """The app with the real WhatsApp provider over in-memory repositories (so draining 20,000
    statuses costs no emulated table calls) and moto's SQS as the webhook queue."""
    from chalice.test import Client

    from app import app
    from chalicelib.adapters.provider_credentials import ProviderCredentials
    from chalicelib.config import Settings
    from chalicelib.domain.model import Channel
    from chalicelib.service.applications import create_application
    from tests.e2e.conftest import Stack
    from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore
    from tests.fake_callbacks import InMemoryCallbackStore
    from tests.fake_repository import InMemoryDispatchRepository, InMemorySweepMarks
    from tests.fakes import FakeClock, RecordingCallbacks, RecordingTimer

    settings = Settings(
        table_name="in-memory",
        channel_providers={**{c: "sandbox" for c in Channel}, Channel.WHATSAPP: "whatsapp"},
        provider_credentials="env",
    )
    clock, session = FakeClock(), ScriptedSession()
    applications, secrets = InMemoryApplicationRepository(), InMemorySecretStore()
    credentials = ProviderCredentials("env", secrets, settings.secret_prefix, CREDENTIALS)
    routing, providers = bootstrap.build_providers(settings, credentials, session, clock)
    repository = CountingRepository(InMemoryDispatchRepository())
    services = bootstrap.wire_services(
        settings,
        clock=clock,
        repository=repository,  # type: ignore[arg-type]
        applications=applications,
        secrets=secrets,
        timer=RecordingTimer(),
        routing=routing,
        providers=providers,
        callback_store=InMemoryCallbackStore(),
        queue=RecordingQueue(),
        transport=RecordingCallbacks(),
        sweep_marks=InMemorySweepMarks(),
        webhook_queue=bootstrap.build_webhook_queue(settings),
    )
    make = lambda name: create_application(
        applications, secrets, name, "https://app.example/status", None, clock.now(), "test"
    )
    bootstrap.override(services)
    try:
        with Client(app, stage_name="local") as client:
            stack = Stack(client, services, None, session, clock, make("demo"), make("other"))  # type: ignore[arg-type]
            yield stack, repository
    finally:
        bootstrap.override(None)


class RecordingQueue:
    """A callback queue that delivers nothing: callbacks are not what these tests look at."""

    def nudge(self, dispatch_uuid: str, at: Any = None) -> None:
        pass


def test_a_signed_batch_of_20000_statuses_is_queued_with_bounded_work_and_all_applied(memory_stack, queue, caplog):
    stack, repository = memory_stack
    ours = dispatches(stack, 5)
    # Ours spread over the batch: first, on chunk edges, last. The rest are other systems'.
    at = {0: ours[0][1], 99: ours[1][1], 100: ours[2][1], 10_000: ours[3][1], 19_999: ours[4][1]}
    body = notification([status(at.get(n, f"wamid.theirs{n:06d}")) for n in range(20_000)])
    sqs_calls: Counter[str] = Counter()
    queue.sqs.meta.events.register("before-call.sqs.*", lambda event_name, **_: sqs_calls.update([event_name.split(".")[-1]]))
    repository.calls.clear()

    with caplog.at_level(logging.INFO):
        response = post_webhook(stack, "whatsapp", "status", body, signed(body))

    assert response.status_code == 200, response.body
    assert response.json_body == {"applied": 0, "unmatched": 0, "ignored": 0, "relayed": 0, "queued": 20_000}
    assert sum(repository.calls.values()) == REPOSITORY_CALLS_PER_QUEUED_REQUEST
    # 200 chunks of 100 events, ten to a SendMessageBatch.
    assert sqs_calls == Counter(SendMessageBatch=20)
    assert all(view(stack, uuid)["status"] == "in_progress" for uuid, _ in ours)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    assert queue.drain(stack.client) == 200
    assert queue.totals() == Counter(chunks=200, applied=5, unmatched=19_995)
    assert repository.calls["find_message"] == 20_000  # every status looked up once
    assert all(view(stack, uuid)["status"] == "completed" for uuid, _ in ours)
    assert queue.depth() == 0


def test_a_batch_at_the_inline_limit_is_applied_in_the_request(stack, queue):
    ours = dispatches(stack, 2)
    limit = stack.services.settings.webhook_inline_limit
    body = notification([status(w) for _, w in ours] + [status(f"wamid.theirs{n}") for n in range(limit - 2)])
    calls = counted(stack, queue)

    response = post_webhook(stack, "whatsapp", "status", body, signed(body))

    assert response.json_body == {"applied": 2, "unmatched": limit - 2, "ignored": 0, "relayed": 0}
    assert not [name for name in calls if name.startswith("sqs:")]
    assert all(view(stack, uuid)["status"] == "completed" for uuid, _ in ours)


def flaky_table(stack, monkeypatch, failures: dict[str, int]) -> None:
    """Make `apply_status` of the given wamids fail that many times (a throttled table)."""
    service = stack.services.dispatches
    real = service.apply_status

    def apply_status(provider, provider_message_id, *args, **kwargs):
        if failures.get(provider_message_id, 0) > 0:
            failures[provider_message_id] -= 1
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real(provider, provider_message_id, *args, **kwargs)

    monkeypatch.setattr(service, "apply_status", apply_status)


def test_a_chunk_that_fails_is_redelivered_and_applied_and_no_reply_is_relayed_twice(stack, queue, monkeypatch):
    (first_uuid, first), (second_uuid, second) = dispatches(stack, 2)
    theirs = [status(f"wamid.theirs{n}") for n in range(150)]
    # Chunk one: 100 statuses, ours first; chunk two: ours first, then 50 more, then two replies.
    statuses = [status(first), *theirs[:99], status(second), *theirs[99:]]
    replies = [reply("wamid.reply1", "yes"), reply("wamid.reply2", "no")]
    body = notification(statuses, replies)
    # The first chunk fails at its first event twice (redelivered whole by SQS); the second part
    # way through, after ours was applied (its rest, with the replies, is requeued).
    flaky_table(stack, monkeypatch, {first: 2, "wamid.theirs149": 1})

    response = post_webhook(stack, "whatsapp", "status", body, signed(body))
    assert response.json_body["queued"] == 154

    assert queue.drain(stack.client) == 2 + 2 + 1  # two failed receives, two chunks, one rest
    totals = queue.totals()
    assert (totals["chunks"], totals["applied"], totals["relayed"]) == (3, 2, 2)
    assert totals["unmatched"] == 150
    assert view(stack, first_uuid)["status"] == view(stack, second_uuid)["status"] == "completed"
    relayed = [json.loads(data) for url, data, _ in stack.session.callbacks() if url.endswith("/inbound")]
    assert sorted(r["message"]["content"]["text"] for r in relayed) == ["no", "yes"]
    assert queue.depth() == queue.depth(queue.dead_letters) == 0


def test_a_chunk_that_always_fails_ends_in_the_dead_letter_queue(stack, queue, monkeypatch, caplog):
    (uuid, ours), = dispatches(stack, 1)
    body = notification([status(ours)] + [status(f"wamid.theirs{n}") for n in range(30)])
    flaky_table(stack, monkeypatch, {ours: 1_000})

    assert post_webhook(stack, "whatsapp", "status", body, signed(body)).status_code == 200
    assert queue.drain(stack.client, limit=20) == 5  # maxReceiveCount, then SQS moves it

    assert queue.depth() == 0
    assert queue.depth(queue.dead_letters) == 1
    (message,) = queue.sqs.receive_message(QueueUrl=queue.dead_letters)["Messages"]
    assert len(webhook_codec.decode(message["Body"]).events) == 31
    assert view(stack, uuid)["status"] == "in_progress"
