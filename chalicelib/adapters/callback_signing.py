"""Signed callbacks: an HS256 JWT in the Authorization header that binds the exact body bytes.

Contract §4.2. Each callback carries `Authorization: Bearer <jwt>`, signed with the
application's signature secret, with claims `iat`, `jti`, `iss` ("dispatch"), `payload_hash`
(SHA-256 hex of the raw request body), `application_id` and `api_key`.

How a receiver verifies (Python, PyJWT)::

    import hashlib, hmac, time
    import jwt  # pip install pyjwt

    def is_genuine(authorization: str, raw_body: bytes, secret: str) -> bool:
        if not authorization.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(authorization[7:], secret, algorithms=["HS256"],
                                issuer="dispatch", options={"require": ["iat", "payload_hash"]})
        except jwt.PyJWTError:
            return False
        # Hash the bytes as received, before any JSON parsing: re-serialising changes them.
        body_hash = hashlib.sha256(raw_body).hexdigest()
        fresh = -30 <= time.time() - claims["iat"] <= 300
        return fresh and hmac.compare_digest(body_hash, str(claims["payload_hash"]))

Answer 2xx to accept. Reject with 401: a 4xx is never retried, while 5xx and 429 are.
`verify` below implements the same checks for this service's own callback sink.

Rotation: the token's header names the secret that signed it, `kid` (also sent as
`X-Dispatch-Signature-Key`), a fingerprint of the secret: `key_id(secret)`. A receiver that holds
both the old and the new secret while it rolls over picks the one whose `key_id` matches
(`verify_any` does this), so no callback is refused in between.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

ISSUER = "dispatch"
ALGORITHM = "HS256"
#: Allowance for a sender clock running ahead of ours.
FUTURE_SKEW_SECONDS = 30


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(
    body: bytes,
    secret: str,
    application_id: str,
    api_key: str,
    now: datetime,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A token for one request whose body is exactly `body`; a fresh `jti` on every call.

    `extra_claims` (the callback's `event_id` and `seq`) are signed too, so the headers that
    repeat them can be checked against the token."""
    claims = {
        **(extra_claims or {}),
        "iat": int(now.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": ISSUER,
        "payload_hash": payload_hash(body),
        "application_id": application_id,
        "api_key": api_key,
    }
    return jwt.encode(
        claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT", "kid": key_id(secret)}
    )


def key_id(secret: str) -> str:
    """A short public name for a signature secret: it says which one signed, and reveals nothing
    that helps guess it (64 bits of a salted SHA-256)."""
    return hashlib.sha256(f"dispatch-signature-key:{secret}".encode()).hexdigest()[:16]


def verify_any(
    authorization_header: str | None, body: bytes, secrets: list[str], now: datetime
) -> bool:
    """`verify` with whichever of `secrets` the token's `kid` names (the receiver's rollover)."""
    token = _bearer_token(authorization_header)
    if token is None:
        return False
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.PyJWTError, ValueError, TypeError):  # a lone surrogate is a UnicodeEncodeError
        return False
    chosen = [s for s in secrets if key_id(s) == kid]
    return bool(chosen) and verify(authorization_header, body, chosen[0], now)


def verify(
    authorization_header: str | None,
    body: bytes,
    secret: str,
    now: datetime,
    max_age_seconds: int = 300,
) -> bool:
    """True only for a well-formed, fresh HS256 token whose payload_hash matches `body`.

    Never raises: any malformed header, token or claim gives False.
    """
    token = _bearer_token(authorization_header)
    if token is None or not isinstance(body, bytes):
        return False
    claims = _decode(token, secret)
    if claims is None:
        return False
    if not _is_fresh(claims.get("iat"), now, max_age_seconds):
        return False
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str):
        return False
    # Constant-time so the comparison leaks nothing about how much of the hash matched.
    return hmac.compare_digest(payload_hash(body).encode(), claimed.encode("utf-8"))


def _bearer_token(header: str | None) -> str | None:
    if not isinstance(header, str):
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _decode(token: str, secret: str) -> dict[str, Any] | None:
    """Signature, algorithm and issuer checks; time checks are ours, against the given `now`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            # Pinning the list is what rejects "none", HS512 and key-confusion tricks.
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["iat", "iss", "payload_hash"],
                # PyJWT would compare against the wall clock; freshness is judged in _is_fresh.
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _is_fresh(iat: Any, now: datetime, max_age_seconds: int) -> bool:
    # bool is an int subclass; a `true` iat is garbage, not second 1 of the epoch.
    if not isinstance(iat, int) or isinstance(iat, bool):
        return False
    # In integers: an iat of 10**400 would overflow a float subtraction.
    age = int(now.timestamp()) - iat
    return -FUTURE_SKEW_SECONDS <= age <= max_age_seconds
