"""A webhook queue inside the process: a batch is applied at once, chunk by chunk.

For the `inline` mode (tests through `chalice.test.Client`, the in-memory stack): no queue is
configured, so a large batch is applied in the request as before. Chunks still go through the
codec, so what is applied is exactly what SQS would have carried.
"""
from __future__ import annotations

from collections.abc import Sequence

from chalicelib.adapters import webhook_codec
from chalicelib.service.webhooks import WebhookEvent, WebhookService


class InlineWebhookQueue:
    def __init__(self) -> None:
        self._service: WebhookService | None = None

    def bind(self, service: WebhookService) -> None:
        """The service whose `apply` this queue runs (built after the queue it uses)."""
        self._service = service

    def put(self, provider: str, events: Sequence[WebhookEvent]) -> Sequence[WebhookEvent]:
        assert self._service is not None, "bind() first"
        bodies, too_large = webhook_codec.chunk_bodies(provider, events)
        for body in bodies:
            chunk = webhook_codec.decode(body)
            # No requeue: a failure escapes to the request, and the provider retries the batch.
            self._service.apply(chunk.provider, chunk.events)
        return too_large
