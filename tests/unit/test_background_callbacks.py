"""Background callback delivery: hands over at once, keeps order, survives a failing sender."""
from __future__ import annotations

import threading

from chalicelib.adapters.background_callbacks import BackgroundCallbackSender
from tests.service_harness import application


class BlockingSender:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()  #: set once the worker holds a callback
        self.delivered: list[dict] = []

    def deliver(self, app, payload, *, inbound=False, callback_id=None) -> None:
        self.started.set()
        self.release.wait(5)
        if payload.get("explode"):
            raise RuntimeError("bug in a sender")
        self.delivered.append(payload)


def test_deliver_returns_while_the_receiver_is_still_slow_and_order_is_kept():
    inner = BlockingSender()
    sender = BackgroundCallbackSender(inner)
    for n in range(50):
        sender.deliver(application(), {"n": n})  # would block for 5 s each if inline
    assert inner.delivered == []
    inner.release.set()
    sender.wait_until_idle()
    assert [p["n"] for p in inner.delivered] == list(range(50))


def test_a_sender_that_raises_does_not_stop_later_callbacks():
    inner = BlockingSender()
    inner.release.set()
    sender = BackgroundCallbackSender(inner)
    sender.deliver(application(), {"explode": True})
    sender.deliver(application(), {"n": 1})
    sender.wait_until_idle()
    assert inner.delivered == [{"n": 1}]


def test_a_full_queue_drops_new_callbacks_instead_of_blocking():
    inner = BlockingSender()
    sender = BackgroundCallbackSender(inner, max_queued=2)
    sender.deliver(application(), {"n": 0})
    assert inner.started.wait(5)  # the worker holds callback 0; the queue is empty
    for n in range(1, 10):
        sender.deliver(application(), {"n": n})  # 1 and 2 fit; the rest are dropped at once
    inner.release.set()
    sender.wait_until_idle()
    assert [p["n"] for p in inner.delivered] == [0, 1, 2]
