"""Posts signed callbacks to an application's status URL over HTTP, with bounded retries.

Implements the `CallbackSender` port. A callback is best effort: it never raises into the
dispatch flow, and a receiver that stays down loses that callback (logged, with ids only).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from chalicelib.adapters.callback_signing import key_id, sign
from chalicelib.domain.application import Application
from chalicelib.service.callback_payloads import dispatch_uuid_of
from chalicelib.service.ports import CallbackId, SecretStore

logger = logging.getLogger(__name__)

USER_AGENT = "dispatch-callbacks/1"
#: 429 asks us to slow down; 5xx is the receiver's own failure. Both may pass on a retry.
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))

_RETRY = "retry"
_DONE = "done"
_GIVE_UP = "give_up"


class HttpCallbackSender:
    def __init__(
        self,
        session: requests.Session,
        secrets: SecretStore,
        clock: Callable[[], datetime],
        timeout: tuple[float, float] = (3.05, 5),
        attempts: int = 3,
        backoff_seconds: tuple[float, ...] = (0.2, 1.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session = session
        self._secrets = secrets
        self._clock = clock
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds or (0.0,)
        self._sleep = sleep

    def deliver(
        self,
        application: Application,
        payload: Mapping[str, Any],
        *,
        inbound: bool = False,
        callback_id: CallbackId | None = None,
    ) -> None:
        """Sign and post one callback. Never raises.

        A numbered callback carries `X-Dispatch-Event-Id` and `X-Dispatch-Sequence`, repeated as
        the signed claims `event_id` and `seq`: receivers dedupe on the one and order by the
        other."""
        ids = _log_ids(application, payload)
        url = application.inbound_url if inbound else application.status_url
        if not url:
            logger.info("callback skipped, no %s: %s", "inbound_url" if inbound else "status_url", ids)
            return
        try:
            self._deliver(application, url, payload, ids, callback_id)
        except Exception:  # the port promises never to raise into the dispatch flow
            # Without the traceback: exception text could quote the body or the token.
            logger.error("callback failed unexpectedly: %s", ids)

    def _deliver(
        self,
        application: Application,
        url: str,
        payload: Mapping[str, Any],
        ids: str,
        callback_id: CallbackId | None,
    ) -> None:
        # Serialised once so every attempt signs and sends the very same bytes.
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            secret = self._secrets.get(application.signature_secret_ref)
        except Exception:
            # Never send unsigned: receivers are told to reject those anyway.
            logger.error("callback not sent, signature secret unavailable: %s", ids)
            return
        for attempt in range(1, self._attempts + 1):
            outcome = self._attempt(application, url, body, secret, ids, attempt, callback_id)
            if outcome != _RETRY:
                return
            if attempt < self._attempts:
                self._sleep(self._backoff[min(attempt - 1, len(self._backoff) - 1)])
        logger.error("callback dropped after %d attempts: %s", self._attempts, ids)

    def _attempt(
        self,
        application: Application,
        url: str,
        body: bytes,
        secret: str,
        ids: str,
        attempt: int,
        callback_id: CallbackId | None,
    ) -> str:
        claims = {"event_id": callback_id.event_id, "seq": callback_id.seq} if callback_id else None
        token = sign(
            body, secret, application.application_id, application.api_key, self._clock(), claims
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "X-Dispatch-Signature-Key": key_id(secret),
        }
        if callback_id is not None:
            headers["X-Dispatch-Event-Id"] = callback_id.event_id
            headers["X-Dispatch-Sequence"] = str(callback_id.seq)
        try:
            response = self._session.post(
                # No redirects: a redirected POST turns into a GET and loses the body.
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            logger.warning("callback attempt %d: %s: %s", attempt, type(exc).__name__, ids)
            return _RETRY
        except requests.RequestException as exc:
            # A malformed URL and the like: no retry can fix it.
            logger.error("callback not sent: %s: %s", type(exc).__name__, ids)
            return _GIVE_UP
        status = response.status_code
        if 200 <= status < 300:
            return _DONE
        if status in RETRYABLE_STATUS:
            logger.warning("callback attempt %d: HTTP %d: %s", attempt, status, ids)
            return _RETRY
        logger.error("callback rejected, not retried: HTTP %d: %s", status, ids)
        return _GIVE_UP


def _log_ids(application: Application, payload: Mapping[str, Any]) -> str:
    """The identifiers a failure may be logged with; never the body or the token."""
    message_uuid = payload.get("message_uuid") if isinstance(payload, Mapping) else None
    return (
        f"application_id={application.application_id} "
        f"dispatch_uuid={dispatch_uuid_of(payload)} "
        f"message_uuid={message_uuid if isinstance(message_uuid, str) else None}"
    )
