"""What each provider declares so the shared signature suite can attack its webhook route."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SignatureCase:
    provider: str
    #: The provider's credentials as DISPATCH_<PROVIDER>_<KEY> variables (incl. the webhook secret).
    credentials: Mapping[str, str]
    #: Channels routed to the provider, e.g. {"whatsapp": "whatsapp"}.
    routing: Mapping[str, str]
    #: A real-shaped status webhook body (any message id: applying it needs no dispatch).
    body: bytes
    #: Headers that sign `body` with `secret` as the provider does, "now".
    sign: Callable[[bytes, str], Mapping[str, str]]
    #: The secret `credentials` configure, and one that is not it.
    secret: str
    wrong_secret: str
    #: The header(s) carrying the signature, removed for the "missing" attack.
    signature_headers: tuple[str, ...]
    #: Headers that sign `body` correctly but too long ago, for schemes with a timestamp in a
    #: header or token.
    sign_stale: Callable[[bytes, str], Mapping[str, str]] | None = None
    #: A body whose own timestamp is too old, for schemes that carry the time in the body
    #: (signed with `sign`, so only its age is wrong).
    stale_body: bytes | None = None
    #: Builds the HTTP session the app gets (e.g. one serving a signing certificate).
    session: Callable[[], Any] | None = None
    #: The credentials key holding the webhook secret, removed for the "not configured" attack.
    secret_key: str = ""
    kind: str = "status"


@dataclass(frozen=True)
class SignatureTarget:
    """How to create, through the API, a dispatch whose first message is the very message a
    case's `body` reports on, so a refused webhook can be shown to leave it as it was (and the
    accepted one to change it: otherwise "unchanged" would prove nothing)."""

    #: A `POST /v0.1/dispatch` body whose first message goes over the case's provider.
    dispatch: Mapping[str, Any]
    #: Makes the provider's send answer with the message id the case's body names: scripts the
    #: HTTP session, or patches what the provider calls (monkeypatch), before the stack is built.
    script: Callable[[Any, Any], None]
    #: Credentials the send needs on top of the case's (e.g. a real private key).
    credentials: Mapping[str, str] = field(default_factory=dict)
