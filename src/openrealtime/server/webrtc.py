"""WebRTC: ``POST /v1/realtime/calls``, the call's media and its data channel.

Theory of operation
-------------------
A browser (or any WebRTC peer) posts an SDP offer; the server answers with
its SDP and a ``Location: /v1/realtime/calls/{call_id}``. The call is one
session, driven by the same :class:`~openrealtime.server.connection.Connection`
and sans-I/O engine as a WebSocket; only the transport differs:

* the ``oai-events`` data channel carries the client's JSON events in and the
  engine's events out, exactly as WebSocket text frames;
* the microphone track feeds the input audio buffer: each 20 ms Opus frame
  (48 kHz, decoded by aiortc on its decoder thread) is resampled to 24 kHz
  PCM16 (:class:`openrealtime.audio.Resampler`) and given to the engine as an
  ``input_audio_buffer.append`` (:meth:`Connection.receive_event`), so server
  VAD, commits and transcription are the engine's own rules (silence before
  speech older than 30 s is dropped from the buffer, quietly: a microphone
  never stops);
* ``response.output_audio.delta`` events do not go on the data channel: their
  audio is resampled to 48 kHz and queued for the outgoing track, which plays
  it at real time (aiortc encodes Opus in its executor threads);
* the WebRTC-only events are the transport's: ``output_audio_buffer.started``
  when a response's audio begins to play, ``.stopped`` when it has all played
  after ``response.done``, ``.cleared`` when the client sends
  ``output_audio_buffer.clear`` or the user barges in (``speech_started``
  while audio plays, unless ``interrupt_response`` is false). Then the unplayed
  audio is dropped and the item is truncated to what was heard, through the
  engine's ``conversation.item.truncate``.

Sideband: a WebSocket to ``/v1/realtime?call_id=...`` (API key) joins the
call: :class:`SidebandConnection` forwards its client events to the call's
connection and receives every event the call sends (not the audio).

aiortc is an optional extra (``pip install 'openrealtime[webrtc]'``): this
module imports without it, :func:`missing` says why calls are refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import fractions
import importlib.util
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openrealtime import audio
from openrealtime.codec import Decoder, encode
from openrealtime.config import SessionKind, apply_update, default_config
from openrealtime.exceptions import InvalidRequestError, ProtocolError
from openrealtime.ids import RandomIds
from openrealtime.models.client_events import (
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    OutputAudioBufferClearEvent,
    ResponseCancelEvent,
)
from openrealtime.models.server_events import (
    OutputAudioBufferClearedEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
    ResponseOutputAudioDeltaEvent,
)
from openrealtime.models.session import (
    AudioFormat,
    RealtimeSessionConfig,
    RealtimeSessionUpdate,
    SessionConfig,
)
from openrealtime.server.connection import Connection
from openrealtime.server.handshake import (
    Accepted,
    bad_api_key,
    close_reason,
    error_frame,
    find_api_key,
    invalid_model,
    key_accepted,
)
from openrealtime.server.metrics import server_event_type
from openrealtime.server.rest import (
    _BAD_JSON,
    _NO_KEY,
    DEFAULT_MODEL,
    RestResult,
    decode_request,
    rest_error,
    session_of,
)
from openrealtime.server.secrets import SecretStoreUnavailable
from openrealtime.session import Close


if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection
    from aiortc.mediastreams import MediaStreamTrack

    from openrealtime.server.app import RealtimeServer
    from openrealtime.server.call_router import CallRouter


__all__ = [
    "Call",
    "CallRequest",
    "Calls",
    "SidebandConnection",
    "call_not_found",
    "ice_host_addresses",
    "missing",
    "parse_call_request",
    "refused_sideband",
    "webrtc_routes",
]

logger = logging.getLogger("openrealtime.server.webrtc")

#: Why WebRTC is off when aiortc is not installed.
MISSING = (
    "WebRTC is not available on this server: it needs aiortc. Install it with "
    "pip install 'openrealtime[webrtc]' and restart the server."
)
#: The data channel that carries the events, as the hosted API names it.
EVENTS_CHANNEL = "oai-events"
#: The wire rate of Opus, and the engine's rate.
WIRE_RATE = 48000
ENGINE_RATE = 24000
#: One 20 ms frame at the wire rate, in samples and in PCM16 bytes.
FRAME_SAMPLES = WIRE_RATE // 50
FRAME_BYTES = FRAME_SAMPLES * 2
#: Seconds a call may take to connect (ICE and DTLS) before it is ended.
CONNECT_TIMEOUT = 30.0
#: Reply audio queued for the track above which responders wait, and below
#: which they go on (5 s and 2 s at 48 kHz PCM16).
PAUSE_BYTES = 5 * WIRE_RATE * 2
RESUME_BYTES = 2 * WIRE_RATE * 2
#: Seconds without microphone audio (once it flowed) that end a call.
MEDIA_TIMEOUT = 10.0
#: Frames kept for a data channel that is not open yet.
MAX_PENDING = 4096


def missing() -> str | None:
    """Why calls cannot be served here (aiortc is missing), or ``None``."""
    if importlib.util.find_spec("aiortc") is None:  # pragma: no cover
        return MISSING
    return None


def _unavailable() -> InvalidRequestError:
    return InvalidRequestError("webrtc_unavailable", MISSING, None)


def _bad_offer(detail: str) -> InvalidRequestError:
    return InvalidRequestError("invalid_offer", f"Invalid SDP offer: {detail}", "sdp")


def call_not_found(call_id: str) -> InvalidRequestError:
    """The error for a ``call_id`` that names no call in progress."""
    return InvalidRequestError(
        "call_not_found", f"Call '{call_id}' not found.", "call_id"
    )


def refused_sideband(call_id: str) -> tuple[int, str, bytes]:
    """Close code, reason and ``error`` frame for ``?call_id=`` of no call."""
    error = call_not_found(call_id)
    return 4000, close_reason(error), error_frame(error, RandomIds(), time.time())


_delta_decoder = msgspec.json.Decoder(ResponseOutputAudioDeltaEvent)
_clear_decoder: Decoder[OutputAudioBufferClearEvent] = Decoder(
    OutputAudioBufferClearEvent
)
_CLEAR_TYPE = "output_audio_buffer.clear"


@dataclass
class CallRequest:
    """A checked ``POST /v1/realtime/calls``: the offer and its session."""

    sdp: str
    kind: SessionKind
    model: str
    initial: SessionConfig | None


def _format_type(fmt: AudioFormat) -> Any:
    return fmt.__struct_config__.tag


async def parse_call_request(
    body: bytes,
    headers: Mapping[str, str],
    form: Callable[[], Awaitable[Mapping[str, Any]]],
    server: RealtimeServer,
    query_model: str | None = None,
) -> CallRequest | RestResult:
    """Check auth and the body of ``POST /v1/realtime/calls``.

    Args:
        body: the raw body (the SDP offer for ``application/sdp``).
        headers: request headers, by lower-case name.
        form: reads a ``multipart/form-data`` body (``sdp``, ``session``).
        server: the server (settings and key store).
        query_model: ``?model=`` of the request, if any.
    """
    settings = server.settings
    key = find_api_key(headers)
    initial: SessionConfig | None = None
    if key is not None and key.startswith("ek_"):
        try:
            record = await server.secrets.get(key)
        except SecretStoreUnavailable:
            return rest_error(
                InvalidRequestError(None, "The ephemeral key store is unavailable."),
                503,
            )
        if record is None:
            return rest_error(bad_api_key(key), 401)
        initial = record.session
    elif settings.api_keys:
        if key is None:
            return rest_error(InvalidRequestError(None, _NO_KEY, None), 401)
        if not key_accepted(key, settings):
            return rest_error(bad_api_key(key), 401)
    if missing() is not None:
        return rest_error(_unavailable(), 501)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    session_json: bytes | None = None
    if content_type == "multipart/form-data":
        try:
            fields = await form()
        except Exception:
            return rest_error(InvalidRequestError(None, _BAD_JSON, None))
        sdp_field = fields.get("sdp")
        if sdp_field is None:
            return rest_error(
                InvalidRequestError(
                    "missing_required_parameter",
                    "Missing required parameter: 'sdp'.",
                    "sdp",
                )
            )
        sdp = sdp_field if isinstance(sdp_field, str) else ""
        raw_session = fields.get("session")
        if isinstance(raw_session, str) and raw_session.strip():
            session_json = raw_session.encode()
    else:
        sdp = body.decode("utf-8", "replace")
    if "v=0" not in sdp:
        return rest_error(_bad_offer("the body is not an SDP offer."))
    if "m=audio" not in sdp:
        return rest_error(_bad_offer("the offer has no audio m-line."))
    kind: SessionKind = "realtime"
    model = DEFAULT_MODEL
    if query_model and initial is None:
        # POST /v1/realtime/calls?model=...: the model of a call opened with
        # an API key (a session in the body may still name another).
        if not settings.model_allowed(query_model):
            return rest_error(invalid_model(query_model))
        model = query_model
    if initial is not None:
        kind = (
            "realtime"
            if isinstance(initial, RealtimeSessionConfig)
            else ("transcription")
        )
        model = initial.model if isinstance(initial, RealtimeSessionConfig) else ""
    if session_json is not None:
        request = decode_request(b'{"session":' + session_json + b"}")
        if isinstance(request, RestResult):
            return request
        update = session_of(request)
        now = time.time()
        try:
            if initial is None:
                kind = (
                    "realtime"
                    if isinstance(update, RealtimeSessionUpdate)
                    else "transcription"
                )
                asked, model = model, ""
                if isinstance(update, RealtimeSessionUpdate):
                    model = update.model if isinstance(update.model, str) else asked
                    if not settings.model_allowed(model):
                        return rest_error(invalid_model(model, "session.model"))
                initial = default_config(
                    kind,
                    id="sess_call",
                    model=model,
                    created_at=int(now),
                    defaults=settings.defaults,
                )
            # The same merge as client_secrets and session.update.
            initial = apply_update(initial, update, defaults=settings.defaults)
        except ProtocolError as exc:
            exc.event_id = None
            return rest_error(exc)
    return CallRequest(sdp=sdp, kind=kind, model=model, initial=initial)


# --- Playback: the outgoing track's queue -------------------------------------------


@dataclass
class _Segment:
    response_id: str
    item_id: str
    content_index: int
    pcm: bytearray


@dataclass
class _Heard:
    """How much of an item's audio was queued and played, in ms."""

    response_id: str
    content_index: int
    queued_ms: float = 0.0
    played_bytes: int = 0


