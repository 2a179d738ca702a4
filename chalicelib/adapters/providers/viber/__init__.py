"""Viber REST Bot API (chatapi.viber.com): the `viber` provider for the viber_service_msg channel.

Credentials (Secrets Manager `<prefix>/providers/viber`, or DISPATCH_VIBER_<KEY> locally):
`auth_token` (sends and the webhook signature key), optional `sender_name`, `sender_avatar` and
`account_id`. See docs/providers/viber.md.
"""
from __future__ import annotations

import logging

from chalicelib.adapters.providers.context import ProviderContext
from chalicelib.adapters.providers.viber.provider import ViberProvider

__all__ = ["ViberProvider", "build"]

logger = logging.getLogger(__name__)


def build(context: ProviderContext) -> ViberProvider:
    """The provider; warns once, at build, when it can neither send nor accept a callback."""
    if not context.credentials.get("auth_token"):
        logger.warning(
            "viber credential auth_token is missing: every send fails and every webhook is refused",
            extra={"provider": "viber", "missing": "auth_token"},
        )
    return ViberProvider(context)
