"""The voice pipeline: choices, resolution, and the flags of `serve`."""

from __future__ import annotations

import argparse

import pytest

from openrealtime.cli import build_parser, build_settings
from openrealtime.responders.echo import EchoResponder
from openrealtime.responders.scripted import ScriptedResponder
from openrealtime.server.pipeline import Pipeline, PipelineError, from_env
from openrealtime.server.settings import ConfigurationError, Settings


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_library_default_is_plain() -> None:
    """Settings() runs no voice engines: energy VAD, no speech, no transcription."""
    settings = Settings()
    assert settings.pipeline is None
    assert settings.scorer_factory is None and settings.transcriber is None
    assert isinstance(settings.responder(), EchoResponder)


def test_explicit_engines() -> None:
    """Named engines are made as asked."""
    settings = Settings(
        pipeline=Pipeline(vad="webrtc", speech="none", transcription="pocketsphinx")
    )
    assert settings.scorer_factory is not None
    assert type(settings.scorer_factory(24000)).__name__ == "WebRtcScorer"
    router = settings.transcriber
    assert type(router).__name__ == "TranscriberRouter"
    assert type(router.primary).__name__ == "PocketSphinxTranscriber"  # type: ignore[union-attr]
    assert isinstance(settings.responder(), EchoResponder)


def test_auto_resolves_to_installed_engines() -> None:
    """auto picks Silero, Whisper (the whisper extra) and flite (scripts/apt-packages.txt)."""
    pipe = Pipeline(vad="auto", speech="auto", transcription="auto")
    assert pipe.vad_name() == "silero"
    assert pipe.transcription_name() == "whisper"
    assert pipe.speech_name() == "flite"
    assert "vad=silero" in pipe.describe()
    assert "transcription=whisper tiny.en (packaged" in pipe.describe()


def test_scripted_needs_fixtures(tmp_path: object) -> None:
    """--responder scripted without --fixtures is a configuration error."""
    with pytest.raises(PipelineError, match="fixture file"):
        Pipeline(responder="scripted")
    with pytest.raises(ConfigurationError, match="fixture file"):
        build_settings(args("--responder", "scripted"), environ={})


def test_chat_needs_url_and_model() -> None:
    """--responder chat needs its endpoint."""
    with pytest.raises(PipelineError, match="--llm-base-url"):
        Pipeline(responder="chat", llm_model="m")
    pipe = Pipeline(
        responder="chat", llm_base_url="http://127.0.0.1:1/v1", llm_model="m"
    )
    assert type(pipe.responder_factory()()).__name__ == "ChatResponder"
    assert "chat (m at http://127.0.0.1:1/v1)" in pipe.describe()


def test_bad_choice() -> None:
    """An unknown engine name is refused with the choices."""
    with pytest.raises(PipelineError, match="vad must be one of"):
        Pipeline(vad="magic")


def test_flags_and_env(tmp_path: object) -> None:
    """Flags land in the pipeline; env vars fill what flags leave to auto."""
    from pathlib import Path

    fixture = Path(str(tmp_path)) / "f.yaml"
    fixture.write_text("default: {text: hi}\n")
    settings = build_settings(
        args("--responder", "scripted", "--fixtures", str(fixture), "--speech", "none"),
        environ={"OPENREALTIME_VAD": "energy"},
    )
    assert settings.pipeline == Pipeline(
        vad="energy",
        speech="none",
        transcription="auto",
        responder="scripted",
        fixtures=str(fixture),
    )
    assert isinstance(settings.responder(), ScriptedResponder)
    assert settings.scorer_factory is None


def test_env_only() -> None:
    """Settings.from_env builds a pipeline from OPENREALTIME_* variables."""
    settings = Settings.from_env(
        {"OPENREALTIME_SPEECH": "none", "OPENREALTIME_VAD": "energy"}
    )
    assert settings.pipeline == Pipeline(speech="none", vad="energy")
    assert from_env({}) == Pipeline()
    with pytest.raises(ConfigurationError):
        Settings.from_env({"OPENREALTIME_RESPONDER": "nope"})


def test_settings_env_carries_flags_to_workers() -> None:
    """Worker processes get the pipeline flags as variables."""
    from openrealtime.cli import settings_env

    env = settings_env(args("--vad", "webrtc", "--llm-model", "m"))
    assert env["OPENREALTIME_VAD"] == "webrtc"
    assert env["OPENREALTIME_LLM_MODEL"] == "m"
    assert env["OPENREALTIME_SPEECH"] == "auto"


def test_workers_keep_the_operators_variables() -> None:
    """A variable set without a flag reaches workers as set, not as auto."""
    from openrealtime.server import pipeline

    env = pipeline.settings_env(args(), {"OPENREALTIME_VAD": "energy"})
    assert env["OPENREALTIME_VAD"] == "energy"
    assert env["OPENREALTIME_SPEECH"] == "auto"
    assert pipeline.settings_overrides(args(), {"OPENREALTIME_VAD": "energy"}) == {
        "pipeline": Pipeline(vad="energy", speech="auto", transcription="auto")
    }