@dataclass
class Playback:
    """Reply audio waiting for the outgoing track, at 48 kHz PCM16 mono."""

    segments: deque[_Segment] = field(default_factory=deque)
    heard: dict[str, _Heard] = field(default_factory=dict)
    #: Responses whose audio began to play (``started`` sent).
    started: set[str] = field(default_factory=set)
    #: Responses the engine finished (``response.done`` seen).
    done: set[str] = field(default_factory=set)
    #: The response whose audio plays (or last played).
    current: str | None = None
    #: Responses whose audio was cleared: their late audio is dropped.
    cleared: set[str] = field(default_factory=set)
    #: Bytes waiting in ``segments``.
    queued_bytes: int = 0

    def queued(self) -> bool:
        return bool(self.segments)

    def take(self, nbytes: int) -> tuple[bytes, list[str]]:
        """Up to ``nbytes`` of audio, and the responses that began playing."""
        out = bytearray()
        began: list[str] = []
        segments = self.segments
        while segments and len(out) < nbytes:
            segment = segments[0]
            if segment.response_id not in self.started:
                self.started.add(segment.response_id)
                began.append(segment.response_id)
            self.current = segment.response_id
            chunk = segment.pcm[: nbytes - len(out)]
            del segment.pcm[: len(chunk)]
            self.queued_bytes -= len(chunk)
            out += chunk
            heard = self.heard.get(segment.item_id)
            if heard is not None:
                heard.played_bytes += len(chunk)
            if not segment.pcm:
                segments.popleft()
        return bytes(out), began

    def forget(self, response_id: str) -> None:
        """A response whose audio is over (played, cleared, or none)."""
        self.started.discard(response_id)
        self.done.discard(response_id)
        self.cleared.discard(response_id)
        for item_id in [
            i for i, h in self.heard.items() if h.response_id == response_id
        ]:
            del self.heard[item_id]

    def clear(self) -> list[tuple[str, _Heard]]:
        """Drop the unplayed audio; return the items cut short."""
        cut: dict[str, _Heard] = {}
        for segment in self.segments:
            heard = self.heard.get(segment.item_id)
            if heard is not None and segment.pcm:
                cut[segment.item_id] = heard
            self.cleared.add(segment.response_id)
        self.segments.clear()
        self.queued_bytes = 0
        return list(cut.items())


