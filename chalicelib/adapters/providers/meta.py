"""What Meta's products share, for WhatsApp Cloud and Messenger alike.

Both call a versioned Graph API, sign every webhook POST with
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, and check a callback URL
with the same GET handshake (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`). Neither
signature carries a time, so there is no replay window to check.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re

from pydantic import ValidationError

from chalicelib import strict_json
from chalicelib.service.webhooks import WebhookMalformed, WebhookRequest, WebhookUnauthorized

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"v?(\d+\.\d+)")

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
#: Meta's challenge is "an int"; anything else is not echoed back.
CHALLENGE = re.compile(r"[0-9A-Za-z_-]{1,128}")


def graph_api_version(provider: str, configured: str, default: str) -> str:
    """The Graph version to call: "25.0" and "v25.0" both mean v25.0; anything else (with a
    warning) and nothing at all mean `default`."""
    version = _VERSION.fullmatch(configured)
    if configured and not version:
        logger.warning(
            f"{provider} api_version is not like {default}; using the default",
            extra={"api_version": configured[:20], "default": default},
        )
    return f"v{version.group(1)}" if version else default


def verify(provider: str, app_secret: str, request: WebhookRequest) -> None:
    """Raise WebhookUnauthorized unless the raw body carries a valid signature by `app_secret`."""
    if not app_secret:
        raise WebhookUnauthorized(f"{provider} app_secret is not configured")
    header = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not header.lower().startswith(SIGNATURE_PREFIX):
        raise WebhookUnauthorized(f"no {SIGNATURE_HEADER} header")
    expected = hmac.new(app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    given = header[len(SIGNATURE_PREFIX):].strip().lower()
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise WebhookUnauthorized("signature does not match")


def challenge(verify_token: str, request: WebhookRequest) -> str | None:
    """`hub.challenge` when the request is Meta's subscription handshake with our verify token."""
    query = request.query
    token = query.get("hub.verify_token", "")
    answer = query.get("hub.challenge", "")
    if not verify_token or query.get("hub.mode") != "subscribe":
        return None
    if not hmac.compare_digest(token.encode("utf-8", "replace"), verify_token.encode()):
        return None
    return answer if CHALLENGE.fullmatch(answer) else None


#: Longest field path named in a reason: dict keys in the path are the sender's text.
MAX_WHERE = 120
#: Our words for pydantic's error types: its messages name our model classes.
REASONS = {
    "missing": "is required",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be a boolean",
    "literal_error": "has a value this service does not know",
}


def malformed(product: str, exc: ValueError) -> WebhookMalformed:
    """A short reason naming the field, never the values (they may hold a user's message)."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        where = where if len(where) <= MAX_WHERE else where[:MAX_WHERE] + "…"
        reason = REASONS.get(first["type"], "is not valid")
        return WebhookMalformed(f"not a {product} notification: {where} {reason}")
    if isinstance(exc, strict_json.JsonRefused):
        return WebhookMalformed(f"the body is not acceptable JSON: {exc}")
    return WebhookMalformed("the body is not JSON")
