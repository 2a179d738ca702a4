"""Settings from the environment: defaults, the timer backends' and the callback queue's required
settings, and the stages of .chalice/config.json together with what the merge template (on AWS)
or the local stack provides."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"DISPATCH_TABLE": "t"}
STEP_FUNCTIONS = {"DISPATCH_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}
SCHEDULER = {
    "DISPATCH_SCHEDULE_GROUP": "checks",
    "DISPATCH_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/invoke",
    "DISPATCH_CHECK_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:check",
}
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/dispatch-prod-callbacks"


def test_defaults_are_the_local_stack():
    settings = load_settings(BASE)
    assert settings.timer_backend == "local"
    assert (settings.sweep_grace_seconds, settings.sweep_lookback_minutes) == (90, 60)
    assert settings.state_machine_arn is None and settings.schedule_group is None
    # Callbacks drain in the deciding process unless a queue is named; retried 24 h, 10 s..1 h.
    assert (settings.callback_delivery, settings.callback_queue_url) == ("inline", None)
    assert (
        settings.callback_retry_hours,
        settings.callback_retry_base_seconds,
        settings.callback_retry_cap_seconds,
    ) == (24, 10, 3600)


def test_sqs_callback_delivery_needs_its_queue_url():
    with pytest.raises(ConfigError, match="DISPATCH_CALLBACK_QUEUE_URL"):
        load_settings({**BASE, "DISPATCH_CALLBACK_DELIVERY": "sqs"})
    with pytest.raises(ConfigError, match="DISPATCH_CALLBACK_QUEUE_URL"):
        load_settings({**BASE, "DISPATCH_CALLBACK_DELIVERY": "sqs", "DISPATCH_CALLBACK_QUEUE_URL": ""})
    settings = load_settings({**BASE, "DISPATCH_CALLBACK_DELIVERY": "sqs", "DISPATCH_CALLBACK_QUEUE_URL": QUEUE_URL})
    assert (settings.callback_delivery, settings.callback_queue_url) == ("sqs", QUEUE_URL)


def test_callback_retry_settings_are_read():
    settings = load_settings(
        {
            **BASE,
            "DISPATCH_CALLBACK_RETRY_HOURS": "48",
            "DISPATCH_CALLBACK_RETRY_BASE_SECONDS": "1",
            "DISPATCH_CALLBACK_RETRY_CAP_SECONDS": "600",
        }
    )
    assert (
        settings.callback_retry_hours,
        settings.callback_retry_base_seconds,
        settings.callback_retry_cap_seconds,
    ) == (48, 1, 600)


def test_step_functions_needs_its_state_machine():
    with pytest.raises(ConfigError, match="DISPATCH_STATE_MACHINE_ARN"):
        load_settings({**BASE, "DISPATCH_TIMER_BACKEND": "stepfunctions"})
    settings = load_settings({**BASE, "DISPATCH_TIMER_BACKEND": "stepfunctions", **STEP_FUNCTIONS})
    assert settings.state_machine_arn == STEP_FUNCTIONS["DISPATCH_STATE_MACHINE_ARN"]


@pytest.mark.parametrize("missing", sorted(SCHEDULER))
def test_scheduler_needs_its_group_role_and_target(missing):
    environ = {**BASE, "DISPATCH_TIMER_BACKEND": "scheduler", **SCHEDULER}
    del environ[missing]
    with pytest.raises(ConfigError, match=missing):
        load_settings(environ)


def test_a_backend_ignores_the_other_backends_settings():
    settings = load_settings({**BASE, "DISPATCH_TIMER_BACKEND": "scheduler", **SCHEDULER, **STEP_FUNCTIONS})
    assert settings.timer_backend == "scheduler" and settings.schedule_group == "checks"


@pytest.mark.parametrize(
    "name, value",
    [
        ("DISPATCH_TIMER_BACKEND", "cron"),
        ("DISPATCH_SWEEP_GRACE_SECONDS", "-1"),
        ("DISPATCH_SWEEP_LOOKBACK_MINUTES", "0"),
        ("DISPATCH_SWEEP_LOOKBACK_MINUTES", "an hour"),
        # `background` was the local stage's worker thread, gone with the durable callbacks.
        ("DISPATCH_CALLBACK_DELIVERY", "background"),
        ("DISPATCH_CALLBACK_DELIVERY", "SQS"),
        ("DISPATCH_CALLBACK_RETRY_HOURS", "0"),
        ("DISPATCH_CALLBACK_RETRY_HOURS", "a day"),
        ("DISPATCH_CALLBACK_RETRY_BASE_SECONDS", "0"),
        ("DISPATCH_CALLBACK_RETRY_CAP_SECONDS", "-1"),
        ("DISPATCH_CALLBACK_RETRY_CAP_SECONDS", "1.5"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**BASE, name: value})


def _config_environment(stage: str) -> dict[str, str]:
    """A stage's variables in config.json, over the top-level ones."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    environ = {**config.get("environment_variables", {})}
    environ.update(config["stages"][stage].get("environment_variables", {}))
    return environ