# --- The call ------------------------------------------------------------------------


class Call:
    """One WebRTC call: a peer connection, its tracks, channel and session."""

    def __init__(self, calls: Calls, call_id: str, pc: RTCPeerConnection) -> None:
        self.calls = calls
        self.call_id = call_id
        self.pc = pc
        self.connection: Connection | None = None
        self.channel: RTCDataChannel | None = None
        self.playback = Playback()
        self.sidebands: set[SidebandConnection] = set()
        self._pending: list[str] = []
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended = asyncio.Event()
        self._ending = False
        self._ids = RandomIds()
        self._resampler: audio.Resampler | None = None
        self._paused = False
        #: Seconds of CPU spent on this call's audio in the event loop.
        self.loop_cpu = 0.0
        self.mic_frames = 0

    @property
    def ended(self) -> bool:
        return self._ending

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Events out ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """The connection's synchronous transport: one server event."""
        kind = server_event_type(data)
        if kind == "response.output_audio.delta":
            self._queue_audio(data)
            return
        self._send(data)
        if kind == "input_audio_buffer.speech_started":
            self._barge_in()
        elif kind == "response.done":
            self._response_done(data)

    def write_close(self, code: int, reason: str) -> None:
        """The engine closed the session: the call ends."""
        self.spawn(self.end(f"session closed ({code})"))

    def _send(self, data: bytes) -> None:
        text = data.decode()
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(text)
            except Exception:  # the channel went away in between
                logger.debug("%s: data channel send failed", self.call_id)
        elif len(self._pending) < MAX_PENDING:
            self._pending.append(text)
        for sideband in tuple(self.sidebands):
            sideband.deliver(data)

    def _emit(self, event: Any) -> None:
        connection = self.connection
        if connection is not None:
            connection.send_event(encode(event))

    # --- Audio out ----------------------------------------------------------------

    def _queue_audio(self, data: bytes) -> None:
        connection = self.connection
        if connection is None:
            return
        event = _delta_decoder.decode(data)
        if event.response_id in self.playback.cleared:
            return  # cut off: the rest of this response is not played
        config = connection.session.config
        if not isinstance(config, RealtimeSessionConfig):  # pragma: no cover
            return
        fmt = _format_type(config.audio.output.format)
        raw = base64.b64decode(event.delta)
        pcm, rate = audio.to_pcm16(raw, fmt)
        resampler = self._resampler
        if resampler is None or resampler.from_rate != rate:
            resampler = self._resampler = audio.Resampler(rate, WIRE_RATE)
        pcm48 = resampler.process(pcm)
        heard = self.playback.heard.get(event.item_id)
        if heard is None:
            heard = self.playback.heard[event.item_id] = _Heard(
                event.response_id, event.content_index
            )
        heard.queued_ms += len(pcm) / 2 / rate * 1000
        self.playback.queued_bytes += len(pcm48)
        if self.playback.queued_bytes > PAUSE_BYTES and not self._paused:
            # Responders wait (Connection.drain) until playback catches up.
            self._paused = True
            connection.pause_writing()
        segments = self.playback.segments
        if (
            segments
            and segments[-1].item_id == event.item_id
            and segments[-1].content_index == event.content_index
        ):
            segments[-1].pcm += pcm48
        else:
            segments.append(
                _Segment(
                    event.response_id,
                    event.item_id,
                    event.content_index,
                    bytearray(pcm48),
                )
            )

    def _response_done(self, data: bytes) -> None:
        response_id = _response_id(data)
        if response_id is None:
            return
        playback = self.playback
        playback.done.add(response_id)
        if self._resampler is not None:
            # The filter's tail belongs to the last segment of this response.
            tail = self._resampler.flush()
            segments = playback.segments
            if tail and segments and segments[-1].response_id == response_id:
                segments[-1].pcm += tail
                playback.queued_bytes += len(tail)
        queued = any(s.response_id == response_id for s in playback.segments)
        if response_id in playback.cleared or (
            not queued and response_id not in playback.started
        ):
            playback.forget(response_id)  # cut off, or no audio at all
            return
        self._maybe_stopped()

    def _maybe_stopped(self) -> None:
        """``output_audio_buffer.stopped`` for each response whose audio has
        all played after its ``response.done``: the one playing, and one
        whose last audio went out in the frame where the next response's
        began (a reply to a tool output, queued behind the reply that called
        the tool)."""
        playback = self.playback
        queued = {s.response_id for s in playback.segments}
        over = [
            r
            for r in playback.started
            if r in playback.done and r not in queued and r not in playback.cleared
        ]
        for response_id in over:
            if playback.current == response_id:
                playback.current = None
            playback.forget(response_id)
            self._emit(
                OutputAudioBufferStoppedEvent(
                    event_id=self._ids.new("event_", time.time()),
                    response_id=response_id,
                )
            )

    def next_audio(self) -> bytes:
        """20 ms of audio for the outgoing track (silence when none waits)."""
        data, began = self.playback.take(FRAME_BYTES)
        if self._paused and self.playback.queued_bytes < RESUME_BYTES:
            self._resume()
        if began or not self.playback.segments:
            self._maybe_stopped()  # before the next response's started
        for response_id in began:
            self._emit(
                OutputAudioBufferStartedEvent(
                    event_id=self._ids.new("event_", time.time()),
                    response_id=response_id,
                )
            )
        if len(data) < FRAME_BYTES:
            data += bytes(FRAME_BYTES - len(data))
        return data

    def _resume(self) -> None:
        self._paused = False
        if self.connection is not None:
            self.connection.resume_writing()

    def _barge_in(self) -> None:
        connection = self.connection
        if connection is None or not self.playback.queued():
            return
        config = connection.session.config
        td = config.audio.input.turn_detection
        if td is None or td.interrupt_response is False:
            return
        self.clear_audio()

    def clear_audio(self) -> None:
        """Stop playback now: ``output_audio_buffer.cleared``, then truncate
        each item cut short to what was played."""
        playback = self.playback
        response_id = playback.current
        if playback.segments:
            response_id = playback.segments[0].response_id
        cut = playback.clear()
        if self._paused:
            self._resume()
        if response_id is None:
            return
        playback.current = None
        # Late audio of a cleared response is dropped until its response.done.
        playback.cleared.add(response_id)
        for cleared in [r for r in playback.cleared if r in playback.done]:
            playback.forget(cleared)
        self._emit(
            OutputAudioBufferClearedEvent(
                event_id=self._ids.new("event_", time.time()),
                response_id=response_id,
            )
        )
        if cut:
            # After the engine's current batch (barge-in arrives inside it).
            self._loop.call_soon(self._truncate, cut)

    def _truncate(self, cut: list[tuple[str, _Heard]]) -> None:
        connection = self.connection
        if connection is None or connection.closing:
            return
        for item_id, heard in cut:
            played_ms = heard.played_bytes / 2 / WIRE_RATE * 1000
            audio_end_ms = int(min(played_ms, heard.queued_ms))
            connection.receive_event(
                ConversationItemTruncateEvent(
                    item_id=item_id,
                    content_index=heard.content_index,
                    audio_end_ms=audio_end_ms,
                )
            )

    # --- Events in ----------------------------------------------------------------

    def on_channel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self.channel is not None:
            return
        self.channel = channel

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self.receive(message)

        @channel.on("close")
        def on_close() -> None:
            self.spawn(self.end("data channel closed"))

        if channel.readyState == "open":
            self._flush_pending()
        else:

            @channel.on("open")
            def on_open() -> None:
                self._flush_pending()

    def _flush_pending(self) -> None:
        channel = self.channel
        pending, self._pending = self._pending, []
        if channel is None:
            return
        for text in pending:
            channel.send(text)

    def receive(self, message: str | bytes) -> None:
        """One message from the data channel: a client event."""
        connection = self.connection
        if connection is None or self._ending:
            return
        if isinstance(message, bytes):
            connection.receive_binary(message)
            return
        maximum = self.calls.server.settings.max_frame_bytes
        if len(message) > maximum // 4 and len(message.encode()) > maximum:
            self.calls.server.fail_too_large(connection, len(message.encode()))
            return
        if _CLEAR_TYPE in message[:64] and self.receive_clear(message):
            return
        connection.receive_text(message)

    def receive_clear(self, message: str) -> bool:
        """``output_audio_buffer.clear``: accepted here, as on the hosted
        WebRTC API (a WebSocket still refuses it). Return whether handled."""
        try:
            _clear_decoder.decode(message)
        except InvalidRequestError:
            return False  # not this event after all: the engine answers it
        connection = self.connection
        if (
            connection is not None
            and connection.session.active_response_id is not None
            and self.playback.queued()
        ):
            # "This will trigger the server to stop generating audio."
            connection.receive_event(ResponseCancelEvent())
        self.clear_audio()
        return True

    async def read_microphone(self, track: MediaStreamTrack) -> None:
        """Feed the input audio buffer from the microphone track."""
        from aiortc.mediastreams import MediaStreamError

        resampler: audio.Resampler | None = None
        loop_cpu = time.thread_time
        timeout: float | None = None  # none until the first frame
        while not self._ending:
            try:
                frame = await asyncio.wait_for(track.recv(), timeout)
            except MediaStreamError:
                return
            except TimeoutError:
                # Browsers send 50 frames a second, silence included: a peer
                # that stopped is gone (faster than ICE consent's ~30 s).
                self.spawn(self.end(f"no audio from the peer for {timeout} s"))
                return
            timeout = self.calls.media_timeout
            connection = self.connection
            if connection is None or connection.closing:
                return
            started = loop_cpu()
            pcm = _mono_pcm16(frame)
            rate: int = frame.sample_rate  # type: ignore[union-attr]
            if resampler is None or resampler.from_rate != rate:
                resampler = audio.Resampler(rate, ENGINE_RATE)
            pcm24 = resampler.process(pcm)
            session = connection.session
            fmt = _format_type(session.config.audio.input.format)
            data = (
                pcm24
                if fmt == "audio/pcm"
                else audio.from_pcm16(pcm24, ENGINE_RATE, fmt)
            )
            # A microphone never stops: with turn detection on, the engine
            # drops the silence before speech itself (it keeps the last
            # Limits.silence_kept_ms, 30 s, once it holds twice that),
            # quietly and with no reset of the detector. With turn detection
            # off, appends stop at half the buffer's limit.
            limit = audio.duration_ms(session.limits.max_buffer_bytes, fmt) // 2
            if data and session.buffered_ms < limit:
                connection.receive_event(
                    InputAudioBufferAppendEvent(audio=base64.b64encode(data).decode())
                )
            self.mic_frames += 1
            self.loop_cpu += loop_cpu() - started

    # --- Teardown -----------------------------------------------------------------

    async def end(self, why: str) -> None:
        """End the call: the peer connection, the session, the sidebands."""
        if self._ending:
            await self._ended.wait()
            return
        self._ending = True
        logger.info("%s: call ended (%s)", self.call_id, why)
        try:
            for sideband in tuple(self.sidebands):
                sideband.end()
            connection = self.connection
            if connection is not None:
                connection.disconnected(1000, why)
            with contextlib.suppress(Exception):
                await self.pc.close()
            if connection is not None:
                await connection.aclose()
                self.calls.server.closed(connection)
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.calls.forget(self)
            self._ended.set()
            if self.calls.router is not None:
                await self.calls.router.unregister(self.call_id)


