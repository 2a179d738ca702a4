"""The Timer port on EventBridge Scheduler: one one-time `at()` schedule per check.

Each schedule invokes the `failover_check` Lambda once with the check's input and then deletes
itself (`ActionAfterCompletion=DELETE`), so finished checks do not pile up against the quota.
Creating and storing schedules is free, which makes this the cheaper backend; the price is
precision: Scheduler invokes targets with 60-second precision (a schedule for 1:00 fires between
1:00:00 and 1:00:59, even with the flexible time window off). The sweeper's grace period covers
that much lateness, so it does not mistake a late check for a lost one.

The schedule is named after the check (`timer_checks.check_name`): a retried create meets
`ConflictException` and is a no-op, and `cancel` deletes by name without storing anything;
`ResourceNotFoundException` there means the check already fired (and deleted itself) or never
existed, also a no-op.

Backstop checks (a send whose result was never recorded, the last message's report limit) are
never created and never deleted: they only catch failures, the sweeper re-drives those steps
anyway, and skipping them saves an API round trip on the hot path.

Any other error propagates: the service logs it, and the sweeper recovers a lost check.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code
from chalicelib.adapters.timer_checks import check_input, check_name, due_second

logger = logging.getLogger(__name__)

#: Scheduler retries a failed invoke (throttling, a Lambda error) for up to an hour. Checks are
#: idempotent, so a retry after the sweeper has already re-driven the step changes nothing.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10}


class SchedulerTimer:
    def __init__(
        self,
        client: Any,
        group_name: str,
        target_arn: str,
        role_arn: str,
        clock: Callable[[], datetime],
    ) -> None:
        """`client` is a boto3 `scheduler` client; `target_arn` the `failover_check` Lambda;
        `role_arn` the role Scheduler assumes to invoke it; `clock` returns aware UTC now."""
        self._client = client
        self._group = group_name
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._clock = clock

    def schedule(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        if backstop:
            return
        name = check_name(dispatch_uuid, step_index, at)
        try:
            self._client.create_schedule(
                Name=name,
                GroupName=self._group,
                ScheduleExpression=f"at({self._fire_second(at):%Y-%m-%dT%H:%M:%S})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self._target_arn,
                    "RoleArn": self._role_arn,
                    # The original due time, not the clamped one, so the check logs how late
                    # it really came.
                    "Input": json.dumps(check_input(dispatch_uuid, step_index, at)),
                    "RetryPolicy": RETRY_POLICY,
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
            logger.debug(
                "failover check already scheduled",
                extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index, "check": name},
            )

    def cancel(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        if backstop:
            return
        name = check_name(dispatch_uuid, step_index, at)
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            logger.debug(
                "no failover check to cancel",
                extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index, "check": name},
            )

    def _fire_second(self, at: datetime) -> datetime:
        """When the schedule fires: the due second, but never the current second or earlier.

        AWS documents no behaviour for an `at()` in the past or the current second (it may be
        rejected, fire at once, or never fire), and a check due now must still come. The next
        whole second after now is the earliest time that is certainly in the future.
        """
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the timer's clock must return timezone-aware datetimes")
        earliest = now.astimezone(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
        return max(due_second(at), earliest)
