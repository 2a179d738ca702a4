"""Callbacks delivered on a worker thread, in the order they were decided.

The service decides callbacks as part of an input and hands them over last; delivering them
inline would make the client's 202, a webhook's answer or a timer check wait on the slowest
receiver (up to three attempts with their timeouts). Here `deliver` only queues. One worker
keeps each application's callbacks in order. A process that stops loses what is queued: the
local stack accepts that; durable delivery is a queue service's job in AWS.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.application import Application
from chalicelib.service.ports import CallbackId, CallbackSender

logger = logging.getLogger(__name__)

#: Callbacks waiting at most; past it new ones are dropped (and logged) rather than eat memory.
MAX_QUEUED = 10_000


class BackgroundCallbackSender:
    def __init__(self, inner: CallbackSender, max_queued: int = MAX_QUEUED) -> None:
        self._inner = inner
        self._queue: queue.Queue[tuple[Application, dict[str, Any], bool, CallbackId | None]] = (
            queue.Queue(max_queued)
        )
        self._thread = threading.Thread(target=self._run, name="callbacks", daemon=True)
        self._thread.start()

    def deliver(
        self,
        application: Application,
        payload: Mapping[str, Any],
        *,
        inbound: bool = False,
        callback_id: CallbackId | None = None,
    ) -> None:
        try:
            self._queue.put_nowait((application, dict(payload), inbound, callback_id))
        except queue.Full:
            logger.error(
                "callback queue full; callback dropped",
                extra={"application_id": application.application_id},
            )

    def wait_until_idle(self) -> None:
        """Block until every queued callback has been attempted (tests and shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            application, payload, inbound, callback_id = self._queue.get()
            try:
                self._inner.deliver(application, payload, inbound=inbound, callback_id=callback_id)
            except Exception:  # the inner sender never raises; a bug must not stop the worker
                logger.exception("callback delivery failed")
            finally:
                self._queue.task_done()
