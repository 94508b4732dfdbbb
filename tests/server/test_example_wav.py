"""The README's voice demo (examples/talk_wav.py) against a real server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from tests.server.conftest import running_server


ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "talk_wav.py"
QUESTION = ROOT / "examples" / "weather.wav"
FIXTURE = ROOT / "tests" / "fixtures" / "weather.yaml"
#: The README's voice demo: the scripted weather agent, heard and spoken.
DEMO = Pipeline(
    vad="silero",
    transcription="pocketsphinx",
    speech="espeak",
    responder="scripted",
    fixtures=str(FIXTURE),
)
ANSWER = "Let me check. It is sunny in Paris, twenty two degrees."


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("talk_wav", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


async def test_shipped_question_gets_the_weather(tmp_path: Path) -> None:
    """The shipped WAV is heard right, matches the fixture by voice, and the
    function call is answered: the spoken reply is the weather in Paris."""
    example = load_example()
    reply = tmp_path / "reply.wav"
    with running_server(Settings(pipeline=DEMO, pace=0)) as live:
        transcript = await example.talk(str(QUESTION), str(reply), live.ws_base)
    assert transcript == ANSWER
    with wave.open(str(reply), "rb") as wav:
        assert wav.getframerate() == 24000
        assert wav.getnframes() > 24000  # a second of speech, at least


def test_say_speaks_the_question_with_the_server_voice(tmp_path: Path) -> None:
    """``--say TEXT`` and a 22.05 kHz stereo WAV both work from the command line."""
    reply = tmp_path / "reply.wav"
    with running_server(Settings(pipeline=DEMO, pace=0)) as live:
        said = subprocess.run(
            [sys.executable, str(EXAMPLE), "--say", "What is the weather in Paris?"]
            + [str(reply), "--url", live.ws_base],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert said.returncode == 0, said.stderr
    assert "you said: what is the weather in paris\n" in said.stdout
    assert "function call: get_weather" in said.stdout
    assert "reply: It is sunny in Paris, twenty two degrees.\n" in said.stdout


def test_any_rate_and_stereo_are_resampled(tmp_path: Path) -> None:
    """espeak-ng -w writes 22.05 kHz: the example resamples it (and downmixes)."""
    example = load_example()
    tone = audio.tone(500, 22050)  # half a second of 440 Hz
    mono = np.frombuffer(tone, "<i2")
    stereo = np.stack([mono, mono], axis=1).tobytes()
    write_wav(tmp_path / "mono.wav", tone, 22050)
    write_wav(tmp_path / "stereo.wav", stereo, 22050, channels=2)
    for name in ("mono.wav", "stereo.wav"):
        pcm = example.read_pcm24k(str(tmp_path / name))
        assert abs(len(pcm) - 24000) <= 4  # 0.5 s at 24 kHz, 2 bytes a sample
        assert audio.rms(pcm) == pytest.approx(audio.rms(tone), rel=0.05)
    with wave.open(str(tmp_path / "8bit.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    with pytest.raises(SystemExit, match="need 16-bit PCM samples, not 8-bit"):
        example.read_pcm24k(str(tmp_path / "8bit.wav"))


def test_usage_needs_one_question(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(QUESTION), "r.wav", "--say", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "give a question WAV file or --say TEXT" in result.stderr
