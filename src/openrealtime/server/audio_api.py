"""OpenAI-compatible audio endpoints served from openrealtime's own engines.

* ``POST /v1/audio/transcriptions``: multipart ``file`` (WAV; other
  containers when PyAV is installed, as the ``whisper`` extra does),
  ``model``, ``language``, ``prompt``, ``response_format`` (``json`` or
  ``text``), ``stream`` and ``include[]`` (``logprobs``, with
  ``response_format=json``: the engine's log probabilities, Whisper's per
  word, on the answer, each delta and the done event; ``null`` from an engine
  without them). With ``stream=true`` the answer is a server-sent event
  stream of ``transcript.text.delta`` events and one
  ``transcript.text.done``, as the hosted ``gpt-4o-transcribe`` models send.
* ``POST /v1/audio/speech``: JSON ``model``, ``input``, ``voice``,
  ``speed``, ``response_format`` (``pcm``: raw PCM16 24 kHz mono, or
  ``wav``) and ``stream_format`` (``audio`` or ``sse``). The audio streams as
  it is synthesized.

So one openrealtime can be another's speech server (``--transcription-url``
and ``--speech-url``), and any OpenAI SDK can use its engines. The same API
keys as the Realtime endpoint are required when auth is on. The engines run
on worker threads; a client that goes away cancels the work.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import struct
import wave
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from openrealtime.exceptions import InvalidRequestError
from openrealtime.server.handshake import bad_api_key, find_api_key, key_accepted
from openrealtime.server.rest import RestResult, rest_error
from openrealtime.server.settings import Settings
from openrealtime.voice.asr import UnsupportedLanguage, run_transcriber
from openrealtime.voice.transcribe import iterate_in_thread
from openrealtime.voice.tts import OUTPUT_RATE


__all__ = ["AudioApi", "decode_audio_file"]

logger = logging.getLogger("openrealtime.server")

_MAX_UPLOAD: Final = 25 * 1024 * 1024  # the hosted limit
_MAX_INPUT: Final = 4096  # characters of speech input, as hosted
_SPEECH_FORMATS: Final = ("pcm", "wav")
_TEXT_FORMATS: Final = ("json", "text")
_NO_KEY: Final = (
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def _invalid(message: str, param: str | None, code: str | None = None) -> Response:
    return _response(rest_error(InvalidRequestError(code, message, param)))


def _response(result: RestResult) -> Response:
    return Response(result.body, result.status, media_type=result.content_type)


def decode_audio_file(data: bytes) -> tuple[bytes, int]:
    """Decode an uploaded audio file to mono PCM16 and its rate.

    WAV (PCM 8/16/24/32-bit integer or 32-bit float, any channels) is read
    directly; other formats (mp3, ogg, flac, webm, m4a ...) need PyAV.

    Raises:
        ValueError: The file cannot be decoded; the message says why.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _decode_wav(data)
    try:
        import av  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ValueError(
            "Only WAV audio can be decoded here (install PyAV for other formats)."
        ) from None
    try:
        pieces: list[bytes] = []
        opened: Any = av.open(io.BytesIO(data))
        with opened as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    pieces.append(bytes(out.to_ndarray().astype("<i2").tobytes()))
            for out in resampler.resample(None):
                pieces.append(bytes(out.to_ndarray().astype("<i2").tobytes()))
    except Exception as exc:
        raise ValueError(f"The audio file could not be decoded: {exc}") from None
    return b"".join(pieces), 16000


