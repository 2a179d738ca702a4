"""The fault campaign in CI: small, a fixed seed and a random one, and proof that its checks
catch a broken service."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from chalicelib.domain import transitions
from chalicelib.domain.actions import SendAccepted
from chalicelib.domain.callbacks import AttemptResult, CallbackKind
from chalicelib.service.callback_relay import CallbackRelay
from chalicelib.service.dispatches import DispatchService
from chalicelib.service.sweeper import Sweeper, SweepResult
from tests.campaign.__main__ import main
from tests.campaign.campaign import CampaignResult, run_campaign
from tests.campaign.faults import FaultRates
from tests.campaign.summary import render, render_failures, reproducer
from tests.campaign.world import World

FIXED_SEED = 20261124
CI_COUNT = 300
MUTANT_COUNT = 120


def assert_clean(result: CampaignResult) -> None:
    assert result.ok, render_failures(result)


def test_a_fixed_seed_keeps_every_invariant_under_every_fault():
    result = run_campaign(CI_COUNT, FIXED_SEED)

    assert_clean(result)
    # The campaign really did what it claims: every kind of trouble happened and was survived.
    for fault in (
        "send_5xx",
        "send_permanent",
        "crash_before_send",
        "crash_after_save",
        "timer_lost",
        "timer_late",
        "timer_twice",
        "status_missing",
        "status_duplicate",
        "status_late",
        "status_at_deadline",
        "read_before_delivered",
        "race",
        "nudge_lost",
        "receiver_5xx",
    ):
        assert result.faults[fault] > 0, fault
    assert result.counts["dispatches created"] == CI_COUNT
    assert result.counts["final reports: completed"] + result.counts["final reports: error"] == CI_COUNT
    assert result.counts["sweeper: lost timer checks recovered"] > 0
    assert (
        result.counts["races: status interrupted by timer"]
        + result.counts["races: timer interrupted by status"]
        > 0
    )


def test_a_random_seed_keeps_every_invariant():
    seed = random.SystemRandom().randrange(2**32)
    result = run_campaign(CI_COUNT, seed)

    assert result.ok, f"seed {seed}\n{render_failures(result)}"


def test_a_dispatch_run_alone_meets_exactly_what_it_met_among_the_others():
    crowd = World(FIXED_SEED, 200, FaultRates())
    crowd.run()
    for index in (0, 17, 101, 199):
        alone = World(FIXED_SEED, 200, FaultRates(), only=index)
        alone.run()
        [rec] = alone.records
        assert rec.trace == crowd.records[index].trace
        assert rec.applied and [(a.status, a.at_us) for a in rec.applied] == [
            (a.status, a.at_us) for a in crowd.records[index].applied
        ]


# --- broken variants: each must be caught, with a reproducer that reproduces ---------------------


class DoubleSendingService(DispatchService):
    """Sends every second message twice, as a service retrying an accepted send would."""

    def _send(self, dispatch, index):
        result = super()._send(dispatch, index)
        if index == 1 and isinstance(result, SendAccepted):
            super()._send(dispatch, index)
        return result


class ReportDroppingRelay(CallbackRelay):
    """Marks final reports delivered without posting them."""

    def _attempt(self, application, record):
        if record.kind is CallbackKind.FINAL_REPORT:
            return AttemptResult(status_code=204)
        return super()._attempt(application, record)


class LenientService(DispatchService):
    """Judges every status as if it had come an hour earlier, so one after its deadline counts."""

    def apply_status(self, provider, provider_message_id, event, application_id=None, *, hint=None):
        ref = self._repo.find_message(provider, provider_message_id)
        dispatch = self._repo.get(ref.dispatch_uuid) if ref else None
        if ref is None or dispatch is None:
            return False
        hour = timedelta(hours=1)
        self._run(
            dispatch, lambda d, now: transitions.on_status(d, ref.step_index, event, now - hour, self._policy)
        )
        return True


class IdleSweeper(Sweeper):
    """Never re-drives anything."""

    def sweep(self, lookback_minutes=None):
        return SweepResult(found=0, redriven=0, failed=0)


@pytest.mark.parametrize(
    ("variant", "invariant"),
    [
        ({"service_class": DoubleSendingService}, "sent twice"),
        ({"relay_class": ReportDroppingRelay}, "one final report"),
        ({"service_class": LenientService}, "outcome"),
        ({"sweeper_class": IdleSweeper}, "left waiting"),
    ],
    ids=["double-send", "no-final-report", "late-status-counts", "idle-sweeper"],
)
def test_a_broken_service_is_caught_with_a_reproducer(variant, invariant):
    result = run_campaign(MUTANT_COUNT, FIXED_SEED, **variant)

    broken = sorted({v.index for v in result.violations if v.invariant == invariant})
    assert broken, render(result)
    index = broken[0]
    printed = render_failures(result)
    assert f"VIOLATION {invariant}:" in printed
    assert f"reproduce: {reproducer(result, index)}" in printed
    assert f"--seed {FIXED_SEED} --only {index}" in printed

    again = run_campaign(MUTANT_COUNT, FIXED_SEED, only=index, **variant)
    assert invariant in {v.invariant for v in again.violations}


def test_the_command_prints_its_seed_and_counts(capsys):
    assert main(["--count", "25", "--seed", "7"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("seed 7\n")
    assert "dispatches created" in out and "invariant violations: 0" in out


# --- the moto mode: the AWS adapters, faults on the wire -----------------------------------------

MOTO_CI_COUNT = 25


def test_the_aws_adapters_under_moto_keep_every_invariant_under_faults_on_the_wire():
    result = run_campaign(MOTO_CI_COUNT, FIXED_SEED, backend="moto")

    assert_clean(result)
    # Every kind of wire fault happened, botocore absorbed some and the adapters met the rest.
    for fault in ("aws_throttle", "aws_server_error", "aws_timeout", "aws_connection_closed"):
        assert result.faults[fault] > 0, fault
    assert sum(n for k, n in result.faults.items() if k.endswith("_reached_adapter")) > 0
    # ...on the writes of every adapter the campaign drives.
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "SendMessage"):
        assert result.aws_calls[operation] > 0, operation
    assert result.aws_calls["StartExecution"] + result.aws_calls["CreateSchedule"] > 0
    assert result.counts["dispatches created"] == MOTO_CI_COUNT
    assert "--backend moto" in reproducer(result, 0)


@pytest.mark.parametrize(
    ("service", "client_name", "call"),
    [
        ("dynamodb", "dynamodb", lambda c: c.get_item(TableName="t", Key={"pk": {"S": "x"}})),
        ("sfn", "stepfunctions", lambda c: c.list_state_machines()),
        ("scheduler", "scheduler", lambda c: c.list_schedule_groups()),
        ("sqs", "sqs", lambda c: c.list_queues()),
    ],
)
@pytest.mark.parametrize("fault", ["throttle", "server_error"])
def test_each_injected_answer_is_the_error_botocore_would_see_and_retries(service, client_name, call, fault):
    import boto3
    from botocore.exceptions import ClientError

    from tests.campaign import aws

    with aws.moto_backend():
        client = boto3.client(client_name)
        attempts = []

        def answer(request, **_):
            attempts.append(request)
            return aws._error(service, request.url, *aws.ERRORS[service][fault])

        client.meta.events.register_first("before-send", answer)
        with pytest.raises(ClientError) as refused:
            call(client)

    assert refused.value.response["Error"]["Code"] == aws.ERRORS[service][fault][1]
    assert len(attempts) == client.meta.config.retries.get("total_max_attempts", 4 if service == "dynamodb" else 3)
