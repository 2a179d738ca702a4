"""One SMS through AWS End User Messaging (`pinpoint-sms-voice-v2` SendTextMessage).

The request is built from the validated workflow item; the answer's `MessageId` is what every
delivery event names. A refusal becomes a `ProviderError` classified by `codes`. Nothing here
logs or keeps the message text, and AWS's error messages (which can quote the destination
number) are neither logged nor stored: only the error code and its `Reason`.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.adapters.providers.aws_sms import codes
from chalicelib.adapters.providers.aws_sms.settings import AwsSmsSettings
from chalicelib.domain.model import StepSpec
from chalicelib.service.message_hints import reference
from chalicelib.service.ports import ProviderError

logger = logging.getLogger(__name__)

SERVICE = "pinpoint-sms-voice-v2"
#: Transactional: the Dispatch API sends notifications, and AWS routes these for reliability.
MESSAGE_TYPE = "TRANSACTIONAL"
#: A `from` that is a phone number rather than a sender id or short code: E.164 digits, at
#: least 7 of them (validation already refused anything else that is all digits and longer).
_PHONE_NUMBER = re.compile(r"[1-9][0-9]{6,14}")


def text_message_params(
    settings: AwsSmsSettings, dispatch_uuid: str, step_index: int, message_uuid: str, spec: StepSpec
) -> dict[str, Any]:
    """The SendTextMessage parameters for one validated sms workflow item."""
    content = spec.message.get("content", {})
    if content.get("type") != "text" or not isinstance(content.get("text"), str):
        raise ProviderError(
            f"aws_sms carries only text, not {content.get('type')}",
            permanent=True,
            code="unsupported_content",
        )
    return {
        "DestinationPhoneNumber": "+" + str(spec.to.get("number", "")),
        "OriginationIdentity": settings.origination_identity or origination(spec.sender),
        "MessageBody": content["text"],
        "MessageType": MESSAGE_TYPE,
        "ConfigurationSetName": settings.configuration_set,
        # Logged by AWS with every event: ties an event to our records without a lookup.
        "Context": {
            "dispatch_uuid": dispatch_uuid,
            "message_uuid": message_uuid,
            "reference": reference(dispatch_uuid, step_index),
        },
    }


def origination(sender: Mapping[str, Any]) -> str:
    """The item's `from` as EUM names it: a phone number in +E.164, a sender id or short code
    as given."""
    number = str(sender.get("number", ""))
    return "+" + number if _PHONE_NUMBER.fullmatch(number) else number


def client_config(timeout: tuple[float, float]) -> Config:
    """The send's time limits, and no retries inside botocore: the dispatch engine already
    retries transient failures (with backoff and a limit), and SendTextMessage has no
    idempotency token, so every hidden retry after a lost answer could be a second SMS."""
    connect, read = timeout
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


class TextSender:
    """Sends through one lazily built client (building one costs a cold start ~100 ms)."""

    def __init__(
        self,
        settings: AwsSmsSettings,
        aws_client: Callable[..., Any],
        timeout: tuple[float, float],
    ) -> None:
        self._settings = settings
        self._aws_client = aws_client
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def send(self, params: dict[str, Any]) -> str:
        """Send; the EUM MessageId, or ProviderError saying whether to retry or fail over."""
        if not self._settings.configuration_set:
            # Without it no delivery event ever comes back: the step could only expire, and
            # the failover would then repeat a message that may have arrived.
            raise ProviderError(
                "aws_sms configuration_set is not configured", permanent=True, code="not_configured"
            )
        try:
            answer = self._get_client().send_text_message(**params)
        except ClientError as exc:
            raise classify(exc) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            # Timeouts and dropped connections: the message may or may not have gone out; the
            # engine's retry limit bounds the duplicates.
            code = "timeout" if "Timeout" in type(exc).__name__ else "connection"
            reason = f"aws_sms unreachable: {type(exc).__name__}"
            raise ProviderError(reason, permanent=False, code=code) from None
        except BotoCoreError as exc:
            # Client-side: parameter validation, no credentials or region. Retrying changes
            # nothing.
            reason = f"aws_sms request not sent: {type(exc).__name__}"
            raise ProviderError(reason, permanent=True, code="client_error") from None
        message_id = answer.get("MessageId") if isinstance(answer, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # Not retried: the message may well have gone out, and we could not track a second
            # one any better.
            raise ProviderError(
                "aws_sms accepted the message but returned no MessageId",
                permanent=True,
                code="no_message_id",
            )
        return message_id

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                kwargs: dict[str, Any] = {"config": client_config(self._timeout)}
                if self._settings.region:
                    kwargs["region_name"] = self._settings.region
                self._client = self._aws_client(SERVICE, **kwargs)
            return self._client


def classify(exc: ClientError) -> ProviderError:
    """A ClientError as a ProviderError: permanent or not by `codes`, coded `Code[:Reason]`."""
    response = exc.response or {}
    error_code = str(response.get("Error", {}).get("Code") or "Unknown")
    reason = response.get("Reason")
    code = f"{error_code}:{reason}" if isinstance(reason, str) and reason else error_code
    if error_code in codes.PERMANENT_ERRORS:
        permanent = True
    elif error_code in codes.TRANSIENT_ERRORS:
        permanent = False
    else:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        permanent = not codes.is_transient_status(status if isinstance(status, int) else None)
    logger.info("aws_sms send refused", extra={"code": code, "permanent": permanent})
    description = codes.ERROR_REASONS.get(error_code, "AWS End User Messaging refused the send")
    return ProviderError(f"{description} ({code})", permanent=permanent, code=code)
