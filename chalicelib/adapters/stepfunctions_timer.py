"""The Timer port on Step Functions: one Standard execution of the `FailoverTimer` machine per check.

The machine (infra/dispatch.json) waits until the input's `due_at`, then invokes `failover_check`
with that same input. A Standard Wait is second-granular, which matters when a step's deadline
can be 15 s; a Wait timestamp already past proceeds at once, so nothing here needs clamping.

The execution is named after the check (`timer_checks.check_name`), which makes scheduling
idempotent: StartExecution with the same name and input while the execution runs returns it
again, and `ExecutionAlreadyExists` (the execution has ended) is a no-op. Names stay taken for
90 days, so a check cancelled and then scheduled again for the very same second is not re-armed;
that is rare (a new due time comes from a new state), and the sweeper would
catch it.

Cancelling stops the execution. StopExecution on an execution that has already ended is not an
error: the API reference lists none for it (only ExecutionDoesNotExist, InvalidArn,
ValidationException and the KMS errors), and moto's ASL interpreter (derived from LocalStack's,
`asl/eval/environment.py` `set_stop`) returns 200 and only stops a program still running. So a
cancel racing the check's own completion needs no handling; a check that fires anyway finds
its dispatch no longer due and changes nothing.

Backstop checks (a send whose result was never recorded, the last message's report limit) are
never started and never stopped: they only catch failures, the sweeper re-drives those steps
anyway, and skipping them saves Step Functions transitions and an API round trip on the hot path.

Any other error propagates: the service logs it, and the sweeper recovers a lost check.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code
from chalicelib.adapters.timer_checks import check_input, check_name

logger = logging.getLogger(__name__)

#: Recorded on the aborted execution; never holds message text. Should the machine ever get a
#: customer-managed KMS key, a `cause` makes StopExecution need KMS permissions too (API reference).
_STOP_CAUSE = "failover check cancelled: the dispatch moved on"


class StepFunctionsTimer:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        """`client` is a boto3 `stepfunctions` client; the machine is the `FailoverTimer` one."""
        parts = state_machine_arn.split(":")
        if len(parts) < 7 or parts[2] != "states" or parts[5] != "stateMachine":
            raise ValueError("state_machine_arn must be a Step Functions state machine ARN")
        self._client = client
        self._state_machine_arn = state_machine_arn
        # arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME[:qualifier] -> the prefix every
        # execution ARN of the machine shares (a version or alias qualifier is not part of it).
        self._execution_prefix = ":".join([*parts[:5], "execution", parts[6]])

    def schedule(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        if backstop:
            return
        name = check_name(dispatch_uuid, step_index, at)
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=name,
                input=json.dumps(check_input(dispatch_uuid, step_index, at)),
            )
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            logger.debug(
                "failover check already started",
                extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index, "check": name},
            )

    def cancel(
        self, dispatch_uuid: str, step_index: int, at: datetime, *, backstop: bool = False
    ) -> None:
        if backstop:
            return
        name = check_name(dispatch_uuid, step_index, at)
        try:
            self._client.stop_execution(executionArn=self.execution_arn(name), cause=_STOP_CAUSE)
        except ClientError as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise
            logger.debug(
                "no failover check to cancel",
                extra={"dispatch_uuid": dispatch_uuid, "step_index": step_index, "check": name},
            )

    def execution_arn(self, name: str) -> str:
        """The ARN of this machine's execution called `name` (no lookup needed to stop it)."""
        return f"{self._execution_prefix}:{name}"
