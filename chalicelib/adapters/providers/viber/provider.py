"""The Viber bot provider: sends viber_service_msg messages and reads Viber's callbacks."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.viber import send, webhook
from chalicelib.domain.model import Channel, Step
from chalicelib.service.ports import ProviderError
from chalicelib.service.webhooks import WebhookBatch, WebhookKind, WebhookRequest


class ViberProvider:
    """`ChannelProvider` and `ChannelWebhook` for the Viber REST Bot API."""

    name = "viber"
    #: What a bot message can carry (see send.CONTENT for why not video, file or audio).
    content_types: Mapping[Channel, frozenset[str]] = {Channel.VIBER: frozenset(send.CONTENT)}
    #: The (from, to) address fields this provider needs: a bot sends to a Viber user id, not to
    #: the phone number the Dispatch contract puts in `to`. Validation does not read this yet.
    address_fields: Mapping[Channel, tuple[str, str]] = {Channel.VIBER: ("id", "id")}

    def __init__(self, context: ProviderContext) -> None:
        self._credentials = context.credentials
        self._session = context.session
        self._clock = context.clock
        self._timeout = context.timeout
        account_id = context.credentials.get("account_id")
        #: Our own address, as an inbound message's `to`.
        self._bot: dict[str, Any] = {"type": Channel.VIBER.value}
        if account_id:
            self._bot["id"] = account_id

    def send(self, dispatch_uuid: str, step: Step) -> str:
        auth_token = self._credentials.get("auth_token")
        if not auth_token:
            raise ProviderError("no viber auth_token is configured", permanent=True, code=send.NOT_CONFIGURED)
        body = send.build_message(step, self._credentials)
        return send.post_message(self._session, self._timeout, auth_token, body)

    def recipient_key(self, step: Step) -> str | None:
        # Callbacks name the user by the same Viber user id the message was sent to.
        return send.recipient(step)

    def verify(self, request: WebhookRequest) -> None:
        webhook.verify(request, self._credentials.get("auth_token"), self._clock())

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        # One webhook URL per bot: whichever route it is set to receives every event.
        return webhook.parse(request.body, self._bot)

    def challenge(self, request: WebhookRequest) -> str | None:
        return None  # Viber checks a new webhook with a signed POST (event "webhook"), not a GET