def _decode_wav(data: bytes) -> tuple[bytes, int]:
    # The wave module reads integer PCM only; format 3 (float) is read by hand.
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
        kind = "int"
    except (wave.Error, EOFError) as exc:
        parsed = _float_wav(data)
        if parsed is None:
            raise ValueError(f"The WAV file could not be read: {exc}") from None
        channels, width, rate, frames = parsed
        kind = "float"
    if kind == "float":
        x = np.frombuffer(frames[: len(frames) // 4 * 4], "<f4").astype(np.float64)
    elif width == 1:
        x = (np.frombuffer(frames, np.uint8).astype(np.float64) - 128) / 128
    elif width == 2:
        x = np.frombuffer(frames, "<i2").astype(np.float64) / 32768
    elif width == 3:
        b = np.frombuffer(frames, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / (1 << 23)
    elif width == 4:
        x = np.frombuffer(frames, "<i4").astype(np.float64) / (1 << 31)
    else:
        raise ValueError(f"Unsupported WAV sample width: {width} bytes.")
    if channels > 1:
        x = x[: x.size // channels * channels].reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2").tobytes()
    return pcm, rate


def _float_wav(data: bytes) -> tuple[int, int, int, bytes] | None:
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        ident, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if ident == b"fmt " and len(body) >= 16:
            fmt = struct.unpack_from("<HHIIHH", body)
        elif ident == b"data" and fmt is not None:
            tag, channels, rate, _, _, bits = fmt
            if tag in (3, 0xFFFE) and bits == 32:
                return channels, 4, rate, body
            return None
        pos += 8 + size + (size & 1)
    return None


def _wav_header(rate: int) -> bytes:
    # Sizes unknown while streaming: the maximum, as streaming servers write.
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


class AudioApi:
    """The two audio endpoints over a server's transcriber and synthesizer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def routes(self) -> list[BaseRoute]:
        """The routes, under ``/v1/audio`` and ``/audio``."""
        routes: list[BaseRoute] = []
        for prefix in ("/v1/audio", "/audio"):
            routes.append(
                Route(f"{prefix}/transcriptions", self.transcriptions, methods=["POST"])
            )
            routes.append(Route(f"{prefix}/speech", self.speech, methods=["POST"]))
        return routes

    def _refuse(self, request: Request) -> Response | None:
        if not self.settings.api_keys:
            return None
        key = find_api_key(request.headers)
        if key is None:
            return _response(rest_error(InvalidRequestError(None, _NO_KEY, None), 401))
        if not key_accepted(key, self.settings):
            return _response(rest_error(bad_api_key(key), 401))
        return None

    # --- Transcriptions --------------------------------------------------------------

    async def transcriptions(self, request: Request) -> Response:
        """``POST /v1/audio/transcriptions``."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            form = await request.form(max_files=1, max_fields=32)
        except Exception:
            return _invalid(
                "Expected a multipart/form-data body with a 'file'.", "file"
            )
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return _invalid(
                    "you must provide a 'file' (the audio to transcribe)", "file"
                )
            data = await upload.read(_MAX_UPLOAD + 1)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            # openai-python sends lists as "include[]"; curl users "include".
            include = [
                v
                for key in ("include[]", "include")
                for v in form.getlist(key)
                if isinstance(v, str)
            ]
        finally:
            await form.close()
        if len(data) > _MAX_UPLOAD:
            return _invalid("The audio file is larger than 25 MB.", "file")
        model = fields.get("model", "").strip()
        if not model:
            return _invalid("you must provide a model parameter", "model")
        response_format = fields.get("response_format", "json")
        if response_format not in _TEXT_FORMATS:
            return _invalid(
                f"response_format {response_format!r} is not supported here; "
                f"use one of: {', '.join(_TEXT_FORMATS)}",
                "response_format",
                "unsupported_value",
            )
        for value in include:
            if value != "logprobs":
                return _invalid(
                    f"Invalid value for 'include': {value!r}. Supported: 'logprobs'.",
                    "include",
                    "invalid_value",
                )
        logprobs = "logprobs" in include
        if logprobs and response_format != "json":
            return _invalid(
                "logprobs are only available with response_format 'json'.",
                "include",
                "unsupported_value",
            )
        stream = fields.get("stream", "false").strip().lower() in ("true", "1")
        transcriber = self.settings.transcriber
        if transcriber is None:
            return _invalid(
                "No transcription engine is configured on this server.", "model"
            )
        try:
            # Up to 25 MB of mp3 takes a while: not on the event loop.
            pcm, rate = await asyncio.to_thread(decode_audio_file, data)
        except ValueError as exc:
            return _invalid(str(exc), "file", "invalid_value")
        language = fields.get("language") or None
        prompt = fields.get("prompt") or None
        seconds = round(len(pcm) / 2 / rate, 3) if rate else 0.0

        def make() -> Iterator[str]:
            select = getattr(transcriber, "for_model", None)
            engine = transcriber if select is None else select(model)
            return run_transcriber(
                engine, pcm, rate, language=language, prompt=prompt, logprobs=logprobs
            )

        stream_ = iterate_in_thread(make)
        # The first step starts the engine: a language it refuses is a 400.
        try:
            first = await anext(stream_, None)
        except UnsupportedLanguage as exc:
            await stream_.aclose()
            return _invalid(str(exc), "language", "unsupported_language")
        except Exception:
            await stream_.aclose()
            logger.exception("transcription failed")
            return _response(
                rest_error(
                    InvalidRequestError(
                        "server_error", "The transcription engine failed.", None
                    ),
                    500,
                )
            )
        usage = {"type": "duration", "seconds": seconds}
        if stream:
            return StreamingResponse(
                self._sse_transcript(first, stream_, usage, logprobs),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        deltas = [] if first is None else [first]
        async with contextlib.aclosing(stream_):
            async for delta in stream_:
                deltas.append(delta)
        text = "".join(deltas)
        if response_format == "text":
            return Response(text, media_type="text/plain; charset=utf-8")
        answer: dict[str, Any] = {"text": text}
        if logprobs:
            answer["logprobs"] = _all_logprobs(deltas)
        answer["usage"] = usage
        return Response(json.dumps(answer), media_type="application/json")

    async def _sse_transcript(
        self,
        first: str | None,
        rest: AsyncIterator[str],
        usage: dict[str, Any],
        logprobs: bool = False,
    ) -> AsyncIterator[bytes]:
        deltas: list[str] = []

        def delta_event(delta: str) -> bytes:
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": delta}
            if logprobs:
                event["logprobs"] = _all_logprobs([delta])
            return _sse(event)

        async with contextlib.aclosing(rest):  # type: ignore[type-var]
            if first is not None:
                deltas.append(first)
                yield delta_event(first)
                try:
                    async for delta in rest:
                        deltas.append(delta)
                        yield delta_event(delta)
                except Exception:
                    logger.exception("transcription failed while streaming")
                    yield _sse(
                        {
                            "type": "error",
                            "error": {
                                "type": "server_error",
                                "message": "The transcription engine failed.",
                            },
                        }
                    )
                    return
        done: dict[str, Any] = {"type": "transcript.text.done", "text": "".join(deltas)}
        if logprobs:
            done["logprobs"] = _all_logprobs(deltas)
        done["usage"] = usage
        yield _sse(done)

    # --- Speech ----------------------------------------------------------------------

    async def speech(self, request: Request) -> Response:
        """``POST /v1/audio/speech``."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _invalid("We could not parse the JSON body of your request.", None)
        if not isinstance(body, dict):
            return _invalid("The request body must be a JSON object.", None)
        checked = _speech_request(body)
        if isinstance(checked, Response):
            return checked
        text, voice, speed, response_format, stream_format = checked
        synthesizer = self.settings.synthesizer
        if synthesizer is None:
            return _invalid("No speech engine is configured on this server.", "model")

        def make() -> Iterator[bytes]:
            return iter(synthesizer.synthesize(text, voice=voice, speed=speed))

        chunks = iterate_in_thread(make)
        # The first chunk before the status: an engine that fails at once
        # (a crashed binary, a remote server down) is a 500, not empty audio.
        try:
            first = await anext(chunks, b"")
        except Exception:
            await chunks.aclose()
            logger.exception("speech synthesis failed")
            return _response(
                rest_error(
                    InvalidRequestError(
                        "server_error", "The speech engine failed.", None
                    ),
                    500,
                )
            )
        if stream_format == "sse":
            return StreamingResponse(
                self._sse_speech(first, chunks), media_type="text/event-stream"
            )
        media = "audio/pcm" if response_format == "pcm" else "audio/wav"
        return StreamingResponse(
            self._audio(first, chunks, response_format == "wav"), media_type=media
        )

    async def _audio(
        self, first: bytes, chunks: AsyncIterator[bytes], wav: bool
    ) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            if wav:
                yield _wav_header(OUTPUT_RATE)
            if first:
                yield first
            try:
                async for chunk in chunks:
                    yield chunk
            except Exception:
                # Headers are gone: the stream just ends early; the log says why.
                logger.exception("speech synthesis failed while streaming")

    async def _sse_speech(
        self, first: bytes, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        samples = 0

        def delta(chunk: bytes) -> bytes:
            return _sse(
                {
                    "type": "speech.audio.delta",
                    "audio": base64.b64encode(chunk).decode(),
                }
            )

        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            if first:
                samples += len(first) // 2
                yield delta(first)
            try:
                async for chunk in chunks:
                    samples += len(chunk) // 2
                    yield delta(chunk)
            except Exception:
                logger.exception("speech synthesis failed while streaming")
                return
        seconds = round(samples / OUTPUT_RATE, 3)
        yield _sse(
            {
                "type": "speech.audio.done",
                "usage": {"type": "duration", "seconds": seconds},
            }
        )


def _all_logprobs(deltas: list[str]) -> list[dict[str, Any]] | None:
    """The log probabilities the deltas carry, in order, as JSON; None when
    the engine gave none (PocketSphinx, a remote server without them)."""
    found: list[dict[str, Any]] = []
    given = False
    for delta in deltas:
        entries = getattr(delta, "logprobs", None)
        if entries is None:
            continue
        given = True
        found.extend(
            {"token": e.token, "logprob": e.logprob, "bytes": list(e.bytes)}
            for e in entries
        )
    return found if given else None


def _speech_request(
    body: dict[str, Any],
) -> tuple[str, str, float, str, str] | Response:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _invalid("you must provide a model parameter", "model")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        return _invalid("'input' must be a non-empty string.", "input")
    if len(text) > _MAX_INPUT:
        return _invalid(
            f"'input' is longer than {_MAX_INPUT} characters.",
            "input",
            "string_above_max_length",
        )
    voice = body.get("voice")
    if isinstance(voice, dict):  # {"id": "voice_..."}: custom voices
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        return _invalid("you must provide a voice parameter", "voice")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        return _invalid("'speed' must be a number.", "speed")
    if not 0.25 <= float(speed) <= 4.0:
        return _invalid(
            f"Invalid 'speed': {speed}. Expected a value between 0.25 and 4.",
            "speed",
            "decimal_out_of_range",
        )
    response_format = body.get("response_format", "wav")
    if response_format not in _SPEECH_FORMATS:
        return _invalid(
            f"response_format {response_format!r} is not supported here; "
            f"use one of: {', '.join(_SPEECH_FORMATS)}",
            "response_format",
            "unsupported_value",
        )
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        return _invalid(
            f"Invalid 'stream_format': {stream_format!r}. Expected 'audio' or 'sse'.",
            "stream_format",
            "invalid_value",
        )
    return text, voice, float(speed), response_format, stream_format
