"""What the campaign knows about each dispatch: its plan, and what happened at its edges.

A `DispatchRecord` holds the dispatch's own random generator, its workflow and creation time,
every send attempt and the provider's answer, every webhook in the order it took effect, every
callback the application received, and the fault plan as a readable trace. The oracle and the
invariants work from these alone.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from dataclasses import dataclass, field

from chalicelib.domain.callbacks import CallbackKind
from chalicelib.domain.model import READ_CAPABLE, Channel, Condition, MessageStatus, StepSpec

S = 1_000_000  #: microseconds per second: simulated time is kept in whole microseconds
#: Dispatches are created at random over `count` times this many seconds: about two a second.
ARRIVAL_SECONDS_PER_DISPATCH = 0.5
CHANNELS = list(Channel)
EXPIRIES = [15, 30, 60, 120, 300, 600]
STEP_COUNTS = [(1, 15), (2, 40), (3, 30), (4, 15)]
TRANSIENT = ("send_5xx", "send_timeout", "send_exception", "send_timeout_taken")
#: Attempt results after which the provider holds a message for the person.
TAKEN = ("accepted", "send_timeout_taken")


def dispatch_seed(seed: int, index: int) -> int:
    """The seed of dispatch `index` of campaign `seed`: stable across runs and Python versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:8], "big")


@dataclass(eq=False)
class Event:
    time_us: int
    kind: str  #: create | status | timer | drain | sweep
    rec: DispatchRecord | None
    args: tuple
    seq: int
    live: bool = True


@dataclass(frozen=True)
class SendAttempt:
    step: int
    at_us: int
    #: `accepted`, or the fault: crash_before_send, send_5xx, send_timeout, send_exception,
    #: send_permanent, send_timeout_taken
    result: str
    provider_message_id: str | None = None
    #: The process died (or, on moto, the input failed on an AWS error) before the answer was
    #: saved.
    crashed: bool = False

    @property
    def recorded(self) -> bool:
        return self.result == "accepted" and not self.crashed


@dataclass(eq=False)
class AppliedStatus:
    """A webhook the service processed, in the order it took effect: when its own decision was
    saved (the first save made while it is the innermost input running), or, when it saved
    nothing, when its processing ended."""

    provider_message_id: str
    status: MessageStatus
    at_us: int
    #: What `apply_status` answered (None: the process died in it, after its status was saved).
    routed: bool | None = None


@dataclass
class Input:
    """One input being processed (a create, webhook, timer check, drain or sweep)."""

    kind: str
    #: For a webhook: its status, recorded as taking effect at its first save.
    applied: AppliedStatus | None = None
    #: Dispatches this input already raced on: one race per input and dispatch.
    raced: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Received:
    """One callback as the application's status URL received it."""

    seq: int
    event_id: str
    kind: CallbackKind
    body: str
    at_us: int


@dataclass(eq=False)
class DispatchRecord:
    index: int
    seed: int
    rng: random.Random
    uuid: str
    specs: tuple[StepSpec, ...]
    created_us: int
    aws_backend: bool
    trace: list[str] = field(default_factory=list)
    sends: list[SendAttempt] = field(default_factory=list)
    applied: list[AppliedStatus] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    #: Violations seen while running (a dispatch the sweeper should have moved on).
    stranded: list[str] = field(default_factory=list)
    pending: set[Event] = field(default_factory=set)
    counter: itertools.count = field(default_factory=itertools.count)
    #: `--backend moto`: the AWS timer backend of the dispatch (stepfunctions or scheduler).
    timer_backend: str = ""
    #: `--backend moto`: the inputs an AWS error ended (create, webhook, timer check...).
    aws_errors: list[str] = field(default_factory=list)
    #: Inputs that raised anything but an AWS error or a simulated death: each one a violation.
    errors: list[str] = field(default_factory=list)
    #: `--backend moto`: how many of `sends` came before the dispatch's latest committed save.
    sends_saved: int = 0

    def describe(self) -> str:
        parts = []
        for spec in self.specs:
            if spec.condition is None:
                parts.append(spec.channel.value)
            else:
                parts.append(f"{spec.channel.value}({spec.condition.value} in {spec.expiry_time}s)")
        backend = "aws timers (backstops left to the sweeper)" if self.aws_backend else "local timer"
        if self.timer_backend:
            backend = f"{self.timer_backend} timer (backstops left to the sweeper)"
        return " -> ".join(parts) + f"; {backend}"


def plan(seed: int, index: int, count: int) -> DispatchRecord:
    """Dispatch `index`: its generator, workflow, creation time and timer backend."""
    dseed = dispatch_seed(seed, index)
    rng = random.Random(dseed)
    dispatch_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    created_us = int(rng.uniform(0, count * ARRIVAL_SECONDS_PER_DISPATCH) * 1000) * 1000
    size = rng.choices([n for n, _ in STEP_COUNTS], [w for _, w in STEP_COUNTS])[0]
    specs = []
    for i in range(size):
        chan = rng.choice(CHANNELS)
        condition = expiry = None
        if i < size - 1:
            condition = rng.choice(list(Condition) if chan in READ_CAPABLE else [Condition.DELIVERED])
            expiry = rng.choice(EXPIRIES)
        specs.append(
            StepSpec(
                channel=chan,
                to={"type": chan.value, "number": f"4477009{index % 100000:05d}"},
                sender={"type": chan.value, "number": "447700900001"},
                message={"content": {"type": "text", "text": "campaign message"}},
                condition=condition,
                expiry_time=expiry,
            )
        )
    return DispatchRecord(index, dseed, rng, dispatch_uuid, tuple(specs), created_us, False)
