"""openai-node and @openai/agents-realtime under Node, unmodified, over ``wss://``.

The clients are the npm packages locked in ``node/package-lock.json``
(``scripts/test.sh`` runs ``npm ci``). Both force or default to TLS, so the
server runs with a certificate from a CA the test makes, which Node trusts
through ``NODE_EXTRA_CA_CERTS``, the setup the README documents. Each script
prints the outcome of each step as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import API_KEY, STORY, TOOL
from tests.server.conftest import LiveServer
from tests.tls import Certificates


NODE_DIR = Path(__file__).parent / "node"
STEPS = {
    "openai_node.mjs": [
        "connect",
        "session.update",
        "text turn",
        "audio turn",
        "tool call",
        "interruption",
        "no errors",
        "ephemeral key",
    ],
    "agents_realtime.mjs": [
        "connect",
        "session.update",
        "text turn",
        "audio turn",
        "tool call",
        "interruption",
        "no errors",
        "ephemeral key",
    ],
}


def run_node(
    script: str, live: LiveServer, certificates: Certificates, speech: Path
) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is missing: bash scripts/test.sh installs it (nodejs)"
    assert (NODE_DIR / "node_modules").is_dir(), (
        "the Node clients are missing: run `npm ci` in tests/compat/node "
        "(bash scripts/test.sh does)"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NODE_EXTRA_CA_CERTS": str(certificates.ca),
        "OR_BASE_URL": live.http + "/v1",
        "OR_API_KEY": API_KEY,
        "OR_SPEECH": str(speech),
        "OR_TOOL": json.dumps(TOOL),
        "OR_STORY": STORY,
    }
    process = subprocess.run(
        [node, script],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = process.stdout.strip().splitlines()
    assert lines, f"no result from {script}:\n{process.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = process.stderr
    return result


@pytest.fixture(scope="module")
def speech_file(speech: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "speech.pcm"
    path.write_bytes(speech)
    return path


@pytest.mark.parametrize("script", sorted(STEPS))
def test_node_client(
    script: str,
    live_tls: LiveServer,
    certificates: Certificates,
    speech_file: Path,
) -> None:
    assert live_tls.http.startswith("https://")
    result = run_node(script, live_tls, certificates, speech_file)
    failed = {k: v for k, v in result["steps"].items() if v != "ok"}
    assert not failed, f"{script}: {json.dumps(failed, indent=1)}\n{result['stderr']}"
    assert list(result["steps"]) == STEPS[script]
