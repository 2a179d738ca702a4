"""The whole service wired to in-memory adapters, for timing the application's own code.

`chalicelib.bootstrap.wire_services` over the fakes the tests use (repositories, callback store,
sweep marks, recording timer and transport) and the real sandbox provider, so a request through
`chalice.test.Client(app)` runs every line of the route, auth, validation, the state machine and
the use case, and no AWS emulator's cost hides it. Install with `installed(...)`.

The callback queue only records its nudges, as the API function on AWS only puts a message on
SQS: delivery is another function's work.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib import bootstrap
from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.providers.sandbox import SandboxProvider
from chalicelib.config import Settings
from chalicelib.domain.model import Channel
from chalicelib.service.applications import Credentials, create_application
from chalicelib.service.ports import Clock
from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore
from tests.fake_callbacks import InMemoryCallbackStore
from tests.fake_repository import InMemoryDispatchRepository, InMemorySweepMarks
from tests.fakes import RecordingCallbacks, RecordingTimer

STATUS_URL = "https://app.example/dispatch/status"


@dataclass
class RecordedNudges:
    """A callback queue that keeps each dispatch's earliest nudge and delivers nothing."""

    pending: dict[str, datetime | None] = field(default_factory=dict)

    def nudge(self, dispatch_uuid: str, at: datetime | None = None) -> None:
        self.pending.setdefault(dispatch_uuid, at)


@dataclass
class InMemoryStack:
    services: bootstrap.Services
    #: The one application, with its credentials in clear (for Basic and Bearer auth).
    credentials: Credentials
    repository: InMemoryDispatchRepository
    timer: RecordingTimer
    queue: RecordedNudges
    transport: RecordingCallbacks


def in_memory_services(clock: Clock | None = None) -> InMemoryStack:
    """Services as `bootstrap.build_services` wires them, every adapter in memory, and one
    application (a real one: generated secret, hashed, RS256 key pair)."""
    clock = clock or SystemClock()
    settings = Settings(table_name="in-memory")
    repository = InMemoryDispatchRepository()
    applications = InMemoryApplicationRepository()
    secrets = InMemorySecretStore()
    credentials = create_application(
        applications, secrets, "bench", STATUS_URL, None, clock.now(), settings.secret_prefix
    )
    timer = RecordingTimer()
    queue = RecordedNudges()
    transport = RecordingCallbacks()
    provider = SandboxProvider()
    services = bootstrap.wire_services(
        settings,
        clock=clock,
        repository=repository,
        applications=applications,
        secrets=secrets,
        timer=timer,
        routing={channel: provider for channel in Channel},
        providers={provider.name: provider},
        callback_store=InMemoryCallbackStore(),
        queue=queue,
        transport=transport,
        sweep_marks=InMemorySweepMarks(),
    )
    return InMemoryStack(services, credentials, repository, timer, queue, transport)


@contextmanager
def installed(stack: InMemoryStack) -> Iterator[InMemoryStack]:
    """The application's routes and functions use `stack`'s services while inside."""
    bootstrap.override(stack.services)
    try:
        yield stack
    finally:
        bootstrap.override(None)
