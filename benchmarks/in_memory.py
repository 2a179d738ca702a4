"""The whole service wired to in-memory adapters, for timing the application's own code.

`chalicelib.bootstrap.Services` built from the fakes the tests use (repositories, callback store,
recording timer and transport) and the real sandbox provider, so a request through
`chalice.test.Client(app)` runs every line of the route, auth, validation, the state machine and
the use case, and no AWS emulator's cost hides it. Install with `installed(...)`.

The callback queue only keeps its nudges by default, as the API function on AWS only puts a
message on SQS: delivery is another function's work. `drain_callbacks=True` delivers them in the
same process instead (to the recording transport), as the `inline` delivery mode does.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chalicelib import bootstrap
from chalicelib.adapters.application_cache import CachedApplications
from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.inline_callback_queue import InlineCallbackQueue
from chalicelib.adapters.providers.sandbox import SandboxProvider
from chalicelib.config import Settings
from chalicelib.domain.model import Channel
from chalicelib.service.applications import Credentials, create_application
from chalicelib.service.callback_history import CallbackHistory
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import Clock
from chalicelib.service.sweeper import Sweeper
from chalicelib.service.webhooks import WebhookService
from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore
from tests.fake_callbacks import InMemoryCallbackStore
from tests.fake_repository import InMemoryDispatchRepository
from tests.fakes import RecordingCallbacks, RecordingTimer

STATUS_URL = "https://app.example/dispatch/status"


@dataclass
class InMemoryStack:
    services: bootstrap.Services
    #: The one application, with its credentials in clear (for Basic and Bearer auth).
    credentials: Credentials
    repository: InMemoryDispatchRepository
    timer: RecordingTimer
    queue: InlineCallbackQueue
    transport: RecordingCallbacks


def in_memory_services(clock: Clock | None = None, *, drain_callbacks: bool = False) -> InMemoryStack:
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
    store = InMemoryCallbackStore()
    transport = RecordingCallbacks()
    queue = InlineCallbackQueue(clock)
    cached = CachedApplications(applications)
    relay = CallbackRelay(
        repository=repository,
        store=store,
        transport=transport,
        applications=cached,
        queue=queue,
        clock=clock,
    )
    if drain_callbacks:
        queue.bind(relay)
    provider = SandboxProvider()
    dispatches = DispatchService(
        repository=repository,
        providers={channel: provider for channel in Channel},
        timer=timer,
        callbacks=queue,
        clock=clock,
        policy=settings.policy,
    )
    services = bootstrap.Services(
        settings=settings,
        dispatches=dispatches,
        applications=applications,
        secrets=secrets,
        clock=clock,
        sweeper=Sweeper(
            repository,
            dispatches,
            clock,
            grace_seconds=settings.sweep_grace_seconds,
            lookback_minutes=settings.sweep_lookback_minutes,
            callback_store=store,
            callback_queue=queue,
        ),
        webhook_service=WebhookService(dispatches, repository, cached),
        callbacks=relay,
        callback_store=store,
        callback_queue=queue,
        callback_history=CallbackHistory(dispatches, store, queue, clock),
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
