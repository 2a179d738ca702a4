"""The retry rules of durable callbacks (chalicelib/domain/callbacks.py): pure, no I/O.

What an attempt's outcome means (delivered, retry, dead), how long to wait (exponential backoff
with equal jitter, Retry-After honoured), when to give up (the retry window), and what a replay
resets.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.callbacks import (
    Attempt,
    AttemptResult,
    CallbackKind,
    CallbackRecord,
    DeliveryState,
    OutboxEntry,
    RetryPolicy,
)

T0 = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)
DEFAULTS = RetryPolicy()


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _jitter(value: float):
    return lambda: value


LOW, HALF, HIGH = _jitter(0.0), _jitter(0.5), _jitter(1.0)


def _record(**changes) -> CallbackRecord:
    entry = OutboxEntry(
        seq=4,
        event_id="e-4",
        kind=CallbackKind.MESSAGE_STATUS,
        decided_at=T0,
        body='{"status":"delivered"}',
    )
    return dataclasses.replace(CallbackRecord.from_outbox("d-1", "app-1", entry), **changes)


def _fail(record: CallbackRecord, at: datetime, **result) -> CallbackRecord:
    return record.after_attempt(AttemptResult(**(result or {"status_code": 503})), at, DEFAULTS, HALF)


# --- what an outcome means ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status):
    result = AttemptResult(status_code=status)
    assert result.delivered and not result.retryable


@pytest.mark.parametrize("status", [408, 429, 500, 501, 502, 503, 504, 599])
def test_408_429_and_5xx_are_retried(status):
    result = AttemptResult(status_code=status)
    assert result.retryable and not result.delivered


@pytest.mark.parametrize("error", ["timeout", "connection", "signature_secret_unavailable", "internal"])
def test_no_answer_an_unreadable_secret_and_our_own_faults_are_retried(error):
    result = AttemptResult(error=error)
    assert result.retryable and not result.delivered


@pytest.mark.parametrize(
    "status", [400, 401, 403, 404, 409, 410, 413, 422, 300, 301, 302, 303, 304, 307, 308]
)
def test_other_4xx_and_any_3xx_are_final(status):
    result = AttemptResult(status_code=status)
    assert not result.retryable and not result.delivered


@pytest.mark.parametrize(
    "error", ["invalid_url", "no_status_url", "no_inbound_url", "unknown_application"]
)
def test_failures_no_retry_can_fix_are_final(error):
    result = AttemptResult(error=error)
    assert not result.retryable and not result.delivered


# --- how long to wait ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    # d = min(3600, 10 * 2^(failures-1)): 10 s doubling, capped at an hour from the 10th (5120 s).
    [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 640), (8, 1280), (9, 2560),
     (10, 3600), (11, 3600), (40, 3600)],
)
def test_default_backoff_is_equal_jitter_between_half_the_ceiling_and_the_ceiling(failures, ceiling):
    assert DEFAULTS.backoff(failures, LOW) == ceiling / 2
    assert DEFAULTS.backoff(failures, HALF) == ceiling * 3 / 4
    assert DEFAULTS.backoff(failures, HIGH) == ceiling


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (6, 30)])
def test_backoff_follows_the_configured_base_and_cap(failures, ceiling):
    policy = RetryPolicy(base_seconds=2, cap_seconds=30)
    assert (policy.backoff(failures, LOW), policy.backoff(failures, HIGH)) == (ceiling / 2, ceiling)


@given(failures=st.integers(min_value=1, max_value=5_000), r=st.floats(min_value=0, max_value=1))
def test_backoff_never_leaves_its_bounds(failures, r):
    ceiling = min(3600, 10 * 2 ** (failures - 1))
    assert ceiling / 2 <= DEFAULTS.backoff(failures, _jitter(r)) <= ceiling


def test_backoff_stays_at_the_cap_however_many_failures():
    # 2^n overflows a float near n = 1024: a long window with a small cap gets that far.
    assert DEFAULTS.backoff(2_000, HIGH) == 3600
    tiny = RetryPolicy(base_seconds=1, cap_seconds=1, window_seconds=30 * 86_400)
    failed = tuple(Attempt(_at(i), 503) for i in range(1_500))
    record = _record(attempts=failed).after_attempt(
        AttemptResult(status_code=503), _at(1_500), tiny, HIGH
    )
    assert record.next_at == _at(1_501)


# --- after an attempt ---------------------------------------------------------------------------


def test_a_2xx_delivers_and_records_the_attempt():
    pending = _record(attempts=(Attempt(T0, 503),), next_at=_at(7.5))

    record = pending.after_attempt(
        AttemptResult(status_code=204, duration_ms=120), _at(8), DEFAULTS, HALF
    )

    assert record.state is DeliveryState.DELIVERED
    assert record.attempts == (Attempt(T0, 503), Attempt(_at(8), 204, None, 120))
    assert record.next_at is None and record.dead_at is None and record.dead_reason is None


def test_a_retryable_failure_sets_next_at_to_now_plus_the_backoff():
    record = _record().after_attempt(
        AttemptResult(error="timeout", duration_ms=5000), _at(5), DEFAULTS, HALF
    )

    assert record.state is DeliveryState.PENDING
    assert record.attempts == (Attempt(_at(5), None, "timeout", 5000),)
    assert record.next_at == _at(5 + 7.5)  # first failure: d = 10 s, 5 + 0.5 * 5
    assert record.dead_at is None


@pytest.mark.parametrize(("jitter", "wait"), [(LOW, 5), (HIGH, 10)])
def test_the_first_wait_spans_half_the_base_to_the_base(jitter, wait):
    record = _record().after_attempt(AttemptResult(status_code=500), T0, DEFAULTS, jitter)
    assert record.next_at == _at(wait)


def test_each_further_failure_doubles_the_wait():
    record = _fail(_record(), T0)
    record = _fail(record, _at(7.5))
    assert record.next_at == _at(7.5 + 15)  # second failure: d = 20 s
    record = _fail(record, _at(22.5))
    assert record.next_at == _at(22.5 + 30)  # third: d = 40 s
    assert len(record.attempts) == 3


def test_a_longer_retry_after_wins_over_the_backoff():
    record = _fail(_record(), _at(1), status_code=429, retry_after=120)
    assert record.next_at == _at(1 + 120)


def test_a_shorter_retry_after_does_not_hurry_the_backoff():
    record = _fail(_record(), _at(1), status_code=503, retry_after=2)
    assert record.next_at == _at(1 + 7.5)


def test_retry_after_is_capped_by_max_retry_after():
    record = _fail(_record(), _at(1), status_code=503, retry_after=100_000)
    assert record.next_at == _at(1 + 21_600)  # the default max: 6 h

    strict = RetryPolicy(max_retry_after_seconds=60)
    record = _record().after_attempt(
        AttemptResult(status_code=429, retry_after=120), _at(1), strict, HALF
    )
    assert record.next_at == _at(1 + 60)


def test_a_retry_that_would_land_after_the_window_is_dead_instead():
    record = _fail(_record(), _at(86_400 - 5))

    assert record.state is DeliveryState.DEAD
    assert record.dead_reason == "retry_window_exhausted"
    assert record.dead_at == _at(86_400 - 5) and record.next_at is None
    assert record.attempts == (Attempt(_at(86_400 - 5), 503),)


def test_a_retry_landing_exactly_at_the_end_of_the_window_still_happens():
    record = _fail(_record(), _at(86_400 - 7.5))
    assert record.state is DeliveryState.PENDING and record.next_at == _at(86_400)


def test_a_retry_after_reaching_past_the_window_makes_it_dead():
    record = _fail(_record(), _at(23 * 3600), status_code=503, retry_after=2 * 3600)
    assert (record.state, record.dead_reason) == (DeliveryState.DEAD, "retry_window_exhausted")


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (AttemptResult(status_code=400), "400"),
        (AttemptResult(status_code=401), "401"),
        (AttemptResult(status_code=404), "404"),
        # Even with a Retry-After: the answer itself says no retry will do.
        (AttemptResult(status_code=410, retry_after=60), "410"),
        (AttemptResult(status_code=301), "301"),
        (AttemptResult(error="invalid_url"), "invalid_url"),
        (AttemptResult(error="no_status_url"), "no_status_url"),
        (AttemptResult(error="no_inbound_url"), "no_inbound_url"),
    ],
)
def test_a_final_failure_is_dead_at_once_with_the_status_as_reason(result, reason):
    record = _record().after_attempt(result, _at(2), DEFAULTS, HALF)

    assert record.state is DeliveryState.DEAD
    assert (record.dead_reason, record.dead_at, record.next_at) == (reason, _at(2), None)
    assert len(record.attempts) == 1


# --- replay -------------------------------------------------------------------------------------


def _dead_record() -> CallbackRecord:
    return _record(
        state=DeliveryState.DEAD,
        attempts=(Attempt(T0, 503), Attempt(_at(7.5), 503), Attempt(_at(22.5), 410)),
        dead_at=_at(22.5),
        dead_reason="410",
        replays=1,
    )


def test_a_replay_resets_state_window_and_dead_fields_and_keeps_the_attempts():
    dead = _dead_record()
    replay_at = _at(2 * 86_400)

    record = dead.replayed(replay_at)

    assert record.state is DeliveryState.PENDING
    assert record.next_at is None
    assert record.window_from == replay_at and record.window_start == replay_at
    assert record.dead_at is None and record.dead_reason is None
    assert record.replays == 2
    assert record.attempts == dead.attempts
    assert (record.seq, record.event_id, record.body, record.decided_at) == (
        dead.seq, dead.event_id, dead.body, dead.decided_at,
    )


def test_a_pending_record_replayed_is_due_at_once():
    waiting = _fail(_record(), T0)
    assert waiting.next_at is not None
    assert waiting.replayed(_at(60)).next_at is None


def test_after_a_replay_the_backoff_starts_over_within_a_fresh_window():
    replay_at = _at(2 * 86_400)  # long after the first window closed
    record = _dead_record().replayed(replay_at)

    record = _fail(record, replay_at + timedelta(hours=1))

    # Only attempts since the replay count: the first wait again (d = 10 s), and no
    # window exhaustion though the callback was decided two days ago.
    assert record.state is DeliveryState.PENDING
    assert record.next_at == replay_at + timedelta(hours=1, seconds=7.5)
    assert len(record.attempts) == 4


# --- the default schedule (it goes in the README) -----------------------------------------------


def _schedule(random) -> tuple[list[float], CallbackRecord]:
    """Seconds after the decision of every attempt to a receiver that always answers 503, each
    made exactly when due; and the record once it gives up."""
    record, now, times = _record(), T0, []
    while record.state is DeliveryState.PENDING:
        times.append((now - T0).total_seconds())
        record = record.after_attempt(AttemptResult(status_code=503), now, DEFAULTS, random)
        if record.next_at is not None:
            now = record.next_at
    return times, record


def test_the_default_schedule_with_middle_jitter():
    # Waits are 0.75 * d with d = 10, 20, 40, ..., 2560, then 3600 (the cap) from the 10th
    # failure: 7.5, 15, 30, 60, 120, 240, 480, 960, 1920, then 2700 s each.
    # Attempt 1 is at 0; attempt n (2..10) at 7.5 * (2^(n-1) - 1): 7.5, 22.5, ..., 3832.5;
    # attempt n >= 10 at 3832.5 + 2700 * (n - 10). The retry has to land within 86 400 s:
    # n - 10 <= (86 400 - 3832.5) / 2700 = 30.58, so the last is n = 40 at 84 832.5 s and the
    # 41st (87 532.5 s) is never made.
    times, record = _schedule(HALF)

    assert times[:12] == [
        0, 7.5, 22.5, 52.5, 112.5, 232.5, 472.5, 952.5, 1912.5, 3832.5, 6532.5, 9232.5,
    ]
    assert len(times) == 40
    assert times[-1] == 84_832.5
    assert record.dead_reason == "retry_window_exhausted"
    assert record.dead_at == _at(84_832.5)


@pytest.mark.parametrize(
    ("random", "first", "attempts", "last"),
    [
        # Shortest waits (d/2): 5, 10, ..., 1280, then 1800 s. Attempt n >= 10 at
        # 2555 + 1800 (n - 10); (86 400 - 2555) / 1800 = 46.58 -> n = 56 at 85 355 s.
        (LOW, [0, 5, 15, 35, 75, 155, 315, 635, 1275, 2555, 4355], 56, 85_355),
        # Longest waits (d): 10, 20, ..., 2560, then 3600 s. Attempt n >= 10 at
        # 5110 + 3600 (n - 10); (86 400 - 5110) / 3600 = 22.58 -> n = 32 at 84 310 s.
        (HIGH, [0, 10, 30, 70, 150, 310, 630, 1270, 2550, 5110, 8710], 32, 84_310),
    ],
    ids=["earliest", "latest"],
)
def test_the_default_schedule_bounds(random, first, attempts, last):
    times, record = _schedule(random)

    assert times[:11] == first
    assert (len(times), times[-1]) == (attempts, last)
    assert record.dead_reason == "retry_window_exhausted"
