"""The Messenger provider's credentials, read once from the provider's secret (or environment).

Keys (lower case): `page_access_token` to send, `app_secret` to verify webhook signatures (and to
sign Graph calls with `appsecret_proof`), `verify_token` for Meta's subscription handshake, and
optionally `api_version`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: The Graph API version Meta's Send API reference uses (channels.md §2.1). Meta keeps a version
#: for about two years; set `api_version` to move on without a deploy.
DEFAULT_API_VERSION = "v25.0"

#: Keys every working deployment needs; `api_version` has a default.
REQUIRED_KEYS = ("page_access_token", "app_secret", "verify_token")

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"v?(\d+\.\d+)")


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

        version = _VERSION.fullmatch(value("api_version"))
        if value("api_version") and not version:
            logger.warning(
                "messenger api_version is not like v25.0; using the default",
                extra={"api_version": value("api_version")[:20], "default": DEFAULT_API_VERSION},
            )
        return cls(
            page_access_token=value("page_access_token"),
            app_secret=value("app_secret"),
            verify_token=value("verify_token"),
            # "25.0" and "v25.0" both mean v25.0; anything else falls back to the default.
            api_version=f"v{version.group(1)}" if version else DEFAULT_API_VERSION,
        )

    def missing(self) -> list[str]:
        """The credential keys that are not set, for the start-up warning."""
        return [key for key in REQUIRED_KEYS if not getattr(self, key)]
