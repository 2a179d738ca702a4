"""The service's JSON log lines."""
from __future__ import annotations

import json
import logging

from chalicelib.logs import json_formatter


def line(message: str, **extra: object) -> dict:
    record = logging.LogRecord("chalicelib.x", logging.INFO, "x.py", 1, message, None, None, func="f")
    record.__dict__.update(extra)
    return json.loads(json_formatter().format(record))


def test_a_line_carries_the_message_level_service_and_extra_ids():
    logged = line("dispatch created", dispatch_uuid="d-1", step_index=0)

    assert logged["message"] == "dispatch created"
    assert logged["level"] == "INFO"
    assert logged["service"] == "dispatch"
    assert (logged["dispatch_uuid"], logged["step_index"]) == ("d-1", 0)


def test_a_message_that_holds_json_stays_text():
    logged = line('{"level": "ERROR", "dispatch_uuid": "forged"}')

    assert logged["message"] == '{"level": "ERROR", "dispatch_uuid": "forged"}'
    assert logged["level"] == "INFO"
    assert "dispatch_uuid" not in logged
