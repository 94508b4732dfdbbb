"""The compatibility suite: stock clients, unmodified, against a live server.

Every client goes through the same conversation with the scripted agent of
``compat.yaml``: connect, ``session.update`` with a tool, a text turn, a
spoken turn (espeak-ng speech, server VAD), a tool call and the reply that
follows its output, an interruption while the reply's audio is streaming,
and a session opened with an ephemeral ``ek_`` key.

The server is the real one (uvicorn on a loopback port, the picows driver
that ``openrealtime serve`` runs) with the scripted responder and the
offline voice pipeline: Silero VAD, PocketSphinx transcription; replies are
a tone (no speech engine), which keeps the suite fast.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from openrealtime.voice.tts import EspeakSynthesizer
from tests.server.conftest import LiveServer, running_server
from tests.tls import Certificates, make_certificates


__all__ = [
    "API_KEY",
    "SPEECH_TEXT",
    "STORY",
    "TOOL",
    "compat_settings",
]

HERE = Path(__file__).parent
#: The scripted agent every client talks to.
FIXTURE = HERE / "compat.yaml"
#: The long reply of compat.yaml, the one clients interrupt.
STORY: str = next(
    rule["reply"]["text"]
    for rule in yaml.safe_load(FIXTURE.read_text())["rules"]
    if rule["match"].get("text") == "story"
)
#: The API key of the compat servers (ephemeral keys are made with it).
API_KEY = "sk-compat-0123456789abcdefghij"
#: What the user says in the spoken turn (no rule of compat.yaml matches it).
SPEECH_TEXT = "How are you doing today"
#: The tool every client declares; compat.yaml calls it for "weather".
TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def compat_settings(**changes: Any) -> Settings:
    """The settings of a compat server: auth on, the scripted agent, real VAD."""
    pipeline = Pipeline(
        vad="silero",
        transcription="pocketsphinx",
        speech="none",
        responder="scripted",
        fixtures=str(FIXTURE),
    )
    return Settings(api_keys=(API_KEY,), pipeline=pipeline, **changes)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """A compat server on ``ws://`` (picows driver), one per test module."""
    with running_server(compat_settings(), "picows") as server:
        yield server


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA made for this run, and a certificate for 127.0.0.1 and localhost."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def live_tls(certificates: Certificates) -> Iterator[LiveServer]:
    """A compat server on ``wss://`` with the test CA's certificate."""
    settings = compat_settings(
        ssl_certfile=str(certificates.cert), ssl_keyfile=str(certificates.key)
    )
    with running_server(settings, "picows") as server:
        yield server


@cache
def _speech() -> bytes:
    return b"".join(
        EspeakSynthesizer().synthesize(SPEECH_TEXT, voice="echo", speed=1.0)
    )


@pytest.fixture(scope="session")
def speech() -> bytes:
    """:data:`SPEECH_TEXT` spoken by espeak-ng: PCM16, 24 kHz, mono, with
    silence around it (long enough after it for server VAD to end the turn)."""
    assert shutil.which("espeak-ng"), (
        "espeak-ng is missing: bash scripts/test.sh installs it"
    )
    return audio.silence(300, 24000) + _speech() + audio.silence(1500, 24000)
