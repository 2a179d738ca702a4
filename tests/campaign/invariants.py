"""The checks run on every dispatch once the world has gone quiet.

Each returns violations rather than raising, so one run reports every broken dispatch with its
reproducer. What the application was told comes from the simulated status URL (`received`);
what should have happened from `oracle.expect`; the stored dispatch is read only to check that
it ended and to give context.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from chalicelib.domain.callbacks import CallbackKind
from chalicelib.domain.model import STATUS_RANK, Dispatch, MessageStatus, Policy
from chalicelib.domain.transitions import message_uuid_for
from tests.campaign.oracle import Expectation
from tests.campaign.records import TAKEN, TRANSIENT, DispatchRecord, Received, S


@dataclass(frozen=True)
class Violation:
    index: int
    invariant: str
    detail: str


def check(
    rec: DispatchRecord, stored: Dispatch | None, expected: Expectation, policy: Policy, routed: set[str]
) -> list[Violation]:
    found: list[tuple[str, str]] = [("unexpected error", error) for error in rec.errors]
    if stored is None and "create" in rec.aws_errors:
        # The client was told the create failed (an AWS error the adapters let through) and
        # nothing was stored: nothing may have happened for it either.
        if rec.sends or rec.received:
            found.append(("refused create acted on", f"{len(rec.sends)} sends, {len(rec.received)} callbacks"))
        return [Violation(rec.index, name, detail) for name, detail in found]
    found += [("left waiting", detail) for detail in rec.stranded]
    if stored is None or not stored.status.is_final:
        state = "never stored" if stored is None else f"{stored.status.value} on step {stored.current}"
        found.append(("left waiting", f"still {state} when the world went quiet"))
    found += _sends(rec, expected, policy)
    found += _routing(rec, routed)
    first = _first_deliveries(rec, found)
    found += _final_report(rec, first, expected)
    found += _order(rec, first, stored)
    found += _statuses(rec, first, expected)
    return [Violation(rec.index, name, detail) for name, detail in found]


def _sends(rec: DispatchRecord, expected: Expectation, policy: Policy) -> list[tuple[str, str]]:
    """No message sent twice; retries only after transient errors, at most the policy's number;
    a step sent only after the one before it ended, and never after the winning one.

    What "never sent twice" promises, exactly: the provider takes a step's message at most once,
    with one exception the service cannot see, a timeout whose request the provider did take
    (the retry sends it again; the attempt limit bounds the copies). A send the provider took
    whose answer was lost to a crash is never retried: its guard gives the step up."""
    found = []
    last_step = expected.completed_by if expected.completed_by is not None else len(rec.specs) - 1
    for k in range(len(rec.specs)):
        attempts = [s for s in rec.sends if s.step == k]
        taken = [s for s in attempts if s.result in TAKEN]
        if any(s.result != "send_timeout_taken" for s in taken[:-1]):
            times = ", ".join(f"+{(s.at_us - rec.created_us) / S:.3f}s {s.result}" for s in taken)
            found.append(("sent twice", f"step {k} taken by the provider {len(taken)} times ({times})"))
        if len(attempts) > policy.max_send_attempts:
            found.append(("send attempts", f"step {k} attempted {len(attempts)} times"))
        if any(s.result not in TRANSIENT for s in attempts[:-1]):
            found.append(("send attempts", f"step {k} retried after {[s.result for s in attempts]}"))
        if attempts and k > last_step:
            found.append(
                ("sent out of turn", f"step {k} sent, but the dispatch should have ended on step {last_step}")
            )
        previous_end = expected.ends.get(k - 1)
        if attempts and previous_end is not None and attempts[0].at_us < previous_end:
            found.append(
                (
                    "sent out of turn",
                    f"step {k} sent at +{(attempts[0].at_us - rec.created_us) / S:.3f}s, "
                    f"before step {k - 1} ended at +{(previous_end - rec.created_us) / S:.3f}s",
                )
            )
    return found


def _routing(rec: DispatchRecord, routed: set[str]) -> list[tuple[str, str]]:
    """A webhook finds its message when the message's acceptance was saved, and never one the
    provider did not accept. An accepted message whose acceptance was not saved may be found
    too: a save that loses its race still writes the index item (the oracle's exception)."""
    found = []
    saved = {s.provider_message_id for s in rec.sends if s.recorded and s.provider_message_id}
    accepted = {s.provider_message_id for s in rec.sends if s.result == "accepted" and s.provider_message_id}
    taken = {s.provider_message_id for s in rec.sends if s.result in TAKEN and s.provider_message_id}
    for pmid in sorted(taken):
        if pmid in saved and pmid not in routed or pmid in routed and pmid not in accepted:
            found.append(
                ("routing", f"{pmid}: acceptance saved={pmid in saved}, index item written={pmid in routed}")
            )
    for applied in rec.applied:
        pmid = applied.provider_message_id
        if applied.routed is None:
            continue
        if applied.routed and pmid not in routed or not applied.routed and pmid in saved:
            found.append(
                (
                    "routing",
                    f"a {applied.status.value} webhook for {applied.provider_message_id} "
                    f"answered routed={applied.routed}",
                )
            )
    return found


def _first_deliveries(rec: DispatchRecord, found: list[tuple[str, str]]) -> list[Received]:
    """Each callback once, at its first arrival; a callback posted again must be byte-identical."""
    first: dict[str, Received] = {}
    ordered = []
    for received in rec.received:
        known = first.get(received.event_id)
        if known is None:
            first[received.event_id] = received
            ordered.append(received)
        elif (known.body, known.seq, known.kind) != (received.body, received.seq, received.kind):
            found.append(
                (
                    "callback changed",
                    f"event {received.event_id} (seq {received.seq}) posted again with other content",
                )
            )
    return ordered


def _final_report(rec: DispatchRecord, first: list[Received], expected: Expectation) -> list[tuple[str, str]]:
    reports = [r for r in first if r.kind is CallbackKind.FINAL_REPORT]
    if len(reports) != 1:
        return [("one final report", f"{len(reports)} distinct final reports received")]
    body = json.loads(reports[0].body)
    winner = None if expected.completed_by is None else message_uuid_for(rec.uuid, expected.completed_by)
    if (body["status"], body["completed_by"]) != (expected.status, winner):
        told = f"{body['status']} by step {_step_of(rec, body['completed_by'])}"
        should = f"{expected.status} by step {expected.completed_by}"
        return [("outcome", f"report says {told}, events say {should}: {'; '.join(expected.why)}")]
    return []


def _order(rec: DispatchRecord, first: list[Received], stored: Dispatch | None) -> list[tuple[str, str]]:
    """Every callback decided was delivered, first time in sequence order, and none is left."""
    seqs = [r.seq for r in first]
    decided = stored.callbacks if stored is not None else 0
    found = []
    if seqs != list(range(1, decided + 1)):
        found.append(("callbacks in order", f"received seqs {seqs}, decided {decided}"))
    if stored is not None and stored.outbox:
        found.append(("callbacks in order", f"{len(stored.outbox)} callbacks never taken in"))
    return found


def _statuses(rec: DispatchRecord, first: list[Received], expected: Expectation) -> list[tuple[str, str]]:
    told: dict[str, list[MessageStatus]] = defaultdict(list)
    for received in first:
        if received.kind is CallbackKind.MESSAGE_STATUS:
            body = json.loads(received.body)
            told[body["message_uuid"]].append(MessageStatus(body["status"]))
    found = []
    for message_uuid, statuses in told.items():
        if _regresses(statuses):
            found.append(
                (
                    "status regression",
                    f"step {_step_of(rec, message_uuid)} told {[s.value for s in statuses]}",
                )
            )
    for k, should in expected.told.items():
        got = told.get(message_uuid_for(rec.uuid, k), [])
        if got != should:
            found.append(
                (
                    "statuses told",
                    f"step {k} told {[s.value for s in got]}, events say {[s.value for s in should]}",
                )
            )
    return found


def _regresses(statuses: list[MessageStatus]) -> bool:
    """The property test's rule: no repeats, one terminal failure at most, ranks never fall, and
    no failure after a success."""
    failures = [s for s in statuses if s.is_failure]
    ranks = [STATUS_RANK[s] for s in statuses if not s.is_failure]
    return (
        len(statuses) != len(set(statuses))
        or len(failures) > 1
        or (bool(failures) and statuses[-1] is not failures[0])
        or ranks != sorted(ranks)
        or (bool(failures) and bool(ranks) and max(ranks) > 1)
    )


def _step_of(rec: DispatchRecord, message_uuid: str | None) -> int | None:
    if message_uuid is None:
        return None
    return next((k for k in range(len(rec.specs)) if message_uuid_for(rec.uuid, k) == message_uuid), -1)
