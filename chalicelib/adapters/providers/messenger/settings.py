"""The Messenger provider's credentials, read once from the provider's secret (or environment).

Keys (lower case): `page_access_token` to send, `app_secret` to verify webhook signatures (and to
sign Graph calls with `appsecret_proof`), `verify_token` for Meta's subscription handshake, and
optionally `api_version`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.adapters.providers import meta

#: The Graph API version Meta's Send API reference uses (channels.md §2.1). Meta keeps a version
#: for about two years; set `api_version` to move on without a deploy.
DEFAULT_API_VERSION = "v25.0"

#: Keys every working deployment needs; `api_version` has a default.
REQUIRED_KEYS = ("page_access_token", "app_secret", "verify_token")


@dataclass(frozen=True)
class MessengerSettings:
    page_access_token: str = ""
    app_secret: str = ""
    verify_token: str = ""
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str]) -> MessengerSettings:
        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        return cls(
            page_access_token=value("page_access_token"),
            app_secret=value("app_secret"),
            verify_token=value("verify_token"),
            api_version=meta.graph_api_version("messenger", value("api_version"), DEFAULT_API_VERSION),
        )

    def missing(self) -> list[str]:
        """The credential keys that are not set, for the start-up warning."""
        return [key for key in REQUIRED_KEYS if not getattr(self, key)]
