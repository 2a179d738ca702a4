"""The Messenger provider: one object that sends (ChannelProvider) and hears back
(ChannelWebhook), so both sides share one set of credentials."""
from __future__ import annotations

import logging
from collections.abc import Mapping

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.messenger import outbound, webhook
from chalicelib.adapters.providers.messenger.outbound import CONTENT_TYPES, UnsupportedContent
from chalicelib.adapters.providers.messenger.send import post_message
from chalicelib.adapters.providers.messenger.settings import MessengerSettings
from chalicelib.domain.model import Channel, Step
from chalicelib.service.ports import ProviderError
from chalicelib.service.webhooks import WebhookBatch, WebhookKind, WebhookRequest

logger = logging.getLogger(__name__)


class MessengerProvider:
    name = "messenger"
    content_types: Mapping[Channel, frozenset[str]] = CONTENT_TYPES

    def __init__(self, context: ProviderContext) -> None:
        self.settings = MessengerSettings.from_credentials(context.credentials)
        self._session = context.session
        self._timeout = context.timeout

    # --- ChannelProvider ---------------------------------------------------------------------

    def send(self, dispatch_uuid: str, step: Step) -> str:
        try:
            page = outbound.page_id(step.spec)
            body = outbound.message_body(step.spec)
        except UnsupportedContent as exc:
            raise ProviderError(str(exc), permanent=True, code="unsupported_content") from None
        content = step.spec.message.get("content") or {}
        media = content.get(str(content.get("type")))
        if isinstance(media, Mapping) and media.get("caption"):
            # Send API attachments have no caption; say so without repeating it.
            logger.info("messenger caption not sent", extra={"message_uuid": step.message_uuid})
        return post_message(self._session, self._timeout, self.settings, page, body)

    def recipient_key(self, step: Step) -> str | None:
        """`<page id>:<PSID>`: how delivery, read and message webhooks name the person."""
        return outbound.recipient_key(step.spec)

    # --- ChannelWebhook ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        webhook.verify(self.settings.app_secret, request)

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        # A Page subscription has one callback URL and mixes receipts and messages in it: both
        # of our routes take everything, whichever one the app is configured with.
        return webhook.parse(request.body)

    def challenge(self, request: WebhookRequest) -> str | None:
        return webhook.challenge(self.settings.verify_token, request)
