"""Application use cases: create an application and rotate or change its credentials and URLs.

Secrets are generated here and handed back exactly once. The repository keeps only what is needed
to check them later: a hash of the API secret, the RS256 public key, and the *name* of the
callback signature secret (its value lives in the SecretStore).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from secrets import token_hex, token_urlsafe
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.domain.application import Application
from chalicelib.service.ports import ApplicationRepository, SecretStore

RSA_KEY_BITS = 2048
_ALLOWED_URL_SCHEMES = ("http", "https")


class ApplicationNotFound(LookupError):
    """No application has the given id."""


@dataclass(frozen=True)
class Credentials:
    """Everything a new application needs, in clear. Shown once to the operator, never stored."""

    application_id: str
    api_key: str
    api_secret: str
    private_key_pem: str
    signature_secret: str


@dataclass(frozen=True)
class _KeepType:
    """Marks a URL argument that should stay as it is (None means "clear it")."""


KEEP: Any = _KeepType()


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of an API secret.

    A fast hash is right here, unlike for passwords: API secrets are 24 random bytes (~190 bits)
    from `secrets`, so there is no dictionary to try and brute force is out of reach whatever the
    hash speed. A slow KDF would only add latency to every Basic-authenticated request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether `secret` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode("utf-8"))


def validate_url(url: str | None, field: str) -> str | None:
    """Return `url` if it is None or an absolute http(s) URL; raise ValueError otherwise."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in _ALLOWED_URL_SCHEMES or not parts.hostname or url != url.strip():
        raise ValueError(f"{field} must be an absolute http(s) URL")
    return url


def signature_secret_name(secret_prefix: str, application_id: str) -> str:
    return f"{secret_prefix}/applications/{application_id}/signature-secret"


def generate_key_pair() -> tuple[str, str]:
    """A new RS256 key pair as (private PKCS8 PEM, public SubjectPublicKeyInfo PEM)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


def create_application(
    apps: ApplicationRepository,
    secrets: SecretStore,
    name: str,
    status_url: str | None,
    inbound_url: str | None,
    now: datetime,
    secret_prefix: str,
) -> Credentials:
    """Create and store a new application; return its credentials (the only time they exist)."""
    if not name.strip():
        raise ValueError("name must not be empty")
    validate_url(status_url, "status_url")
    validate_url(inbound_url, "inbound_url")
    application_id = str(uuid.uuid4())
    api_key = token_hex(8)
    api_secret = token_urlsafe(24)
    private_pem, public_pem = generate_key_pair()
    signature_secret = token_urlsafe(32)
    secret_ref = signature_secret_name(secret_prefix, application_id)
    # The secret goes first so that no stored application ever points at a missing secret.
    secrets.put(secret_ref, signature_secret)
    apps.add(
        Application(
            application_id=application_id,
            name=name,
            api_key=api_key,
            api_secret_hash=hash_secret(api_secret),
            public_key_pem=public_pem,
            signature_secret_ref=secret_ref,
            status_url=status_url,
            created_at=now,
            inbound_url=inbound_url,
        )
    )
    return Credentials(application_id, api_key, api_secret, private_pem, signature_secret)


def _load(apps: ApplicationRepository, application_id: str) -> Application:
    application = apps.get(application_id)
    if application is None:
        raise ApplicationNotFound(application_id)
    return application


def rotate_api_secret(apps: ApplicationRepository, application_id: str) -> str:
    """Replace the API secret; the old one stops working at once. Returns the new secret."""
    application = _load(apps, application_id)
    api_secret = token_urlsafe(24)
    apps.update(dataclasses.replace(application, api_secret_hash=hash_secret(api_secret)))
    return api_secret


def rotate_signature_secret(
    apps: ApplicationRepository, secrets: SecretStore, application_id: str
) -> str:
    """Store a new callback signature secret under the application's existing secret name.

    Processes that cached the old value (SecretsManagerStore keeps it up to its TTL) may sign
    with it for that long, so receivers should accept both secrets for a few minutes.
    """
    application = _load(apps, application_id)
    signature_secret = token_urlsafe(32)
    secrets.put(application.signature_secret_ref, signature_secret)
    return signature_secret


def rotate_key_pair(apps: ApplicationRepository, application_id: str) -> str:
    """Replace the RS256 key pair and return the new private PEM; old-key JWTs stop working."""
    application = _load(apps, application_id)
    private_pem, public_pem = generate_key_pair()
    apps.update(dataclasses.replace(application, public_key_pem=public_pem))
    return private_pem


def set_urls(
    apps: ApplicationRepository,
    application_id: str,
    status_url: str | None = KEEP,
    inbound_url: str | None = KEEP,
) -> Application:
    """Change the status and/or inbound URL; `KEEP` leaves one as it is, None clears it."""
    application = _load(apps, application_id)
    updated = application
    if status_url is not KEEP:
        updated = dataclasses.replace(updated, status_url=validate_url(status_url, "status_url"))
    if inbound_url is not KEEP:
        updated = dataclasses.replace(updated, inbound_url=validate_url(inbound_url, "inbound_url"))
    apps.update(updated)
    return updated
