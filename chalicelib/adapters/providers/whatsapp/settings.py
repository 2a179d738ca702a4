"""The WhatsApp provider's credentials, read once from the provider's secret (or environment).

Keys (lower case): `access_token` and `phone_number_id` to send, `app_secret` to verify webhook
signatures, `verify_token` for Meta's subscription handshake, and optionally `api_version`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.adapters.providers import meta

#: The Graph API version the reference OpenAPI describes (business-messaging-api_v23.0). Meta
#: keeps a version for about two years; set `api_version` to move on without a deploy.
DEFAULT_API_VERSION = "v23.0"


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

        return cls(
            access_token=value("access_token"),
            phone_number_id=value("phone_number_id"),
            app_secret=value("app_secret"),
            verify_token=value("verify_token"),
            api_version=meta.graph_api_version("whatsapp", value("api_version"), DEFAULT_API_VERSION),
        )

    def missing(self) -> list[str]:
        """The credential keys that are not set, for the start-up warning."""
        keys = ("access_token", "phone_number_id", "app_secret", "verify_token")
        return [key for key in keys if not getattr(self, key)]
