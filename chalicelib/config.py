"""Settings, read from the environment (the stage's `environment_variables`) when first needed.

Every variable is documented in the README's configuration table. Secrets never come from here:
only the names under which Secrets Manager holds them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.domain.model import Channel, Policy

TIMER_BACKENDS = ("local", "stepfunctions", "scheduler")
CALLBACK_DELIVERIES = ("inline", "sqs")
PROVIDER_CREDENTIAL_SOURCES = ("secretsmanager", "env")


class ConfigError(ValueError):
    """A setting is missing or malformed; raised at first use so a bad deploy fails loudly."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    stage: str = "local"
    secret_prefix: str = "dispatch"
    timer_backend: str = "local"
    #: Which provider sends each channel.
    channel_providers: Mapping[Channel, str] = field(
        default_factory=lambda: {channel: "sandbox" for channel in Channel}
    )
    sandbox_routes: bool = False
    policy: Policy = Policy()
    callback_timeout_seconds: float = 5.0
    #: `sqs` has callbacks drained by the `deliver_callbacks` function from the callback queue
    #: (AWS and the local stack); `inline` drains them in the process that decided them (tests).
    callback_delivery: str = "inline"
    callback_queue_url: str | None = None
    #: How long a callback is retried from when it was decided (or replayed), and its backoff.
    callback_retry_hours: int = 24
    callback_retry_base_seconds: int = 10
    callback_retry_cap_seconds: int = 3600
    retention_days: int = 90
    #: The `stepfunctions` backend's state machine.
    state_machine_arn: str | None = None
    #: The `scheduler` backend's schedule group, the role it invokes with, and what it invokes.
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    check_function_arn: str | None = None
    #: The sweeper re-drives a step once its check is this late: more than any timer's own
    #: lateness (EventBridge Scheduler's can reach 60 s), so it only catches lost checks.
    sweep_grace_seconds: int = 90
    #: How far back each sweep looks; a dispatch stranded for longer needs `dispatch_admin sweep`.
    sweep_lookback_minutes: int = 60
    #: Most sweeps look back only this far; one run in `sweep_full_every_minutes` looks back all
    #: the way. The short runs cost a Query per minute covered, per index.
    sweep_recent_minutes: int = 3
    sweep_full_every_minutes: int = 15
    #: Where provider credentials live: `secretsmanager` (AWS) or `env` (the local stack).
    provider_credentials: str = "secretsmanager"
    #: The SQS queue a webhook batch of more than `webhook_inline_limit` events goes to, for the
    #: `apply_webhooks` function; None applies such batches in the request (tests).
    webhook_queue_url: str | None = None
    webhook_inline_limit: int = 25
    #: Accept each client JWT (application_id, jti) once, recorded in the table: docs/security.md.
    jwt_single_use: bool = False


