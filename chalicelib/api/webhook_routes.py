"""Channel webhooks: `POST /webhooks/{provider}/status` and `/inbound`, and Meta's GET handshake.

A body over its provider's size limit (`MAX_BODY_BYTES`) is a 413 before anything else is
done with it. The signature is then checked on the raw body before anything is parsed: a bad or
missing one is a 401 and nothing is applied. A signed body that is not a payload of that provider
is a 400. A large batch is queued rather than applied (`WebhookService`), so every answer comes
well inside a provider's timeout. Anything else that goes wrong is a 500, so the provider retries
the whole batch (applying a status twice changes nothing). Answers are small and quick:
providers only read the status code. Limits and sources: docs/webhooks.md.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from chalice import Blueprint, Response

from chalicelib.api.errors import (
    NotFound,
    PayloadTooLarge,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    WebhookVerificationFailed,
)
from chalicelib.api.http import ANY_CONTENT_TYPE, json_response, problem_errors, request_bytes
from chalicelib.bootstrap import get_services
from chalicelib.service.webhooks import (
    ChannelWebhook,
    WebhookKind,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)

logger = logging.getLogger(__name__)
bp = Blueprint(__name__)

KINDS: tuple[WebhookKind, ...] = ("status", "inbound")

KIB = 1024
#: The largest body each provider's webhooks take, from what the provider documents it sends.
#: A larger one is refused (413) unread: it is not from the provider, or not one we could apply
#: in time. Sources and reasoning: docs/webhooks.md.
MAX_BODY_BYTES: Mapping[str, int] = {
    # Meta: "Webhooks payloads can be up to 3MB" (WhatsApp Cloud API and Messenger alike).
    "whatsapp": 3 * KIB * KIB,
    "messenger": 3 * KIB * KIB,
    # One event per callback, holding at most one message, whose whole JSON Viber caps at 30 KB.
    "viber": 128 * KIB,
    # SNS caps a message at 256 KiB; the HTTP notification carries it escaped as a JSON string.
    "aws_sms": 1024 * KIB,
    # Vonage documents no limit; a callback is one status or one message.
    "vonage": 256 * KIB,
}
#: For a provider not in the table.
DEFAULT_MAX_BODY_BYTES = 256 * KIB


@bp.route("/webhooks/{provider}/{kind}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@problem_errors
def receive(provider: str, kind: str) -> Response:
    webhook, hook_kind = _webhook(provider, kind)
    _check_size(webhook.name)
    request = _webhook_request()
    try:
        report = get_services().webhook_service.receive(webhook, hook_kind, request)
    except WebhookUnauthorized as exc:
        logger.warning("webhook refused", extra={"provider": provider, "reason": str(exc)})
        raise WebhookSignatureInvalid("The request is not signed by this provider.") from None
    except WebhookMalformed as exc:
        logger.warning("webhook payload refused", extra={"provider": provider, "reason": str(exc)})
        raise WebhookPayloadInvalid(str(exc)) from None
    body = {
        "applied": report.applied,
        "unmatched": report.unmatched,
        "ignored": report.ignored,
        "relayed": report.relayed,
    }
    if report.queued:
        body["queued"] = report.queued
    return json_response(body)


@bp.route("/webhooks/{provider}/{kind}", methods=["GET"])
@problem_errors
def handshake(provider: str, kind: str) -> Response:
    webhook, _ = _webhook(provider, kind)
    answer = webhook.challenge(_webhook_request())
    if answer is None:
        # Meta's handshake expects 403 when the verify token is not ours.
        raise WebhookVerificationFailed("The verification request does not match this deployment.")
    return Response(body=answer, status_code=200, headers={"Content-Type": "text/plain"})


def _webhook(provider: str, kind: str) -> tuple[ChannelWebhook, WebhookKind]:
    webhook = get_services().webhooks.get(provider)
    if webhook is None or kind not in KINDS:
        raise NotFound("No such webhook.")
    return webhook, "status" if kind == "status" else "inbound"


def _check_size(provider: str) -> None:
    size = len(request_bytes(bp.current_request))
    limit = MAX_BODY_BYTES.get(provider, DEFAULT_MAX_BODY_BYTES)
    if size > limit:
        logger.warning("webhook body too large", extra={"provider": provider, "bytes": size, "limit": limit})
        raise PayloadTooLarge(
            f"The request body is {size} bytes; this provider's webhooks take at most {limit} bytes."
        )


def _webhook_request() -> WebhookRequest:
    request = bp.current_request
    headers = {name.lower(): value for name, value in (request.headers or {}).items()}
    host = headers.get("host", "")
    stage = (request.context or {}).get("stage", "")
    path = (request.context or {}).get("path") or request.path
    prefix = f"/{stage}" if stage and not path.startswith(f"/{stage}/") else ""
    return WebhookRequest(
        headers=headers,
        body=request_bytes(request) or b"",
        query=dict(request.query_params or {}),
        url=f"https://{host}{prefix}{path}" if host else path,
    )
