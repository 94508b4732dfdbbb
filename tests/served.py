"""Wait for an ``openrealtime serve`` process the test started."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest


def wait_up(
    process: subprocess.Popen[bytes],
    port: int,
    *,
    log: Path | None = None,
    seconds: float = 30.0,
) -> None:
    """Return once ``GET /healthz`` on ``port`` answers 2xx; fail if the
    process exits first (with its log, when it writes one) or if it takes
    longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text() if log is not None else ""
            pytest.fail(f"the server exited ({process.returncode})\n{output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("the server did not start")  # pragma: no cover
