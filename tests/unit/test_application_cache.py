"""The callback-routing application cache: hits within the TTL, refreshes after, never caches misses."""
from __future__ import annotations

import dataclasses

from chalicelib.adapters.application_cache import CachedApplications
from tests.fake_applications import InMemoryApplicationRepository
from tests.service_harness import application


class CountingApplications(InMemoryApplicationRepository):
    def __init__(self, *apps):
        super().__init__(list(apps))
        self.reads = 0

    def get(self, application_id):
        self.reads += 1
        return super().get(application_id)


def test_reads_once_within_the_ttl_and_again_after_it():
    app = application()
    repo = CountingApplications(app)
    clock = [0.0]
    cache = CachedApplications(repo, ttl_seconds=30, monotonic=lambda: clock[0])
    assert cache.get(app.application_id) == app
    clock[0] = 29.9
    assert cache.get(app.application_id) == app and repo.reads == 1
    moved = dataclasses.replace(app, status_url="https://example.test/new")
    repo.update(moved)
    clock[0] = 30.0
    assert cache.get(app.application_id) == moved and repo.reads == 2


def test_a_missing_application_is_looked_up_every_time():
    repo = CountingApplications()
    cache = CachedApplications(repo, monotonic=lambda: 0.0)
    assert cache.get("nope") is None and cache.get("nope") is None
    assert repo.reads == 2
