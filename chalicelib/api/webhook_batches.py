"""What the `apply_webhooks` function runs for each message of the webhook queue: one chunk of a
large webhook batch, verified and normalised when the webhook was received (`webhook_codec`).

The chunk is applied with `WebhookService.apply`, the same code a small batch runs in the
request. A chunk that fails at its first event raises, so SQS redelivers it (and after the
queue's `maxReceiveCount` moves it to the dead-letter queue); one that fails part way has the
rest queued again, so the events already applied (inbound relays above all) are not repeated.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from chalicelib.adapters import webhook_codec

logger = logging.getLogger(__name__)


def run_webhook_chunks(bodies: Iterable[str]) -> dict[str, Any]:
    """Apply each queued chunk; raises (for redelivery) when one fails at its first event."""
    from chalicelib.bootstrap import get_services

    services = get_services()
    # Only a real queue can hold the rest of a chunk for later (`SqsWebhookQueue.requeue`).
    requeue = getattr(services.webhook_queue, "requeue", None)
    counts = {"chunks": 0, "applied": 0, "unmatched": 0, "relayed": 0, "requeued": 0}
    for body in bodies:
        try:
            chunk = webhook_codec.decode(body)
        except webhook_codec.ChunkInvalid:
            # Only this code writes the queue: an unreadable chunk is a deploy mismatch. Raising
            # keeps it, for the dead-letter queue and a redrive once a fixed version runs.
            logger.error("invalid webhook queue message")
            raise
        report = services.webhook_service.apply(chunk.provider, chunk.events, requeue)
        logger.info(
            "webhook chunk applied",
            extra={
                "provider": chunk.provider,
                "applied": report.applied,
                "unmatched": report.unmatched,
                "relayed": report.relayed,
                "requeued": report.queued,
            },
        )
        counts["chunks"] += 1
        counts["applied"] += report.applied
        counts["unmatched"] += report.unmatched
        counts["relayed"] += report.relayed
        counts["requeued"] += report.queued
    return counts
