"""The webhook queue on Amazon SQS: each message is one chunk of verified events (`webhook_codec`).

The `apply_webhooks` function consumes the queue one message per invocation and applies the
chunk with `WebhookService.apply`. Chunks go out with SendMessageBatch, ten messages (and
at most 256 KiB) a call, so a webhook of 20,000 statuses costs the request about 20 calls.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from chalicelib.adapters import webhook_codec
from chalicelib.service.webhooks import WebhookEvent

logger = logging.getLogger(__name__)

#: SendMessageBatch's limits: entries per call, and the sum of their bodies.
BATCH_ENTRIES = 10
BATCH_BYTES = webhook_codec.MAX_MESSAGE_BYTES
#: How long the rest of a chunk that failed part way waits before it is tried again: long
#: enough for a throttled table or a briefly unreachable dependency to recover.
REQUEUE_DELAY_SECONDS = 30


class WebhookQueueRefused(Exception):
    """SQS did not take every chunk of a batch (after one more try of those it refused)."""


class SqsWebhookQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def put(self, provider: str, events: Sequence[WebhookEvent]) -> Sequence[WebhookEvent]:
        return self._put(provider, events, delay=0)

    def requeue(self, provider: str, events: Sequence[WebhookEvent]) -> None:
        """Queue again the rest of a chunk that failed part way, after a pause."""
        self._put(provider, events, delay=REQUEUE_DELAY_SECONDS)

    def _put(self, provider: str, events: Sequence[WebhookEvent], delay: int) -> Sequence[WebhookEvent]:
        bodies, too_large = webhook_codec.chunk_bodies(provider, events)
        for group in _groups(bodies):
            self._send(group, delay)
        return too_large

    def _send(self, bodies: list[str], delay: int) -> None:
        entries = [
            {"Id": str(i), "MessageBody": body, "DelaySeconds": delay} for i, body in enumerate(bodies)
        ]
        failed = self._client.send_message_batch(QueueUrl=self._url, Entries=entries).get("Failed", [])
        if failed:
            # SQS fails entries one by one (throttling, an internal error): send those once more.
            again = {entry["Id"] for entry in failed}
            retry = [entry for entry in entries if entry["Id"] in again]
            failed = self._client.send_message_batch(QueueUrl=self._url, Entries=retry).get("Failed", [])
        if failed:
            codes = sorted({str(entry.get("Code", "")) for entry in failed})
            raise WebhookQueueRefused(f"{len(failed)} chunks refused: {', '.join(codes)}")


def _groups(bodies: list[str]) -> list[list[str]]:
    """The bodies in calls of at most BATCH_ENTRIES entries and BATCH_BYTES bytes, in order."""
    groups: list[list[str]] = []
    size = 0
    for body in bodies:
        if not groups or len(groups[-1]) >= BATCH_ENTRIES or size + len(body) > BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += len(body)
    return groups
