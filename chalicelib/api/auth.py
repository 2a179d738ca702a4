"""Client authentication: Basic (api key and secret) or Bearer (JWT RS256), as Dispatch accepts.

Every failure is `Unauthorized`. Details say what is wrong with the request without revealing
whether an api key or application exists. Nothing here logs: headers carry secrets and tokens.
"""
from __future__ import annotations

import binascii
import math
import secrets
from base64 import b64decode
from datetime import datetime, timedelta
from typing import Any

import jwt

from chalicelib.api.errors import Unauthorized
from chalicelib.domain.application import Application
from chalicelib.service.applications import hash_secret, secret_matches
from chalicelib.service.ports import ApplicationRepository

JWT_ALGORITHM = "RS256"
REQUIRED_CLAIMS = ("iat", "jti", "application_id")
CLOCK_LEEWAY = timedelta(seconds=30)
#: Longer than any key or id we issue; refused before a lookup (DynamoDB keys are bounded).
MAX_IDENTIFIER_LENGTH = 200
MAX_TOKEN_AGE = timedelta(hours=24)

MISSING = "Missing Authorization header: send Basic or Bearer (JWT) credentials."
UNSUPPORTED_SCHEME = "Unsupported authorization scheme: use Basic or Bearer."
MALFORMED_BASIC = "Malformed Basic credentials: expected base64(api_key:api_secret)."
BAD_BASIC = "Invalid api key or secret."
MALFORMED_TOKEN = "Malformed bearer token."
BAD_ALGORITHM = "Bearer token must be signed with RS256."
BAD_TOKEN = "Invalid bearer token: signature or application_id not accepted."
BAD_CLAIM = "Bearer token has an invalid or unsupported claim (aud, iss, sub, jti)."
MISSING_CLAIMS = "Bearer token must carry the claims iat, jti and application_id."
EXPIRED = "Bearer token has expired."
NOT_YET_VALID = "Bearer token is not valid yet (nbf)."
TOO_OLD = "Bearer token was issued more than 24 hours ago."
ISSUED_IN_FUTURE = "Bearer token was issued in the future (iat)."

# Compared against when the api key is unknown, so that path spends the same hash-and-compare.
_DUMMY_SECRET_HASH = hash_secret(secrets.token_urlsafe(24))
# Checked against when the application is unknown, so that path spends the same RSA verify as a
# bad signature (a 2048-bit key, as applications get). Its private half was never kept.
_DUMMY_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkvzkSA+K2dAJGXTfztIZ
VIYl+VjYxtCH+EzirIxK7D8eHUr8bHa6Xrwmcd1xK2gWX8F9d+67YPUQVItdWLsj
3rPRvo99f4MLzrCJJ7dwQUs346X9vd8QdVrbuV5QA9WAUS9OlTBXqw75+v6vHBM/
Fl2ENSzgnPx3JV6lqd7Bq2WmHyiC7SKYs3bdAIg5UeiD9oF245gK/wvlYTIL9KDo
jjzReK3SWnD2Fhh6fnJ/tDhSScT0doFmJv5HAIbL3n0ipVsMqfIFpB5lndFDFCGt
IIlTG2ijQpWU5ktSrxHjBeNKthHJ5CSm6m2XLSf5M1X0+HPakR0rQQ7syNEzXEFa
dwIDAQAB
-----END PUBLIC KEY-----
"""


def authenticate(
    authorization: str | None, apps: ApplicationRepository, now: datetime
) -> Application:
    """The application the Authorization header proves to be; raises Unauthorized otherwise."""
    if not authorization or not authorization.strip():
        raise Unauthorized(MISSING)
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()  # RFC 9110: auth schemes are case-insensitive
    if scheme == "basic":
        return _basic(credentials.strip(), apps)
    if scheme == "bearer":
        return _bearer(credentials.strip(), apps, now)
    raise Unauthorized(UNSUPPORTED_SCHEME)


def _basic(credentials: str, apps: ApplicationRepository) -> Application:
    try:
        decoded = b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(MALFORMED_BASIC) from None
    api_key, colon, api_secret = decoded.partition(":")
    if not colon or not api_key or not api_secret:
        raise Unauthorized(MALFORMED_BASIC)
    if len(api_key) > MAX_IDENTIFIER_LENGTH:
        raise Unauthorized(BAD_BASIC)
    application = apps.get_by_api_key(api_key)
    stored_hash = application.api_secret_hash if application else _DUMMY_SECRET_HASH
    # Compare first, whatever the lookup found, so an unknown key costs the same as a bad secret.
    matches = secret_matches(api_secret, stored_hash)
    if application is None or not matches:
        raise Unauthorized(BAD_BASIC)
    return application


def _bearer(token: str, apps: ApplicationRepository, now: datetime) -> Application:
    claims = _unverified_claims(token)
    application_id = claims.get("application_id")
    if not isinstance(application_id, str) or not application_id:
        raise Unauthorized(MISSING_CLAIMS)
    if len(application_id) > MAX_IDENTIFIER_LENGTH:
        raise Unauthorized(BAD_TOKEN)
    application = apps.get(application_id)
    if application is None:
        _verified_claims(token, _DUMMY_PUBLIC_KEY)  # raises BAD_TOKEN, as late as a bad signature
        raise Unauthorized(BAD_TOKEN)
    verified = _verified_claims(token, application.public_key_pem)
    _check_times(verified, now)
    return application


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims before any signature check: only good for choosing the key to check with."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != JWT_ALGORITHM:
            # Checked before anything else: `none`, HS256 keyed with our public key, and the
            # rest are refused whatever the key or library would make of them.
            raise Unauthorized(BAD_ALGORITHM)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise Unauthorized(MALFORMED_TOKEN) from None
    if not isinstance(claims, dict):
        raise Unauthorized(MALFORMED_TOKEN)
    return claims


def _verified_claims(token: str, public_key_pem: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            public_key_pem,
            algorithms=[JWT_ALGORITHM],
            # Times are checked in _check_times against the injected `now`, not the wall clock.
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
            leeway=CLOCK_LEEWAY,
        )
    except jwt.DecodeError:  # includes a bad signature
        raise Unauthorized(BAD_TOKEN) from None
    except jwt.MissingRequiredClaimError:
        raise Unauthorized(MISSING_CLAIMS) from None
    except jwt.InvalidTokenError:
        # pyjwt checks claims only after the signature, so saying so reveals nothing.
        raise Unauthorized(BAD_CLAIM) from None


def _timestamp(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int, and Python's json accepts NaN/Infinity, which compare false to everything.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unauthorized(f"Bearer token claim {name} must be a UNIX timestamp.")
    return float(value)


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    current = now.timestamp()
    leeway = CLOCK_LEEWAY.total_seconds()
    issued_at = _timestamp(claims, "iat")
    expires_at = _timestamp(claims, "exp")
    not_before = _timestamp(claims, "nbf")
    if issued_at is None:
        raise Unauthorized(MISSING_CLAIMS)
    if issued_at > current + leeway:
        raise Unauthorized(ISSUED_IN_FUTURE)
    if issued_at < current - MAX_TOKEN_AGE.total_seconds():
        raise Unauthorized(TOO_OLD)
    if expires_at is not None and current >= expires_at + leeway:
        raise Unauthorized(EXPIRED)
    if not_before is not None and current < not_before - leeway:
        raise Unauthorized(NOT_YET_VALID)
