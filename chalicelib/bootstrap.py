"""The composition root: the only module that builds concrete adapters.

Everything is built on first use, never at import, so moto can be active before any boto3
client exists and a Lambda cold start pays only for what the invocation needs.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import Settings, load_settings
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.ports import (
    ApplicationRepository,
    CallbackQueue,
    CallbackStore,
    CallbackTransport,
    Clock,
    DispatchRepository,
    SecretStore,
    SweepMarks,
    Timer,
    TokenUses,
)


@dataclass
class Services:
    settings: Settings
    dispatches: DispatchService
    applications: ApplicationRepository
    secrets: SecretStore
    clock: Clock
    #: The local callback sink; None outside the local stage.
    sink: Any = None
    #: The safety sweeper (`chalicelib.service.sweeper.Sweeper`); None only when built by hand.
    sweeper: Any = None
    #: Channel webhooks by provider name (`ChannelWebhook`), and the service that applies them.
    webhooks: dict[str, Any] = field(default_factory=dict)
    webhook_service: Any = None
    #: Per channel, what its provider can carry (validation refuses the rest).
    carried: dict[Any, Any] = field(default_factory=dict)
    #: Callback delivery (`CallbackRelay`), its records (`CallbackStore`) and its queue.
    callback_relay: Any = None
    callback_store: Any = None
    callback_queue: Any = None
    #: What the callbacks API reads and replays (`CallbackHistory`).
    callback_history: Any = None
    #: Where large webhook batches go (`WebhookQueue`): SQS, or applied at once in this process.
    webhook_queue: Any = None
    #: The client JWTs already used, when each is accepted once (DISPATCH_JWT_SINGLE_USE); else None.
    token_uses: TokenUses | None = None


_lock = threading.Lock()
_services: Services | None = None
_local_timer: Any = None


def get_services() -> Services:
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build_services(load_settings(os.environ))
    return _services


def override(services: Services | None) -> None:
    """Replace the cached services (tests), or drop them so the next use rebuilds."""
    global _services
    _services = services


def build_services(
    settings: Settings,
    *,
    timer: Timer | None = None,
    http_session: Any = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
) -> Services:
    """Build every adapter the settings name; tests may hand in a timer, session and clock
    (and `environ`, where the local stage's provider credentials are read from)."""
    import boto3
    import requests

    from chalicelib.adapters.callback_transport import HttpCallbackTransport
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.dynamodb_applications import DynamoApplicationRepository
    from chalicelib.adapters.dynamodb_callbacks import DynamoCallbackStore
    from chalicelib.adapters.dynamodb_dispatches import DynamoDispatchRepository
    from chalicelib.adapters.dynamodb_sweep_marks import DynamoSweepMarks
    from chalicelib.adapters.dynamodb_token_uses import DynamoTokenUses
    from chalicelib.adapters.provider_credentials import ProviderCredentials
    from chalicelib.adapters.secrets import SecretsManagerStore

    dynamodb = boto3.client("dynamodb")
    clock = clock or SystemClock()
    secrets = SecretsManagerStore(boto3.client("secretsmanager"))
    session = http_session or requests.Session()
    credentials = ProviderCredentials(
        settings.provider_credentials,
        secrets,
        settings.secret_prefix,
        os.environ if environ is None else environ,
    )
    routing, providers = build_providers(settings, credentials, session, clock)
    return wire_services(
        settings,
        clock=clock,
        repository=DynamoDispatchRepository(dynamodb, settings.table_name, settings.retention_days),
        applications=DynamoApplicationRepository(dynamodb, settings.table_name),
        secrets=secrets,
        timer=timer or build_timer(settings),
        routing=routing,
        providers=providers,
        callback_store=DynamoCallbackStore(dynamodb, settings.table_name, settings.retention_days),
        queue=build_callback_queue(settings, clock),
        transport=HttpCallbackTransport(
            session, secrets, clock.now, timeout=(3.05, settings.callback_timeout_seconds)
        ),
        sweep_marks=DynamoSweepMarks(dynamodb, settings.table_name),
        sink=build_sink(settings),
        webhook_queue=build_webhook_queue(settings),
        token_uses=DynamoTokenUses(dynamodb, settings.table_name) if settings.jwt_single_use else None,
    )


def wire_services(
    settings: Settings,
    *,
    clock: Clock,
    repository: DispatchRepository,
    applications: ApplicationRepository,
    secrets: SecretStore,
    timer: Timer,
    routing: dict[Any, Any],
    providers: dict[str, Any],
    callback_store: CallbackStore,
    queue: CallbackQueue,
    transport: CallbackTransport,
    sweep_marks: SweepMarks | None,
    sink: Any = None,
    webhook_queue: Any = None,
    token_uses: TokenUses | None = None,
) -> Services:
    """The use cases wired over adapters already built: by `build_services` for AWS and the
    local stack, and by the benchmarks over in-memory adapters. A queue that can `bind` (the
    inline ones) is given the relay, or the webhook service, to run in this process; without a
    webhook queue, large webhook batches are applied at once by an inline one."""
    from chalicelib.adapters.application_cache import CachedApplications
    from chalicelib.api.validation import Carried
    from chalicelib.domain.callbacks import RetryPolicy
    from chalicelib.service.callback_history import CallbackHistory
    from chalicelib.service.callback_relay import CallbackRelay
    from chalicelib.service.sweeper import Sweeper
    from chalicelib.service.webhooks import WebhookService

    cached_applications = CachedApplications(applications)
    relay = CallbackRelay(
        repository=repository,
        store=callback_store,
        transport=transport,
        applications=cached_applications,
        queue=queue,
        clock=clock,
        policy=RetryPolicy(
            base_seconds=settings.callback_retry_base_seconds,
            cap_seconds=settings.callback_retry_cap_seconds,
            window_seconds=settings.callback_retry_hours * 3600,
        ),
    )
    if hasattr(queue, "bind"):
        queue.bind(relay)
    dispatches = DispatchService(
        repository=repository,
        providers=routing,
        timer=timer,
        callback_queue=queue,
        clock=clock,
        policy=settings.policy,
    )
    callback_history = CallbackHistory(dispatches, callback_store, queue, clock)
    webhooks = {name: p for name, p in providers.items() if hasattr(p, "verify")}
    if webhook_queue is None:
        from chalicelib.adapters.inline_webhook_queue import InlineWebhookQueue

        webhook_queue = InlineWebhookQueue()
    webhook_service = WebhookService(
        dispatches,
        repository,
        cached_applications,
        queue=webhook_queue,
        inline_limit=settings.webhook_inline_limit,
    )
    if hasattr(webhook_queue, "bind"):
        webhook_queue.bind(webhook_service)
    carried = {
        channel: Carried(
            provider.name,
            frozenset(provider.content_types.get(channel, ())),
            getattr(provider, "address_fields", {}).get(channel),
        )
        for channel, provider in routing.items()
        if hasattr(provider, "content_types")
    }
    return Services(
        settings=settings,
        dispatches=dispatches,
        applications=applications,
        secrets=secrets,
        clock=clock,
        sink=sink,
        sweeper=Sweeper(
            repository,
            dispatches,
            clock,
            grace_seconds=settings.sweep_grace_seconds,
            lookback_minutes=settings.sweep_lookback_minutes,
            recent_minutes=settings.sweep_recent_minutes,
            full_every_minutes=settings.sweep_full_every_minutes,
            marks=sweep_marks,
            callback_store=callback_store,
            callback_queue=queue,
        ),
        webhooks=webhooks,
        webhook_service=webhook_service,
        carried=carried,
        callback_relay=relay,
        callback_store=callback_store,
        callback_queue=queue,
        callback_history=callback_history,
        webhook_queue=webhook_queue,
        token_uses=token_uses,
    )


def build_webhook_queue(settings: Settings) -> Any:
    """SQS when the settings name a webhook queue; None otherwise (`wire_services` then applies
    large batches in the process)."""
    if not settings.webhook_queue_url:
        return None
    import boto3

    from chalicelib.adapters.sqs_webhook_queue import SqsWebhookQueue

    return SqsWebhookQueue(boto3.client("sqs"), settings.webhook_queue_url)


def build_callback_queue(settings: Settings, clock: Clock) -> CallbackQueue:
    """SQS (AWS and the local stack), or drains run in this process (`inline`, tests)."""
    if settings.callback_delivery == "sqs":
        import boto3

        from chalicelib.adapters.sqs_callback_queue import SqsCallbackQueue

        assert settings.callback_queue_url, "load_settings requires it for this mode"
        return SqsCallbackQueue(boto3.client("sqs"), settings.callback_queue_url, clock.now)
    from chalicelib.adapters.inline_callback_queue import InlineCallbackQueue

    return InlineCallbackQueue(clock)


#: Every provider, by the name the configuration uses, and the module whose `build(context)`
#: makes it. An explicit table, not discovery: adding a provider means adding a line here.
PROVIDER_MODULES = {
    "vonage": "chalicelib.adapters.providers.vonage",
    "whatsapp": "chalicelib.adapters.providers.whatsapp",
    "messenger": "chalicelib.adapters.providers.messenger",
    "viber": "chalicelib.adapters.providers.viber",
    "aws_sms": "chalicelib.adapters.providers.aws_sms",
}


def build_providers(
    settings: Settings, credentials: Any, session: Any, clock: Clock
) -> tuple[dict, dict[str, Any]]:
    """(provider per channel, provider per name) for the providers the settings route to."""
    import importlib

    import boto3

    from chalicelib.adapters.providers.context import ProviderContext
    from chalicelib.adapters.providers.sandbox import SandboxProvider

    built: dict[str, Any] = {}
    routing = {}
    for channel, name in settings.channel_providers.items():
        if name not in built:
            if name == "sandbox":
                built[name] = SandboxProvider()
            elif name in PROVIDER_MODULES:
                module = importlib.import_module(PROVIDER_MODULES[name])
                context = ProviderContext(
                    credentials=credentials.get(name),
                    session=session,
                    clock=clock.now,
                    aws_client=boto3.client,
                )
                built[name] = module.build(context)
            else:
                known = sorted({"sandbox", *PROVIDER_MODULES})
                raise ValueError(f"no provider named {name!r} (known: {known})")
        routing[channel] = built[name]
    return routing, built


def build_timer(settings: Settings) -> Timer:
    """The timer backend the stage names: Step Functions or EventBridge Scheduler on AWS."""
    import boto3

    if settings.timer_backend == "stepfunctions":
        from chalicelib.adapters.stepfunctions_timer import StepFunctionsTimer

        assert settings.state_machine_arn, "load_settings requires it for this backend"
        return StepFunctionsTimer(boto3.client("stepfunctions"), settings.state_machine_arn)
    if settings.timer_backend == "scheduler":
        from chalicelib.adapters.clock import SystemClock
        from chalicelib.adapters.scheduler_timer import SchedulerTimer

        assert settings.schedule_group and settings.check_function_arn and settings.scheduler_role_arn
        return SchedulerTimer(
            boto3.client("scheduler"),
            settings.schedule_group,
            settings.check_function_arn,
            settings.scheduler_role_arn,
            SystemClock().now,
        )
    return local_timer()


#: Checks due at the same moment run side by side, as concurrent Lambda invocations would;
#: one slow check (a slow callback receiver, say) must not make every later one late.
LOCAL_CHECK_WORKERS = 16


def local_timer() -> Any:
    """The process-wide local timer; it fires checks through the Lambda's own handler."""
    global _local_timer
    if _local_timer is None:
        from concurrent.futures import ThreadPoolExecutor

        from chalicelib.adapters.local_timer import LocalTimer

        pool = ThreadPoolExecutor(LOCAL_CHECK_WORKERS, thread_name_prefix="failover-check")
        _local_timer = LocalTimer(lambda event: pool.submit(_run_check_logged, event))
        _local_timer.start()
    return _local_timer


#: Waits before trying a failed check again; a check is idempotent, so retrying is safe.
LOCAL_CHECK_RETRY_SECONDS = (2, 10, 60)
_check_failures: dict[tuple[str, int], int] = {}


def _run_check_logged(event: dict) -> None:
    """Run one check; if it fails, try again later, as Lambda retries a failed async invoke."""
    from datetime import timedelta

    from chalicelib.api.checks import run_check

    key = (str(event.get("dispatch_uuid")), int(event.get("step_index", 0)))
    try:
        run_check(event)
        _check_failures.pop(key, None)
        return
    except Exception:  # a pool would swallow it silently
        failures = _check_failures.get(key, 0)
        logging.getLogger(__name__).exception(
            "failover check failed", extra={**event, "failures": failures + 1}
        )
    if failures >= len(LOCAL_CHECK_RETRY_SECONDS):
        _check_failures.pop(key, None)
        return
    _check_failures[key] = failures + 1
    retry_at = get_services().clock.now() + timedelta(seconds=LOCAL_CHECK_RETRY_SECONDS[failures])
    local_timer().schedule(key[0], key[1], retry_at)


def build_sink(settings: Settings) -> Any:
    """The local callback sink, in memory: it exists only in the single-process local stack."""
    if not settings.sandbox_routes:
        return None
    from chalicelib.adapters.memory_sink import InMemoryCallbackSink

    return InMemoryCallbackSink()
