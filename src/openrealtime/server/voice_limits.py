"""The ``serve`` flags of voice compute: pool size and the caps on one job.

* ``--voice-workers N`` (``OPENREALTIME_VOICE_WORKERS``): worker processes
  for turn detection, and as many for transcription; default the CPUs
  (divided among the server processes of ``--workers``).
* ``--max-transcription-seconds S``
  (``OPENREALTIME_MAX_TRANSCRIPTION_SECONDS``): default 120; 0: no cap.
* ``--max-output-audio-seconds S`` (``OPENREALTIME_MAX_OUTPUT_AUDIO_SECONDS``):
  default 300; 0: no cap.

See :mod:`openrealtime.voice.compute` and docs/reliability.md, "Voice compute".
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping

from openrealtime.session import Limits


__all__ = [
    "VoiceLimitError",
    "add_arguments",
    "from_env",
    "settings_env",
    "settings_overrides",
]

_VARS = {
    "voice_workers": "OPENREALTIME_VOICE_WORKERS",
    "max_transcription_seconds": "OPENREALTIME_MAX_TRANSCRIPTION_SECONDS",
    "max_output_audio_seconds": "OPENREALTIME_MAX_OUTPUT_AUDIO_SECONDS",
}


class VoiceLimitError(ValueError):
    """A voice compute flag or variable with an invalid value."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the voice compute flags to ``openrealtime serve``."""
    group = parser.add_argument_group("voice compute")
    group.add_argument(
        "--voice-workers",
        type=int,
        metavar="N",
        help="worker processes for turn detection, and as many for "
        "transcription (default: the CPUs this process may run on, divided "
        "among the --workers)",
    )
    group.add_argument(
        "--max-transcription-seconds",
        type=float,
        metavar="S",
        help="longer committed audio is not transcribed: its transcription "
        "fails with audio_too_long (default 120; 0: no cap)",
    )
    group.add_argument(
        "--max-output-audio-seconds",
        type=float,
        metavar="S",
        help="audio one response may produce; past it the response ends "
        "incomplete (default 300; 0: no cap)",
    )


def _values(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for field, var in _VARS.items():
        flag = getattr(args, field, None)
        raw = flag if flag is not None else environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            raise VoiceLimitError(f"{var} must be a number, not {raw!r}") from None
        if value < 0 or (field == "voice_workers" and value < 1):
            raise VoiceLimitError(f"--{field.replace('_', '-')} is out of range: {raw}")
        values[field] = value
    return values


def settings_overrides(
    args: argparse.Namespace, environ: Mapping[str, str], limits: Limits
) -> dict[str, object]:
    """The :class:`~openrealtime.server.settings.Settings` fields the flags
    (or, without them, the variables) set.

    Raises:
        VoiceLimitError: a value that is not a number or out of range.
    """
    values = _values(args, environ)
    overrides: dict[str, object] = {}
    if "voice_workers" in values:
        overrides["voice_workers"] = int(values["voice_workers"])
    if "max_transcription_seconds" in values:
        overrides["max_transcription_seconds"] = (
            values["max_transcription_seconds"] or None
        )
    if "max_output_audio_seconds" in values:
        seconds = values["max_output_audio_seconds"]
        overrides["limits"] = dataclasses.replace(
            limits, max_output_audio_ms=round(seconds * 1000) if seconds else None
        )
    return overrides


def from_env(
    environ: Mapping[str, str], limits: Limits | None = None
) -> dict[str, object]:
    """The Settings fields the variables set (what worker processes read),
    the output audio cap over ``limits``.

    Raises:
        VoiceLimitError: a value that is not a number or out of range.
    """
    return settings_overrides(argparse.Namespace(), environ, limits or Limits())


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The variables that carry the flags to worker processes."""
    env: dict[str, str] = {}
    for field, var in _VARS.items():
        value = getattr(args, field, None)
        if value is not None:
            env[var] = str(value)
    return env
