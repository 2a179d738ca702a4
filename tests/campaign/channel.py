"""What a channel reports about a message its provider accepted, and how the webhooks go wrong.

`webhooks()` draws the message's true fate (delivered, read, refused, or nothing at all) and its
timing relative to the step's expiry, then applies the status faults: missing, duplicated,
delivered twice at once, late past the failover, at the deadline's very instant, `read` before
`delivered`, and a `submitted` echo. Times are integer microseconds of simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.model import READ_CAPABLE, Channel, MessageStatus
from tests.campaign.faults import FaultRates
from tests.campaign.records import S

DELIVERED, READ = MessageStatus.DELIVERED, MessageStatus.READ
REJECTED, UNDELIVERABLE = MessageStatus.REJECTED, MessageStatus.UNDELIVERABLE
SUBMITTED = MessageStatus.SUBMITTED

#: (weight, statuses the channel will report, in the order they happen)
_FATES_READ_CAPABLE = [
    (35, (DELIVERED, READ)),
    (25, (DELIVERED,)),
    (7, (REJECTED,)),
    (7, (UNDELIVERABLE,)),
    (3, (DELIVERED, UNDELIVERABLE)),  # a provider contradicting itself: success must stand
    (23, ()),
]
_FATES_NO_READ = [
    (55, (DELIVERED,)),
    (8, (REJECTED,)),
    (10, (UNDELIVERABLE,)),
    (3, (DELIVERED, UNDELIVERABLE)),
    (24, ()),
]

#: How the last message (no expiry of its own) spaces its reports, in seconds.
LAST_STEP_SCALE = 300

Note = Callable[[str, str], None]


@dataclass(frozen=True)
class Webhook:
    at_us: int
    status: MessageStatus
    #: Why it is there: `report`, or the fault that made it (`duplicate`, `late`...).
    tag: str = "report"


def webhooks(
    rng: random.Random,
    rates: FaultRates,
    channel: Channel,
    accepted_us: int,
    expiry: int | None,
    window: int,
    note: Note,
) -> list[Webhook]:
    """The webhooks a message accepted at `accepted_us` gives rise to, in no particular order.

    `expiry` is the step's own (None for the last step); `window` is how long the step waits
    (its expiry, or the last message's report limit): a status at `accepted + window` is at the
    deadline's very instant."""
    fates = _FATES_READ_CAPABLE if channel in READ_CAPABLE else _FATES_NO_READ
    statuses = _pick(rng, fates)
    scale = (expiry or LAST_STEP_SCALE) * S
    hooks: list[Webhook] = []
    at = accepted_us
    for status in statuses:
        if status is READ:
            at += int(rng.uniform(0.05, 0.8) * scale)
        else:
            at = accepted_us + int(rng.uniform(0.1, 1.3) * scale)
        hooks.append(Webhook(_ms(at), status))
    note("fate", "+".join(s.value for s in statuses) or "silent")
    if len(hooks) == 2 and hooks[1].status is READ and rng.random() < rates.read_before_delivered:
        hooks = [Webhook(hooks[1].at_us, DELIVERED), Webhook(hooks[0].at_us, READ)]
        note("read_before_delivered", "")
    if rng.random() < rates.submitted_echo:
        hooks.append(Webhook(_ms(accepted_us + int(rng.uniform(0, 2) * S)), SUBMITTED, "echo"))
        note("submitted_echo", "")
    out: list[Webhook] = []
    for hook in hooks:
        if rng.random() < rates.status_missing:
            note("status_missing", hook.status.value)
            continue
        if rng.random() < rates.status_late:
            hook = Webhook(
                _ms(hook.at_us + (expiry or 0) * S + int(rng.uniform(1, 900) * S)), hook.status, "late"
            )
            note("status_late", f"{hook.status.value} at +{(hook.at_us - accepted_us) / S:.3f}s")
        elif rng.random() < rates.status_at_deadline:
            hook = Webhook(accepted_us + window * S, hook.status, "at_deadline")
            note("status_at_deadline", hook.status.value)
        out.append(hook)
        if rng.random() < rates.status_duplicate:
            out.append(Webhook(_ms(hook.at_us + int(rng.uniform(0, 30) * S)), hook.status, "duplicate"))
            note("status_duplicate", hook.status.value)
        if rng.random() < rates.status_concurrent:
            out.append(Webhook(hook.at_us, hook.status, "concurrent"))
            note("status_concurrent", hook.status.value)
    return out


def _pick(
    rng: random.Random, weighted: list[tuple[int, tuple[MessageStatus, ...]]]
) -> tuple[MessageStatus, ...]:
    total = sum(weight for weight, _ in weighted)
    draw = rng.uniform(0, total)
    for weight, statuses in weighted:
        draw -= weight
        if draw <= 0:
            return statuses
    return weighted[-1][1]


def _ms(us: int) -> int:
    """Whole milliseconds: a webhook's time never falls between two clock ticks of a check."""
    return us - us % 1000
