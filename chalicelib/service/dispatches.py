"""Use cases: create a dispatch, apply a status, run a timer check, read a dispatch.

Every input goes the same way: load, decide with the pure transitions, save conditionally on the
version, then perform the decision's effects. The callbacks a decision makes are rendered and
saved in the dispatch's outbox by that same save; once the sends and timers are done, the
callback queue is nudged to deliver them (`callback_relay`). Delivery never happens here, so a
slow or failing receiver never delays a failover.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.domain import transitions
from chalicelib.domain.actions import (
    CancelCheck,
    Decision,
    NotifyFinal,
    NotifyStatus,
    ScheduleCheck,
    SendAccepted,
    SendFailed,
    SendMessage,
    SendResult,
)
from chalicelib.domain.application import Application
from chalicelib.domain.callbacks import CallbackKind, OutboxEntry
from chalicelib.domain.errors import ConcurrentUpdate, DispatchNotFound
from chalicelib.domain.model import Channel, Dispatch, Policy, StatusEvent, StepSpec
from chalicelib.service import callback_payloads as payloads
from chalicelib.service.ports import (
    CallbackQueue,
    ChannelProvider,
    Clock,
    DispatchRepository,
    MessageHint,
    MessageRef,
    ProviderError,
    Timer,
)

logger = logging.getLogger(__name__)

#: Longer ids than this were never issued; refusing them early keeps them off DynamoDB keys.
MAX_ID_LENGTH = 200
#: How often to re-read and re-decide when a concurrent input saved first.
MAX_CONFLICT_RETRIES = 5

DEFAULT_POLICY = Policy()

Decide = Callable[[Dispatch, datetime], Decision]


@dataclass
class _Nudges:
    """Dispatches that saved new callbacks during one input: nudged once every send and timer
    is done."""

    dispatches: set[str] = field(default_factory=set)


class DispatchService:
    def __init__(
        self,
        repository: DispatchRepository,
        providers: Mapping[Channel, ChannelProvider],
        timer: Timer,
        callback_queue: CallbackQueue,
        clock: Clock,
        policy: Policy = DEFAULT_POLICY,
        new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ):
        self._repo = repository
        self._providers = providers
        self._timer = timer
        self._callback_queue = callback_queue
        self._clock = clock
        self._policy = policy
        self._new_uuid = new_uuid

    # --- use cases ------------------------------------------------------------------------------

    def create(self, application: Application, specs: Sequence[StepSpec]) -> str:
        """Store a new dispatch and send its first message; returns the dispatch_uuid."""
        now = self._clock.now()
        decision = transitions.start(
            self._new_uuid(), application.application_id, specs, now, self._policy
        )
        nudges = _Nudges()
        saved = self._repo.add(_with_outbox(decision, now, nudges))
        logger.info("dispatch created", extra=_log_fields(saved))
        try:
            self._perform(saved, decision, nudges)
        except Exception:
            # The dispatch is stored and its guard's check is set: that check moves it on. An
            # error here must not tell the client to retry, which would send everything again.
            logger.exception("dispatch effects failed; its timer will recover it", extra=_log_fields(saved))
        self._nudge(nudges)
        return saved.dispatch_uuid

    def get(self, application: Application, dispatch_uuid: str) -> Dispatch:
        """The dispatch, if it belongs to `application`; otherwise DispatchNotFound."""
        if len(dispatch_uuid) > MAX_ID_LENGTH:
            raise DispatchNotFound(dispatch_uuid[:MAX_ID_LENGTH])
        dispatch = self._repo.get(dispatch_uuid)
        if dispatch is None or dispatch.application_id != application.application_id:
            raise DispatchNotFound(dispatch_uuid)
        return dispatch

    def owner_of(self, dispatch_uuid: str) -> str | None:
        """The application_id that owns the dispatch, if it exists."""
        if len(dispatch_uuid) > MAX_ID_LENGTH:
            return None
        dispatch = self._repo.get(dispatch_uuid)
        return dispatch.application_id if dispatch else None

    def apply_status(
        self,
        provider: str,
        provider_message_id: str,
        event: StatusEvent,
        application_id: str | None = None,
        *,
        hint: MessageHint | None = None,
    ) -> bool:
        """Apply a provider status; False when no message of ours (or of `application_id`) has it.

        `hint` names the dispatch and step the message is thought to be (a reference the provider
        echoed, or a recipient's latest message): when that step records this provider message id,
        the message index is not read. Otherwise the index decides, as without a hint.
        """
        if len(provider_message_id) > MAX_ID_LENGTH:
            return False  # no id we ever stored is this long, and DynamoDB keys are bounded
        found = self._hinted(provider_message_id, hint) if hint else None
        if found is None:
            ref = self._repo.find_message(provider, provider_message_id)
            dispatch = self._repo.get(ref.dispatch_uuid) if ref else None
            found = (dispatch, ref.step_index) if ref and dispatch else None
        if found is None:
            return False
        dispatch, step_index = found
        if application_id is not None and dispatch.application_id != application_id:
            return False
        # The status proves this message was sent, should the step not have recorded it yet.
        sent = SendAccepted(provider, provider_message_id)
        self._run(
            dispatch,
            lambda d, now: transitions.on_status(d, step_index, event, now, self._policy, sent),
        )
        return True

    def _hinted(self, provider_message_id: str, hint: MessageHint) -> tuple[Dispatch, int] | None:
        if len(hint.dispatch_uuid) > MAX_ID_LENGTH:
            return None
        dispatch = self._repo.get(hint.dispatch_uuid)
        if dispatch is None or not 0 <= hint.step_index < len(dispatch.steps):
            return None
        if dispatch.steps[hint.step_index].provider_message_id != provider_message_id:
            return None  # not recorded there (yet): only the index can tell
        return dispatch, hint.step_index

    def run_check(self, dispatch_uuid: str, step_index: int) -> None:
        """A timer came due for (dispatch, step). Safe to run twice, early or late."""
        dispatch = self._repo.get(dispatch_uuid)
        if dispatch is None:
            logger.warning("check for unknown dispatch", extra={"dispatch_uuid": dispatch_uuid})
            return
        if not 0 <= step_index < len(dispatch.steps):
            logger.warning("check for unknown step", extra=_log_fields(dispatch))
            return
        self._run(
            dispatch, lambda d, now: transitions.on_check(d, step_index, now, self._policy)
        )

    def relay_inbound(self, dispatch_uuid: str, payload: Mapping[str, Any]) -> None:
        """Save a user's message for relay to the inbound URL of the dispatch's application, as
        the dispatch's next callback; then have it delivered. Raises DispatchNotFound."""
        dispatch = self._repo.get(dispatch_uuid)
        for _ in range(MAX_CONFLICT_RETRIES):
            if dispatch is None:
                raise DispatchNotFound(dispatch_uuid)
            seq = dispatch.callbacks + 1
            entry = _entry(dispatch_uuid, seq, CallbackKind.INBOUND, self._clock.now(), payload)
            try:
                self._repo.save(replace(dispatch, callbacks=seq, outbox=dispatch.outbox + (entry,)))
            except ConcurrentUpdate:
                dispatch = self._repo.get(dispatch_uuid)
                continue
            self._nudge(_Nudges({dispatch_uuid}))
            return
        raise ConcurrentUpdate(dispatch_uuid)

    # --- the loop: decide, save, perform --------------------------------------------------------

    def _run(self, dispatch: Dispatch, decide: Decide) -> None:
        nudges = _Nudges()
        self._decide_and_save(dispatch, decide, nudges)
        self._nudge(nudges)

    def _decide_and_save(
        self,
        dispatch: Dispatch,
        decide: Decide,
        nudges: _Nudges,
        refs: Sequence[MessageRef] = (),
    ) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            now = self._clock.now()
            decision = decide(dispatch, now)
            if not decision.changed:
                return
            decided = _Nudges()
            try:
                saved = self._repo.save(_with_outbox(decision, now, decided), refs)
            except ConcurrentUpdate:
                reloaded = self._repo.get(dispatch.dispatch_uuid)
                if reloaded is None:
                    raise DispatchNotFound(dispatch.dispatch_uuid) from None
                dispatch = reloaded
                continue
            nudges.dispatches |= decided.dispatches
            self._perform(saved, decision, nudges)
            return
        raise ConcurrentUpdate(dispatch.dispatch_uuid)

    def _perform(self, saved: Dispatch, decision: Decision, nudges: _Nudges) -> None:
        for action in decision.actions:
            if isinstance(action, SendMessage):
                self._send_and_record(saved, action.step_index, nudges)
            elif isinstance(action, ScheduleCheck):
                self._timer_call(self._timer.schedule, saved, action)
            elif isinstance(action, CancelCheck):
                self._timer_call(self._timer.cancel, saved, action)
            # NotifyStatus and NotifyFinal were saved in the outbox with the decision.

    def _send_and_record(self, saved: Dispatch, index: int, nudges: _Nudges) -> None:
        began = self._clock.now()
        result = self._send(saved, index)
        refs: tuple[MessageRef, ...] = ()
        if isinstance(result, SendAccepted):
            step = saved.steps[index]
            recipient = self._providers[step.channel].recipient_key(step)
            refs = (
                MessageRef(
                    result.provider,
                    result.provider_message_id,
                    saved.dispatch_uuid,
                    index,
                    recipient=recipient,
                    sent_at=began,
                ),
            )
        self._decide_and_save(
            saved,
            lambda d, now: transitions.on_send_result(d, index, result, now, self._policy),
            nudges,
            refs,
        )

    def _send(self, dispatch: Dispatch, index: int) -> SendResult:
        step = dispatch.steps[index]
        fields = _log_fields(dispatch, index)
        try:
            provider = self._providers[step.channel]
            provider_message_id = provider.send(dispatch.dispatch_uuid, step)
        except ProviderError as exc:
            logger.warning(
                "send failed", extra={**fields, "permanent": exc.permanent, "code": exc.code}
            )
            return SendFailed(permanent=exc.permanent, code=exc.code, reason=exc.reason)
        except Exception:  # a provider bug must not strand the dispatch: retry, then fail over
            logger.exception("send raised unexpectedly", extra=fields)
            return SendFailed(permanent=False, code="internal", reason="provider error")
        logger.info("message sent", extra={**fields, "provider": provider.name})
        return SendAccepted(provider.name, provider_message_id)

    def _timer_call(
        self, method: Callable, dispatch: Dispatch, check: ScheduleCheck | CancelCheck
    ) -> None:
        # A timer that could not be set is recovered by the sweeper from the saved due_at;
        # failing the whole input here would only make the caller retry a step already taken.
        try:
            method(dispatch.dispatch_uuid, check.step_index, check.at, backstop=check.backstop)
        except Exception:
            logger.exception("timer call failed", extra=_log_fields(dispatch))

    def _nudge(self, nudges: _Nudges) -> None:
        for dispatch_uuid in sorted(nudges.dispatches):
            self._callback_queue.nudge(dispatch_uuid)


def _with_outbox(decision: Decision, now: datetime, nudges: _Nudges) -> Dispatch:
    """The decided dispatch with the decision's callbacks rendered into its outbox."""
    dispatch = decision.dispatch
    entries = []
    for action in decision.actions:
        if isinstance(action, NotifyStatus):
            step = dispatch.steps[action.step_index]
            payload = payloads.message_status_payload(dispatch, step, action.record)
            kind = CallbackKind.MESSAGE_STATUS
        elif isinstance(action, NotifyFinal):
            payload = payloads.final_report_payload(dispatch, action.at)
            kind = CallbackKind.FINAL_REPORT
        else:
            continue
        entries.append(_entry(dispatch.dispatch_uuid, action.seq, kind, now, payload))
    if not entries:
        return dispatch
    nudges.dispatches.add(dispatch.dispatch_uuid)
    return replace(dispatch, outbox=dispatch.outbox + tuple(entries))


def _entry(
    dispatch_uuid: str, seq: int, kind: CallbackKind, now: datetime, payload: Mapping[str, Any]
) -> OutboxEntry:
    return OutboxEntry(
        seq=seq,
        event_id=payloads.callback_event_id(dispatch_uuid, seq),
        kind=kind,
        decided_at=now,
        body=payloads.encode(payload),
    )


def _log_fields(dispatch: Dispatch, index: int | None = None) -> dict[str, object]:
    step = dispatch.steps[dispatch.current if index is None else index]
    return {
        "dispatch_uuid": dispatch.dispatch_uuid,
        "step_index": step.index,
        "channel": step.channel.value,
    }
