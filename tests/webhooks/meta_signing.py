"""How Meta signs a webhook (WhatsApp Cloud and Messenger alike), built here independently of
the provider code so the tests check it rather than echo it."""
from __future__ import annotations

import hashlib
import hmac


def hub_signature(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value: `sha256=<hex HMAC-SHA256(app secret, raw body)>`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def meta_signed(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers Meta posts `body` with."""
    return {"X-Hub-Signature-256": hub_signature(body, app_secret), "Content-Type": "application/json"}
