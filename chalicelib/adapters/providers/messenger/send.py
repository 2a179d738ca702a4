"""One send through the Send API: the HTTP call, and what its answer means for failover.

The page access token goes in an `Authorization: Bearer` header, not in the `access_token` query
parameter Meta's samples use: a URL ends up in proxy logs and in the text of requests'
exceptions, a header does not. When the app secret is configured the call also carries
`appsecret_proof` (HMAC-SHA256 of the token, keyed with the app secret), so the deployment keeps
working when the app turns on "Require app secret". A 200 carries the `message_id` that
`delivery.mids` name; anything else becomes a `ProviderError` classified by `codes`. Nothing here
logs message text or tokens.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from chalicelib.adapters.providers import http
from chalicelib.adapters.providers.messenger import codes
from chalicelib.adapters.providers.messenger.settings import MessengerSettings
from chalicelib.service.ports import ProviderError

logger = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
#: Longest reason kept from Meta's error text (it ends up in callbacks, not in logs).
MAX_REASON = 300


def messages_url(settings: MessengerSettings, page_id: str) -> str:
    return f"{GRAPH_URL}/{settings.api_version}/{page_id}/messages"


def appsecret_proof(settings: MessengerSettings) -> str:
    return hmac.new(
        settings.app_secret.encode(), settings.page_access_token.encode(), hashlib.sha256
    ).hexdigest()


def post_message(
    session: Any, timeout: Any, settings: MessengerSettings, page_id: str, body: dict[str, Any]
) -> str:
    """POST one message; its `message_id`, or ProviderError (permanent or not) saying why not."""
    if not settings.page_access_token:
        # Retrying cannot conjure a token: fail over to the next channel now.
        raise ProviderError(
            "messenger page_access_token is not configured", permanent=True, code="not_configured"
        )
    headers = {
        "Authorization": f"Bearer {settings.page_access_token}",
        "Content-Type": "application/json",
    }
    params = {"appsecret_proof": appsecret_proof(settings)} if settings.app_secret else None
    response = http.post(
        session,
        "messenger",
        messages_url(settings, page_id),
        headers=headers,
        params=params,
        json=body,
        timeout=timeout,
    )
    if 200 <= response.status_code < 300:
        return _accepted(response)
    raise _refused(response)


def _accepted(response: Any) -> str:
    data = _json(response)
    message_id = data.get("message_id") if isinstance(data, dict) else None
    if not isinstance(message_id, str) or not message_id:
        # Not retried: the message may well have been sent, and a second one could not be
        # tracked any better than this one.
        raise ProviderError(
            "messenger accepted the message but returned no message_id",
            permanent=True,
            code="no_message_id",
        )
    return message_id


def _refused(response: Any) -> ProviderError:
    data = _json(response)
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    permanent = codes.is_permanent_send_error(
        code, subcode, response.status_code, is_transient=error.get("is_transient") is True
    )
    logger.warning(
        "messenger send refused",
        extra={
            "http_status": response.status_code,
            "code": code,
            "error_subcode": subcode,
            "fbtrace_id": str(error.get("fbtrace_id") or "")[:64] or None,
            "permanent": permanent,
        },
    )
    return ProviderError(
        _reason(error, response.status_code),
        permanent=permanent,
        code=_code(code, subcode, response.status_code),
    )


def _code(code: int | None, subcode: int | None, http_status: int) -> str:
    """`551`, or `100/2018001` when Meta gives a subcode: the subcode is what tells them apart."""
    if code is None:
        return f"http_{http_status}"
    return f"{code}/{subcode}" if subcode is not None else str(code)


def _reason(error: dict[str, Any], http_status: int) -> str:
    # `message` is Meta's developer text ("(#551) This person isn't available right now.");
    # `error_user_msg`, when present, is the same in words meant for an end user.
    for text in (error.get("message"), error.get("error_user_msg")):
        if isinstance(text, str) and text.strip():
            return text.strip()[:MAX_REASON]
    return f"messenger answered HTTP {http_status}"


def _int(value: Any) -> int | None:
    # bool is an int to Python; Meta never sends one as a code.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:  # an HTML error page from a proxy, or an empty body
        return None
