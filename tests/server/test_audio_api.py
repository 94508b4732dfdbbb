"""The audio REST endpoints, remote engines, and streamed transcription deltas.

One openrealtime (Whisper + flite) serves ``/v1/audio/transcriptions`` and
``/v1/audio/speech``; a second one uses it as its speech server through
``--transcription-url`` and ``--speech-url``, as a GPU box would be used.
Human speech comes from Debian's ``pocketsphinx-testdata``.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from openrealtime import audio
from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from openrealtime.voice.remote import RemoteSynthesizer, RemoteTranscriber, wav_bytes
from openrealtime.voice.whisper import WhisperTranscriber
from tests.server.conftest import LiveServer, running_server
from tests.server.test_voice_e2e import converse, of
from tests.voice.test_whisper import human_clip, words


KEY = "sk-audio-test"
CLIP = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
REFERENCE = set("he was not an ill disposed young man".split())


@pytest.fixture(scope="module")
def backend() -> Iterator[LiveServer]:
    """The speech server: Whisper, flite, and an API key."""
    pipeline = Pipeline(vad="silero", transcription="whisper", speech="flite")
    with running_server(Settings(api_keys=(KEY,), pipeline=pipeline)) as live:
        yield live


@pytest.fixture(scope="module")
def frontend(backend: LiveServer) -> Iterator[LiveServer]:
    """A server whose transcription and speech are the backend's, over HTTP."""
    pipeline = Pipeline(
        vad="silero",
        transcription="auto",  # a URL makes auto remote
        speech="remote",
        transcription_url=f"{backend.http}/v1",
        speech_url=f"{backend.http}/v1/audio/speech",
        audio_api_key=KEY,
    )
    assert pipeline.transcription_name() == pipeline.speech_name() == "remote"
    with running_server(Settings(pipeline=pipeline), "picows") as live:
        yield live


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def clip_wav() -> bytes:
    pcm, rate = human_clip(CLIP)
    return wav_bytes(pcm, rate)


# --- POST /v1/audio/transcriptions ---------------------------------------------------


