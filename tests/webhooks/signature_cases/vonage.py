"""Vonage Messages: `Authorization: Bearer <JWT HS256>` keyed with the signature secret, whose
`payload_hash` claim is the SHA-256 of the raw body and whose `iat` dates the signature, so a
replay of an old signed request is a stale case."""
from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import jwt

from tests.webhooks.signature_suite import SignatureCase

SECRET = "vonage-signature-secret-0123456789abcdef"
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
BODY = (Path(__file__).parents[2] / "events" / "vonage" / "status_delivered_whatsapp.json").read_bytes()


def token(body: bytes, secret: str, iat: float) -> str:
    """A token as Vonage signs one (contract §4.2 sample claims)."""
    claims = {
        "iat": int(iat),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": APPLICATION_ID,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def sign(body: bytes, secret: str, iat: float | None = None) -> dict[str, str]:
    # The suite's stack starts its clock at the wall clock's now.
    signed_at = time.time() if iat is None else iat
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token(body, secret, signed_at)}"}


def sign_stale(body: bytes, secret: str) -> dict[str, str]:
    return sign(body, secret, iat=time.time() - 600)


CASE = SignatureCase(
    provider="vonage",
    credentials={
        "DISPATCH_VONAGE_APPLICATION_ID": APPLICATION_ID,
        # Sending is not exercised by the suite; a key is needed only so build() has one.
        "DISPATCH_VONAGE_PRIVATE_KEY": "unused",
        "DISPATCH_VONAGE_SIGNATURE_SECRET": SECRET,
    },
    routing={"sms": "vonage", "mms": "vonage", "whatsapp": "vonage", "messenger": "vonage", "viber_service_msg": "vonage"},
    body=BODY,
    sign=sign,
    secret=SECRET,
    wrong_secret="not-the-vonage-signature-secret-0123456789",
    signature_headers=("Authorization",),
    sign_stale=sign_stale,
    secret_key="signature_secret",
)
