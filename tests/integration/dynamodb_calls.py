"""Counts the DynamoDB calls an operation makes, through botocore's own event hooks."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any


def call_counter(client: Any) -> Callable[[Callable[[], object]], Counter[str]]:
    """`calls_of(operation)`: run `operation` and return the calls it made on `client`, by
    operation name (GetItem, PutItem...). An operation that raises has its calls in
    `calls_of.calls`."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.dynamodb.*", count)

    def calls_of(operation: Callable[[], object]) -> Counter[str]:
        calls.clear()
        operation()
        return +calls

    calls_of.calls = calls  # type: ignore[attr-defined]
    return calls_of