def load_settings(environ: Mapping[str, str]) -> Settings:
    table = environ.get("DISPATCH_TABLE")
    if not table:
        raise ConfigError("DISPATCH_TABLE is not set: name the DynamoDB table to use")
    timer = environ.get("DISPATCH_TIMER_BACKEND", "local")
    if timer not in TIMER_BACKENDS:
        raise ConfigError(f"DISPATCH_TIMER_BACKEND must be one of {TIMER_BACKENDS}, not {timer!r}")
    delivery = environ.get("DISPATCH_CALLBACK_DELIVERY", "inline")
    if delivery not in CALLBACK_DELIVERIES:
        raise ConfigError(
            f"DISPATCH_CALLBACK_DELIVERY must be one of {CALLBACK_DELIVERIES}, not {delivery!r}"
        )
    return Settings(
        table_name=table,
        stage=environ.get("DISPATCH_STAGE", "local"),
        secret_prefix=environ.get("DISPATCH_SECRET_PREFIX", "dispatch"),
        timer_backend=timer,
        channel_providers=_channel_providers(environ.get("DISPATCH_CHANNEL_PROVIDERS")),
        sandbox_routes=_flag(environ, "DISPATCH_SANDBOX_ROUTES"),
        policy=Policy(
            max_send_attempts=_int(environ, "DISPATCH_MAX_SEND_ATTEMPTS", 3, 1),
            retry_backoff_seconds=_backoff(environ.get("DISPATCH_SEND_RETRY_BACKOFF", "2,8")),
            send_guard_seconds=_int(environ, "DISPATCH_SEND_GUARD_SECONDS", 120, 10),
            last_step_report_seconds=_int(environ, "DISPATCH_LAST_MESSAGE_REPORT_SECONDS", 86_400, 15),
        ),
        callback_timeout_seconds=float(environ.get("DISPATCH_CALLBACK_TIMEOUT_SECONDS", "5")),
        callback_delivery=delivery,
        callback_queue_url=_required_for(
            environ, delivery, "sqs", "DISPATCH_CALLBACK_QUEUE_URL", "DISPATCH_CALLBACK_DELIVERY"
        ),
        callback_retry_hours=_int(environ, "DISPATCH_CALLBACK_RETRY_HOURS", 24, 1),
        callback_retry_base_seconds=_int(environ, "DISPATCH_CALLBACK_RETRY_BASE_SECONDS", 10, 1),
        callback_retry_cap_seconds=_int(environ, "DISPATCH_CALLBACK_RETRY_CAP_SECONDS", 3600, 1),
        retention_days=_int(environ, "DISPATCH_RETENTION_DAYS", 90, 1),
        state_machine_arn=_required_for(environ, timer, "stepfunctions", "DISPATCH_STATE_MACHINE_ARN"),
        schedule_group=_required_for(environ, timer, "scheduler", "DISPATCH_SCHEDULE_GROUP"),
        scheduler_role_arn=_required_for(environ, timer, "scheduler", "DISPATCH_SCHEDULER_ROLE_ARN"),
        check_function_arn=_required_for(environ, timer, "scheduler", "DISPATCH_CHECK_FUNCTION_ARN"),
        sweep_grace_seconds=_int(environ, "DISPATCH_SWEEP_GRACE_SECONDS", 90, 0),
        sweep_lookback_minutes=_int(environ, "DISPATCH_SWEEP_LOOKBACK_MINUTES", 60, 1),
        sweep_recent_minutes=_int(environ, "DISPATCH_SWEEP_RECENT_MINUTES", 3, 1),
        sweep_full_every_minutes=_int(environ, "DISPATCH_SWEEP_FULL_EVERY_MINUTES", 15, 1),
        provider_credentials=_choice(
            environ, "DISPATCH_PROVIDER_CREDENTIALS", PROVIDER_CREDENTIAL_SOURCES, "secretsmanager"
        ),
        webhook_queue_url=environ.get("DISPATCH_WEBHOOK_QUEUE_URL") or None,
        webhook_inline_limit=_int(environ, "DISPATCH_WEBHOOK_INLINE_LIMIT", 25, 1),
        jwt_single_use=_switch(environ, "DISPATCH_JWT_SINGLE_USE"),
    )


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(name) or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, not {value!r}")
    return value


def _required_for(
    environ: Mapping[str, str],
    chosen: str,
    needs_it: str,
    name: str,
    choice: str = "DISPATCH_TIMER_BACKEND",
) -> str | None:
    """A setting the chosen backend cannot run without; ignored by the others."""
    value = environ.get(name) or None
    if chosen == needs_it and value is None:
        raise ConfigError(f"{name} must be set when {choice} is {needs_it!r}")
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes", "enabled", "on")


def _switch(environ: Mapping[str, str], name: str) -> bool:
    """An on/off setting that refuses what it cannot read: a typo must not turn a security
    setting off without a word."""
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off", "disabled"):
        return False
    if value in ("1", "true", "yes", "on", "enabled"):
        return True
    raise ConfigError(f"{name} must be on or off, not {environ[name]!r}")


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _backoff(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"DISPATCH_SEND_RETRY_BACKOFF must be comma-separated seconds: {raw!r}") from None
    if not values or min(values) < 0:
        raise ConfigError("DISPATCH_SEND_RETRY_BACKOFF needs at least one non-negative value")
    return values


def _channel_providers(raw: str | None) -> Mapping[Channel, str]:
    routing = {channel: "sandbox" for channel in Channel}
    if not raw:
        return routing
    try:
        given = json.loads(raw)
        routing.update({Channel(name): str(provider) for name, provider in given.items()})
    except (ValueError, AttributeError) as exc:
        raise ConfigError(
            'DISPATCH_CHANNEL_PROVIDERS must be a JSON object like {"sms": "sandbox"}'
        ) from exc
    return routing
