"""A client application: who may create dispatches and where their callbacks go."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Application:
    application_id: str
    name: str
    api_key: str
    #: SHA-256 hex digest of the API secret; the secret itself is never stored.
    api_secret_hash: str
    #: PEM of the RS256 public key that verifies the application's JWTs.
    public_key_pem: str
    #: Name of the secret (Secrets Manager) that holds the callback signature secret.
    signature_secret_ref: str
    status_url: str | None
    created_at: datetime
    inbound_url: str | None = None
