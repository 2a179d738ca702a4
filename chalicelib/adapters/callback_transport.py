"""Posts one signed callback to an application's URL: the `CallbackTransport` port over HTTP.

One attempt per call, no sleeping: retries and their timing belong to the callback relay, which
records every attempt. Never raises: every outcome, including a bug, is an `AttemptResult`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import requests

from chalicelib.adapters.callback_signing import key_id, sign
from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import AttemptResult, CallbackKind, CallbackRecord
from chalicelib.service.ports import SecretStore

logger = logging.getLogger(__name__)

USER_AGENT = "dispatch-callbacks/1"


class HttpCallbackTransport:
    def __init__(
        self,
        session: requests.Session,
        secrets: SecretStore,
        clock: Callable[[], datetime],
        timeout: tuple[float, float] = (3.05, 5),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._secrets = secrets
        self._clock = clock
        self._timeout = timeout
        self._monotonic = monotonic

    def attempt(self, application: Application, record: CallbackRecord) -> AttemptResult:
        """Sign and post the record's body once.

        Headers: `Authorization: Bearer <JWT>` (HS256 over the body's hash, claims `event_id` and
        `seq`), `X-Dispatch-Signature-Key` (which secret signed), `X-Dispatch-Event-Id`,
        `X-Dispatch-Sequence` and `X-Dispatch-Attempt` (1 for the first delivery)."""
        inbound = record.kind is CallbackKind.INBOUND
        url = application.inbound_url if inbound else application.status_url
        if not url:
            return AttemptResult(error="no_inbound_url" if inbound else "no_status_url")
        try:
            return self._post(application, url, record)
        except Exception:  # the port promises an outcome, never an exception
            # Without the traceback: exception text could quote the body or the token.
            logger.error("callback attempt failed unexpectedly", extra=record.ids)
            return AttemptResult(error="internal")

    def _post(self, application: Application, url: str, record: CallbackRecord) -> AttemptResult:
        try:
            secret = self._secrets.get(application.signature_secret_ref)
        except Exception:
            # Never send unsigned: receivers are told to reject those anyway.
            logger.error("callback not sent, signature secret unavailable", extra=record.ids)
            return AttemptResult(error="signature_secret_unavailable")
        body = record.body.encode("utf-8")
        claims = {"event_id": record.event_id, "seq": record.seq}
        token = sign(
            body, secret, application.application_id, application.api_key, self._clock(), claims
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "X-Dispatch-Signature-Key": key_id(secret),
            "X-Dispatch-Event-Id": record.event_id,
            "X-Dispatch-Sequence": str(record.seq),
            "X-Dispatch-Attempt": str(len(record.attempts) + 1),
        }
        started = self._monotonic()
        try:
            response = self._session.post(
                # No redirects: a redirected POST turns into a GET and loses the body.
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            return AttemptResult(error="timeout", duration_ms=self._since(started))
        except (
            requests.ConnectionError,
            # The receiver's answer broke off or could not be decoded part way: a network or
            # receiver fault like any dropped connection, which a later attempt may get past.
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ):
            return AttemptResult(error="connection", duration_ms=self._since(started))
        except requests.RequestException:
            # A malformed URL and the like: no retry can fix it.
            return AttemptResult(error="invalid_url", duration_ms=self._since(started))
        retry_after = _retry_after(response.headers.get("Retry-After"), self._clock())
        return AttemptResult(
            status_code=response.status_code,
            retry_after=retry_after,
            duration_ms=self._since(started),
        )

    def _since(self, started: float) -> int:
        return max(0, round((self._monotonic() - started) * 1000))


def _retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds: either delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    # ASCII only: str.isdigit() also accepts "²", which float() refuses; delay-seconds is 1*DIGIT.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())

