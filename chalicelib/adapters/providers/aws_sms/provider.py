"""The aws_sms provider: one object that sends SMS through AWS End User Messaging
(ChannelProvider) and hears back through SNS (ChannelWebhook), on one set of settings."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.adapters.providers.aws_sms.certificates import (
    PROCESS_CACHE,
    CertificateCache,
    SigningCertificates,
)
from chalicelib.adapters.providers.aws_sms.send import TextSender, text_message_params
from chalicelib.adapters.providers.aws_sms.settings import AwsSmsSettings
from chalicelib.adapters.providers.aws_sms.webhook import SnsWebhook
from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.domain.model import Channel, Step
from chalicelib.service.ports import ProviderError
from chalicelib.service.webhooks import WebhookBatch, WebhookKind, WebhookRequest

#: SendTextMessage carries text only. MMS (SendMediaMessage, media from S3) is not implemented,
#: so an mms route to aws_sms carries nothing and validation refuses every mms message.
CONTENT_TYPES: Mapping[Channel, frozenset[str]] = {Channel.SMS: frozenset({"text"})}


class AwsSmsProvider:
    name = "aws_sms"
    content_types: Mapping[Channel, frozenset[str]] = CONTENT_TYPES

    def __init__(self, context: ProviderContext, certificates: CertificateCache = PROCESS_CACHE) -> None:
        self.settings = AwsSmsSettings.from_credentials(context.credentials)
        # boto3.client takes keyword arguments (config, region_name) the port's type leaves out.
        aws_client: Callable[..., Any] = context.aws_client
        self._sender = TextSender(self.settings, aws_client, context.timeout)
        self._webhook = SnsWebhook(
            self.settings,
            SigningCertificates(context.session, context.timeout, certificates),
            context.clock,
            context.session,
            context.timeout,
        )

    # --- ChannelProvider ---------------------------------------------------------------------

    def send(self, dispatch_uuid: str, step: Step) -> str:
        if step.channel is not Channel.SMS:
            raise ProviderError(
                f"aws_sms sends sms, not {step.channel.value}", permanent=True, code="unsupported_channel"
            )
        params = text_message_params(
            self.settings, dispatch_uuid, step.index, step.message_uuid, step.spec
        )
        return self._sender.send(params)

    def recipient_key(self, step: Step) -> str | None:
        """The recipient's E.164 digits without `+`: how a two-way SMS names its sender once
        the `+` is dropped, so a reply finds the latest message sent to that number."""
        number = step.spec.to.get("number")
        return str(number) if number else None

    # --- ChannelWebhook ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        self._webhook.verify(request)

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        return self._webhook.parse(request, kind)

    def challenge(self, request: WebhookRequest) -> str | None:
        return self._webhook.challenge(request)
