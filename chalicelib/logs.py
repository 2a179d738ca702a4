"""Structured JSON logs for every module's standard `logging.getLogger(__name__)` logger.

Modules log ids (dispatch_uuid, step_index, channel) through `extra=`; never message text,
tokens or secrets.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

_HANDLER_NAME = "dispatch-json"
#: At DEBUG these log whole requests and responses: item attributes with message text, URLs with
#: tokens. They stay at INFO whatever DISPATCH_LOG_LEVEL says.
_CHATTY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")


def configure_logging() -> None:
    """Put one JSON handler on the root logger; calling again changes nothing."""
    root = logging.getLogger()
    if any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(json_formatter())
    root.addHandler(handler)
    root.setLevel(os.environ.get("DISPATCH_LOG_LEVEL", "INFO").upper())
    for name in _CHATTY_LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(max(library.getEffectiveLevel(), logging.INFO))


def json_formatter() -> LambdaPowertoolsFormatter:
    """Powertools' JSON lines, with each message kept as the text it is.

    By default the formatter tries to parse every message as JSON and, if it parses, logs the
    result as an object: a cost on every line (our messages are fixed phrases) and a way for a
    message that happens to hold JSON to pose as structured fields."""
    return LambdaPowertoolsFormatter(service="dispatch", json_deserializer=_as_text)


def _as_text(message: Any) -> Any:
    return message
