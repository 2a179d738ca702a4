"""The aws_sms webhooks: SNS HTTPS messages, verified by SNS's own signature and our topic list.

What makes a request ours, checked in this order before anything in it is acted on:
1. a topic list is configured (without one every request is refused: SNS signs for any topic
   of any AWS account, so a valid signature alone proves nothing about who published);
2. the body is an SNS message with every field its type signs, and SNS's
   `x-amz-sns-message-type` header names the same type;
3. its `TopicArn` is one we listed;
4. its `Timestamp` is under an hour old (and not from the future), so a captured message
   cannot be replayed later;
5. its signature verifies with the certificate at `SigningCertURL`, fetched only from an SNS
   host over https;
6. a subscription confirmation's `SubscribeURL` is an SNS ConfirmSubscription URL.
Only then does `parse` read the payload, and only then is a subscription confirmed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests

from chalicelib.adapters.providers.aws_sms import events, sns
from chalicelib.adapters.providers.aws_sms.certificates import CertificateRefused, SigningCertificates
from chalicelib.adapters.providers.aws_sms.settings import AwsSmsSettings
from chalicelib.service.webhooks import (
    WebhookBatch,
    WebhookKind,
    WebhookMalformed,
    WebhookRequest,
    WebhookUnauthorized,
)

logger = logging.getLogger(__name__)

MESSAGE_TYPE_HEADER = "x-amz-sns-message-type"
#: SNS's default HTTP retry policy is done within minutes; a message older than this is a
#: replay (or a delivery policy stretched past what we accept: see docs/providers/aws_sms.md).
MAX_AGE = timedelta(hours=1)
#: Clock difference tolerated for a Timestamp ahead of ours.
MAX_SKEW = timedelta(minutes=5)


class SubscriptionNotConfirmed(RuntimeError):
    """ConfirmSubscription failed; the route answers 5xx so SNS sends the confirmation again."""


class SnsWebhook:
    def __init__(
        self,
        settings: AwsSmsSettings,
        certificates: SigningCertificates,
        clock: Callable[[], datetime],
        session: Any,
        timeout: Any,
    ) -> None:
        self._settings = settings
        self._certificates = certificates
        self._clock = clock
        self._session = session
        self._timeout = timeout

    def verify(self, request: WebhookRequest) -> None:
        if not self._settings.topic_arns:
            raise WebhookUnauthorized("aws_sms topic_arn is not configured")
        header_type = request.headers.get(MESSAGE_TYPE_HEADER)
        if not header_type:
            raise WebhookUnauthorized(f"no {MESSAGE_TYPE_HEADER} header")
        try:
            message = sns.parse_message(request.body)
        except sns.NotSnsMessage as exc:
            raise WebhookUnauthorized(f"not a verifiable SNS message: {exc}") from None
        if message.type != header_type:
            raise WebhookUnauthorized("the SNS message type header and body disagree")
        if message.topic_arn not in self._settings.topic_arns:
            raise WebhookUnauthorized("the SNS topic is not one aws_sms accepts")
        age = self._clock() - message.timestamp
        if age > MAX_AGE or age < -MAX_SKEW:
            raise WebhookUnauthorized("the SNS message is stale")
        try:
            # CertificateUnavailable (AWS unreachable) is left to escape: a 5xx, and SNS retries.
            key = self._certificates.public_key(message.signing_cert_url)
        except CertificateRefused as exc:
            raise WebhookUnauthorized(str(exc)) from None
        if not sns.signature_is_valid(message, key):
            raise WebhookUnauthorized("the SNS signature does not match")
        if message.type == sns.SUBSCRIPTION_CONFIRMATION and not sns.is_subscribe_url(
            message.subscribe_url or ""
        ):
            raise WebhookUnauthorized("SubscribeURL is not an SNS ConfirmSubscription URL")

    def parse(self, request: WebhookRequest, kind: WebhookKind) -> WebhookBatch:
        try:
            message = sns.parse_message(request.body)
        except sns.NotSnsMessage as exc:
            raise WebhookMalformed(str(exc)) from None
        if message.type == sns.NOTIFICATION:
            return events.notification_batch(message.message, message.message_id, message.timestamp)
        if message.type == sns.SUBSCRIPTION_CONFIRMATION:
            self._confirm(message)
        else:
            logger.info("sns subscription ended", extra={"topic_arn": message.topic_arn})
        return WebhookBatch()

    def challenge(self, request: WebhookRequest) -> str | None:
        return None  # SNS confirms subscriptions by POST (handled in `parse`), never by GET

    def _confirm(self, message: sns.SnsMessage) -> None:
        # The URL carries the subscription token: it is called, never logged.
        url = message.subscribe_url or ""
        try:
            response = self._session.get(url, timeout=self._timeout)
        except requests.RequestException as exc:
            raise SubscriptionNotConfirmed(f"ConfirmSubscription failed: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise SubscriptionNotConfirmed(f"ConfirmSubscription answered {response.status_code}")
        logger.info("sns subscription confirmed", extra={"topic_arn": message.topic_arn})
