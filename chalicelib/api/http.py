"""Shared plumbing for routes: error mapping, the authenticated caller, JSON responses."""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.api.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
    internal_error_response,
    problem_response,
)
from chalicelib.domain.errors import DispatchNotFound, DispatchTooLarge

logger = logging.getLogger(__name__)

#: Routes take any content type and check it themselves, so a wrong one gets a problem+json 415
#: instead of the framework's own error body.
ANY_CONTENT_TYPE = ["*/*"]
#: Compact JSON; one encoder for every response, where `json.dumps` with separators would build
#: a new one each time.
_JSON = json.JSONEncoder(separators=(",", ":"))


def problem_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn every error a view raises into problem+json; nothing else ever reaches the client.

    Each view needs it even with the app's middleware (chalicelib/api/edges.py): Chalice catches
    a view's exception before any middleware sees it, logs it at ERROR and answers its own 500.
    The middleware nets what Chalice answers by itself; this maps what a view raises."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ApiError as error:
            return problem_response(error)
        except DispatchNotFound:
            return problem_response(NotFound("No dispatch with this id exists for your application."))
        except DispatchTooLarge:
            return problem_response(
                PayloadTooLarge("The dispatch is too large to store: shorten its messages.")
            )
        except Exception:
            return internal_error_response()

    return wrapper


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=_JSON.encode(body),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def request_bytes(request: Request) -> bytes:
    """The request body as bytes. chalice types `raw_body` as `str | bytes` though it hands back
    bytes; a str would be the body as text, so it is encoded rather than refused."""
    raw = request.raw_body
    return raw.encode("utf-8") if isinstance(raw, str) else raw or b""
