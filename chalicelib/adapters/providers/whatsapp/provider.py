"""The WhatsApp Cloud API provider: one object that sends (ChannelProvider) and hears back
(ChannelWebhook), so both sides share one set of credentials."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.whatsapp import webhook
from chalicelib.adapters.providers.whatsapp.outbound import (
    CONTENT_TYPES,
    UnsupportedContent,
    message_body,
)
from chalicelib.adapters.providers.whatsapp.send import post_message
from chalicelib.adapters.providers.whatsapp.settings import WhatsAppSettings
from chalicelib.domain.model import Channel, Step
from chalicelib.service.message_hints import reference
from chalicelib.service.ports import ProviderError
from chalicelib.service.webhooks import WebhookBatch, WebhookKind, WebhookRequest

#: How many sends' wa_ids to remember until `recipient_key` asks (it asks right after `send`).
WA_ID_MEMORY = 1024


class WhatsAppProvider:
    name = "whatsapp"
    content_types: Mapping[Channel, frozenset[str]] = CONTENT_TYPES

    def __init__(self, context: ProviderContext) -> None:
        self.settings = WhatsAppSettings.from_credentials(context.credentials)
        self._session = context.session
        self._timeout = context.timeout
        self._wa_ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    # --- ChannelProvider ---------------------------------------------------------------------

    def send(self, dispatch_uuid: str, step: Step) -> str:
        try:
            body = message_body(step.spec)
        except UnsupportedContent as exc:
            raise ProviderError(str(exc), permanent=True, code="unsupported_content") from None
        # Echoed in every status of the message: the status then needs no index read.
        body["biz_opaque_callback_data"] = reference(dispatch_uuid, step.index)
        sent = post_message(self._session, self._timeout, self.settings, body)
        if sent.wa_id:
            with self._lock:
                self._wa_ids[step.message_uuid] = sent.wa_id
                while len(self._wa_ids) > WA_ID_MEMORY:
                    self._wa_ids.popitem(last=False)
        return sent.message_id

    def recipient_key(self, step: Step) -> str | None:
        """The person's wa_id: what `statuses[].recipient_id` and `messages[].from` carry.

        Usually the digits we sent to; for some numbers (Brazil's ninth digit, Mexico's "1")
        Meta's `contacts[].wa_id` differs, and replies come from that one.
        """
        with self._lock:
            wa_id = self._wa_ids.get(step.message_uuid)
        number = step.spec.to.get("number")
        return wa_id or (str(number) if number else None)

    # --- ChannelWebhook ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        webhook.verify(self.settings.app_secret, request)

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        # Meta has one callback URL per app and mixes statuses and messages in it: both of our
        # routes take everything, whichever one the app is configured with.
        return webhook.parse(request.body)

    def challenge(self, request: WebhookRequest) -> str | None:
        return webhook.challenge(self.settings.verify_token, request)
