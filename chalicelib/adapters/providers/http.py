"""The one way providers call their HTTP APIs: a POST whose transport failures are transient.

A timeout or a connection failure says nothing about whether the provider took the message, so
both are retried (the engine's attempt limit bounds the duplicates a retry may cause; losing the
message would be worse). Only the exception's class is kept: its text can hold the URL and the
request's headers, tokens included.
"""
from __future__ import annotations

from typing import Any

import requests

from chalicelib.service.ports import ProviderError

TIMEOUT = "timeout"
UNREACHABLE = "connection"


def post(session: Any, provider: str, url: str, **kwargs: Any) -> Any:
    """`session.post(url, **kwargs)`; ProviderError(transient) if no answer came back."""
    try:
        return session.post(url, **kwargs)
    except requests.Timeout:
        raise ProviderError(f"{provider} did not answer in time", permanent=False, code=TIMEOUT) from None
    except requests.RequestException as exc:
        reason = f"{provider} could not be reached: {type(exc).__name__}"
        raise ProviderError(reason, permanent=False, code=UNREACHABLE) from None