def _response_id(data: bytes) -> str | None:
    # '"response":{"object":"realtime.response","id":"resp_..."'
    start = data.find(b'"id":"resp_')
    if start < 0:
        return None
    start += 6
    end = data.find(b'"', start)
    return data[start:end].decode()


def _mono_pcm16(frame: Any) -> bytes:
    """The first channel of an aiortc audio frame, as PCM16 bytes."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mono = array[0]
    elif channels > 1:
        mono = array.reshape(-1, channels)[:, 0]
    else:
        mono = array.reshape(-1)
    if mono.dtype.kind == "f":
        mono = (mono.clip(-1.0, 1.0) * 32767).astype("<i2")
    return bytes(mono.astype("<i2", copy=False).tobytes())


def _playback_track(call: Call) -> MediaStreamTrack:
    """The outgoing audio track: the call's reply audio at real time."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class PlaybackTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._start: float | None = None
            self._pts = 0

        async def recv(self) -> av.AudioFrame:
            if self.readyState != "live" or call.ended:
                raise MediaStreamError
            now = time.monotonic()
            if self._start is None:
                self._start = now
            else:
                wait = self._start + self._pts / WIRE_RATE - now
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.2:
                    # Late by more than 200 ms (a stalled loop): resume at real
                    # time instead of sending a burst.
                    self._start = now - self._pts / WIRE_RATE
            data = call.next_audio()
            frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            frame.planes[0].update(data)
            frame.sample_rate = WIRE_RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, WIRE_RATE)
            self._pts += FRAME_SAMPLES
            return frame

    return PlaybackTrack()


