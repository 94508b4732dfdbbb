"""Speech engines on another server: OpenAI-compatible audio endpoints.

``--transcription-url`` and ``--speech-url`` let a GPU box running any
OpenAI-compatible audio server (speaches, vLLM, another openrealtime, the
OpenAI API itself) do the heavy lifting, as ``--responder chat`` does for
the language model:

* :class:`RemoteTranscriber` posts each utterance as a WAV file to
  ``POST {url}/audio/transcriptions`` with ``stream=true``, and yields the
  ``transcript.text.delta`` events of the server-sent event stream as they
  come; a server that answers with plain JSON (``{"text": ...}``) works
  too, as one delta. When the session's ``include`` asks for
  ``item.input_audio_transcription.logprobs``, it sends ``include[]=logprobs``
  as the OpenAI SDK does, and the ``logprobs`` of each delta (or of the
  JSON answer) come with the deltas it yields
  (:class:`~openrealtime.voice.asr.TranscriptDelta`).
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
from typing import Any, Final

import httpx

from openrealtime import audio
from openrealtime.models import LogProb
from openrealtime.voice.asr import TranscriptDelta, UnsupportedLanguage
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

    #: ``transcribe`` takes ``logprobs=True`` and asks the server for them
    #: (:func:`~openrealtime.voice.asr.wants_logprobs`).
    gives_logprobs: bool = True

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
        self,
        pcm16: bytes,
        rate: int,
        *,
        language: str | None,
        prompt: str | None,
        logprobs: bool = False,
    ) -> Iterator[str]:
        """Post the utterance; yield the remote server's deltas.

        Args:
            logprobs: Ask for log probabilities (``include[]=logprobs``); the
                deltas are :class:`~openrealtime.voice.asr.TranscriptDelta`
                carrying the server's, or None where it sent none. A server
                that refuses ``include`` (400 naming it) is asked again
                without it.

        Raises:
            UnsupportedLanguage: The remote server refused the language.
            RemoteError: While iterating, if the server fails.
        """
        return self._deltas(pcm16, rate, language, prompt, logprobs)

    def _deltas(
        self,
        pcm16: bytes,
        rate: int,
        language: str | None,
        prompt: str | None,
        logprobs: bool,
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
        if logprobs:
            # openai-python sends a list field as "include[]" (brackets).
            data["include[]"] = "logprobs"
        try:
            yield from self._post(data, wav_bytes(pcm16, rate), language, logprobs)
        except _IncludeRefused:
            # A server (or model) without logprobs: the transcript anyway.
            del data["include[]"]
            yield from self._post(data, wav_bytes(pcm16, rate), language, False)

    def _post(
        self,
        data: dict[str, str],
        wav: bytes,
        language: str | None,
        logprobs: bool,
    ) -> Iterator[str]:
        files = {"file": ("audio.wav", wav, "audio/wav")}
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
                    if logprobs and response.status_code == 400:
                        lowered = message.lower()
                        if "logprobs" in lowered or "include" in lowered:
                            raise _IncludeRefused(message)
                    if "language" in message.lower() and language:
                        raise UnsupportedLanguage(language, ())
                    raise RemoteError(message)
                ctype = response.headers.get("content-type", "")
                if ctype.startswith("text/event-stream"):
                    yield from _sse_deltas(response.iter_lines(), logprobs)
                    return
                body = response.read()
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        found: list[LogProb] | None = None
        if ctype.startswith("application/json"):
            try:
                answer = json.loads(body)
            except ValueError:
                raise RemoteError(
                    f"{self.url} answered invalid JSON: {body[:200]!r}"
                ) from None
            if not isinstance(answer, dict):
                raise RemoteError(f"{self.url} answered {body[:200]!r}")
            text = str(answer.get("text", ""))
            found = _logprobs(answer.get("logprobs")) if logprobs else None
        else:
            text = body.decode("utf-8", "replace")
        if text.strip():
            yield _piece(text.strip(), logprobs, found)


class _IncludeRefused(Exception):
    """The server answered 400 to ``include[]=logprobs``."""


def _piece(text: str, logprobs: bool, found: list[LogProb] | None) -> str:
    """``text`` as a delta: with its log probabilities when they were asked for."""
    return TranscriptDelta(text, logprobs=found) if logprobs else text


def _logprobs(value: Any) -> list[LogProb] | None:
    """The ``logprobs`` of an answer or event (``[{token, logprob, bytes}]``);
    None when absent or not a list. Entries missing a field are skipped, and
    missing ``bytes`` are the token's UTF-8."""
    if not isinstance(value, list):
        return None
    found: list[LogProb] = []
    for entry in value:
        if not isinstance(entry, dict):
            continue
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or isinstance(logprob, bool):
            continue
        if not isinstance(logprob, int | float):
            continue
        raw = entry.get("bytes")
        if isinstance(raw, list) and all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw
        ):
            data = list(raw)
        else:
            data = list(token.encode())
        found.append(LogProb(token=token, logprob=float(logprob), bytes=data))
    return found


def _sse_deltas(lines: Iterator[str], logprobs: bool = False) -> Iterator[str]:
    """The text deltas of a transcription event stream.

    ``transcript.text.delta`` events carry the pieces (and, when asked for,
    their ``logprobs``); when a server sends only ``transcript.text.done``,
    its text is the one delta.
    """
    seen = False
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            raise RemoteError(
                f"remote transcription sent invalid JSON: {payload[:200]}"
            ) from None
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "transcript.text.delta":
            delta = str(event.get("delta", ""))
            if delta:
                seen = True
                yield _piece(delta, logprobs, _logprobs(event.get("logprobs")))
        elif kind == "transcript.text.done" and not seen:
            text = str(event.get("text", ""))
            if text:
                yield _piece(text, logprobs, _logprobs(event.get("logprobs")))
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
