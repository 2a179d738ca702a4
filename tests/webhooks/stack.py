"""A whole app wired to one real provider: its module, its credentials (from an environ, as the
local stage reads them), a scripted HTTP session for its API and a recording timer.

Provider tests build one with `provider_stack(...)`, send dispatches through the API, post the
provider's webhook payloads to `/webhooks/<provider>/<kind>`, and fire timers by hand.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from chalicelib import bootstrap
from chalicelib.config import load_settings
from chalicelib.service.applications import create_application
from tests.e2e.conftest import Stack
from tests.fakes import FakeClock, RecordingTimer


@dataclass
class FakeResponse:
    status_code: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    @property
    def content(self) -> bytes:
        return self.text.encode()

    def json(self) -> Any:
        if isinstance(self.body, str):
            return json.loads(self.body)
        return self.body


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str]
    json: Any
    data: Any
    params: Any
    timeout: Any


Responder = Callable[[Call], FakeResponse]


@dataclass
class ScriptedSession:
    """Stands in for requests.Session: records every call; `respond(prefix, ...)` scripts answers.

    A call whose URL starts with no scripted prefix gets 204 (callbacks to the application).
    Scripted answers are used in order, and the last one repeats. A scripted exception is raised.
    """

    calls: list[Call] = field(default_factory=list)
    _scripts: dict[str, list[FakeResponse | Exception | Responder]] = field(default_factory=dict)

    def respond(self, url_prefix: str, *answers: FakeResponse | Exception | Responder) -> None:
        self._scripts[url_prefix] = list(answers)

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        call = Call(
            method.upper(),
            url,
            dict(kwargs.get("headers") or {}),
            kwargs.get("json"),
            kwargs.get("data"),
            kwargs.get("params"),
            kwargs.get("timeout"),
        )
        self.calls.append(call)
        for prefix, answers in self._scripts.items():
            if url.startswith(prefix):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, Exception):
                    raise answer
                return answer(call) if callable(answer) else answer
        return FakeResponse(204, "")

    def post(self, url: str, **kwargs: Any) -> FakeResponse:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        return self.request("GET", url, **kwargs)

    def to(self, url_prefix: str) -> list[Call]:
        return [c for c in self.calls if c.url.startswith(url_prefix)]

    def callbacks(self) -> list[tuple[str, bytes, dict]]:
        """What the service posted to applications (status and inbound URLs), as the e2e
        CapturingSession keeps them."""
        return [
            (c.url, c.data, c.headers)
            for c in self.calls
            if c.url.startswith("https://app.example/")
        ]


STATUS_URL = "https://app.example/status"
INBOUND_URL = "https://app.example/inbound"


def build_provider_stack(
    table_name: str,
    routing: Mapping[str, str],
    credentials: Mapping[str, str],
    session: ScriptedSession,
) -> tuple[Stack, Any]:
    """Services for `routing` ({"whatsapp": "whatsapp", ...}; other channels stay sandbox) with
    `credentials` as the local stage's DISPATCH_<PROVIDER>_<KEY> variables. Returns the stack and
    a context manager that must wrap its use (see `provider_stack`)."""
    settings = load_settings(
        {
            "DISPATCH_TABLE": table_name,
            "DISPATCH_CHANNEL_PROVIDERS": json.dumps(dict(routing)),
            "DISPATCH_PROVIDER_CREDENTIALS": "env",
        }
    )
    timer, clock = RecordingTimer(), FakeClock(datetime.now(timezone.utc))
    services = bootstrap.build_services(
        settings, timer=timer, http_session=session, clock=clock, environ=dict(credentials)
    )
    make = lambda name: create_application(
        services.applications, services.secrets, name, STATUS_URL, INBOUND_URL, clock.now(), "test"
    )
    demo, other = make("demo"), make("other")
    return Stack(None, services, timer, session, clock, demo, other), None  # type: ignore[arg-type]


class provider_stack:
    """`with provider_stack(table, routing, credentials, session) as stack:` the app, served by
    chalice.test.Client, with those services in place for the duration."""

    def __init__(self, table_name: str, routing: Mapping[str, str], credentials: Mapping[str, str], session: ScriptedSession):
        self._args = (table_name, routing, credentials, session)

    def __enter__(self) -> Stack:
        from chalice.test import Client

        from app import app

        stack, _ = build_provider_stack(*self._args)
        bootstrap.override(stack.services)
        self._client = Client(app, stage_name="local")
        stack.client = self._client.__enter__()
        return stack

    def __exit__(self, *exc: Any) -> None:
        self._client.__exit__(*exc)
        bootstrap.override(None)


def post_webhook(stack: Stack, provider: str, kind: str, body: bytes, headers: Mapping[str, str]):
    """POST a provider's raw webhook body to our route, as the provider would."""
    return stack.client.http.post(f"/webhooks/{provider}/{kind}", headers=dict(headers), body=body)
