"""The whole application through chalice.test.Client: moto DynamoDB and Secrets Manager, real
auth, the sandbox provider, a recording timer whose checks tests fire through the Lambda
handler, and callbacks captured on their way out and replayed into the local sink."""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.config import load_settings
from chalicelib.service.applications import Credentials, create_application
from tests.fakes import FakeClock, RecordingTimer


@dataclass
class _Response:
    status_code: int = 204
    #: The transport reads `Retry-After` from it.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CapturingSession:
    """Stands in for requests.Session in the callback transport: keeps every POST it is given.

    It answers 204, unless `answers` holds statuses to give first (a receiver that refuses or
    is down for a while): those are popped one per POST, and what they answer is kept in
    `refused` rather than `posts`, since the application never took it."""

    posts: list[tuple[str, bytes, dict]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    refused: list[tuple[str, bytes, dict, int]] = field(default_factory=list)

    def post(self, url: str, data: bytes, headers: dict, **_: Any) -> _Response:
        status = self.answers.pop(0) if self.answers else 204
        if 200 <= status <= 299:
            self.posts.append((url, data, dict(headers)))
        else:
            self.refused.append((url, data, dict(headers), status))
        return _Response(status)


@dataclass
class Stack:
    client: Client
    services: bootstrap.Services
    timer: RecordingTimer
    session: CapturingSession
    clock: FakeClock
    demo: Credentials
    other: Credentials

    def basic(self, creds: Credentials | None = None) -> dict[str, str]:
        creds = creds or self.demo
        token = base64.b64encode(f"{creds.api_key}:{creds.api_secret}".encode()).decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def bearer(self, creds: Credentials | None = None, **claims: Any) -> dict[str, str]:
        creds = creds or self.demo
        iat = int(self.clock.now().timestamp())
        body = {"application_id": creds.application_id, "iat": iat, "jti": str(uuid.uuid4())}
        token = jwt.encode({**body, **claims}, creds.private_key_pem, algorithm="RS256")
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None):
        return self.client.http.post(path, headers=headers or self.basic(), body=json.dumps(body))

    def get(self, path: str, headers: dict[str, str] | None = None):
        return self.client.http.get(path, headers=headers or self.basic())

    def fire_due_checks(self, dispatch_uuid: str) -> int:
        """Invoke failover_check for every pending timer of the dispatch, as AWS would."""
        fired = 0
        for (uuid_, index), _at in sorted(self.timer.pending.items(), key=lambda kv: kv[1]):
            if uuid_ == dispatch_uuid:
                del self.timer.pending[(uuid_, index)]
                event = {"dispatch_uuid": uuid_, "step_index": index}
                self.client.lambda_.invoke("failover_check", event)
                fired += 1
        return fired

    def deliver_callbacks(self) -> None:
        """Replay the captured callbacks into the sink, as the application's server would receive them."""
        posts, self.session.posts = self.session.posts, []
        for _url, data, headers in posts:
            self.client.http.post("/sandbox/callbacks", headers=headers, body=data)


@pytest.fixture
def stack(table_name, monkeypatch):
    from app import app

    settings = load_settings({"DISPATCH_TABLE": table_name, "DISPATCH_SANDBOX_ROUTES": "enabled"})
    timer, session, clock = RecordingTimer(), CapturingSession(), FakeClock(datetime.now(timezone.utc))
    services = bootstrap.build_services(settings, timer=timer, http_session=session, clock=clock)
    sink_url = "http://127.0.0.1:8000/sandbox/callbacks"
    make = lambda name: create_application(
        services.applications, services.secrets, name, sink_url, None, services.clock.now(), "test"
    )
    demo, other = make("demo"), make("other")
    bootstrap.override(services)
    with Client(app, stage_name="local") as client:
        yield Stack(client, services, timer, session, clock, demo, other)
    bootstrap.override(None)