def test_transcription_json_text_and_stream(backend: LiveServer) -> None:
    url = f"{backend.http}/v1/audio/transcriptions"
    files = {"file": ("clip.wav", clip_wav(), "audio/wav")}
    r = httpx.post(
        url, headers=auth(), files=files, data={"model": "whisper-1"}, timeout=60
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(REFERENCE - set(words(body["text"]))) <= 2, body
    assert body["usage"] == {"type": "duration", "seconds": 2.99}
    r = httpx.post(
        url,
        headers=auth(),
        files=files,
        data={"model": "gpt-4o-transcribe", "response_format": "text"},
        timeout=60,
    )
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == body["text"]
    # stream=true: server-sent events, deltas then done, as gpt-4o-transcribe.
    with httpx.stream(
        "POST",
        url,
        headers=auth(),
        files=files,
        data={"model": "gpt-4o-transcribe", "stream": "true"},
        timeout=60,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done" and len(kinds) >= 6, kinds
    assert set(kinds[:-1]) == {"transcript.text.delta"}
    assert (
        "".join(e["delta"] for e in events[:-1]) == events[-1]["text"] == body["text"]
    )


def check_word_logprobs(
    deltas: list[str], logprobs: list[list[dict[str, Any]]]
) -> None:
    """Whisper's log probabilities: one per delta (its word), of that word."""
    assert len(deltas) == len(logprobs) >= 5
    for delta, entries in zip(deltas, logprobs, strict=True):
        (entry,) = entries
        assert entry["token"] == delta and entry["bytes"] == list(delta.encode())
        assert -30 < entry["logprob"] <= 0
    # The recognizer's own numbers, not a constant.
    assert len({e[0]["logprob"] for e in logprobs}) > 1


def test_transcription_logprobs(backend: LiveServer) -> None:
    """include[]=logprobs (as openai-python sends it): the JSON answer, each
    streamed delta and the done event carry Whisper's word logprobs."""
    url = f"{backend.http}/v1/audio/transcriptions"
    files = {"file": ("clip.wav", clip_wav(), "audio/wav")}
    data = {"model": "gpt-4o-transcribe", "include[]": "logprobs"}
    r = httpx.post(url, headers=auth(), files=files, data=data, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["text", "logprobs", "usage"]
    assert "".join(e["token"] for e in body["logprobs"]) == body["text"]
    with httpx.stream(
        "POST",
        url,
        headers=auth(),
        files=files,
        data={**data, "stream": "true"},
        timeout=60,
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line]
    *deltas, done = events
    check_word_logprobs([e["delta"] for e in deltas], [e["logprobs"] for e in deltas])
    assert done["logprobs"] == [e["logprobs"][0] for e in deltas] == body["logprobs"]
    # Not asked: no logprobs key anywhere.
    r = httpx.post(
        url, headers=auth(), files=files, data={"model": "whisper-1"}, timeout=60
    )
    assert "logprobs" not in r.json()
    # An engine without them (PocketSphinx): null, as the Realtime events say.
    r = httpx.post(
        url,
        headers=auth(),
        files=files,
        data={**data, "model": "pocketsphinx"},
        timeout=60,
    )
    assert r.json()["logprobs"] is None
    # Only with response_format json; only "logprobs" can be included.
    for extra, param in (
        ({"response_format": "text"}, "include"),
        ({"include[]": "segments"}, "include"),
    ):
        r = httpx.post(
            url, headers=auth(), files=files, data={**data, **extra}, timeout=60
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_the_model_name_picks_the_engine(backend: LiveServer) -> None:
    """ "pocketsphinx" names the light engine; hosted names get the primary."""
    r = httpx.post(
        f"{backend.http}/v1/audio/transcriptions",
        headers=auth(),
        files={"file": ("clip.wav", clip_wav(), "audio/wav")},
        data={"model": "pocketsphinx"},
        timeout=60,
    )
    assert r.status_code == 200
    router = backend.settings.transcriber
    assert router.engine_name("pocketsphinx") == "pocketsphinx"  # type: ignore[union-attr]
    assert router.engine_name("whisper-1") == "whisper"  # type: ignore[union-attr]
    assert type(router.for_model("pocketsphinx")).__name__ == "PocketSphinxTranscriber"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "files", "status", "param", "message"),
    [
        ({}, True, 400, "model", "you must provide a model parameter"),
        ({"model": "whisper-1"}, False, 400, "file", "you must provide a 'file'"),
        (
            {"model": "whisper-1", "response_format": "srt"},
            True,
            400,
            "response_format",
            "not supported",
        ),
        (
            {"model": "whisper-1", "language": "fr"},
            True,
            400,
            "language",
            "'fr' is not supported",
        ),
    ],
)
def test_transcription_errors(
    backend: LiveServer,
    data: dict[str, str],
    files: bool,
    status: int,
    param: str,
    message: str,
) -> None:
    body = (
        {"file": ("clip.wav", clip_wav(), "audio/wav")}
        if files
        else {"other": ("x", b"x")}
    )
    r = httpx.post(
        f"{backend.http}/v1/audio/transcriptions",
        headers=auth(),
        files=body,
        data=data,
        timeout=60,
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_undecodable_audio_and_auth(backend: LiveServer) -> None:
    r = httpx.post(
        f"{backend.http}/v1/audio/transcriptions",
        headers=auth(),
        files={"file": ("x.mp3", b"not audio at all" * 10, "audio/mpeg")},
        data={"model": "whisper-1"},
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = httpx.post(f"{backend.http}/v1/audio/speech", json={}, timeout=10)
    assert r.status_code == 401 and "didn't provide an API key" in r.text
    r = httpx.post(
        f"{backend.http}/v1/audio/speech",
        json={},
        headers={"Authorization": "Bearer sk-wrong"},
        timeout=10,
    )
    assert r.status_code == 401 and "invalid_api_key" in r.text


# --- POST /v1/audio/speech -----------------------------------------------------------


def speech(server: LiveServer, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-4o-mini-tts", "input": "Hello there.", "voice": "alloy"}
    payload.update(body)
    return httpx.post(
        f"{server.http}/v1/audio/speech", json=payload, headers=auth(), timeout=60
    )


def test_speech_pcm_wav_sse_and_speed(
    backend: LiveServer, whisper: WhisperTranscriber
) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    pcm = speech(backend, input=text, response_format="pcm")
    assert pcm.headers["content-type"] == "audio/pcm"
    assert len(pcm.content) > 24000 * 2  # more than a second at 24 kHz
    heard = words(
        "".join(whisper.transcribe(pcm.content, 24000, language=None, prompt=None))
    )
    assert len(set(words(text)) - set(heard)) <= 1, heard
    wav = speech(backend, input=text, response_format="wav", voice="ash")
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    assert wav.content[22:28] == bytes([1, 0, 0xC0, 0x5D, 0, 0])  # mono, 24000 Hz
    slow = speech(backend, input=text, response_format="pcm", speed=0.5)
    assert 1.6 < len(slow.content) / len(pcm.content) < 2.4
    with httpx.stream(
        "POST",
        f"{backend.http}/v1/audio/speech",
        json={
            "model": "tts-1",
            "input": "Hi.",
            "voice": "echo",
            "stream_format": "sse",
        },
        headers=auth(),
        timeout=60,
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line]
    assert events[-1]["type"] == "speech.audio.done"
    assert {e["type"] for e in events[:-1]} == {"speech.audio.delta"}
    samples = sum(len(base64.b64decode(e["audio"])) for e in events[:-1]) // 2
    assert events[-1]["usage"]["seconds"] == round(samples / 24000, 3) > 0.2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": ""}, "model"),
        ({"input": ""}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"voice": None}, "voice"),
        ({"speed": 9}, "speed"),
        ({"speed": "fast"}, "speed"),
        ({"response_format": "mp3"}, "response_format"),
        ({"stream_format": "chunks"}, "stream_format"),
    ],
)
def test_speech_errors(backend: LiveServer, body: dict[str, Any], param: str) -> None:
    r = speech(backend, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


# --- A second openrealtime as the speech server ----------------------------------------


def test_remote_engines_use_the_backend(
    backend: LiveServer, whisper: WhisperTranscriber
) -> None:
    """RemoteTranscriber streams deltas; RemoteSynthesizer streams PCM."""
    pcm, rate = human_clip(CLIP)
    remote = RemoteTranscriber(f"{backend.http}/v1", api_key=KEY).for_model("whisper-1")
    deltas = list(remote.transcribe(pcm, rate, language="en", prompt=None))
    assert len(deltas) >= 5 and len(REFERENCE - set(words("".join(deltas)))) <= 2
    plain = RemoteTranscriber(f"{backend.http}/v1", api_key=KEY, stream=False)
    assert list(plain.transcribe(pcm, rate, language=None, prompt=None)) == [
        "".join(deltas).strip()
    ]
    from openrealtime.voice.asr import UnsupportedLanguage

    with pytest.raises(UnsupportedLanguage):
        list(remote.transcribe(pcm, rate, language="de", prompt=None))
    # logprobs=True asks the backend for them; streamed or not, they come
    # with the deltas, and are the backend's own.
    from openrealtime.voice.asr import TranscriptDelta, wants_logprobs

    assert wants_logprobs(remote)
    for engine in (remote, plain):
        got = list(
            engine.transcribe(pcm, rate, language="en", prompt=None, logprobs=True)
        )
        assert all(isinstance(d, TranscriptDelta) and d.logprobs for d in got)
        assert "".join(e.token for d in got for e in d.logprobs or ()).strip() == (
            "".join(deltas).strip()
        )
    streamed = list(
        remote.transcribe(pcm, rate, language="en", prompt=None, logprobs=True)
    )
    check_word_logprobs(
        [str(d) for d in streamed],
        [[msgspec.to_builtins(e) for e in d.logprobs or ()] for d in streamed],
    )
    synth = RemoteSynthesizer(f"{backend.http}/v1", api_key=KEY)
    chunks = list(synth.synthesize("Good morning.", voice="coral", speed=1.0))
    assert len(chunks) > 5 and all(len(c) == synth.chunk_bytes for c in chunks[:-1])
    from openrealtime.voice.tts import SynthesisError

    with pytest.raises(SynthesisError, match="HTTP 401"):
        list(RemoteSynthesizer(backend.http).synthesize("x", voice="alloy", speed=1.0))


async def test_realtime_over_a_remote_speech_server(frontend: LiveServer) -> None:
    """A spoken turn on the frontend: the backend transcribes (streamed
    deltas) and speaks the echoed reply."""
    pcm, rate = human_clip(CLIP)
    speech24 = audio.resample(pcm, rate, 24000)
    stream = audio.silence(300, 24000) + speech24 + audio.silence(1200, 24000)
    patch = {
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            }
        }
    }
    events = await converse(frontend, patch, stream)
    (completed,) = of(events, "conversation.item.input_audio_transcription.completed")
    deltas = of(events, "conversation.item.input_audio_transcription.delta")
    assert len(deltas) >= 5, deltas
    assert "".join(d["delta"] for d in deltas) == completed["transcript"]
    kinds = [e["type"] for e in events]
    assert kinds.index(
        "conversation.item.input_audio_transcription.delta"
    ) < kinds.index("conversation.item.input_audio_transcription.completed")
    assert len(REFERENCE - set(words(completed["transcript"]))) <= 2, completed
    spoken = b"".join(
        base64.b64decode(e["delta"]) for e in of(events, "response.output_audio.delta")
    )
    assert len(spoken) > 24000 and audio.rms(spoken) > 0.01


async def test_realtime_logprobs_through_a_remote_recognizer(
    frontend: LiveServer,
) -> None:
    """include: item.input_audio_transcription.logprobs on the frontend: the
    backend's Whisper word logprobs reach the delta and completed events."""
    pcm, rate = human_clip(CLIP)
    stream = audio.resample(pcm, rate, 24000) + audio.silence(1200, 24000)
    patch = {
        "include": ["item.input_audio_transcription.logprobs"],
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            }
        },
    }
    events = await converse(frontend, patch, stream)
    (completed,) = of(events, "conversation.item.input_audio_transcription.completed")
    deltas = of(events, "conversation.item.input_audio_transcription.delta")
    check_word_logprobs([d["delta"] for d in deltas], [d["logprobs"] for d in deltas])
    assert completed["logprobs"] == [d["logprobs"][0] for d in deltas]
    assert "".join(d["delta"] for d in deltas) == completed["transcript"]
    # Not asked for: none, as with a local engine.
    del patch["include"]
    events = await converse(frontend, patch, stream)
    assert all(
        "logprobs" not in e for e in events if "input_audio_transcription" in e["type"]
    )


