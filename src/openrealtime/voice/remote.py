"""Speech engines on another server: OpenAI-compatible audio endpoints.

``--transcription-url`` and ``--speech-url`` let a GPU box running any
OpenAI-compatible audio server (speaches, vLLM, another openrealtime, the
OpenAI API itself) do the heavy lifting, as ``--responder chat`` does for
the language model:

* :class:`RemoteTranscriber` posts each utterance as a WAV file to
  ``POST {url}/audio/transcriptions`` with ``stream=true``, and yields the
  ``transcript.text.delta`` events of the server-sent event stream as they
  come; a server that answers with plain JSON (``{"text": ...}``) works
  too, as one delta.
* :class:`RemoteSynthesizer` posts ``POST {url}/audio/speech`` with
  ``response_format: "pcm"`` (raw PCM16 24 kHz mono, the Realtime output
  rate) and yields the body in chunks as it streams.

Both are synchronous (httpx) and run on worker threads like the local
engines. The URL is a base (``http://gpu:8000/v1``) or the full endpoint.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from typing import Final

import httpx

from openrealtime import audio
from openrealtime.voice.asr import UnsupportedLanguage
from openrealtime.voice.tts import OUTPUT_RATE, SynthesisError


__all__ = [
    "RemoteError",
    "RemoteSynthesizer",
    "RemoteTranscriber",
    "endpoint",
    "wav_bytes",
]

_TIMEOUT: Final = httpx.Timeout(60.0, connect=5.0)


class RemoteError(RuntimeError):
    """The remote audio server failed or answered something unusable."""


def endpoint(url: str, path: str) -> str:
    """The full endpoint URL: ``url`` itself when it ends with ``path``, else
    ``url`` + ``/`` + ``path`` (``path`` such as ``audio/speech``)."""
    url = url.rstrip("/")
    return url if url.endswith("/" + path) else f"{url}/{path}"


def wav_bytes(pcm16: bytes, rate: int) -> bytes:
    """A mono PCM16 WAV file holding ``pcm16`` at ``rate``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return buf.getvalue()


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _error_message(response: httpx.Response) -> str:
    try:
        body = json.loads(response.read())
        message = str(body["error"]["message"])
    except Exception:
        message = response.text[:200] if response.is_stream_consumed else ""
    return f"HTTP {response.status_code} from {response.url}: {message}".rstrip(": ")