# --- Sideband ------------------------------------------------------------------------


class SidebandConnection(Connection):
    """A WebSocket that joined a call (``?call_id=``): its events go to the
    call's session, and it receives every event the call sends."""

    sideband = True

    def __init__(self, call: Call, **transport: Any) -> None:
        assert call.connection is not None
        super().__init__(call.connection.session, responder=_NoResponder(), **transport)
        self.call = call

    def start(self) -> None:
        if self._write_now is None:
            self._writer = self._loop.create_task(self._write())

    def receive_text(self, data: str | bytes) -> None:
        connection = self.call.connection
        if self._closing or connection is None:
            return
        if isinstance(data, str) and _CLEAR_TYPE in data[:64]:
            if self.call.receive_clear(data):
                return
        connection.receive_text(data)

    def receive_binary(self, data: bytes = b"") -> None:
        connection = self.call.connection
        if not self._closing and connection is not None:
            connection.receive_binary(data)

    def deliver(self, data: bytes) -> None:
        """One event of the call, for this socket."""
        if not self._closing:
            self._queue_frame(data)

    def end(self) -> None:
        """The call ended: close the socket."""
        self._begin_close(Close(1000, ""))

    async def aclose(self) -> None:
        self.call.sidebands.discard(self)
        await super().aclose()


