"""Facebook Messenger: send over the Graph Send API, receipts and user messages from Meta's
Page webhook.

`build(context)` is what `chalicelib.bootstrap.PROVIDER_MODULES` calls. Modules: `settings`
(credentials), `outbound` (request bodies, addresses), `send` (the call and its errors), `codes`
(event and error tables), `payload` (webhook shape), `webhook` (signature, handshake, parsing)
and `inbound` (user messages in v0.1 terms). Operator docs: docs/providers/messenger.md.
"""
from __future__ import annotations

import logging

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.messenger.provider import MessengerProvider

__all__ = ["MessengerProvider", "build"]

logger = logging.getLogger(__name__)


def build(context: ProviderContext) -> MessengerProvider:
    """The provider for these credentials; warns once, here, about any that are missing."""
    provider = MessengerProvider(context)
    missing = provider.settings.missing()
    if missing:
        # Names only. Without app_secret every webhook is refused (401); without verify_token
        # Meta's handshake is (403); without page_access_token every send fails over at once.
        logger.warning("messenger credentials missing: %s", ", ".join(missing), extra={"missing": missing})
    return provider
