"""The WhatsApp provider's credentials, read once from the provider's secret (or environment).

Keys (lower case): `access_token` and `phone_number_id` to send, `app_secret` to verify webhook
signatures, `verify_token` for Meta's subscription handshake, and optionally `api_version`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: The Graph API version the reference OpenAPI describes (business-messaging-api_v23.0). Meta
#: keeps a version for about two years; set `api_version` to move on without a deploy.
DEFAULT_API_VERSION = "v23.0"

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"v?(\d+\.\d+)")


@dataclass(frozen=True)
class WhatsAppSettings:
    access_token: str = ""
    phone_number_id: str = ""
    app_secret: str = ""
    verify_token: str = ""
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str]) -> WhatsAppSettings:
        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        version = _VERSION.fullmatch(value("api_version"))
        if value("api_version") and not version:
            logger.warning(
                "whatsapp api_version is not like v23.0; using the default",
                extra={"api_version": value("api_version")[:20], "default": DEFAULT_API_VERSION},
            )
        return cls(
            access_token=value("access_token"),
            phone_number_id=value("phone_number_id"),
            app_secret=value("app_secret"),
            verify_token=value("verify_token"),
            # "23.0" and "v23.0" both mean v23.0; anything else falls back to the default.
            api_version=f"v{version.group(1)}" if version else DEFAULT_API_VERSION,
        )

    def missing(self) -> list[str]:
        """The credential keys that are not set, for the start-up warning."""
        keys = ("access_token", "phone_number_id", "app_secret", "verify_token")
        return [key for key in keys if not getattr(self, key)]
