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


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "content-type-header", "Unsupported media type"


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


def problem_response(error: ApiError, instance: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.slug,
        "title": error.title,
        "detail": error.detail,
        "instance": instance or uuid.uuid4().hex,
    }
    if error.invalid_parameters:
        body["invalid_parameters"] = error.invalid_parameters
    headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}
    return Response(body=json.dumps(body), status_code=error.status, headers=headers)


def internal_error_response() -> Response:
    """The answer to anything unexpected: logged with a trace id, never a stack trace out."""
    instance = uuid.uuid4().hex
    logger.exception("unhandled error, instance=%s", instance)
    body = {
        "type": PROBLEM_TYPE_BASE + "internal-error",
        "title": "Internal error",
        "detail": "The request could not be completed; it is safe to retry.",
        "instance": instance,
    }
    return Response(
        body=json.dumps(body),
        status_code=500,
        headers={"Content-Type": PROBLEM_CONTENT_TYPE},
    )