@pytest.fixture(scope="module")
def whisper() -> Iterator[WhisperTranscriber]:
    yield WhisperTranscriber()


def test_wav_decoding_variants() -> None:
    """Uploads in stereo, 8-bit, 24-bit and float WAV decode to the same signal."""
    from openrealtime.server.audio_api import decode_audio_file

    tone = audio.tone(440, 200, 16000)
    import numpy as np

    x = np.frombuffer(tone, "<i2").astype(np.float64) / 32768

    def wav(frames: bytes, width: int, channels: int = 1, fmt: int = 1) -> bytes:
        if fmt == 1:
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                w.setnchannels(channels)
                w.setsampwidth(width)
                w.setframerate(16000)
                w.writeframes(frames)
            return buf.getvalue()
        import struct

        fmt_chunk = struct.pack(
            "<HHIIHH", 3, channels, 16000, 16000 * 4 * channels, 4 * channels, 32
        )
        return (
            b"RIFF"
            + struct.pack("<I", 36 + len(frames))
            + b"WAVE"
            + b"fmt "
            + struct.pack("<I", 16)
            + fmt_chunk
            + b"data"
            + struct.pack("<I", len(frames))
            + frames
        )

    stereo = np.repeat(np.frombuffer(tone, "<i2"), 2).astype("<i2").tobytes()
    u8 = (np.round(x * 127) + 128).astype(np.uint8).tobytes()
    i24 = b"".join(
        int(round(v * (1 << 23 - 1))).to_bytes(3, "little", signed=True) for v in x
    )
    f32 = x.astype("<f4").tobytes()
    for data in (
        wav(tone, 2),
        wav(stereo, 2, 2),
        wav(u8, 1),
        wav(i24, 3),
        wav(f32, 4, fmt=3),
    ):
        pcm, rate = decode_audio_file(data)
        y = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
        assert rate == 16000 and y.size == x.size
        assert float(np.max(np.abs(y - x))) < 0.02
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_audio_file(b"\x00" * 100)


