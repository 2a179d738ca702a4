"""A short-lived cache of applications for routing callbacks.

Every callback needs its application's status URL and secret name; reading them from DynamoDB
for each one would double the reads of a status webhook. Authentication never uses this cache:
a rotated secret or key stops working at once.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.domain.application import Application
from chalicelib.service.ports import ApplicationRepository

#: How long a URL change may take to reach the callbacks of a warm process.
TTL_SECONDS = 30.0


class CachedApplications:
    """Read-through `get` over an ApplicationRepository; misses are not cached."""

    def __init__(
        self,
        applications: ApplicationRepository,
        ttl_seconds: float = TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._applications = applications
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Application]] = {}

    def get(self, application_id: str) -> Application | None:
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(application_id)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        application = self._applications.get(application_id)
        if application is not None:
            with self._lock:
                self._entries[application_id] = (now, application)
        return application
