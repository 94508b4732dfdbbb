"""The voice compute flags and variables of ``serve``."""

from __future__ import annotations

import pytest

from openrealtime.cli import build_parser, build_settings, settings_env
from openrealtime.server.settings import ConfigurationError, Settings


def settings(*argv: str, env: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["serve", *argv])
    return build_settings(args, env or {})


def test_defaults() -> None:
    s = settings()
    assert s.voice_workers is None
    assert s.max_transcription_seconds == 120.0
    assert s.limits.max_output_audio_ms == 300_000


def test_flags() -> None:
    s = settings(
        "--voice-workers",
        "3",
        "--max-transcription-seconds",
        "30",
        "--max-output-audio-seconds",
        "12.5",
    )
    assert s.voice_workers == 3
    assert s.max_transcription_seconds == 30.0
    assert s.limits.max_output_audio_ms == 12_500


def test_zero_turns_a_cap_off() -> None:
    s = settings("--max-transcription-seconds", "0", "--max-output-audio-seconds", "0")
    assert s.max_transcription_seconds is None
    assert s.limits.max_output_audio_ms is None


def test_variables_reach_worker_processes() -> None:
    args = build_parser().parse_args(
        ["serve", "--voice-workers", "2", "--max-output-audio-seconds", "60"]
    )
    env = settings_env(args)
    assert env["OPENREALTIME_VOICE_WORKERS"] == "2"
    s = Settings.from_env(env)
    assert s.voice_workers == 2
    assert s.limits.max_output_audio_ms == 60_000


@pytest.mark.parametrize(
    "argv, env",
    [
        (["--voice-workers", "0"], {}),
        ([], {"OPENREALTIME_MAX_TRANSCRIPTION_SECONDS": "soon"}),
        (["--max-output-audio-seconds", "-1"], {}),
    ],
)
def test_bad_values_are_configuration_errors(
    argv: list[str], env: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError):
        settings(*argv, env=env)
