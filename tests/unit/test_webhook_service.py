"""WebhookService: a verified batch is applied whole, whatever the provider: statuses by the
message index, watermarks by the latest message sent to the recipient, inbound messages relayed
to the owning application's inbound URL."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib.domain.model import Channel, Condition, DispatchStatus, MessageStatus, StatusEvent, StepSpec
from chalicelib.service.webhooks import (
    InboundMessage,
    ProviderStatus,
    RecipientStatus,
    WebhookBatch,
    WebhookReport,
    WebhookRequest,
    WebhookService,
    WebhookUnauthorized,
    inbound_payload,
)
from tests.service_harness import Harness, application

USER = "447700900000"


def spec(channel: Channel, condition: Condition | None = None, expiry: int | None = None) -> StepSpec:
    return StepSpec(
        channel=channel,
        to={"type": channel.value, "number": USER},
        sender={"type": channel.value, "number": "447700900001"},
        message={"content": {"type": "text", "text": "hello"}},
        condition=condition,
        expiry_time=expiry,
    )


class FakeWebhook:
    """A provider whose next batch the test chooses; `refuse` makes verify fail."""

    name = "fake"

    def __init__(self) -> None:
        self.batch = WebhookBatch()
        self.refuse = False
        self.parsed = 0

    def verify(self, request: WebhookRequest) -> None:
        if self.refuse:
            raise WebhookUnauthorized("bad signature")

    def parse(self, request: WebhookRequest, kind: str) -> WebhookBatch:
        self.parsed += 1
        return self.batch

    def challenge(self, request: WebhookRequest) -> str | None:
        return None


@pytest.fixture
def h() -> Harness:
    return Harness(app=dataclasses.replace(application(), inbound_url="https://example.test/inbound"))


@pytest.fixture
def service(h: Harness) -> WebhookService:
    return WebhookService(h.service, h.repo, h.apps)


REQUEST = WebhookRequest(headers={}, body=b"{}")


def provider_id(h: Harness, uuid: str, index: int) -> str:
    step = h.dispatch(uuid).steps[index]
    assert step.provider_message_id is not None
    return step.provider_message_id


def test_an_unverified_request_applies_nothing(h, service):
    uuid = h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.DELIVERED, 600), spec(Channel.SMS)])
    webhook = FakeWebhook()
    webhook.refuse = True
    webhook.batch = WebhookBatch(statuses=(ProviderStatus(provider_id(h, uuid, 0), StatusEvent(MessageStatus.DELIVERED)),))

    with pytest.raises(WebhookUnauthorized):
        service.receive(webhook, "status", REQUEST)

    assert webhook.parsed == 0
    assert h.dispatch(uuid).status is DispatchStatus.IN_PROGRESS


def test_every_status_in_a_batch_is_applied_and_strangers_are_counted(h, service):
    first = h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.DELIVERED, 600), spec(Channel.SMS)])
    second = h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS)])
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(
        statuses=(
            ProviderStatus(provider_id(h, first, 0), StatusEvent(MessageStatus.DELIVERED)),
            ProviderStatus(provider_id(h, second, 0), StatusEvent(MessageStatus.READ)),
            ProviderStatus("sent-by-someone-else", StatusEvent(MessageStatus.DELIVERED)),
        ),
        ignored=2,
    )

    report = service.receive(webhook, "status", REQUEST)

    assert (report.applied, report.unmatched, report.ignored) == (2, 1, 2)
    assert h.dispatch(first).status is DispatchStatus.COMPLETED
    assert h.dispatch(second).status is DispatchStatus.COMPLETED


def test_a_watermark_applies_to_the_latest_message_sent_at_or_before_it(h, service):
    uuid = h.service.create(h.app, [spec(Channel.MESSENGER, Condition.READ, 600), spec(Channel.SMS)])
    sent = h.repo.find_recipient(h.provider.name, USER)
    assert sent is not None and sent.sent_at is not None
    webhook = FakeWebhook()

    webhook.batch = WebhookBatch(
        recipient_statuses=(RecipientStatus(USER, sent.sent_at - timedelta(seconds=1), MessageStatus.READ),)
    )
    assert service.receive(webhook, "status", REQUEST).unmatched == 1  # read up to before our send
    assert h.dispatch(uuid).status is DispatchStatus.IN_PROGRESS

    webhook.batch = WebhookBatch(recipient_statuses=(RecipientStatus(USER, sent.sent_at, MessageStatus.READ),))
    assert service.receive(webhook, "status", REQUEST).applied == 1
    assert h.dispatch(uuid).status is DispatchStatus.COMPLETED


def test_a_watermark_for_someone_we_never_wrote_to_is_unmatched(h, service):
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(
        recipient_statuses=(RecipientStatus("nobody", h.clock.now(), MessageStatus.DELIVERED),)
    )
    assert service.receive(webhook, "status", REQUEST).unmatched == 1


def _inbound(h: Harness, context: str | None, sender: str = USER) -> InboundMessage:
    return InboundMessage(
        provider_message_id="in-1",
        sender_key=sender,
        to={"type": "whatsapp", "number": "447700900001"},
        from_={"type": "whatsapp", "number": sender},
        content={"type": "text", "text": "yes please"},
        timestamp=h.clock.now(),
        context_message_id=context,
    )


def test_a_reply_is_relayed_to_the_application_that_sent_the_message_it_quotes(h, service):
    uuid = h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS)])
    webhook = FakeWebhook()
    message = _inbound(h, provider_id(h, uuid, 0), sender="someone-else")
    webhook.batch = WebhookBatch(inbound=(message,))

    assert service.receive(webhook, "inbound", REQUEST).relayed == 1

    assert h.callbacks.inbound == [(h.app.application_id, inbound_payload("fake", message))]
    payload = h.callbacks.inbound[0][1]
    assert payload["message"] == {"content": {"type": "text", "text": "yes please"}}
    assert set(payload) == {"message_uuid", "to", "from", "timestamp", "message"}


def test_a_message_quoting_nothing_goes_to_whoever_wrote_to_that_person_last(h, service):
    h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.READ, 600), spec(Channel.SMS)])
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(inbound=(_inbound(h, None),))

    assert service.receive(webhook, "inbound", REQUEST).relayed == 1
    assert [app for app, _ in h.callbacks.inbound] == [h.app.application_id]


def test_a_message_from_a_stranger_is_dropped(h, service):
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(inbound=(_inbound(h, None, sender="stranger"),))

    assert service.receive(webhook, "inbound", REQUEST).relayed == 0
    assert h.callbacks.inbound == []


def test_a_redelivered_inbound_message_keeps_its_message_uuid(h):
    message = _inbound(h, None)
    assert inbound_payload("fake", message)["message_uuid"] == inbound_payload("fake", message)["message_uuid"]
    other = dataclasses.replace(message, provider_message_id="in-2")
    assert inbound_payload("fake", message)["message_uuid"] != inbound_payload("fake", other)["message_uuid"]


# --- large batches: queued, and applied chunk by chunk (issue 14, finding 5) ---------------------


class FakeQueue:
    """Keeps what is put on it; hands back the events named in `too_large`."""

    def __init__(self, too_large: tuple[str, ...] = ()) -> None:
        self.puts: list[tuple[str, tuple]] = []
        self.too_large = too_large

    def put(self, provider, events):
        kept = tuple(e for e in events if e.provider_message_id not in self.too_large)
        self.puts.append((provider, kept))
        return [e for e in events if e.provider_message_id in self.too_large]


def _statuses(h: Harness, uuids: list[str]) -> tuple[ProviderStatus, ...]:
    return tuple(ProviderStatus(provider_id(h, u, 0), StatusEvent(MessageStatus.DELIVERED)) for u in uuids)


def _dispatches(h: Harness, count: int) -> list[str]:
    return [h.service.create(h.app, [spec(Channel.WHATSAPP, Condition.DELIVERED, 600), spec(Channel.SMS)]) for _ in range(count)]


def test_a_batch_over_the_inline_limit_is_queued_whole_and_nothing_applied_in_the_request(h):
    queue = FakeQueue()
    service = WebhookService(h.service, h.repo, h.apps, queue=queue, inline_limit=2)
    uuids = _dispatches(h, 3)
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(statuses=_statuses(h, uuids), inbound=(_inbound(h, None),), ignored=1)

    report = service.receive(webhook, "status", REQUEST)

    assert report == WebhookReport(ignored=1, queued=4)
    assert queue.puts == [("fake", webhook.batch.events)]
    assert all(h.dispatch(u).status is DispatchStatus.IN_PROGRESS for u in uuids)
    assert h.callbacks.inbound == []


def test_a_batch_at_the_inline_limit_is_applied_in_the_request(h):
    queue = FakeQueue()
    service = WebhookService(h.service, h.repo, h.apps, queue=queue, inline_limit=2)
    uuids = _dispatches(h, 2)
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(statuses=_statuses(h, uuids))

    assert service.receive(webhook, "status", REQUEST) == WebhookReport(applied=2)
    assert queue.puts == []
    assert all(h.dispatch(u).status is DispatchStatus.COMPLETED for u in uuids)


def test_an_event_too_large_for_the_queue_is_applied_in_the_request(h):
    uuids = _dispatches(h, 3)
    statuses = _statuses(h, uuids)
    queue = FakeQueue(too_large=(statuses[1].provider_message_id,))
    service = WebhookService(h.service, h.repo, h.apps, queue=queue, inline_limit=1)
    webhook = FakeWebhook()
    webhook.batch = WebhookBatch(statuses=statuses)

    assert service.receive(webhook, "status", REQUEST) == WebhookReport(applied=1, queued=2)
    assert [h.dispatch(u).status for u in uuids] == [
        DispatchStatus.IN_PROGRESS, DispatchStatus.COMPLETED, DispatchStatus.IN_PROGRESS,
    ]


class Flaky:
    """Makes `apply_status` fail once for the message ids in `failing`."""

    def __init__(self, h: Harness, monkeypatch, *failing: str) -> None:
        self.failing = set(failing)
        real = h.service.apply_status

        def apply_status(provider, provider_message_id, *args, **kwargs):
            if provider_message_id in self.failing:
                self.failing.discard(provider_message_id)
                raise RuntimeError("throttled")
            return real(provider, provider_message_id, *args, **kwargs)

        monkeypatch.setattr(h.service, "apply_status", apply_status)


def test_a_chunk_that_fails_part_way_has_the_rest_requeued_and_relays_nothing_twice(h, service, monkeypatch):
    uuids = _dispatches(h, 2)
    first, second = _statuses(h, uuids)
    before, after = _inbound(h, None), dataclasses.replace(_inbound(h, None), provider_message_id="in-2")
    chunk = (before, first, second, after)
    Flaky(h, monkeypatch, second.provider_message_id)
    requeued: list[tuple[str, tuple]] = []

    report = service.apply("fake", chunk, lambda provider, rest: requeued.append((provider, tuple(rest))))

    assert report == WebhookReport(applied=1, relayed=1, queued=2)
    assert requeued == [("fake", (second, after))]
    assert h.dispatch(uuids[1]).status is DispatchStatus.IN_PROGRESS

    # The queue redelivers the rest, not the chunk: each message is relayed once.
    assert service.apply("fake", requeued[0][1], requeued.append) == WebhookReport(applied=1, relayed=1)
    assert all(h.dispatch(u).status is DispatchStatus.COMPLETED for u in uuids)
    assert [payload["message_uuid"] for _, payload in h.callbacks.inbound] == [
        inbound_payload("fake", before)["message_uuid"],
        inbound_payload("fake", after)["message_uuid"],
    ]
    assert len(requeued) == 1


def test_a_chunk_that_fails_at_its_first_event_raises_for_the_queue_to_redeliver(h, service, monkeypatch):
    uuids = _dispatches(h, 2)
    chunk = _statuses(h, uuids)
    Flaky(h, monkeypatch, chunk[0].provider_message_id)
    requeued: list = []

    with pytest.raises(RuntimeError):
        service.apply("fake", chunk, lambda provider, rest: requeued.append(rest))

    assert requeued == []  # SQS keeps the message, counts the receive, and dead-letters it at last
    assert service.apply("fake", chunk, requeued.append) == WebhookReport(applied=2)


def test_without_a_queue_to_requeue_on_a_failure_part_way_escapes(h, service, monkeypatch):
    uuids = _dispatches(h, 2)
    chunk = _statuses(h, uuids)
    Flaky(h, monkeypatch, chunk[1].provider_message_id)

    with pytest.raises(RuntimeError):
        service.apply("fake", chunk)
