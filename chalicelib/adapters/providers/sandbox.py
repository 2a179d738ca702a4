"""The sandbox provider: accepts every message and reports `submitted`; nothing leaves the machine.

Later statuses are injected with `POST /sandbox/messages/{message_uuid}/status`, which feeds them
through the same path a real channel webhook takes.
"""
from __future__ import annotations

from chalicelib.domain.model import Step


class SandboxProvider:
    name = "sandbox"

    def send(self, dispatch_uuid: str, step: Step) -> str:
        # Our own message_uuid doubles as the provider's id, so a status injected by
        # message_uuid finds its message through the ordinary message index.
        return step.message_uuid

    def recipient_key(self, step: Step) -> str | None:
        return None  # sandbox statuses name their message; nobody writes back