def test_the_openai_sdk_uses_the_endpoints(backend: LiveServer) -> None:
    """The official SDK's audio calls work against openrealtime unchanged."""
    from openai import OpenAI

    with OpenAI(api_key=KEY, base_url=f"{backend.http}/v1") as client:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=("clip.wav", clip_wav(), "audio/wav")
        )
        assert len(REFERENCE - set(words(result.text))) <= 2, result
        events = list(
            client.audio.transcriptions.create(
                model="gpt-4o-transcribe",
                file=("clip.wav", clip_wav(), "audio/wav"),
                stream=True,
            )
        )
        assert events[-1].type == "transcript.text.done"
        assert events[-1].text == result.text
        assert "".join(e.delta for e in events[:-1]) == result.text  # type: ignore[union-attr]
        with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts",
            voice="marin",
            input="Hello there.",
            response_format="pcm",
        ) as response:
            pcm = response.read()
        assert len(pcm) > 12000 and audio.rms(pcm) > 0.01


def test_a_failing_speech_engine_is_a_500(tmp_path: object) -> None:
    """A synthesizer that fails at once answers 500 before any audio."""
    from pathlib import Path

    from openrealtime.voice.flite import FliteSynthesizer

    broken = Path(str(tmp_path)) / "flite"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    settings = Settings(synthesizer=FliteSynthesizer(str(broken)))
    with running_server(settings) as live:
        r = httpx.post(
            f"{live.http}/v1/audio/speech",
            json={"model": "tts-1", "input": "Hi.", "voice": "alloy"},
            timeout=30,
        )
        assert r.status_code == 500
        assert r.json()["error"]["message"] == "The speech engine failed."
        # No recognizer configured: a clear 400.
        r = httpx.post(
            f"{live.http}/v1/audio/transcriptions",
            files={"file": ("clip.wav", clip_wav(), "audio/wav")},
            data={"model": "whisper-1"},
            timeout=30,
        )
        assert r.status_code == 400
        assert "No transcription engine" in r.json()["error"]["message"]
