"""The reference a send leaves with a provider, so that the statuses it echoes it in name their
dispatch and step: `<dispatch_uuid>:<step_index>` (38 characters, within every provider's limit).

With it, a status needs no message index read (`DispatchService.apply_status`). It is only a hint:
the step must record the status's provider message id, which only this service writes, so a
reference from anywhere else (another system sending from the same account) changes nothing.
"""
from __future__ import annotations

import re

from chalicelib.service.ports import MessageHint

_REFERENCE = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,3})")


def reference(dispatch_uuid: str, step_index: int) -> str:
    return f"{dispatch_uuid}:{step_index}"


def hint_of(value: object) -> MessageHint | None:
    """The dispatch and step a provider-echoed reference names; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _REFERENCE.fullmatch(value)
    return MessageHint(match.group(1), int(match.group(2))) if match else None
