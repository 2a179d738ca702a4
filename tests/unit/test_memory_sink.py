"""The in-memory callback sink: arrival order, isolation per dispatch, its bound, threads."""
from __future__ import annotations

import threading

from chalicelib.adapters.memory_sink import InMemoryCallbackSink
from tests.fakes import T0


def test_callbacks_come_back_in_arrival_order_per_dispatch():
    sink = InMemoryCallbackSink()
    for n in range(5):
        sink.store("d-1", T0, n % 2 == 0, {"n": n})
        sink.store("d-2", T0, True, {"other": n})
    records = sink.list("d-1")
    assert [r["body"]["n"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["signature_valid"] for r in records] == [True, False, True, False, True]
    assert records[0]["received_at"] == "2026-11-24T12:00:00.000Z"
    assert sink.list("d-3") == []


def test_callbacks_naming_no_dispatch_are_kept_apart():
    sink = InMemoryCallbackSink()
    sink.store(None, T0, False, "not json")
    assert sink.list(None) == [{"received_at": "2026-11-24T12:00:00.000Z", "signature_valid": False, "body": "not json"}]


def test_the_dispatches_heard_from_least_recently_are_dropped_first():
    sink = InMemoryCallbackSink(max_dispatches=2)
    sink.store("a", T0, True, {})
    sink.store("b", T0, True, {})
    sink.store("a", T0, True, {})
    sink.store("c", T0, True, {})
    assert sink.list("b") == [] and len(sink.list("a")) == 2 and len(sink.list("c")) == 1


def test_concurrent_stores_are_all_kept():
    sink = InMemoryCallbackSink(max_per_dispatch=10_000)

    def store_many(worker: int) -> None:
        for n in range(200):
            sink.store("d", T0, True, {"worker": worker, "n": n})

    threads = [threading.Thread(target=store_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = sink.list("d")
    assert len(records) == 1600
    for worker in range(8):
        assert [r["body"]["n"] for r in records if r["body"]["worker"] == worker] == list(range(200))


def test_only_the_latest_callbacks_of_a_dispatch_are_kept():
    sink = InMemoryCallbackSink(max_per_dispatch=3)
    for n in range(5):
        sink.store("d", T0, True, {"n": n})
    assert [r["body"]["n"] for r in sink.list("d")] == [2, 3, 4]