class _NoResponder:
    """Sidebands start no responses: the call's connection does."""

    def respond(self, request: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError("a sideband connection has no responder")


# --- Which addresses a call offers ------------------------------------------------


#: The host addresses peer connections gather on here, when set (``None``: the
#: machine's, as aioice finds them).
_ice_hosts: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "openrealtime_ice_hosts", default=None
)


def _install_ice_hosts() -> None:
    """Make aioice's host address discovery obey :data:`_ice_hosts`.

    aioice has no option for the addresses it gathers on (nor does aiortc's
    ``RTCConfiguration``): ``Connection.gather_candidates`` calls the module
    function ``aioice.ice.get_host_addresses``, which lists every interface
    address but 127.0.0.1 and ::1. Subclassing would mean replacing aiortc's
    ``RTCIceGatherer`` inside ``RTCPeerConnection``'s private transport
    construction, and rewriting ``gather_candidates`` would copy aioice's
    candidate logic; so the function is wrapped, once per process: where
    :data:`_ice_hosts` is unset (any other aiortc user in the process, and
    servers without ``webrtc_hosts``) it answers exactly as aioice does. A
    context variable, not a global, because one process may hold several
    servers (and test clients) with different addresses: the value follows
    the task that calls ``setLocalDescription`` into the gathering tasks
    ``asyncio.gather`` makes from it.
    """
    import aioice.ice

    original = aioice.ice.get_host_addresses
    if getattr(original, "openrealtime_wrapped", False):
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        hosts = _ice_hosts.get()
        if hosts is None:
            return original(use_ipv4, use_ipv6)
        return [
            host
            for host in hosts
            if (use_ipv6 if ipaddress.ip_address(host).version == 6 else use_ipv4)
        ]

    get_host_addresses.openrealtime_wrapped = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


