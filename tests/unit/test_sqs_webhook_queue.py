"""The SQS webhook queue: chunks go out ten to a SendMessageBatch and under its 256 KiB, entries
SQS fails are sent once more, and what still fails is an error (the provider then retries)."""
from __future__ import annotations

import pytest

from chalicelib.adapters import sqs_webhook_queue, webhook_codec
from chalicelib.adapters.sqs_webhook_queue import SqsWebhookQueue, WebhookQueueRefused
from chalicelib.domain.model import MessageStatus, StatusEvent
from chalicelib.service.webhooks import ProviderStatus


class FakeSqs:
    def __init__(self, fail: list[set[str]] | None = None) -> None:
        self.calls: list[list[dict]] = []
        self.fail = fail or []  # per call, the entry ids to fail

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls.append(Entries)
        failing = self.fail.pop(0) if self.fail else set()
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in failing],
            "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in Entries if e["Id"] in failing],
        }


def statuses(count: int, reason: str | None = None) -> list[ProviderStatus]:
    return [
        ProviderStatus(f"wamid.{i}", StatusEvent(MessageStatus.REJECTED, "131047", reason)) for i in range(count)
    ]


def test_every_event_goes_out_in_order_ten_chunks_a_call():
    sqs = FakeSqs()
    events = statuses(2_050)
    assert SqsWebhookQueue(sqs, "url").put("whatsapp", events) == []
    assert [len(call) for call in sqs.calls] == [10, 10, 1]
    sent = [e for call in sqs.calls for entry in call for e in webhook_codec.decode(entry["MessageBody"]).events]
    assert sent == events
    assert {entry["DelaySeconds"] for call in sqs.calls for entry in call} == {0}


def test_a_call_keeps_under_the_batch_size_limit():
    sqs = FakeSqs()
    SqsWebhookQueue(sqs, "url").put("whatsapp", statuses(1_000, reason="r" * 1_500))
    for call in sqs.calls:
        assert sum(len(entry["MessageBody"]) for entry in call) <= 256 * 1024
    assert len(sqs.calls) > 1_000 // (webhook_codec.MAX_EVENTS_PER_CHUNK * 10)


def test_entries_sqs_failed_are_sent_once_more():
    sqs = FakeSqs(fail=[{"1", "3"}])
    SqsWebhookQueue(sqs, "url").put("whatsapp", statuses(500))
    assert [[entry["Id"] for entry in call] for call in sqs.calls] == [["0", "1", "2", "3", "4"], ["1", "3"]]


def test_entries_that_fail_twice_are_an_error():
    sqs = FakeSqs(fail=[{"2"}, {"2"}])
    with pytest.raises(WebhookQueueRefused):
        SqsWebhookQueue(sqs, "url").put("whatsapp", statuses(300))


def test_the_rest_of_a_failed_chunk_waits_before_it_comes_round_again():
    sqs = FakeSqs()
    SqsWebhookQueue(sqs, "url").requeue("whatsapp", statuses(3))
    ((entry,),) = sqs.calls
    assert entry["DelaySeconds"] == sqs_webhook_queue.REQUEUE_DELAY_SECONDS > 0
