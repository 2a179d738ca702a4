"""Run the local stack (`scripts/local_stack.py`) as a child process, for tests and measurements.

It gets a free port and its own state folder, so it never disturbs a developer's `make run`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalStack:
    base_url: str
    demo: dict[str, Any]  #: the demo application, as written to demo-app.json
    pid: int = 0  #: the stack's process, e.g. to signal it or read its memory
    exit_code: int | None = field(default=None)  #: set once the stack has stopped

    @property
    def basic_auth(self) -> tuple[str, str]:
        return self.demo["api_key"], self.demo["api_secret"]


@contextmanager
def running_local_stack(state_dir: Path, output: Path | None = None, **env: str) -> Iterator[LocalStack]:
    """Start the stack, wait until it answers, and stop it (SIGTERM) on the way out; its output
    (logs and banner) goes to `output` if given."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    child_env.update(PORT=str(port), DISPATCH_LOCAL_DIR=str(state_dir), **env)
    log = open(output, "wb") if output is not None else None  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "local_stack.py")],
        env=child_env, cwd=ROOT, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process)
        stack = LocalStack(base_url, json.loads((state_dir / "demo-app.json").read_text()), process.pid)
        yield stack
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        if log is not None:
            log.close()
    stack.exit_code = code


def _wait_until_up(base_url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with code {process.returncode}")
        try:
            requests.get(f"{base_url}/v0.1/openapi.json", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise TimeoutError("the local stack did not answer within a minute")