@contextlib.contextmanager
def ice_host_addresses(hosts: Sequence[str]) -> Iterator[None]:
    """Within this block, aiortc peer connections of this task gather ICE
    host candidates on ``hosts`` only (IP addresses of this machine; an empty
    sequence changes nothing). Wrap the ``setLocalDescription`` call."""
    if not hosts:
        yield
        return
    _install_ice_hosts()
    token = _ice_hosts.set(tuple(hosts))
    try:
        yield
    finally:
        _ice_hosts.reset(token)


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _allowed(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # an mDNS name (.local): its address is unknown
        return False
    return any(ip in network for network in networks)


def _drop_candidates(sdp: str, networks: Networks) -> str:
    """The offer without the candidates outside ``networks``."""
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    kept = []
    for line in lines:
        fields = line.split()
        if (
            line.startswith("a=candidate:")
            and len(fields) > 4
            and not _allowed(fields[4], networks)
        ):
            continue
        kept.append(line)
    return ("\r\n" if "\r\n" in sdp else "\n").join(kept)


def _answer_peers_in(pc: RTCPeerConnection, networks: Networks) -> None:
    """The ICE agents of ``pc`` answer checks only from ``networks``.

    A check from elsewhere is dropped unanswered, so no peer-reflexive
    candidate is learned from it and nothing is ever sent there (with the
    offer's candidates filtered by :func:`_drop_candidates`, no check is
    sent there either). aioice has no such option: its ``Connection``'s
    ``request_received`` (what its sockets call for each STUN request) is
    wrapped on the instances of this call, reached through aiortc's
    ``RTCIceGatherer`` (its private ``_connection``); this runs before the
    answer leaves, so before any check can arrive.
    """
    transports = [t.receiver.transport.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport.transport)
    done: set[int] = set()
    for transport in transports:
        connection = transport.iceGatherer._connection
        if id(connection) in done:
            continue
        done.add(id(connection))
        original = connection.request_received

        def request_received(
            message: Any, addr: tuple[str, int], protocol: Any, *, _o: Any = original
        ) -> None:
            if _allowed(addr[0], networks):
                _o(message, addr, protocol)

        connection.request_received = request_received  # type: ignore[method-assign]


# --- The registry --------------------------------------------------------------------


class Calls:
    """The calls of one server: create, find, hang up, join."""

    def __init__(self, server: RealtimeServer) -> None:
        self.server = server
        self._calls: dict[str, Call] = {}
        self._ids = RandomIds()
        #: Seconds without a microphone frame after which a call is over.
        self.media_timeout = MEDIA_TIMEOUT
        #: With --redis-url: reaches calls in the other processes.
        self.router: CallRouter | None = None
        if server.settings.redis_url:
            from openrealtime.server.call_router import CallRouter

            self.router = CallRouter(server.settings.redis_url, self)

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def forget(self, call: Call) -> None:
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

    async def create(self, request: CallRequest, peer: str) -> tuple[Call, str]:
        """Answer an offer: a new call and the SDP answer.

        Raises:
            InvalidRequestError: the offer cannot be answered.
        """
        from aiortc import (
            RTCConfiguration,
            RTCPeerConnection,
            RTCSessionDescription,
        )

        # No STUN server: the answer's host candidates (on the addresses of
        # settings.webrtc_hosts, when given), and the peer's reflexive ones
        # found by its checks.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        call_id = self._ids.new("rtc_", time.time())
        call = Call(self, call_id, pc)
        microphone: list[MediaStreamTrack] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and not microphone:
                microphone.append(track)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            call.on_channel(channel)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                call.spawn(call.end(f"peer connection {pc.connectionState}"))

        settings = self.server.settings
        networks = settings.peer_networks
        offer = _drop_candidates(request.sdp, networks) if networks else request.sdp
        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=offer, type="offer")
            )
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise _bad_offer("the offer has no audio m-line.")
            pc.addTrack(_playback_track(call))
            answer = await pc.createAnswer()
            with ice_host_addresses(settings.webrtc_hosts):
                await pc.setLocalDescription(answer)
            if networks:
                _answer_peers_in(pc, networks)
        except InvalidRequestError:
            await pc.close()
            raise
        except Exception as exc:
            await pc.close()
            raise _bad_offer(str(exc) or type(exc).__name__) from None
        outcome = Accepted(
            kind=request.kind, model=request.model, initial=request.initial
        )
        connection = self.server.open(
            outcome, peer, write=call.write, write_close=call.write_close
        )
        call.connection = connection
        self._calls[call_id] = call
        if self.router is not None:
            try:
                await self.router.register(call_id)
            except Exception as exc:  # Redis down: the call works, here only
                logger.warning(
                    "%s: not shared through Redis (%s)", call_id, type(exc).__name__
                )
        connection.start()
        for track in microphone:
            call.spawn(call.read_microphone(track))
        call.spawn(self._watch_connect(call))
        return call, pc.localDescription.sdp

    async def _watch_connect(self, call: Call) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while call.pc.connectionState != "connected":
            if call.ended:
                return
            if time.monotonic() > deadline:
                call.spawn(call.end("the peer did not connect in time"))
                return
            await asyncio.sleep(0.25)

    async def hangup(self, call_id: str) -> bool:
        """End a call, here or (through Redis) in another process; return
        whether it was found."""
        call = self._calls.get(call_id)
        if call is None:
            if self.router is not None:
                try:
                    return await self.router.hangup(call_id)
                except Exception as exc:
                    logger.warning("hangup through Redis failed: %r", exc)
            return False
        await call.end("hung up")
        return True

    def join(
        self, call_id: str, *, local: bool = False, **transport: Any
    ) -> Connection | None:
        """A sideband connection to a call: here, or relayed to the process
        that has it (``None``: no such call here and no Redis to ask)."""
        call = self._calls.get(call_id)
        if call is None or call.connection is None or call.ended:
            if self.router is not None and not local:
                return self.router.join_remote(call_id, **transport)
            return None
        sideband = SidebandConnection(call, **transport)
        call.sidebands.add(sideband)
        return sideband

    async def aclose(self) -> None:
        """End every call (server shutdown)."""
        calls = list(self._calls.values())
        await asyncio.gather(*(c.end("server shutdown") for c in calls))
        if self.router is not None:
            await self.router.aclose()


