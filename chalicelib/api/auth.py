"""Client authentication: Basic (api key and secret) or Bearer (JWT RS256), as Dispatch accepts.

Every failure is `Unauthorized`. Details say what is wrong with the request without revealing
whether an api key or application exists. Nothing here logs: headers carry secrets and tokens.
The rules, and the threat model they answer, are in docs/security.md; keep the two in step.
"""
from __future__ import annotations

import binascii
import re
import secrets
from base64 import b64decode
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from chalicelib.api.errors import Unauthorized
from chalicelib.domain.application import Application
from chalicelib.service.applications import hash_secret, secret_matches
from chalicelib.service.ports import ApplicationRepository, TokenUses

if TYPE_CHECKING:
    from chalicelib.bootstrap import Services

JWT_ALGORITHM = "RS256"
REQUIRED_CLAIMS = ("iat", "jti", "application_id")
CLOCK_LEEWAY = timedelta(seconds=30)
#: Longer than any key or id we issue; refused before a lookup (DynamoDB keys are bounded).
MAX_IDENTIFIER_LENGTH = 200
#: Refused before any decoding: far above any real credential (Basic is under 300 characters, a
#: Vonage JWT with a long `acl` under 3,000), so what it bounds is the work of a hostile header.
MAX_AUTHORIZATION_LENGTH = 4096
#: How long a token without `exp` is accepted after its `iat`: Vonage's default token lifetime.
LIFETIME_WITHOUT_EXP = timedelta(minutes=15)
#: The longest `exp - iat` accepted: Vonage's documented maximum.
MAX_LIFETIME = timedelta(hours=24)
MAX_JTI_LENGTH = 255
#: 9999-12-31T23:59:59Z: a NumericDate beyond it (or before 1970) is no real time.
MAX_TIMESTAMP = 253_402_300_799

MISSING = "Missing Authorization header: send Basic or Bearer (JWT) credentials."
MALFORMED_HEADER = (
    f"Malformed Authorization header: it must be printable ASCII, at most {MAX_AUTHORIZATION_LENGTH}"
    " characters."
)
UNSUPPORTED_SCHEME = "Unsupported authorization scheme: use Basic or Bearer."
MALFORMED_BASIC = "Malformed Basic credentials: expected base64(api_key:api_secret)."
BAD_BASIC = "Invalid api key or secret."
MALFORMED_TOKEN = "Malformed bearer token."
BAD_ALGORITHM = "Bearer token must be signed with RS256."
BAD_TOKEN = "Invalid bearer token: signature or application_id not accepted."
BAD_CLAIM = "Bearer token has an invalid or unsupported claim (aud, iss, sub, jti)."
MISSING_CLAIMS = "Bearer token must carry the claims iat, jti and application_id."
BAD_JTI = f"Bearer token claim jti must be 1 to {MAX_JTI_LENGTH} printable characters."
BAD_LIFETIME = "Bearer token lifetime (exp - iat) must be more than 0 and at most 24 hours."
EXPIRED = "Bearer token has expired (a token without exp expires 15 minutes after its iat)."
NOT_YET_VALID = "Bearer token is not valid yet (nbf)."
ISSUED_IN_FUTURE = "Bearer token was issued in the future (iat)."
TOKEN_USED = "Bearer token already used: this service accepts each token (jti) once; sign a new one."

# base64url header, payload and signature: the only shape pyjwt is handed. Payload and signature
# may be empty so that an `alg: none` token is refused for its algorithm, by name.
_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]*={0,2}\.[A-Za-z0-9_-]*={0,2}")
_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)

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


def caller(services: Services, authorization: str | None) -> Application:
    """The application a client route serves: what every authenticated route calls, so each
    gets the same rules and the deployment's single-use record (see `authenticate`)."""
    return authenticate(authorization, services.applications, services.clock.now(), services.token_uses)


def authenticate(
    authorization: str | None,
    apps: ApplicationRepository,
    now: datetime,
    uses: TokenUses | None = None,
) -> Application:
    """The application the Authorization header proves to be; raises Unauthorized otherwise.

    With `uses`, each JWT is accepted once (DISPATCH_JWT_SINGLE_USE); Basic is unaffected.
    """
    if not authorization:
        raise Unauthorized(MISSING)
    # Length first: every later step is at most linear in what this bounds.
    if len(authorization) > MAX_AUTHORIZATION_LENGTH:
        raise Unauthorized(MALFORMED_HEADER)
    value = authorization.strip(" \t")
    if not value:
        raise Unauthorized(MISSING)
    # Credentials are ASCII (RFC 9110 token68, RFC 7617): anything else is refused here, before
    # base64 or pyjwt could raise something other than their documented errors.
    if not (value.isascii() and value.isprintable()):
        raise Unauthorized(MALFORMED_HEADER)
    scheme, _, credentials = value.partition(" ")
    credentials = credentials.lstrip(" ")
    scheme = scheme.lower()  # RFC 9110: auth schemes are case-insensitive
    if scheme == "basic":
        return _basic(credentials, apps)
    if scheme == "bearer":
        return _bearer(credentials, apps, now, uses)
    raise Unauthorized(UNSUPPORTED_SCHEME)


