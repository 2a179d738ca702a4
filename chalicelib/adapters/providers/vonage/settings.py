"""The Vonage credentials this provider reads, and what is missing from them.

One JSON secret `<prefix>/providers/vonage` on AWS (or `DISPATCH_VONAGE_<KEY>` locally) holds:
`application_id` and `private_key` (the Vonage application's RS256 key pair, for sending),
`signature_secret` (the account's webhook signature secret, for verifying callbacks) and,
optionally, `api_base` (a regional host such as https://api-eu.vonage.com).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_API_BASE = "https://api.nexmo.com"

#: What sending needs, and what verifying webhooks needs: each named in the warning if absent.
SEND_KEYS = ("application_id", "private_key")
WEBHOOK_KEYS = ("signature_secret",)


@dataclass(frozen=True)
class VonageSettings:
    application_id: str | None
    private_key: str | None
    signature_secret: str | None
    api_base: str

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str]) -> VonageSettings:
        def get(key: str) -> str | None:
            value = credentials.get(key, "").strip()
            return value or None

        return cls(
            application_id=get("application_id"),
            private_key=_pem(get("private_key")),
            signature_secret=get("signature_secret"),
            api_base=(get("api_base") or DEFAULT_API_BASE).rstrip("/"),
        )

    @property
    def messages_url(self) -> str:
        return f"{self.api_base}/v1/messages"

    def missing(self) -> list[str]:
        """The credential keys that are not set, sending's first."""
        values = {
            "application_id": self.application_id,
            "private_key": self.private_key,
            "signature_secret": self.signature_secret,
        }
        return [key for key in (*SEND_KEYS, *WEBHOOK_KEYS) if not values[key]]


def _pem(value: str | None) -> str | None:
    # A PEM pasted into one environment variable or JSON string often arrives with literal
    # "\n" sequences instead of line breaks; the key parser needs the real ones.
    if value and "\\n" in value and "\n" not in value:
        return value.replace("\\n", "\n")
    return value