# --- Routes --------------------------------------------------------------------------


#: Browsers post offers from their own pages' origins, as to the hosted API.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location",
}


def _answer(result: RestResult) -> Response:
    return Response(
        result.body, result.status, media_type=result.content_type, headers=CORS
    )


async def _preflight(request: Request) -> Response:
    asked = request.headers.get("access-control-request-headers", "")
    return Response(
        b"",
        204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": asked or "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


def webrtc_routes(server: RealtimeServer, prefix: str) -> list[BaseRoute]:
    """``POST {prefix}/calls`` and ``POST {prefix}/calls/{call_id}/hangup``."""

    async def create_call(request: Request) -> Response:
        body = await request.body()
        parsed = await parse_call_request(
            body,
            request.headers,
            request.form,
            server,
            request.query_params.get("model"),
        )
        if isinstance(parsed, RestResult):
            return _answer(parsed)
        client = request.client
        peer = f"{client.host}:{client.port}" if client else "-"
        try:
            call, sdp = await server.calls.create(parsed, peer)
        except InvalidRequestError as exc:
            return _answer(rest_error(exc))
        return Response(
            sdp,
            201,
            media_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call.call_id}", **CORS},
        )

    async def hangup(request: Request) -> Response:
        settings = server.settings
        key = find_api_key(request.headers)
        if settings.api_keys:
            if key is None:
                return _answer(rest_error(InvalidRequestError(None, _NO_KEY), 401))
            if not key_accepted(key, settings):
                return _answer(rest_error(bad_api_key(key), 401))
        call_id = request.path_params["call_id"]
        if not await server.calls.hangup(call_id):
            return _answer(rest_error(call_not_found(call_id), 404))
        return Response(b"", 200)

    return [
        Route(f"{prefix}/calls", create_call, methods=["POST"]),
        Route(f"{prefix}/calls", _preflight, methods=["OPTIONS"]),
        Route(f"{prefix}/calls/{{call_id}}/hangup", hangup, methods=["POST"]),
    ]
