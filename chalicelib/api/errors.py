"""Every error a client can see, and its one mapping to an RFC 7807 problem+json response."""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from chalice import Response

logger = logging.getLogger(__name__)

# A URN rather than a URL: stable whatever host a user deploys to; docs/errors.md lists them.
PROBLEM_TYPE_BASE = "urn:dispatch:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """An error answered to the client as problem+json with this status."""

    status = 400
    slug = "invalid-request"
    title = "Invalid request"

    def __init__(
        self,
        detail: str,
        invalid_parameters: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.invalid_parameters = list(invalid_parameters)
        self.headers = headers or {}


class RequestInvalid(ApiError):
    status, slug, title = 400, "invalid-params", "Invalid parameters"


class MalformedJson(ApiError):
    status, slug, title = 400, "invalid-json", "Malformed JSON"


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Invalid credentials supplied"

    def __init__(self, detail: str = "You did not provide correct credentials."):
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="dispatch", Bearer'})


class InvalidPageCursor(ApiError):
    """A list's `cursor` this application was not handed: malformed, or another's. Its own type,
    so a client can tell "start the listing again" from a mistake in the other parameters."""

    status, slug, title = 400, "invalid-cursor", "Invalid page cursor"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class WebhookSignatureInvalid(ApiError):
    status, slug, title = 401, "webhook-signature", "Invalid webhook signature"


class WebhookVerificationFailed(ApiError):
    status, slug, title = 403, "webhook-verification", "Webhook verification failed"


class WebhookPayloadInvalid(ApiError):
    status, slug, title = 400, "webhook-payload", "Not a webhook payload of this provider"


class MalformedRequest(ApiError):
    """An HTTP request the server cannot read: a bad request line, Content-Length or chunking."""

    status, slug, title = 400, "malformed-request", "Malformed HTTP request"


class MethodNotAllowed(ApiError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(self, allowed: Sequence[str]):
        super().__init__(
            "This path does not serve this method; the Allow header lists those it does.",
            headers={"Allow": ", ".join(allowed)},
        )


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class HeaderTooLarge(ApiError):
    status, slug, title = 431, "header-too-large", "Request header fields too large"


class RequestTimeout(ApiError):
    """A request that did not arrive whole in time (the local front; API Gateway has its own
    deadline and closes the connection)."""

    status, slug, title = 408, "request-timeout", "Request timeout"


class TooManyRequests(ApiError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(ApiError):
    """Answered instead of work the server would not keep, e.g. while it shuts down."""

    status, slug, title = 503, "unavailable", "Service unavailable"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "content-type-header", "Unsupported media type"


class Forbidden(ApiError):
    """API Gateway refusing a request by a rule of its own (a resource policy, an API key, WAF),
    none of which this API sets up; the app never raises it."""

    status, slug, title = 403, "forbidden", "Forbidden"


class InternalError(ApiError):
    status, slug, title = 500, "internal-error", "Internal error"


class BadGateway(ApiError):
    """API Gateway could not invoke the function behind it; the app never raises it."""

    status, slug, title = 502, "bad-gateway", "Bad gateway"


class GatewayTimeout(ApiError):
    """API Gateway stopped waiting for the function (29 s); the app never raises it."""

    status, slug, title = 504, "gateway-timeout", "Gateway timeout"


class StagedOutage(ApiError):
    """The sandbox sink playing a receiver that is down: the caller staged this status with
    `POST /sandbox/callbacks/outage`. A problem like any other answer, so every status it may
    take (400 to 599) has one documented body."""

    slug, title = "sandbox-outage", "Staged outage"

    def __init__(self, status: int):
        super().__init__(
            "The sink is playing a receiver that is down, as staged with POST /sandbox/callbacks/outage."
        )
        self.status = status


def problem_document(error: ApiError, instance: str | None = None) -> dict[str, Any]:
    """The problem+json body of `error`: what every front (the app, the local server) answers."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.slug,
        "title": error.title,
        "detail": error.detail,
        "instance": instance or uuid.uuid4().hex,
    }
    if error.invalid_parameters:
        body["invalid_parameters"] = error.invalid_parameters
    return body


def problem_response(error: ApiError, instance: str | None = None) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}
    return Response(
        body=json.dumps(problem_document(error, instance)), status_code=error.status, headers=headers
    )


def internal_error_response() -> Response:
    """The answer to anything unexpected: logged with a trace id, never a stack trace out."""
    instance = uuid.uuid4().hex
    logger.exception("unhandled error, instance=%s", instance)
    return problem_response(
        InternalError("The request could not be completed; it is safe to retry."), instance
    )
