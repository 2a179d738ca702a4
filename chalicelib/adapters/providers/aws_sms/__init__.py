"""AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): send text, hear back through SNS.

`build(context)` is what `chalicelib.bootstrap.PROVIDER_MODULES` calls. Modules: `settings`
(credentials), `send` (the SendTextMessage call and its errors), `codes` (event and error
tables), `sns` (the SNS envelope and its signature), `certificates` (SNS signing certificates),
`events` (delivery events and inbound SMS in our terms) and `webhook` (verify and parse).
Operator docs: docs/providers/aws_sms.md.
"""
from __future__ import annotations

import logging

from chalicelib.adapters.providers.aws_sms.provider import AwsSmsProvider
from chalicelib.adapters.providers.context import ProviderContext

__all__ = ["AwsSmsProvider", "build"]

logger = logging.getLogger(__name__)


def build(context: ProviderContext) -> AwsSmsProvider:
    """The provider for these credentials; warns once, here, about any that are missing."""
    provider = AwsSmsProvider(context)
    missing = provider.settings.missing()
    if missing:
        # Names only. Without topic_arn every webhook is refused (401); without
        # configuration_set every send fails over at once (no event could ever come back).
        logger.warning("aws_sms credentials missing: %s", ", ".join(missing), extra={"missing": missing})
    return provider