def _basic(credentials: str, apps: ApplicationRepository) -> Application:
    if not credentials or " " in credentials:
        raise Unauthorized(MALFORMED_BASIC)
    try:
        decoded = b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(MALFORMED_BASIC) from None
    # RFC 7617: neither the user-id nor the password may hold control characters.
    if not decoded.isprintable():
        raise Unauthorized(MALFORMED_BASIC)
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


def _bearer(token: str, apps: ApplicationRepository, now: datetime, uses: TokenUses | None) -> Application:
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
    accepted_until = _accepted_until(verified, now)
    jti = _jti(verified)
    if uses is not None and not uses.first_use(application_id, jti, accepted_until):
        raise Unauthorized(TOKEN_USED)
    return application


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims before any signature check: only good for choosing the key to check with."""
    if not _COMPACT_JWT.fullmatch(token):
        raise Unauthorized(MALFORMED_TOKEN)
    # pyjwt's own errors are InvalidTokenError; anything else it raised on bytes a client chose
    # would be a bug of its, and must still be a 401, not a 500 (here and in _verified_claims).
    try:
        header = jwt.get_unverified_header(token)
    except Exception:
        raise Unauthorized(MALFORMED_TOKEN) from None
    if header.get("alg") != JWT_ALGORITHM:
        # Checked before anything else: `none`, HS256 keyed with our public key, and the rest
        # are refused whatever the key or library would make of them.
        raise Unauthorized(BAD_ALGORITHM)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:
        raise Unauthorized(MALFORMED_TOKEN) from None
    if not isinstance(claims, dict):
        raise Unauthorized(MALFORMED_TOKEN)
    return claims


def _verified_claims(token: str, public_key_pem: str) -> dict[str, Any]:
    key = _public_key(public_key_pem)
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            # Times are checked in _accepted_until against the injected `now`, not the wall clock.
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.DecodeError:  # includes a bad signature
        raise Unauthorized(BAD_TOKEN) from None
    except jwt.MissingRequiredClaimError:
        raise Unauthorized(MISSING_CLAIMS) from None
    except jwt.InvalidTokenError:
        # pyjwt checks claims only after the signature, so saying so reveals nothing.
        raise Unauthorized(BAD_CLAIM) from None
    except Exception:
        raise Unauthorized(BAD_TOKEN) from None


def _public_key(pem: str) -> RSAPublicKey:
    """Loaded outside `_verified_claims`' catch-all: a stored key that does not load is the
    service's fault (a 500), not the client's (a 401)."""
    key = _RS256.prepare_key(pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("an application's stored key is not an RSA public key")
    return key


def _timestamp(claims: dict[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int; an int may be 10**400, which float() cannot hold, so the range is checked
    # on the value as it came (exact for ints), and NaN fails the comparison.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_TIMESTAMP:
        raise Unauthorized(f"Bearer token claim {name} must be a UNIX timestamp.")
    return float(value)


def _accepted_until(claims: dict[str, Any], now: datetime) -> datetime:
    """Until when the token is accepted (its end plus the leeway); raises if it is not now."""
    current = now.timestamp()
    leeway = CLOCK_LEEWAY.total_seconds()
    issued_at = _timestamp(claims, "iat")
    expires_at = _timestamp(claims, "exp")
    not_before = _timestamp(claims, "nbf")
    if issued_at is None:
        raise Unauthorized(MISSING_CLAIMS)
    if expires_at is None:
        expires_at = issued_at + LIFETIME_WITHOUT_EXP.total_seconds()
    elif not 0 < expires_at - issued_at <= MAX_LIFETIME.total_seconds():
        raise Unauthorized(BAD_LIFETIME)
    if issued_at > current + leeway:
        raise Unauthorized(ISSUED_IN_FUTURE)
    if current >= expires_at + leeway:
        raise Unauthorized(EXPIRED)
    if not_before is not None and current < not_before - leeway:
        raise Unauthorized(NOT_YET_VALID)
    return datetime.fromtimestamp(expires_at + leeway, timezone.utc)


def _jti(claims: dict[str, Any]) -> str:
    jti = claims.get("jti")
    if (
        not isinstance(jti, str)
        or not 0 < len(jti) <= MAX_JTI_LENGTH
        or not jti.isprintable()
        or not jti.strip()
    ):
        raise Unauthorized(BAD_JTI)
    return jti
