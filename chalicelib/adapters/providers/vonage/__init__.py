"""Vonage Messages API v1: SMS, MMS, WhatsApp, Messenger and Viber through one provider.

`build(context)` returns one `VonageProvider`, which is both the `ChannelProvider` (send, recipient
keys) and the `ChannelWebhook` (verify, parse) for `POST /webhooks/vonage/status|inbound`.
Setup, credentials and status mapping: docs/providers/vonage.md.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.domain.model import Channel, Step
from chalicelib.service.ports import ProviderError
from chalicelib.service.webhooks import WebhookBatch, WebhookKind, WebhookRequest

from . import auth, send, webhook
from .addresses import address_value, recipient_key
from .settings import VonageSettings

__all__ = ["VonageProvider", "build"]

logger = logging.getLogger(__name__)

NAME = "vonage"


class VonageProvider:
    name = NAME
    content_types: Mapping[Channel, frozenset[str]] = send.CONTENT_TYPES

    def __init__(self, context: ProviderContext) -> None:
        self._settings = VonageSettings.from_credentials(context.credentials)
        self._session = context.session
        self._clock = context.clock
        self._timeout = context.timeout

    # --- ChannelProvider ----------------------------------------------------------------------

    def send(self, dispatch_uuid: str, step: Step) -> str:
        settings = self._settings
        if not settings.application_id or not settings.private_key:
            # Every later send would fail the same way: move on to the next channel now.
            raise ProviderError(
                "Vonage application_id or private_key is not configured",
                permanent=True,
                code="not_configured",
            )
        try:
            body = send.message_body(step, dispatch_uuid)
        except send.UnsupportedContent as exc:
            raise ProviderError(str(exc), permanent=True, code="unsupported_content") from None
        try:
            token = auth.application_token(settings.application_id, settings.private_key, self._clock())
        except ValueError as exc:
            raise ProviderError(str(exc), permanent=True, code="bad_private_key") from None
        message_uuid = send.post_message(
            self._session, settings.messages_url, token, body, self._timeout
        )
        logger.info(
            "vonage accepted message",
            extra={"dispatch_uuid": dispatch_uuid, "step_index": step.index, "message_uuid": message_uuid},
        )
        return message_uuid

    def missing_credentials(self) -> list[str]:
        return self._settings.missing()

    def recipient_key(self, step: Step) -> str | None:
        address = address_value(step.spec.to)
        return recipient_key(step.channel, address) if address else None

    # --- ChannelWebhook -----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        auth.verify_webhook(request.headers, request.body, self._settings.signature_secret, self._clock())

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        return webhook.parse(request.body, kind, self._clock)

    def challenge(self, request: WebhookRequest) -> str | None:
        return None  # Vonage has no GET handshake: webhooks are set in the dashboard


def build(context: ProviderContext) -> VonageProvider:
    provider = VonageProvider(context)
    missing = provider.missing_credentials()
    if missing:
        # Names only, never values. Without signature_secret every webhook is refused (401).
        logger.warning(
            "vonage credentials missing: %s", ", ".join(missing), extra={"missing": missing}
        )
    return provider