def _stage_environment(stage: str) -> dict[str, str]:
    """What a stage's Lambda sees: config.json's variables, then the merge template's globals."""
    environ = _config_environment(stage)
    template = json.loads((ROOT / "infra" / "dispatch.json").read_text())
    provided = template["Globals"]["Function"]["Environment"]["Variables"]
    # The template's references are resolved at deploy time: any string stands in for them.
    clashes = sorted(set(provided) & set(environ))
    assert not clashes, f"config.json would override the template's references: {clashes}"
    environ.update(
        {name: value if isinstance(value, str) else f"resolved-{name}" for name, value in provided.items()}
    )
    return environ


@pytest.mark.parametrize("stage, backend", [("prod", "stepfunctions"), ("dev", "scheduler")])
def test_each_aws_stage_gets_every_setting_its_timer_needs_from_the_template(stage, backend):
    settings = load_settings(_stage_environment(stage))
    assert settings.timer_backend == backend
    assert settings.stage == stage
    assert not settings.sandbox_routes  # the sandbox is for the local stack only
    # Every channel goes to a real provider: the sandbox reaches no phone.
    assert set(settings.channel_providers.values()) == {"vonage"}
    assert settings.provider_credentials == "secretsmanager"
    # Callbacks go through the stack's queue, named by reference.
    assert settings.callback_delivery == "sqs"
    assert settings.callback_queue_url == "resolved-DISPATCH_CALLBACK_QUEUE_URL"
    # Large webhook batches too (docs/webhooks.md).
    assert settings.webhook_queue_url == "resolved-DISPATCH_WEBHOOK_QUEUE_URL"


def test_the_local_stage_queues_callbacks_on_the_queue_the_local_stack_creates():
    environ = _config_environment("local")
    assert environ["DISPATCH_CALLBACK_DELIVERY"] == "sqs"
    # The queue's URL is moto's, known only once scripts/local_stack.py has created it.
    with pytest.raises(ConfigError, match="DISPATCH_CALLBACK_QUEUE_URL"):
        load_settings(environ)
    settings = load_settings({**environ, "DISPATCH_CALLBACK_QUEUE_URL": QUEUE_URL})
    assert (settings.callback_delivery, settings.sandbox_routes) == ("sqs", True)


def test_jwts_are_reusable_until_they_expire_unless_single_use_is_on():
    assert load_settings(BASE).jwt_single_use is False
    assert load_settings({**BASE, "DISPATCH_JWT_SINGLE_USE": "off"}).jwt_single_use is False
    for on in ("on", "true", "1", "enabled", " ON "):
        assert load_settings({**BASE, "DISPATCH_JWT_SINGLE_USE": on}).jwt_single_use is True


@pytest.mark.parametrize("value", ["enable", "single", "2", "onn"])
def test_a_single_use_setting_that_cannot_be_read_is_refused_not_taken_as_off(value):
    with pytest.raises(ConfigError, match="DISPATCH_JWT_SINGLE_USE"):
        load_settings({**BASE, "DISPATCH_JWT_SINGLE_USE": value})


def test_without_a_webhook_queue_large_batches_are_applied_in_the_request():
    settings = load_settings(BASE)
    assert (settings.webhook_queue_url, settings.webhook_inline_limit) == (None, 25)
    settings = load_settings({**BASE, "DISPATCH_WEBHOOK_QUEUE_URL": QUEUE_URL, "DISPATCH_WEBHOOK_INLINE_LIMIT": "5"})
    assert (settings.webhook_queue_url, settings.webhook_inline_limit) == (QUEUE_URL, 5)
    with pytest.raises(ConfigError, match="DISPATCH_WEBHOOK_INLINE_LIMIT"):
        load_settings({**BASE, "DISPATCH_WEBHOOK_INLINE_LIMIT": "0"})
