"""A DispatchService wired to in-memory fakes, with controls to drive time and timers."""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.adapters.inline_callback_queue import InlineCallbackQueue
from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import RetryPolicy
from chalicelib.domain.model import Channel, Condition, Dispatch, Policy, StatusEvent, StepSpec
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.dispatches import DispatchService
from tests.fake_applications import InMemoryApplicationRepository
from tests.fake_callbacks import InMemoryCallbackStore
from tests.fake_repository import InMemoryDispatchRepository
from tests.fakes import T0, FakeClock, RecordingCallbacks, RecordingTimer, ScriptedProvider

POLICY = Policy(
    max_send_attempts=3,
    retry_backoff_seconds=(2, 8),
    send_guard_seconds=120,
    last_step_report_seconds=3600,
)


def spec(channel: Channel, condition: Condition | None = None, expiry: int | None = None) -> StepSpec:
    """One message of a dispatch to a test number; the last of a dispatch takes no condition."""
    return StepSpec(
        channel=channel,
        to={"type": channel.value, "number": "447700900000"},
        sender={"type": channel.value, "number": "447700900001"},
        message={"content": {"type": "text", "text": "hello"}},
        condition=condition,
        expiry_time=expiry,
    )


def application(application_id: str = "app-1") -> Application:
    return Application(
        application_id=application_id,
        name=application_id,
        api_key=f"key-{application_id}",
        api_secret_hash="0" * 64,
        public_key_pem="",
        signature_secret_ref=f"secret/{application_id}",
        status_url="https://example.test/status",
        created_at=T0,
    )


@dataclass
class Harness:
    clock: FakeClock = field(default_factory=FakeClock)
    repo: InMemoryDispatchRepository = field(default_factory=InMemoryDispatchRepository)
    timer: RecordingTimer = field(default_factory=RecordingTimer)
    provider: ScriptedProvider = field(default_factory=ScriptedProvider)
    callbacks: RecordingCallbacks = field(default_factory=RecordingCallbacks)
    app: Application = field(default_factory=application)
    other_app: Application = field(default_factory=lambda: application("app-2"))
    policy: Policy = POLICY
    store: InMemoryCallbackStore = field(default_factory=InMemoryCallbackStore)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: The jitter draw: 0.0 waits the least the backoff allows, 1.0 the most.
    jitter: float = 0.5

    def __post_init__(self) -> None:
        self.apps = InMemoryApplicationRepository([self.app, self.other_app])
        self.queue = InlineCallbackQueue(self.clock)
        self.relay = CallbackRelay(
            repository=self.repo,
            store=self.store,
            transport=self.callbacks,
            applications=self.apps,
            queue=self.queue,
            clock=self.clock,
            policy=self.retry_policy,
            random=lambda: self.jitter,
        )
        self.queue.bind(self.relay)
        self.service = DispatchService(
            repository=self.repo,
            providers={channel: self.provider for channel in Channel},
            timer=self.timer,
            callback_queue=self.queue,
            clock=self.clock,
            policy=self.policy,
        )

    def dispatch(self, dispatch_uuid: str) -> Dispatch:
        stored = self.repo.get(dispatch_uuid)
        assert stored is not None
        return stored

    def status(self, dispatch_uuid: str, index: int, event: StatusEvent) -> bool:
        step = self.dispatch(dispatch_uuid).steps[index]
        return self.service.apply_status(
            self.provider.name, f"{self.provider.name}-{step.message_uuid}", event
        )

    def advance(self, seconds: float) -> None:
        """Let time pass, firing every timer and every callback drain that comes due, in time
        order, as the timer backend and the callback queue would."""
        target = self.clock.current.timestamp() + seconds
        while True:
            timers = [(at, key) for key, at in self.timer.pending.items() if at.timestamp() <= target]
            drains = [at for at in self.queue.pending.values() if at.timestamp() <= target]
            if not timers and not drains:
                break
            if drains and (not timers or min(drains) <= min(timers)[0]):
                self.clock.current = max(self.clock.current, min(drains))
                self.queue.pump()
                continue
            at, (dispatch_uuid, index) = min(timers)
            self.clock.current = max(self.clock.current, at)
            del self.timer.pending[(dispatch_uuid, index)]
            self.service.run_check(dispatch_uuid, index)
        self.clock.advance(target - self.clock.current.timestamp())
