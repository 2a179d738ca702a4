"""What a transition asks the outside world to do, after the new state is saved.

Inputs the machine reacts to are past-tense facts (`SendAccepted`, `SendFailed`); actions are
imperative (`SendMessage`, `ScheduleCheck`...). Every action is idempotent to perform twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Union

from chalicelib.domain.model import Dispatch, StatusRecord


@dataclass(frozen=True)
class SendMessage:
    step_index: int


@dataclass(frozen=True)
class ScheduleCheck:
    step_index: int
    at: datetime
    #: True for a check that only catches what went wrong (a send whose result was never
    #: recorded, a last message never reported on). The sweeper is precise enough for those, so
    #: a timer backend that is paid per check may leave them to it.
    backstop: bool = False


@dataclass(frozen=True)
class CancelCheck:
    """The pending check at `at` is no longer needed: the dispatch moved on before it."""

    step_index: int
    at: datetime
    backstop: bool = False


@dataclass(frozen=True)
class NotifyStatus:
    """Per-message status callback to the application."""

    step_index: int
    record: StatusRecord
    #: The callback's number within its dispatch (1, 2, ...), given when the decision is made;
    #: numbering, not content, so it takes no part in comparisons.
    seq: int = field(default=0, compare=False)


@dataclass(frozen=True)
class NotifyFinal:
    """The one final report of the dispatch."""

    at: datetime
    seq: int = field(default=0, compare=False)


Action = Union[SendMessage, ScheduleCheck, CancelCheck, NotifyStatus, NotifyFinal]


@dataclass(frozen=True)
class SendAccepted:
    provider: str
    provider_message_id: str


@dataclass(frozen=True)
class SendFailed:
    permanent: bool
    code: str | None = None
    reason: str | None = None


SendResult = Union[SendAccepted, SendFailed]


def numbered(dispatch: Dispatch, actions: tuple[Action, ...]) -> tuple[Dispatch, tuple[Action, ...]]:
    """Number the decision's unnumbered callbacks after the dispatch's last one, and count them
    in it. (Callbacks of a decision folded into this one, such as a deadline applied before a
    late status, were numbered and counted already.)"""
    seq = dispatch.callbacks
    out: list[Action] = []
    for action in actions:
        if isinstance(action, (NotifyStatus, NotifyFinal)) and action.seq == 0:
            seq += 1
            action = replace(action, seq=seq)
        out.append(action)
    return replace(dispatch, callbacks=seq), tuple(out)


@dataclass(frozen=True)
class Decision:
    """The dispatch after an input, and the effects to perform once it is saved.

    `changed` is False for a no-op (duplicate, late or stale input): nothing to save or do.
    """

    dispatch: Dispatch
    actions: tuple[Action, ...] = ()
    changed: bool = True

    def __post_init__(self) -> None:
        # Every decision that changes the dispatch numbers its own callbacks, whichever
        # transition made it: nothing to forget, and a no-op decision numbers nothing.
        if self.changed and any(
            isinstance(a, (NotifyStatus, NotifyFinal)) and a.seq == 0 for a in self.actions
        ):
            dispatch, actions = numbered(self.dispatch, self.actions)
            object.__setattr__(self, "dispatch", dispatch)
            object.__setattr__(self, "actions", actions)
