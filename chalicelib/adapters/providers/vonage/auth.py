"""Both of Vonage's JWTs: the RS256 one we sign to send, and the HS256 one Vonage signs on
every webhook.

Sending (contract §4.1): claims `application_id`, `iat`, `jti`, `exp`, signed RS256 with the
Vonage application's private key; a fresh token per request, so none lives long enough to be
worth stealing from a log.

Webhooks (contract §4.2): `Authorization: Bearer <JWT HS256>` signed with the account's signature
secret, with claims `iat`, `jti`, `iss` ("Vonage"), `payload_hash` (SHA-256 hex of the body),
`api_key`. Vonage calls the hash check optional over HTTPS; we always make it, on the raw bytes,
because the signature alone says nothing about the body it came with. The token carries no
expiry, so `iat` is what stops a captured request from being replayed later.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt

from chalicelib.service.webhooks import WebhookUnauthorized

#: The application token's lifetime: Vonage accepts 30 s to 24 h; a send takes seconds.
TOKEN_LIFETIME_SECONDS = 300
#: Oldest webhook token accepted: Vonage signs each delivery attempt as it sends it.
MAX_WEBHOOK_AGE_SECONDS = 300
#: Allowance for Vonage's clock running ahead of ours.
FUTURE_SKEW_SECONDS = 30
WEBHOOK_ALGORITHM = "HS256"


def application_token(application_id: str, private_key: str, now: datetime) -> str:
    """A Bearer token for one Messages API request. Raises ValueError for an unusable key."""
    iat = int(now.timestamp())
    claims = {
        "application_id": application_id,
        "iat": iat,
        "jti": str(uuid.uuid4()),
        "exp": iat + TOKEN_LIFETIME_SECONDS,
    }
    try:
        return jwt.encode(claims, _signing_key(private_key), algorithm="RS256", headers={"typ": "JWT"})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        # The library's message could quote part of the key: say only what kind of failure.
        raise ValueError(f"private_key is not a usable RS256 key ({type(exc).__name__})") from None


@lru_cache(maxsize=8)
def _signing_key(private_key: str) -> Any:
    """The PEM parsed once per key: parsing and checking an RSA key costs far more than the
    signature, and a warm Lambda sends with the same key again and again. A rotated key is a new
    string, so it is parsed on its first use."""
    return jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(private_key)


def verify_webhook(headers: Mapping[str, str], body: bytes, secret: str | None, now: datetime) -> None:
    """Raise WebhookUnauthorized unless `body` came, just now, with Vonage's signature on it."""
    if not secret:
        raise WebhookUnauthorized("no Vonage signature_secret configured")
    token = _bearer_token(headers.get("authorization"))
    if token is None:
        raise WebhookUnauthorized("no Bearer token in Authorization")
    claims = _decode(token, secret)
    _check_fresh(claims.get("iat"), claims.get("exp"), now)
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str):
        raise WebhookUnauthorized("payload_hash claim is not a string")
    actual = hashlib.sha256(body).hexdigest()
    # Constant-time, so a forger learns nothing from how long the comparison took.
    if not hmac.compare_digest(actual.encode(), claimed.lower().encode("utf-8")):
        raise WebhookUnauthorized("payload_hash does not match the body")


def _bearer_token(header: str | None) -> str | None:
    if not isinstance(header, str):
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _decode(token: str, secret: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            secret,
            # Pinning the algorithm is what refuses "none", RS/HS key confusion and the like.
            algorithms=[WEBHOOK_ALGORITHM],
            options={
                "require": ["iat", "payload_hash"],
                # PyJWT would judge time by the wall clock; _check_fresh uses the injected one.
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        # Which check failed stays in here: the reason is logged, and token details are not ours to log.
        raise WebhookUnauthorized("token signature or claims invalid") from None
    if not isinstance(claims, dict):
        raise WebhookUnauthorized("token claims are not an object")
    return claims


def _check_fresh(iat: Any, exp: Any, now: datetime) -> None:
    if not _is_number(iat):
        raise WebhookUnauthorized("iat claim is not a number")
    age = now.timestamp() - iat
    if age > MAX_WEBHOOK_AGE_SECONDS:
        raise WebhookUnauthorized("token too old")
    if age < -FUTURE_SKEW_SECONDS:
        raise WebhookUnauthorized("token issued in the future")
    # Vonage's tokens carry no `exp` today; one that does must not have passed it.
    if exp is not None and (not _is_number(exp) or now.timestamp() > exp + FUTURE_SKEW_SECONDS):
        raise WebhookUnauthorized("token expired")


#: Beyond any time a token could name: 10**400 would overflow the float arithmetic above.
MAX_CLAIM_SECONDS = 2**53


def _is_number(value: Any) -> bool:
    # bool is an int subclass; `true` is not second 1 of the epoch. NaN fails the comparison.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return -MAX_CLAIM_SECONDS < value < MAX_CLAIM_SECONDS
