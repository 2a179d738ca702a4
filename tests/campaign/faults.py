"""Every fault the campaign injects, with its probability, and the simulated process death.

Probabilities are per opportunity (per send attempt, per timer, per status, per save...), drawn
from the dispatch's own random generator, so a dispatch's faults do not depend on the others.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


class SimulatedCrash(BaseException):
    """The process running an input dies here.

    A BaseException, so the service's own `except Exception` guards (which are for errors a
    process survives) cannot swallow it: nothing after the crash point runs, as in a Lambda
    that timed out or ran out of memory. Every crash point is after a committed write or inside
    an effect, so what was saved stays saved and what was not done is lost."""


@dataclass(frozen=True)
class FaultRates:
    # --- the provider's answer to a send attempt ------------------------------------------------
    send_5xx: float = 0.04  #: transient ProviderError: the provider refused, nothing was sent
    send_timeout: float = 0.03  #: transient ProviderError: no answer, nothing was sent
    send_exception: float = 0.01  #: the provider adapter raised something unexpected
    send_permanent: float = 0.03  #: permanent ProviderError (bad number, blocked...)
    #: The provider took the message but its answer timed out: to the service, the same transient
    #: timeout as above, so it retries and the person may get the message again. The providers'
    #: HTTP layer documents this (`adapters/providers/http.py`): the attempt limit bounds it.
    send_timeout_taken: float = 0.01
    crash_before_send: float = 0.01  #: the process dies after saving the decision, before sending
    crash_after_accept: float = 0.01  #: the provider took the message, the process died unsaved
    # --- status webhooks (per status the channel reports) ---------------------------------------
    status_missing: float = 0.08  #: never delivered
    status_duplicate: float = 0.10  #: delivered again, 0-30 s later
    status_concurrent: float = 0.04  #: delivered twice at the same instant (a race)
    status_late: float = 0.08  #: delayed past the step's deadline (after its failover)
    status_at_deadline: float = 0.05  #: arrives at the very instant of the step's deadline
    read_before_delivered: float = 0.15  #: of a pair, `read` arrives first
    submitted_echo: float = 0.10  #: the provider also reports `submitted`
    # --- timers (per check scheduled) -----------------------------------------------------------
    timer_lost: float = 0.03  #: never fires: the sweeper must recover it
    timer_late: float = 0.05  #: fires 1-60 s late (EventBridge Scheduler's precision)
    timer_twice: float = 0.03  #: fires again 0-30 s after its first firing
    cancel_lost: float = 0.10  #: a cancel that does not take: the check fires anyway
    crash_in_schedule: float = 0.003  #: the process dies setting a timer, after the save
    #: Share of dispatches on an AWS timer backend, which sets no backstop check (send guards,
    #: last-message report limits) and leaves them to the sweeper.
    aws_backend: float = 0.5
    # --- the repository (per save) --------------------------------------------------------------
    crash_after_save: float = 0.005  #: the write commits, then the process dies
    race: float = 0.03  #: another input for the same dispatch runs between read and save
    #: Same, when another input for the dispatch is due at the very same instant (a webhook and
    #: its deadline, a webhook delivered twice at once).
    race_same_instant: float = 0.5
    crash_after_prune: float = 0.002  #: a drain dies after taking the outbox in
    # --- callbacks (per nudge, per delivery attempt) --------------------------------------------
    nudge_lost: float = 0.03  #: the queue message is lost: the sweeper must re-nudge
    receiver_5xx: float = 0.06
    receiver_timeout: float = 0.04
    receiver_429: float = 0.02  #: with Retry-After: 30
    crash_after_post: float = 0.005  #: the receiver got it, the drain died before recording it
    # --- AWS calls, `--backend moto` only (per API call the service's adapters make) -------------
    # A fault holds for 1, 2 or every attempt of the call (`aws_burst`): botocore's own retries
    # absorb the shorter ones, the longest reach the adapter as the error it would see on AWS.
    aws_throttle: float = 0.03  #: ProvisionedThroughputExceeded / Throttling / RequestThrottled
    aws_server_error: float = 0.015  #: InternalServerError / ServiceUnavailable (500, 503)
    aws_connect_error: float = 0.005  #: EndpointConnectionError: the request never got there
    #: Writes only: the write was applied, then the caller saw a ReadTimeoutError or a
    #: ConnectionClosedError. botocore retries it, so the retry meets its own write.
    aws_ambiguous: float = 0.03
    #: Reads get throttles, 500s and connection errors at this share of the writes' rates.
    aws_read_share: float = 0.5

    def scaled(self, factor: float) -> FaultRates:
        """Every fault `factor` times as likely (capped at 1); the shares are kept."""
        return replace(
            self,
            **{
                f.name: min(1.0, getattr(self, f.name) * factor)
                for f in fields(self)
                if f.name not in _KEPT
            },
        )


#: Shares, not probabilities of a fault: `scaled` leaves them as they are.
_KEPT = frozenset({"aws_backend", "aws_read_share"})

NO_FAULTS = FaultRates().scaled(0.0)
