"""Meta WhatsApp Cloud API: send over Graph, statuses and user messages from Meta's webhook.

`build(context)` is what `chalicelib.bootstrap.PROVIDER_MODULES` calls. Modules: `settings`
(credentials), `outbound` (request bodies), `send` (the call and its errors), `codes` (status
and error tables), `payload` (webhook shape), `webhook` (signature, handshake, parsing) and
`inbound` (user messages in v0.1 terms). Operator docs: docs/providers/whatsapp.md.
"""
from __future__ import annotations

import logging

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.whatsapp.provider import WhatsAppProvider

__all__ = ["WhatsAppProvider", "build"]

logger = logging.getLogger(__name__)


def build(context: ProviderContext) -> WhatsAppProvider:
    """The provider for these credentials; warns once, here, about any that are missing."""
    provider = WhatsAppProvider(context)
    missing = provider.settings.missing()
    if missing:
        # Names only. Without app_secret every webhook is refused (401); without verify_token
        # Meta's handshake is (403); without the other two every send fails over at once.
        logger.warning("whatsapp credentials missing: %s", ", ".join(missing), extra={"missing": missing})
    return provider