class RemoteTranscriber:
    """Input transcription by an OpenAI-compatible ``/audio/transcriptions``.

    Args:
        url: Base URL (``http://host:8000/v1``) or the full endpoint.
        model: The ``model`` field sent; None sends the session's model name
            (see :meth:`for_model`), or ``whisper-1`` when there is none.
        api_key: Bearer key of the remote server, if it needs one.
        stream: Ask for a server-sent event stream of deltas.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        stream: bool = True,
        _session_model: str | None = None,
    ) -> None:
        self.url = endpoint(url, "audio/transcriptions")
        self.model = model
        self.api_key = api_key
        self.stream = stream
        self._session_model = _session_model

    @property
    def name(self) -> str:
        """What this engine is, for logs."""
        return f"remote ({self.url})"

    def for_model(self, model: str | None) -> RemoteTranscriber:
        """This engine, sending the session's ``transcription.model`` unless
        a model was configured."""
        return RemoteTranscriber(
            self.url,
            model=self.model,
            api_key=self.api_key,
            stream=self.stream,
            _session_model=model,
        )

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        """Post the utterance; yield the remote server's deltas.

        Raises:
            UnsupportedLanguage: The remote server refused the language.
            RemoteError: While iterating, if the server fails.
        """
        return self._deltas(pcm16, rate, language, prompt)

    def _deltas(
        self, pcm16: bytes, rate: int, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        data: dict[str, str] = {
            "model": self.model or self._session_model or "whisper-1",
            "response_format": "json",
        }
        if self.stream:
            data["stream"] = "true"
        if language:
            data["language"] = language
        if prompt:
            data["prompt"] = prompt
        files = {"file": ("audio.wav", wav_bytes(pcm16, rate), "audio/wav")}
        # One client per request: nothing stays open between utterances
        # (the cost is one TCP connect, small next to a decode).
        try:
            with (
                httpx.Client(timeout=_TIMEOUT) as client,
                client.stream(
                    "POST",
                    self.url,
                    data=data,
                    files=files,
                    headers=_headers(self.api_key),
                ) as response,
            ):
                if response.status_code != 200:
                    response.read()
                    message = _error_message(response)
                    if "language" in message.lower() and language:
                        raise UnsupportedLanguage(language, ())
                    raise RemoteError(message)
                ctype = response.headers.get("content-type", "")
                if ctype.startswith("text/event-stream"):
                    yield from _sse_deltas(response.iter_lines())
                    return
                body = response.read()
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if ctype.startswith("application/json"):
            text = str(json.loads(body).get("text", ""))
        else:
            text = body.decode("utf-8", "replace")
        if text.strip():
            yield text.strip()


def _sse_deltas(lines: Iterator[str]) -> Iterator[str]:
    """The text deltas of a transcription event stream.

    ``transcript.text.delta`` events carry the pieces; when a server sends
    only ``transcript.text.done``, its text is the one delta.
    """
    seen = False
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        event = json.loads(payload)
        kind = event.get("type")
        if kind == "transcript.text.delta":
            delta = str(event.get("delta", ""))
            if delta:
                seen = True
                yield delta
        elif kind == "transcript.text.done" and not seen:
            text = str(event.get("text", ""))
            if text:
                yield text
        elif kind == "error" or "error" in event:
            raise RemoteError(f"remote transcription failed: {payload[:200]}")


class RemoteSynthesizer:
    """Speech by an OpenAI-compatible ``/audio/speech``, streamed.

    Args:
        url: Base URL (``http://host:8000/v1``) or the full endpoint.
        model: The ``model`` field sent (``gpt-4o-mini-tts``, ``tts-1``,
            ``kokoro``, ... as the remote server names them).
        api_key: Bearer key of the remote server, if it needs one.
        chunk_ms: Length of each yielded chunk (the last may be shorter).
    """

    rate: int = OUTPUT_RATE

    def __init__(
        self,
        url: str,
        *,
        model: str = "gpt-4o-mini-tts",
        api_key: str | None = None,
        chunk_ms: int = 40,
    ) -> None:
        self.url = endpoint(url, "audio/speech")
        self.model = model
        self.api_key = api_key
        self.chunk_bytes = audio.bytes_for_ms(chunk_ms, "audio/pcm")

    @property
    def name(self) -> str:
        """What this engine is, for logs."""
        return f"remote ({self.url})"

    def synthesize(self, text: str, *, voice: str, speed: float) -> Iterator[bytes]:
        """Yield PCM16 24 kHz mono chunks as the remote server streams them.

        Raises:
            SynthesisError: While iterating, if the server fails.
        """
        return self._run(text, voice, speed)

    def _run(self, text: str, voice: str, speed: float) -> Iterator[bytes]:
        if not text.strip():
            return
        body = {
            "model": self.model,
            "input": text,
            "voice": voice,
            "speed": speed,
            "response_format": "pcm",
        }
        pending = bytearray()
        try:
            with (
                httpx.Client(timeout=_TIMEOUT) as client,
                client.stream(
                    "POST", self.url, json=body, headers=_headers(self.api_key)
                ) as response,
            ):
                if response.status_code != 200:
                    response.read()
                    raise SynthesisError(_error_message(response))
                for data in response.iter_bytes():
                    pending += data
                    n = len(pending) - len(pending) % self.chunk_bytes
                    for start in range(0, n, self.chunk_bytes):
                        yield bytes(pending[start : start + self.chunk_bytes])
                    del pending[:n]
        except httpx.HTTPError as exc:
            raise SynthesisError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if len(pending) % 2:
            del pending[-1]
        if pending:
            yield bytes(pending)
