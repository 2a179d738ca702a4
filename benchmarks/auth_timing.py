"""Does authentication take longer for an api key or application that exists?

An attacker who can time answers could otherwise probe for valid api keys, then attack only
their secrets. Measured in-process through `authenticate`, with applications served from memory
so a database round trip does not drown the difference (on AWS the lookup is one GetItem
whether or not the key exists: see dynamodb_applications.py).

- Basic: (a) an unknown api key, (b) a known key with a wrong secret, (c) the right credentials.
  The ratio a/b must be about 1.
- JWT: an unknown application_id, and a known one whose token has a bad signature.
- The compare alone: `hmac.compare_digest` against `==` on equal-length values differing at the
  first or at the last byte, at the size of a secret hash (64 bytes) and at 64 KiB, where an
  early-exit compare is plainly visible: the control showing this method can see a leak.

Cases are interleaved, in a rotating order, so drift on a shared machine hits each alike; every
sample times a small batch of calls, and figures are medians of the samples with GC off.
"""
from __future__ import annotations

import base64
import gc
import hmac
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from secrets import token_hex, token_urlsafe

import jwt

from benchmarks.report import Figure
from chalicelib.api.auth import authenticate
from chalicelib.api.errors import Unauthorized
from chalicelib.service.applications import Credentials, create_application, generate_key_pair
from tests.fake_applications import InMemoryApplicationRepository, InMemorySecretStore

SECTION = "auth_timing"
#: Basic is a few microseconds a call, a JWT check tens: batches keep the clock's own cost small.
BASIC_BATCH = 20
JWT_BATCH = 2
COMPARE_BATCH = 200
LOW, HIGH = 0.9, 1.1
NOTE_TARGET = "unknown must cost what known-but-wrong costs"


def within(name: str, value: float, note: str = "") -> Figure:
    """A ratio whose target is the band [LOW, HIGH] around 1."""
    return Figure(SECTION, name, value, "ratio", f"{LOW:g}..{HIGH:g}", LOW <= value <= HIGH, note)


def info(name: str, value: float, unit: str, note: str = "") -> Figure:
    return Figure(SECTION, name, value, unit, None, None, note)


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def interleaved(cases: dict[str, Callable[[], object]], repeats: int, batch: int) -> dict[str, float]:
    """The median seconds per call of each case, samples taken in turn, each of `batch` calls."""
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    with gc_paused():
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                call = cases[name]
                started = clock()
                for _ in range(batch):
                    call()
                samples[name].append((clock() - started) / batch)
    return {name: statistics.median(values) / 1e9 for name, values in samples.items()}


def refused(header: str, apps: InMemoryApplicationRepository, now: datetime) -> Callable[[], object]:
    def call() -> object:
        try:
            return authenticate(header, apps, now)
        except Unauthorized:
            return None

    return call


def basic(api_key: str, api_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()


def bearer(application_id: str, private_pem: str, now: datetime) -> str:
    claims = {"application_id": application_id, "iat": int(now.timestamp()), "jti": str(uuid.uuid4())}
    return "Bearer " + jwt.encode(claims, private_pem, algorithm="RS256")


def world() -> tuple[InMemoryApplicationRepository, Credentials, datetime]:
    apps, now = InMemoryApplicationRepository(), datetime.now(timezone.utc)
    creds = create_application(apps, InMemorySecretStore(), "bench", None, None, now, "bench")
    return apps, creds, now


def basic_figures(repeats: int) -> list[Figure]:
    apps, creds, now = world()
    # Same lengths as the real key and secret, so only existence differs.
    unknown_key = token_hex(len(creds.api_key) // 2)
    wrong_secret = token_urlsafe(24)
    assert len(unknown_key) == len(creds.api_key) and len(wrong_secret) == len(creds.api_secret)
    medians = interleaved(
        {
            "unknown_key": refused(basic(unknown_key, wrong_secret), apps, now),
            "wrong_secret": refused(basic(creds.api_key, wrong_secret), apps, now),
            "correct": refused(basic(creds.api_key, creds.api_secret), apps, now),
        },
        repeats,
        BASIC_BATCH,
    )
    return [
        *(info(f"basic.{name}.median", seconds * 1e6, "us") for name, seconds in medians.items()),
        within("basic.unknown_vs_wrong_secret.ratio", medians["unknown_key"] / medians["wrong_secret"],
               NOTE_TARGET),
        info("basic.correct_vs_wrong_secret.ratio", medians["correct"] / medians["wrong_secret"], "ratio"),
    ]


def jwt_figures(repeats: int) -> list[Figure]:
    apps, creds, now = world()
    stranger, _ = generate_key_pair()
    medians = interleaved(
        {
            "unknown_application": refused(bearer(str(uuid.uuid4()), stranger, now), apps, now),
            "bad_signature": refused(bearer(creds.application_id, stranger, now), apps, now),
            "correct": refused(bearer(creds.application_id, creds.private_key_pem, now), apps, now),
        },
        repeats,
        JWT_BATCH,
    )
    ratio = medians["unknown_application"] / medians["bad_signature"]
    return [
        *(info(f"jwt.{name}.median", seconds * 1e6, "us") for name, seconds in medians.items()),
        within("jwt.unknown_vs_bad_signature.ratio", ratio, "an unknown application_id skips the RSA check"
               if ratio < LOW else NOTE_TARGET),
    ]


def compare_cases(size: int) -> dict[str, Callable[[], object]]:
    """Both compares of a stored value against one differing at its first, and at its last, byte."""
    stored = token_hex(size // 2).encode()
    first = bytes([stored[0] ^ 1]) + stored[1:]
    last = stored[:-1] + bytes([stored[-1] ^ 1])
    return {
        "digest_first": lambda: hmac.compare_digest(first, stored),
        "digest_last": lambda: hmac.compare_digest(last, stored),
        "eq_first": lambda: first == stored,
        "eq_last": lambda: last == stored,
    }


def compare_figures(repeats: int) -> list[Figure]:
    figures: list[Figure] = []
    # 64 KiB compares take tens of microseconds: fewer repeats say as much.
    sizes = (("64B", 64, COMPARE_BATCH, repeats), ("64KiB", 64 * 1024, 4, repeats // 10))
    for label, size, batch, times in sizes:
        m = interleaved(compare_cases(size), times, batch)
        figures += [
            within(f"compare.digest_{label}.first_vs_last.ratio", m["digest_first"] / m["digest_last"],
                   "hmac.compare_digest: constant time"),
            info(f"compare.eq_{label}.first_vs_last.ratio", m["eq_first"] / m["eq_last"], "ratio",
                 "==, for contrast: stops at the first difference"),
            info(f"compare.digest_{label}.median", m["digest_last"] * 1e9, "ns"),
        ]
    return figures


def run(quick: bool) -> list[Figure]:
    repeats = 2_000 if quick else 20_000
    return [*basic_figures(repeats), *jwt_figures(repeats // 4), *compare_figures(repeats)]


if __name__ == "__main__":
    import sys

    from benchmarks.report import table

    print(table(run(quick="--quick" in sys.argv)))
