"""The sans-I/O session engine: client events in, server events out.

Theory of operation
-------------------
A :class:`Session` owns one Realtime session: its effective configuration,
its conversation, its input audio buffer and the response in progress. It
has no socket, no event loop and no clock (``now`` is a parameter, in seconds
since the epoch), in the manner of websockets' ``Protocol`` and aioquic's
``QuicConnection``. A driver feeds it and drains two outboxes::

    session.receive_text(frame, now=time.time())
    for data in session.data_to_send():      # server events, encoded, in order
        await websocket.send(data)
    for action in session.actions_to_take(): # work the engine cannot do itself
        ...                                  # StartResponse, CancelResponse,
                                             # Transcribe, DetectSpeech, Close
    timer = session.get_timer()              # re-arm; then handle_timer(now)

Work that takes time (a responder producing a reply, a recognizer producing a
transcript) happens in the driver, which reports back through the
``response_*`` and ``transcription_*`` methods; the engine turns each report
into the hosted event sequence. Turn detection runs in the engine by default;
a session made with ``vad_offload=True`` hands it to the driver instead
(``DetectSpeech`` ops, reported back through ``speech_detected``), so that a
server scores audio on workers, never on its event loop.

A client's mistake never raises: it becomes exactly one ``error`` event and
the session stays exactly as it was. Misuse by the driver raises
:class:`~openrealtime.exceptions.InvalidState`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import pybase64
from msgspec import UNSET

from openrealtime import audio, errors
from openrealtime.codec import decode_client_event, decode_server_event, encode
from openrealtime.config import (
    Defaults,
    SessionKind,
    apply_update,
    check_tool_choice,
    default_config,
)
from openrealtime.counts import EventCounts, client_event_type
from openrealtime.exceptions import (
    InvalidRequestError,
    InvalidState,
    ProtocolError,
    ServerError,
)
from openrealtime.ids import IdFactory, RandomIds
from openrealtime.models.client_events import (
    ClientEvent,
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
    SessionCloseEvent,
    SessionInputAudioBufferAppendEvent,
    SessionUpdateEvent,
)
from openrealtime.models.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioPart,
    InputImagePart,
    InputTextPart,
    MessageItem,
    OutputAudioPart,
    OutputTextPart,
)
from openrealtime.models.responses import (
    InputTokenDetails,
    ItemReference,
    OutputTokenDetails,
    Response,
    ResponseAudio,
    ResponseAudioOutput,
    ResponseCreateParams,
    ResponseStatusDetails,
    ResponseStatusError,
    Usage,
)
from openrealtime.models.server_events import (
    ConversationItemAddedEvent,
    ConversationItemDeletedEvent,
    ConversationItemDoneEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemRetrievedEvent,
    ConversationItemTruncatedEvent,
    ErrorDetail,
    ErrorEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggeredEvent,
    LogProb,
    RateLimit,
    RateLimitsUpdatedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioDoneEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    TranscriptionFailure,
    TranscriptionUsageDuration,
    TranscriptionUsageTokens,
    TranscriptionUsageTokensDetails,
    _AudioPartInfo as AudioPartInfo,
    _TextPartInfo as TextPartInfo,
)
from openrealtime.models.session import (
    AudioFormat,
    FunctionTool,
    RealtimeSessionConfig,
    SemanticVad,
    ServerVad,
    SessionConfig,
    Tool,
    ToolChoice,
    ToolChoiceFunction,
    Transcription,
    VoiceValue,
)
from openrealtime.state import ACCEPTED, CLOSED, OPEN, State, not_accepted
from openrealtime.turns import (
    DetectorOp,
    DetectorSettings,
    EnergyScorer,
    FrameScorer,
    SpeechDetector,
    TurnEvent,
)
from openrealtime.typing import AudioFormatType, Modality


__all__ = [
    "Action",
    "CancelResponse",
    "Close",
    "DetectSpeech",
    "Limits",
    "ResponseRequest",
    "Session",
    "StartResponse",
    "Transcribe",
]

logger = logging.getLogger("openrealtime.session")

#: "Your session hit the maximum duration of N minutes." [WIRE 52-55, 14]
_EXPIRED = "Your session hit the maximum duration of {} minutes."

#: Silence that ends a turn under semantic_vad, by eagerness (our mapping;
#: the spec gives only the maximum timeouts: 8 s, 4 s and 2 s).
SEMANTIC_SILENCE_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}


# --- Actions: what the driver must do for the engine --------------------------------


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """Everything a responder needs to produce one response."""

    response_id: str
    conversation: list[ConversationItem]
    instructions: str
    tools: list[Tool]
    tool_choice: ToolChoice
    output_modalities: list[Modality]
    voice: VoiceValue
    speed: float
    max_output_tokens: int | Literal["inf"]
    metadata: dict[str, str] | None
    out_of_band: bool


@dataclass(frozen=True, slots=True)
class StartResponse:
    """Run a responder for this request, reporting through ``response_*``."""

    request: ResponseRequest


@dataclass(frozen=True, slots=True)
class CancelResponse:
    """Stop the responder of this response (already reported as cancelled)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class Transcribe:
    """Transcribe a user audio item; report through ``transcription_*``."""

    item_id: str
    content_index: int
    pcm16: bytes
    rate: int
    transcription: Transcription


@dataclass(frozen=True, slots=True)
class DetectSpeech:
    """Apply a turn detection op off the engine (sessions made with
    ``vad_offload=True``); report its events through :meth:`Session.speech_detected`.

    Ops must be applied in the order they come, to one
    :class:`~openrealtime.turns.SpeechDetector` per session, made with the
    session's scorer factory. A ``feed`` may be cut into pieces (at any
    even byte offset) and fed in order: the events are the same.
    """

    generation: int
    op: DetectorOp


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this WebSocket close code and reason."""

    code: int
    reason: str


Action = StartResponse | CancelResponse | Transcribe | DetectSpeech | Close


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-session limits.

    Attributes:
        max_buffer_bytes: input audio buffered before a commit (decoded bytes).
        max_items: items kept in the conversation.
        min_commit_ms: shortest buffer a manual commit accepts (hosted: 100).
        max_output_audio_ms: audio one response may produce; past it the
            response ends ``incomplete`` (reason ``max_output_tokens``) and
            its responder is cancelled. ``None``: no cap.
        max_audio_bytes: audio kept for ``conversation.item.retrieve`` (user
            and assistant audio, in their wire formats); past it the oldest
            items' audio is let go (they are retrieved with no ``audio``).
        rate_limit_requests: the ``requests`` limit ``rate_limits.updated``
            reports (responses per ``rate_limit_window_s``).
        rate_limit_tokens: the ``tokens`` limit it reports (tokens per window).
        rate_limit_window_s: the window of both, in seconds.
        silence_kept_ms: with turn detection on, the audio before speech
            that the input buffer keeps. A microphone never stops: past twice
            this (or half of ``max_buffer_bytes``), the older audio is
            dropped, quietly, down to this much, and the timeline runs on.
            ``None``: kept until the buffer is full.
    """

    max_buffer_bytes: int = 32 * 1024 * 1024
    max_items: int = 4096
    min_commit_ms: int = 100
    max_output_audio_ms: int | None = 5 * 60 * 1000
    max_audio_bytes: int = 64 * 1024 * 1024
    rate_limit_requests: int = 5000
    rate_limit_tokens: int = 400_000
    rate_limit_window_s: float = 60.0
    silence_kept_ms: int | None = 30_000


# --- The response in progress -------------------------------------------------------


@dataclass(slots=True)
class _Audio:
    """The audio of an item's audio part: its length, bytes and transcript.

    ``marks`` are the transcript deltas of assistant audio, each with the
    length of the audio that preceded it, so a truncation keeps the words
    heard. ``data`` is ``None`` once let go (``Limits.max_audio_bytes``).
    """

    format: AudioFormatType
    ms: float = 0.0
    data: bytearray | None = field(default_factory=bytearray)
    marks: list[tuple[float, str]] = field(default_factory=list)
    #: Truncated while streaming: later audio and transcript are dropped.
    truncated: bool = False


@dataclass(slots=True)
class _Part:
    kind: Literal["text", "audio"]
    audio: _Audio
    text: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Active:
    response: Response
    format: AudioFormat
    out_of_band: bool
    modality: Modality
    item: MessageItem | None = None
    part: _Part | None = None
    callable: frozenset[str] = frozenset()
    declared: frozenset[str] = frozenset()
    max_tokens: int | None = None
    output_tokens_text: int = 0
    output_tokens_audio: int = 0
    audio_ms: float = 0.0
    resampler_rate: int = 24000

    def room(self) -> int | None:
        """Output tokens left under ``max_output_tokens`` (None: no limit)."""
        if self.max_tokens is None:
            return None
        return self.max_tokens - self.output_tokens_text - self.output_tokens_audio


_PART_TAGS: dict[type, str] = {
    cls: str(cls.__struct_config__.tag)
    for cls in (
        InputTextPart,
        InputAudioPart,
        InputImagePart,
        OutputTextPart,
        OutputAudioPart,
    )
}


def _client_event_id(event: ClientEvent) -> str | None:
    """The client's ``event_id``, for the error it caused (None: it sent none)."""
    return event.event_id if event.event_id is not UNSET else None


#: The state table (openrealtime.state.ACCEPTED) by event class, for speed.
_ACCEPTED_CLASSES: dict[str, frozenset[type]] = {
    kind: frozenset(
        cls for cls in ClientEvent.__args__ if cls.__struct_config__.tag in tags
    )
    for kind, tags in ACCEPTED.items()
}


def _callable(tools: list[Tool], tool_choice: ToolChoice) -> frozenset[str]:
    """The function names a response may call under ``tool_choice``."""
    names = frozenset(t.name for t in tools if isinstance(t, FunctionTool))
    if tool_choice == "none":
        return frozenset()
    if isinstance(tool_choice, ToolChoiceFunction):
        return names & {tool_choice.name}
    return names


def _none_unset(value: Any) -> Any:
    """``null`` in an optional field of ``response.create`` means absent."""
    return UNSET if value is None else value


def _tokens(text: str) -> int:
    # An estimate: about four characters a token, as OpenAI documents.
    return math.ceil(len(text) / 4)


def _format_type(fmt: AudioFormat) -> AudioFormatType:
    tag = fmt.__struct_config__.tag
    assert isinstance(tag, str)
    return tag  # type: ignore[return-value]


class Session:
    """One Realtime session, without I/O.

    Args:
        kind: ``"realtime"`` (``?model=``) or ``"transcription"``
            (``?intent=transcription``).
        model: the model alias as connected.
        now: the time the session starts, in seconds since the epoch.
        ids: id factory (tests inject :class:`~openrealtime.ids.CountingIds`).
        defaults: operator defaults (overrides of the hosted defaults).
        limits: per-session limits.
        initial: a config to start from instead of the defaults (sessions
            opened with an ephemeral key minted with a session).
        scorer_factory: makes the frame scorer of turn detection for a rate.
        vad_offload: do not run turn detection here: emit
            :class:`DetectSpeech` actions and take the events back through
            :meth:`speech_detected` (what a server does, so that scoring
            runs on workers, not on its event loop). Off by default: the
            engine scores audio itself, inline.

    On creation the session emits ``session.created``.
    """

    # Slots, not a __dict__: past 30 attributes an instance dict stops sharing
    # its keys and costs ~1.5 KiB per session (bench/README.md, scale).
    __slots__ = (
        "kind",
        "_handlers",
        "counts",
        "state",
        "defaults",
        "limits",
        "_ids",
        "_now",
        "_outbox",
        "_actions",
        "config",
        "voice_locked",
        "_order",
        "_items",
        "_audio",
        "_audio_bytes",
        "_buffer",
        "_buffer_start_ms",
        "scorer_factory",
        "vad_offload",
        "_detector",
        "_detector_on",
        "_detector_stale",
        "_detector_rate",
        "_detector_generation",
        "_speech_item_id",
        "_speech_start_ms",
        "_active",
        "_oob",
        "_idle_deadline",
        "_idle_audio_start",
        "_window_start",
        "_window_requests",
        "_window_tokens",
        "_expires_at",
        "close_code",
        "close_reason",
    )

    def __init__(
        self,
        *,
        kind: SessionKind = "realtime",
        model: str = "gpt-realtime",
        now: float,
        ids: IdFactory | None = None,
        defaults: Defaults | None = None,
        limits: Limits | None = None,
        initial: SessionConfig | None = None,
        scorer_factory: Callable[[int], FrameScorer] | None = None,
        vad_offload: bool = False,
        counts: EventCounts | None = None,
    ) -> None:
        self.kind: SessionKind = kind
        self._handlers = _HANDLERS[kind]
        #: Where the events of this session are counted (None: nowhere).
        self.counts = counts
        self.state: State = OPEN
        self.defaults = defaults or Defaults()
        self.limits = limits or Limits()
        self._ids: IdFactory = ids or RandomIds()
        self._now = now
        self._outbox: list[bytes] = []
        self._actions: list[Action] = []
        session_id = self._ids.new("sess_", now)
        if initial is None:
            initial = default_config(
                kind,
                id=session_id,
                model=model,
                created_at=int(now),
                defaults=self.defaults,
            )
        else:
            initial = msgspec.structs.replace(
                initial,
                id=session_id,
                expires_at=int(now) + 60 * self.defaults.session_minutes,
            )
        self.config: SessionConfig = initial
        #: Set once assistant audio exists: the voice may no longer change.
        self.voice_locked = False
        # Conversation: item ids in order, and the items by id.
        self._order: list[str] = []
        self._items: dict[str, ConversationItem] = {}
        #: The audio of items' audio parts (user input, assistant output).
        self._audio: dict[str, _Audio] = {}
        self._audio_bytes = 0
        # Input audio buffer (bytes in the input format since the last commit).
        self._buffer = audio.ChunkBuffer()
        self._buffer_start_ms = 0.0  # input timeline position of _buffer[0]
        self.scorer_factory: Callable[[int], FrameScorer] = (
            scorer_factory or EnergyScorer
        )
        self.vad_offload = vad_offload
        self._detector = SpeechDetector(self.scorer_factory)
        self._detector_on = False
        # Turn detection is reconfigured lazily, when audio next arrives: a
        # session.update costs nothing here.
        self._detector_stale = True
        self._detector_rate = 0
        # Bumped whenever the detector's state is dropped (a new detector, a
        # clear, a commit): offloaded events of an older one are stale.
        self._detector_generation = 0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        #: The in-band response in progress, and the out-of-band ones.
        self._active: _Active | None = None
        self._oob: dict[str, _Active] = {}
        self._idle_deadline: float | None = None
        #: Input timeline position when the idle timeout was armed.
        self._idle_audio_start = 0.0
        # rate_limits.updated: the current window's start and use.
        self._window_start: float | None = None
        self._window_requests = 0
        self._window_tokens = 0
        self._expires_at = float(self.config.expires_at)
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._emit(SessionCreatedEvent(event_id=self._event_id(), session=self.config))

    # --- Public methods for receiving data -------------------------------------------

    def receive_text(self, data: str | bytes, now: float) -> None:
        """Receive one text frame from the client.

        After calling this method, drain :meth:`data_to_send` (or
        :meth:`events_to_send`) and :meth:`actions_to_take`.
        """
        self._now = now
        if self.state is CLOSED:  # _check_open(), inline: the hot path
            raise InvalidState("session is closed")
        counts = self.counts
        try:
            event = decode_client_event(data)
        except InvalidRequestError as exc:
            if counts is not None:
                name = client_event_type(data)
                counts.received[name] = counts.received.get(name, 0) + 1
            self._emit_error(exc)
            return
        if counts is not None:
            kind = type(event)
            counts.received[kind] = counts.received.get(kind, 0) + 1
        self._handle(event)

    def receive_binary(self, now: float) -> None:
        """Receive a binary frame: "binary frames are not supported" [WIRE 84]."""
        self._now = now
        self._check_open()
        if self.counts is not None:
            received = self.counts.received
            received["other"] = received.get("other", 0) + 1
        self._emit_error(errors.binary_frame())

    def receive_event(self, event: ClientEvent, now: float) -> None:
        """Receive one decoded client event.

        Raises:
            InvalidState: the session is closed (a driver bug).
        """
        self._now = now
        self._check_open()
        self._handle(event)

    def _handle(self, event: ClientEvent) -> None:
        # One lookup both applies the state table and finds the handler.
        handler = self._handlers.get(type(event))
        try:
            if handler is None:
                raise not_accepted(str(event.__struct_config__.tag), self.kind)
            handler(self, event)
        except ProtocolError as exc:
            exc.event_id = _client_event_id(event)
            self._emit_error(exc)
        except Exception:
            # "Don't include exception details, which may be security-sensitive."
            logger.exception("engine failed on %s", type(event).__name__)
            self._emit_error(ServerError(_client_event_id(event)))

    # --- Public methods for sending data ---------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Return the server events produced since the last call, encoded.

        Events are encoded when produced, so each is a snapshot: an item that
        changes later (its status, its content) is sent as it was then.
        """
        data, self._outbox = self._outbox, []
        return data

    def events_to_send(self) -> list[ServerEvent]:
        """Like :meth:`data_to_send`, decoded again (for tests and tools)."""
        return [decode_server_event(data) for data in self.data_to_send()]

    def actions_to_take(self) -> list[Action]:
        """Return the work the driver must do, in order."""
        actions, self._actions = self._actions, []
        return actions

    # --- Timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called (seconds since epoch)."""
        if self.state is CLOSED:
            return None
        if self._idle_deadline is not None:
            return min(self._idle_deadline, self._expires_at)
        return self._expires_at

    def handle_timer(self, now: float) -> None:
        """Run the timers that are due at ``now``."""
        self._now = now
        if self.state is CLOSED:
            return
        if now >= self._expires_at:
            minutes = self.defaults.session_minutes
            self._close(1001, _EXPIRED.format(minutes))
            return
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self._idle_timeout()

    # --- Reports from the driver: responses ------------------------------------------

    def response_text(self, response_id: str, delta: str) -> None:
        """The responder produced text (a transcript, in audio modality).

        In audio modality, send each piece of transcript just before the
        audio that speaks it: a truncation keeps the words whose audio was
        heard, and a cancelled item keeps what was streamed.
        """
        active = self._response(response_id)
        if active is None or not delta:
            return
        part = self._open_part(active)
        if part.audio.truncated:
            return  # the client stopped listening (conversation.item.truncate)
        room = active.room()
        stop = room is not None and _tokens(delta) > room
        if stop:
            assert room is not None
            delta = delta[: room * 4]
        if delta:
            part.text.append(delta)
            item_id, output_index = self._item_position(active)
            kw: dict[str, Any] = dict(
                event_id=self._event_id(),
                response_id=response_id,
                item_id=item_id,
                output_index=output_index,
                content_index=0,
                delta=delta,
            )
            if part.kind == "audio":
                part.audio.marks.append((part.audio.ms, delta))
                self._emit(ResponseOutputAudioTranscriptDeltaEvent(**kw))
            else:
                self._emit(ResponseOutputTextDeltaEvent(**kw))
            active.output_tokens_text += _tokens(delta)
        if stop:
            self._stop(active, "max_output_tokens")

    def response_audio(self, response_id: str, pcm16: bytes, rate: int = 24000) -> None:
        """The responder produced audio (PCM16 mono at ``rate``).

        It is converted to the session's output format. Text-only responses
        drop it. The first assistant audio locks the voice. Audio past
        ``max_output_tokens`` or past ``limits.max_output_audio_ms`` is cut
        off and ends the response ``incomplete`` (``max_output_tokens``),
        cancelling its responder.
        """
        active = self._response(response_id)
        if active is None or not pcm16 or active.modality != "audio":
            return
        part = self._open_part(active)
        record = part.audio
        if record.truncated:
            return
        ms = len(pcm16) / 2 * 1000 / rate
        keep = len(pcm16)
        room = active.room()
        if room is not None and math.ceil(ms / 50) > room:
            keep = rate * room * 50 // 1000 * 2
        cap = self.limits.max_output_audio_ms
        if cap is not None and active.audio_ms + ms > cap:
            keep = min(keep, max(0, int((cap - active.audio_ms) * rate / 1000) * 2))
        stop = keep < len(pcm16)
        if stop:
            pcm16 = pcm16[:keep]
            ms = len(pcm16) / 2 * 1000 / rate
        if pcm16:
            data = audio.from_pcm16(pcm16, rate, record.format)
            record.ms += ms
            active.audio_ms += ms
            active.output_tokens_audio += math.ceil(ms / 50)
            self._keep_audio(record, data)
            item_id, output_index = self._item_position(active)
            self._emit(
                ResponseOutputAudioDeltaEvent(
                    event_id=self._event_id(),
                    response_id=response_id,
                    item_id=item_id,
                    output_index=output_index,
                    content_index=0,
                    delta=base64.b64encode(data).decode("ascii"),
                )
            )
            # "Voice cannot be changed during the session once the model has
            # responded with audio at least once."
            self.voice_locked = True
        if stop:
            self._stop(active, "max_output_tokens")

    def response_function_call(
        self, response_id: str, name: str, arguments: str, *, call_id: str | None = None
    ) -> str | None:
        """The responder calls a function. Returns the ``call_id``.

        Emits the whole function-call item: added, argument delta, done. A
        call the request does not allow (a function the client did not
        declare, or one ``tool_choice`` rules out) is dropped, with a warning
        naming which; the rest of the response goes on.
        """
        active = self._response(response_id)
        if active is None:
            return None
        if name not in active.callable:
            if name not in active.declared:
                logger.warning(
                    "responder called %r, which is not a function tool of this "
                    "response (declared: %s); the call is left out",
                    name,
                    ", ".join(sorted(active.declared)) or "none",
                )
            else:
                logger.warning(
                    "responder called %r, which tool_choice rules out; the call is "
                    "left out",
                    name,
                )
            return None
        room = active.room()
        if room is not None and _tokens(arguments) + _tokens(name) > room:
            self._stop(active, "max_output_tokens")
            return None
        self._close_message(active)
        call_id = call_id or self._ids.new("call_", self._now)
        item = FunctionCallItem(
            id=self._ids.new("item_", self._now),
            object="realtime.item",
            status="in_progress",
            call_id=call_id,
            name=name,
            arguments="",
        )
        output_index = self._add_output_item(active, item)
        assert isinstance(item.id, str)
        self._emit(
            ResponseFunctionCallArgumentsDeltaEvent(
                event_id=self._event_id(),
                response_id=response_id,
                item_id=item.id,
                output_index=output_index,
                call_id=call_id,
                delta=arguments,
            )
        )
        self._emit(
            ResponseFunctionCallArgumentsDoneEvent(
                event_id=self._event_id(),
                response_id=response_id,
                item_id=item.id,
                output_index=output_index,
                call_id=call_id,
                name=name,
                arguments=arguments,
            )
        )
        item.arguments = arguments
        item.status = "completed"
        active.output_tokens_text += _tokens(arguments) + _tokens(name)
        self._finish_output_item(active, item, output_index)
        return call_id

    def response_done(
        self,
        response_id: str,
        *,
        status: Literal["completed", "incomplete", "failed"] = "completed",
        reason: Literal["max_output_tokens", "content_filter"] | None = None,
    ) -> None:
        """The responder finished. Emits the closing events and ``response.done``.

        ``status="incomplete"`` with a ``reason`` is a responder that stopped
        early (a chat model's ``finish_reason: "length"`` is
        ``max_output_tokens``).
        """
        active = self._response(response_id)
        if active is None:
            return
        self._finish(active, status, reason)

    def response_failed(
        self,
        response_id: str,
        error: ResponseStatusError | None = None,
    ) -> None:
        """The responder raised: end the response as ``failed``.

        ``error`` says why (``status_details.error``); without one it is a
        generic ``server_error``.
        """
        active = self._response(response_id)
        if active is None:
            return
        self._finish(
            active,
            "failed",
            None,
            error
            or ResponseStatusError(
                type="server_error",
                code="responder_failed",
                message="The server failed to produce this response.",
            ),
        )

    def response_active(self, response_id: str) -> bool:
        """Whether this response is in progress (in-band or out-of-band)."""
        return self._response(response_id) is not None

    # --- Reports from the driver: transcription --------------------------------------

    def transcription_delta(
        self,
        item_id: str,
        delta: str,
        content_index: int = 0,
        *,
        logprobs: list[LogProb] | None = None,
    ) -> None:
        """A piece of a user audio item's transcript.

        ``logprobs`` (the engine's, when it gives them) are sent only when
        ``include`` asks for ``item.input_audio_transcription.logprobs``.
        """
        if item_id not in self._items or not delta:
            return
        self._emit(
            ConversationItemInputAudioTranscriptionDeltaEvent(
                event_id=self._event_id(),
                item_id=item_id,
                content_index=content_index,
                delta=delta,
                logprobs=self._logprobs(logprobs),
            )
        )

    def transcription_completed(
        self,
        item_id: str,
        transcript: str,
        content_index: int = 0,
        *,
        logprobs: list[LogProb] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        audio_tokens: int | None = None,
        text_tokens: int | None = None,
    ) -> None:
        """A user audio item's transcript is complete; it joins the item.

        Usage is in tokens when the engine counts them (``input_tokens`` and
        ``output_tokens``; ``audio_tokens`` and ``text_tokens``, when given,
        break the input down), else the audio's duration in seconds.
        """
        item = self._items.get(item_id)
        if item is None:
            return
        if isinstance(item, MessageItem) and content_index < len(item.content):
            part = item.content[content_index]
            if isinstance(part, InputAudioPart):
                part.transcript = transcript
        usage: TranscriptionUsageTokens | TranscriptionUsageDuration
        if input_tokens is not None and output_tokens is not None:
            usage = TranscriptionUsageTokens(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )
            if audio_tokens is not None or text_tokens is not None:
                usage.input_token_details = TranscriptionUsageTokensDetails(
                    audio_tokens=UNSET if audio_tokens is None else audio_tokens,
                    text_tokens=UNSET if text_tokens is None else text_tokens,
                )
        else:
            record = self._audio.get(item_id)
            seconds = record.ms / 1000 if record is not None else 0.0
            usage = TranscriptionUsageDuration(seconds=round(seconds, 3))
        self._emit(
            ConversationItemInputAudioTranscriptionCompletedEvent(
                event_id=self._event_id(),
                item_id=item_id,
                content_index=content_index,
                transcript=transcript,
                logprobs=self._logprobs(logprobs),
                usage=usage,
            )
        )

    def _logprobs(self, logprobs: list[LogProb] | None) -> list[LogProb] | None | Any:
        include = self.config.include
        if include is None or "item.input_audio_transcription.logprobs" not in include:
            return UNSET
        return logprobs

    def transcription_failed(
        self, item_id: str, message: str, *, code: str = "transcription_failed"
    ) -> None:
        """A user audio item could not be transcribed."""
        if item_id not in self._items:
            return
        self._emit(
            ConversationItemInputAudioTranscriptionFailedEvent(
                event_id=self._event_id(),
                item_id=item_id,
                content_index=0,
                error=TranscriptionFailure(
                    type="transcription_error", code=code, message=message, param=None
                ),
            )
        )

    # --- Reports from the driver: turn detection ------------------------------------

    def speech_detected(self, generation: int, events: list[TurnEvent]) -> None:
        """The events of a :class:`DetectSpeech` of this ``generation``.

        Events of an older generation (the buffer was cleared or committed,
        or turn detection changed since) are dropped.
        """
        if (
            generation != self._detector_generation
            or not self._detector_on
            or self.state is CLOSED
        ):
            return
        self._turn_events(events)

    # --- Read-only views for drivers and tests ---------------------------------------

    @property
    def items(self) -> list[ConversationItem]:
        """The conversation, in order."""
        return [self._items[i] for i in self._order]

    @property
    def active_response_id(self) -> str | None:
        """The id of the response in progress, if any."""
        return self._active.response.id if self._active is not None else None

    @property
    def buffered_ms(self) -> int:
        """Milliseconds of audio in the input buffer."""
        return audio.duration_ms(len(self._buffer), self._input_format())

    @property
    def speech_item_id(self) -> str | None:
        """The item id of the turn server VAD is hearing now (None: no speech)."""
        return self._speech_item_id

    def speech_audio(self, last_ms: int | None = None) -> tuple[bytes, int]:
        """The audio of the turn in progress, as PCM16 and its rate.

        From ``speech_started``'s ``audio_start_ms`` to what is buffered now
        (or only its last ``last_ms``): what ``speech_stopped`` would commit
        if the turn ended here, so a driver can start transcribing before it
        does. Empty when no speech is in progress.
        """
        if self._speech_item_id is None:
            return b"", audio.sample_rate(self._input_format())
        fmt = self._input_format()
        start = audio.bytes_for_ms(self._speech_start_ms - self._buffer_start_ms, fmt)
        start = max(0, min(start, len(self._buffer)))
        if last_ms is not None:
            start = max(start, len(self._buffer) - audio.bytes_for_ms(last_ms, fmt))
        return audio.to_pcm16(self._buffer.read(start), fmt)

    # --- Private methods: dispatch ---------------------------------------------------

    def _dispatch(self, event: ClientEvent) -> None:
        # The handler of every event but the two hot ones (see _HANDLERS).
        match event:
            case InputAudioBufferCommitEvent():
                self._commit_manual()
            case InputAudioBufferClearEvent():
                self._clear()
            case ConversationItemCreateEvent():
                self._create_item(event)
            case ConversationItemTruncateEvent():
                self._truncate(event)
            case ConversationItemDeleteEvent(item_id=item_id):
                self._delete(item_id)
            case ConversationItemRetrieveEvent(item_id=item_id):
                self._retrieve(item_id)
            case ResponseCreateEvent(response=params):
                self._create_response(params if params is not UNSET else None)
            case ResponseCancelEvent(response_id=response_id):
                self._cancel(response_id if response_id is not UNSET else None)
            case SessionCloseEvent():
                self._close(1000, "")
            case _:  # pragma: no cover - the state table filters the rest
                raise AssertionError(f"unhandled event {type(event).__name__}")

    # --- session.update --------------------------------------------------------------

    def _update_session(self, event: SessionUpdateEvent) -> None:
        # All-or-nothing: apply_update returns a new config or raises, and the
        # old config stays in place on any error [WIRE 54, 86].
        before = self.config.audio.input
        config = apply_update(
            self.config,
            event.session,
            voice_locked=self.voice_locked,
            defaults=self.defaults,
        )
        self.config = config
        if config.audio.input is not before:
            self._detector_stale = True
        # session.updated carries "the full, effective configuration", never
        # the client's event_id. (The id is _event_id(), inline: the hot path.)
        self._emit(
            SessionUpdatedEvent(
                event_id=self._ids.new("event_", self._now), session=config
            )
        )

    # --- Input audio buffer ----------------------------------------------------------

    def _input_format(self) -> AudioFormatType:
        return _format_type(self.config.audio.input.format)

    def _turn_detection(self) -> ServerVad | SemanticVad | None:
        return self.config.audio.input.turn_detection

    def _configure_detector(self) -> None:
        self._detector_stale = False
        td = self._turn_detection()
        if td is None:
            if self._detector_on:
                self._detector_on = False
                self._detector_generation += 1
            self._speech_item_id = None
            return
        if isinstance(td, ServerVad):
            threshold, prefix, silence = (
                td.threshold,
                td.prefix_padding_ms,
                td.silence_duration_ms,
            )
        else:
            threshold, prefix, silence = 0.5, 300, SEMANTIC_SILENCE_MS[td.eagerness]
        rate = audio.sample_rate(self._input_format())
        settings = DetectorSettings(
            rate=rate,
            threshold=threshold,
            prefix_padding_ms=prefix,
            silence_duration_ms=silence,
            position_ms=self._buffer_start_ms + self.buffered_ms,
        )
        if not self._detector_on or self._detector_rate != rate:
            self._detector_on = True
            self._detector_rate = rate
            self._detector_generation += 1
            self._detect(DetectorOp("start", settings=settings))
        else:
            self._detect(DetectorOp("configure", settings=settings))

    def _detect(self, op: DetectorOp) -> None:
        """Apply a turn detection op here, or hand it to the driver."""
        if self.vad_offload:
            self._actions.append(DetectSpeech(self._detector_generation, op))
            return
        self._turn_events(self._detector.apply(op))

    def _reset_detector(self) -> None:
        if self._detector_on:
            self._detector_generation += 1
            self._detect(DetectorOp("reset"))

    def _turn_events(self, events: list[TurnEvent]) -> None:
        for turn in events:
            if turn.kind == "started":
                self._speech_started(turn.ms)
            else:
                self._speech_stopped(turn.ms)

    def _append(
        self, event: InputAudioBufferAppendEvent | SessionInputAudioBufferAppendEvent
    ) -> None:
        data = event.audio
        try:
            # pybase64: 50x faster than the standard library's on an 11 MiB
            # append (1 ms, not 50 ms of the event loop); the same errors.
            raw = pybase64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(
                "invalid_value",
                "Invalid 'audio'. Expected base64-encoded audio bytes.",
                "audio",
            ) from None
        fmt = self._input_format()
        if len(raw) % audio.bytes_per_sample(fmt):
            raise InvalidRequestError(
                "invalid_value",
                f"Invalid 'audio'. Expected {fmt} audio: a whole number of "
                f"{audio.bytes_per_sample(fmt)}-byte samples, but got {len(raw)} "
                "bytes.",
                "audio",
            )
        if len(self._buffer) + len(raw) > self.limits.max_buffer_bytes:
            raise InvalidRequestError(
                "input_audio_buffer_full",
                "The input audio buffer is full: it holds at most "
                f"{self.limits.max_buffer_bytes} bytes. Commit or clear it first.",
                "audio",
            )
        if self._detector_stale:
            self._configure_detector()  # before the buffer grows: it sets the timeline
        self._buffer.append(raw)
        if self._detector_on:
            pcm, _ = audio.to_pcm16(raw, fmt)
            self._detect(DetectorOp("feed", pcm16=pcm))
            if self._speech_item_id is None:
                self._drop_old_silence(fmt)

    def _drop_old_silence(self, fmt: AudioFormatType) -> None:
        """Server VAD, no speech: keep the buffer's last
        ``limits.silence_kept_ms`` once it holds twice that.

        The hosted API does not fill a listening session's buffer with
        silence (a quiet phone call would hit ``input_audio_buffer_full``
        after ~11 minutes at 24 kHz); what is dropped is older than any turn
        a late detection could still report (the voice pool's backlog bound
        is 10 s), and the timeline of ``audio_start_ms`` runs on over it.
        """
        kept_ms = self.limits.silence_kept_ms
        if kept_ms is None:
            return
        most = min(
            audio.bytes_for_ms(2 * kept_ms, fmt), self.limits.max_buffer_bytes // 2
        )
        if len(self._buffer) <= most:
            return
        # Whole milliseconds, so the timeline stays exact.
        keep_ms = min(kept_ms, audio.duration_ms(most // 2, fmt))
        cut_ms = self.buffered_ms - keep_ms
        self._buffer.drop(audio.bytes_for_ms(cut_ms, fmt))
        self._buffer_start_ms += cut_ms

    def _commit_manual(self) -> None:
        ms = self.buffered_ms
        if ms < self.limits.min_commit_ms:
            raise InvalidRequestError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at "
                f"least {self.limits.min_commit_ms}ms of audio, but buffer only has "
                f"{ms:.2f}ms of audio.",
                None,
            )
        data = self._buffer.read()
        self._buffer.clear()
        self._buffer_start_ms += ms
        self._reset_detector()
        item_id = self._speech_item_id or self._ids.new("item_", self._now)
        self._speech_item_id = None
        self._commit(data, item_id)

    def _commit(self, data: bytes, item_id: str) -> None:
        previous = self._order[-1] if self._order else None
        item = MessageItem(
            id=item_id,
            object="realtime.item",
            status="completed",
            role="user",
            content=[InputAudioPart(transcript=None)],
        )
        self._emit(
            InputAudioBufferCommittedEvent(
                event_id=self._event_id(), previous_item_id=previous, item_id=item_id
            )
        )
        self._insert(item, previous)
        fmt = self._input_format()
        record = _Audio(fmt, ms=audio.duration_ms(len(data), fmt))
        self._audio[item_id] = record
        self._keep_audio(record, data)
        transcription = self.config.audio.input.transcription
        if transcription is not None:
            pcm, rate = audio.to_pcm16(data, fmt)
            self._actions.append(Transcribe(item_id, 0, pcm, rate, transcription))

    def _clear(self) -> None:
        ms = self.buffered_ms
        self._buffer.clear()
        self._buffer_start_ms += ms
        self._reset_detector()
        self._speech_item_id = None
        self._emit(InputAudioBufferClearedEvent(event_id=self._event_id()))

    def _speech_started(self, ms: int) -> None:
        item_id = self._ids.new("item_", self._now)
        self._speech_item_id = item_id
        self._speech_start_ms = max(ms, round(self._buffer_start_ms))
        self._idle_deadline = None
        self._emit(
            InputAudioBufferSpeechStartedEvent(
                event_id=self._event_id(),
                audio_start_ms=self._speech_start_ms,
                item_id=item_id,
            )
        )
        td = self._turn_detection()
        # interrupt_response: "cancel any ongoing response with output to the
        # default conversation ... when a VAD start event occurs".
        if (
            td is not None
            and td.interrupt_response is not False
            and self.kind == "realtime"
            and self._active is not None
        ):
            self._cancel_response(self._active, "turn_detected")

    def _speech_stopped(self, ms: int) -> None:
        item_id = self._speech_item_id or self._ids.new("item_", self._now)
        self._speech_item_id = None
        self._emit(
            InputAudioBufferSpeechStoppedEvent(
                event_id=self._event_id(), audio_end_ms=ms, item_id=item_id
            )
        )
        # Commit the speech: from audio_start_ms to audio_end_ms. Audio before
        # the start is dropped; audio after the end stays in the buffer.
        fmt = self._input_format()
        start = audio.bytes_for_ms(self._speech_start_ms - self._buffer_start_ms, fmt)
        end = audio.bytes_for_ms(ms - self._buffer_start_ms, fmt)
        start = max(0, min(start, len(self._buffer)))
        end = max(start, min(end, len(self._buffer)))
        data = self._buffer.read(start, end)
        self._buffer.drop(end)
        self._buffer_start_ms += audio.duration_ms(end, fmt)
        self._commit(data, item_id)
        td = self._turn_detection()
        if (
            td is not None
            and td.create_response is not False
            and self.kind == "realtime"
        ):
            if self._active is None:
                self._create_response(None)

    def _idle_timeout(self) -> None:
        td = self._turn_detection()
        if not isinstance(td, ServerVad) or td.idle_timeout_ms is None or self._active:
            return
        # "audio_start_ms and audio_end_ms ... demarcate the segment of audio
        # after the last model response up to the triggering time ... The
        # empty audio will be committed to the conversation as an input_audio
        # item (there will be a input_audio_buffer.committed event) and a
        # model response will be generated."
        end = self._buffer_start_ms + self.buffered_ms
        start = min(max(self._idle_audio_start, self._buffer_start_ms), end)
        fmt = self._input_format()
        skip = min(
            audio.bytes_for_ms(start - self._buffer_start_ms, fmt), len(self._buffer)
        )
        data = self._buffer.read(skip)
        self._buffer.clear()
        self._buffer_start_ms = end
        self._reset_detector()
        item_id = self._ids.new("item_", self._now)
        self._speech_item_id = None
        self._emit(
            InputAudioBufferTimeoutTriggeredEvent(
                event_id=self._event_id(),
                audio_start_ms=round(start),
                audio_end_ms=round(end),
                item_id=item_id,
            )
        )
        self._commit(data, item_id)
        self._create_response(None)

    # --- Conversation items ----------------------------------------------------------

    def _insert(self, item: ConversationItem, previous: str | None) -> None:
        assert isinstance(item.id, str)
        index = 0 if previous is None else self._order.index(previous) + 1
        self._order.insert(index, item.id)
        self._items[item.id] = item
        if len(self._order) > self.limits.max_items:
            oldest = self._order.pop(0)
            del self._items[oldest]
            self._drop_audio(oldest)
        self._emit(
            ConversationItemAddedEvent(
                event_id=self._event_id(), previous_item_id=previous, item=item
            )
        )
        self._emit(
            ConversationItemDoneEvent(
                event_id=self._event_id(), previous_item_id=previous, item=item
            )
        )

    def _create_item(self, event: ConversationItemCreateEvent) -> None:
        item = event.item
        # "If set to `root`, the new item will be added to the beginning of the
        # conversation"; absent appends; an unknown id is an error.
        previous: str | None
        if event.previous_item_id is UNSET:
            previous = self._order[-1] if self._order else None
        elif event.previous_item_id == "root":
            previous = None
        elif event.previous_item_id in self._items:
            previous = event.previous_item_id
        else:
            raise InvalidRequestError(
                "item_not_found",
                f"Error adding item: the previous item with id "
                f"'{event.previous_item_id}' does not exist.",
                "previous_item_id",
            )
        item = self._check_item(item)
        if item.id is not UNSET and item.id in self._items:
            raise InvalidRequestError(
                "item_already_exists",
                f"Error adding item: an item with id '{item.id}' already exists.",
                "item.id",
            )
        if item.id is UNSET:
            item.id = self._ids.new("item_", self._now)
        item.object = "realtime.item"
        item.status = "completed"
        self._insert(item, previous)

    def _check_item(
        self, item: ConversationItem
    ) -> MessageItem | FunctionCallItem | FunctionCallOutputItem:
        """Check what the item's schema cannot express; return it completed."""
        if isinstance(item, MessageItem):
            allowed: dict[str, tuple[type, ...]] = {
                "system": (InputTextPart,),
                "user": (InputTextPart, InputAudioPart, InputImagePart),
                "assistant": (OutputTextPart, OutputAudioPart),
            }
            for i, part in enumerate(item.content):
                if not isinstance(part, allowed[item.role]):
                    names = [_PART_TAGS[c] for c in allowed[item.role]]
                    raise errors.invalid_value(
                        part.__struct_config__.tag, names, f"item.content[{i}].type"
                    )
                if isinstance(part, OutputAudioPart):
                    if part.audio is None:
                        part.audio = UNSET
                        if part.transcript is UNSET:
                            # The hosted API speaks of the text it is missing.
                            raise errors.missing_required(f"item.content[{i}].text")
                    elif part.audio is not UNSET:
                        self._check_base64(part.audio, f"item.content[{i}].audio")
                if isinstance(part, InputAudioPart):
                    if part.transcript is UNSET:
                        part.transcript = None
                    if part.audio is not UNSET:
                        self._check_base64(part.audio, f"item.content[{i}].audio")
        elif isinstance(item, FunctionCallItem):
            if item.call_id is UNSET:
                item.call_id = self._ids.new("call_", self._now)
        elif not isinstance(item, FunctionCallOutputItem):
            raise InvalidRequestError(
                "invalid_value",
                f"Invalid value: '{item.__struct_config__.tag}'. Items of this type "
                "come from MCP servers, which this server does not run.",
                "item.type",
            )
        return item

    def _check_base64(self, data: str, param: str) -> None:
        try:
            pybase64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(
                "invalid_value",
                f"Invalid '{param}'. Expected base64-encoded audio.",
                param,
            ) from None

    def _item(self, item_id: str, param: str = "item_id") -> ConversationItem:
        item = self._items.get(item_id)
        if item is None:
            raise InvalidRequestError(
                "item_not_found", f"Item with item_id not found: {item_id}", param
            )
        return item

    def _truncate(self, event: ConversationItemTruncateEvent) -> None:
        item = self._item(event.item_id)
        if not (isinstance(item, MessageItem) and item.role == "assistant"):
            raise InvalidRequestError(
                "invalid_value",
                "Only assistant messages can be truncated.",
                "item_id",
            )
        if event.content_index >= len(item.content) or not isinstance(
            item.content[event.content_index], OutputAudioPart
        ):
            raise InvalidRequestError(
                "invalid_value",
                f"Content part {event.content_index} of item {event.item_id} is not "
                "audio.",
                "content_index",
            )
        # The audio generated so far, also while the item is still streaming.
        record = self._audio.get(event.item_id)
        length = round(record.ms) if record is not None else 0
        if event.audio_end_ms > length:
            raise InvalidRequestError(
                "invalid_value",
                f"Audio content of {length}ms is already shorter than "
                f"{event.audio_end_ms}ms",
                None,  # as captured (pipecat-ai/pipecat#2106)
            )
        part = item.content[event.content_index]
        assert isinstance(part, OutputAudioPart)
        # "Truncating audio will delete the server-side text transcript to
        # ensure there is not text in the context that hasn't been heard":
        # the transcript keeps the words sent before the audio heard.
        transcript = ""
        if record is not None:
            record.marks = [m for m in record.marks if m[0] < event.audio_end_ms]
            transcript = "".join(delta for _, delta in record.marks)
            record.ms = event.audio_end_ms
            record.truncated = True  # a part still streaming stops growing
            if record.data is not None:
                keep = audio.bytes_for_ms(event.audio_end_ms, record.format)
                self._audio_bytes -= max(0, len(record.data) - keep)
                del record.data[keep:]
        part.transcript = transcript
        self._emit(
            ConversationItemTruncatedEvent(
                event_id=self._event_id(),
                item_id=event.item_id,
                content_index=event.content_index,
                audio_end_ms=event.audio_end_ms,
            )
        )

    def _delete(self, item_id: str) -> None:
        self._item(item_id)
        self._order.remove(item_id)
        del self._items[item_id]
        self._drop_audio(item_id)
        self._emit(
            ConversationItemDeletedEvent(event_id=self._event_id(), item_id=item_id)
        )

    def _retrieve(self, item_id: str) -> None:
        item = self._item(item_id)
        record = self._audio.get(item_id)
        if (
            record is not None
            and record.data is not None
            and isinstance(item, MessageItem)
        ):
            # The item with its audio, as the hosted API returns it: the user's
            # input audio (as committed) or the assistant's (as heard).
            encoded = base64.b64encode(record.data).decode("ascii")
            content: list[Any] = [
                msgspec.structs.replace(part, audio=encoded)
                if isinstance(part, InputAudioPart | OutputAudioPart)
                else part
                for part in item.content
            ]
            item = msgspec.structs.replace(item, content=content)
        self._emit(ConversationItemRetrievedEvent(event_id=self._event_id(), item=item))

    def _keep_audio(self, record: _Audio, data: bytes) -> None:
        """Keep an item's audio for retrieval, within ``max_audio_bytes``."""
        if record.data is None:
            return
        record.data += data
        self._audio_bytes += len(data)
        if self._audio_bytes > self.limits.max_audio_bytes:
            for other in self._audio.values():  # oldest first
                if other.data is not None and other is not record:
                    self._audio_bytes -= len(other.data)
                    other.data = None
                    if self._audio_bytes <= self.limits.max_audio_bytes:
                        return
            # This one alone is over the limit: keep none of it.
            self._audio_bytes -= len(record.data)
            record.data = None

    def _drop_audio(self, item_id: str) -> None:
        record = self._audio.pop(item_id, None)
        if record is not None and record.data is not None:
            self._audio_bytes -= len(record.data)
            record.data = None  # an item still streaming keeps no more

    # --- Responses -------------------------------------------------------------------

    def _create_response(self, params: ResponseCreateParams | None) -> None:
        config = self.config
        assert isinstance(config, RealtimeSessionConfig)
        p = params or ResponseCreateParams()
        out_of_band = _none_unset(p.conversation) == "none"
        if self._active is not None and not out_of_band:
            # Out-of-band responses may run beside the default conversation's.
            raise InvalidRequestError(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._active.response.id}. Wait until the response is finished "
                "before creating a new one.",
                None,
            )
        modalities = _none_unset(p.output_modalities)
        if modalities is UNSET:
            modalities = config.output_modalities
        if len(modalities) != 1:
            raise InvalidRequestError(
                "invalid_value",
                f"Invalid modalities: {list(modalities)}. Supported combinations are: "
                "['text'] and ['audio'].",
                "response.output_modalities",
            )
        fmt = config.audio.output.format
        voice = config.audio.output.voice
        output = _none_unset(p.audio)
        output = output.output if output is not UNSET else UNSET
        if output is not UNSET and output is not None:
            if _none_unset(output.format) is not UNSET:
                fmt = output.format
            if _none_unset(output.voice) is not UNSET:
                if self.voice_locked and output.voice != voice:
                    raise errors.cannot_update_voice()
                voice = output.voice
        tools = _none_unset(p.tools)
        if tools is UNSET:
            tools = config.tools
        tool_choice = _none_unset(p.tool_choice)
        if tool_choice is UNSET:
            tool_choice = config.tool_choice
        check_tool_choice(tools, tool_choice, "response.tool_choice")
        conversation: list[ConversationItem]
        inputs = _none_unset(p.input)
        if inputs is not UNSET:
            conversation = [
                self._item(i.id, f"response.input[{n}].id")
                if isinstance(i, ItemReference)
                else self._check_item(i)
                for n, i in enumerate(inputs)
            ]
        else:
            conversation = self.items
        max_tokens = _none_unset(p.max_output_tokens)
        if max_tokens is UNSET:
            max_tokens = config.max_output_tokens
        metadata = p.metadata if p.metadata is not UNSET else None
        instructions = _none_unset(p.instructions)
        if instructions is UNSET:
            instructions = config.instructions
        response_id = self._ids.new("resp_", self._now)
        response = Response(
            id=response_id,
            status="in_progress",
            output=[],
            conversation_id=None if out_of_band else self._conversation_id(),
            output_modalities=list(modalities),
            max_output_tokens=max_tokens,
            audio=ResponseAudio(output=ResponseAudioOutput(format=fmt, voice=voice)),
            metadata=metadata,
        )
        active = _Active(
            response=response,
            format=fmt,
            out_of_band=out_of_band,
            modality=modalities[0],
            callable=_callable(tools, tool_choice),
            declared=_callable(tools, "auto"),
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        )
        if out_of_band:
            self._oob[response_id] = active
        else:
            self._active = active
        self._idle_deadline = None
        self._emit(ResponseCreatedEvent(event_id=self._event_id(), response=response))
        request = ResponseRequest(
            response_id=response_id,
            conversation=conversation,
            instructions=instructions,
            tools=tools,
            tool_choice=tool_choice,
            output_modalities=list(modalities),
            voice=voice,
            speed=config.audio.output.speed,
            max_output_tokens=max_tokens,
            metadata=metadata,
            out_of_band=out_of_band,
        )
        self._actions.append(StartResponse(request))

    def _conversation_id(self) -> str:
        return "conv_" + self.config.id.removeprefix("sess_")

    def _cancel(self, response_id: str | None) -> None:
        if response_id is None:
            # The default conversation's response, else the newest out-of-band.
            target = self._active or next(reversed(self._oob.values()), None)
        else:
            target = self._response(response_id)
        if target is None:
            raise InvalidRequestError(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
            )
        self._cancel_response(target, "client_cancelled")

    def _cancel_response(
        self, active: _Active, reason: Literal["client_cancelled", "turn_detected"]
    ) -> None:
        self._actions.append(CancelResponse(active.response.id))
        self._finish(active, "cancelled", reason)

    def _stop(self, active: _Active, reason: Literal["max_output_tokens"]) -> None:
        """End a response the engine limits (its responder is stopped)."""
        self._actions.append(CancelResponse(active.response.id))
        self._finish(active, "incomplete", reason)

    def _response(self, response_id: str) -> _Active | None:
        # Reports for a response that is no longer active (cancelled while the
        # responder was still producing) are dropped.
        if self.state is CLOSED:
            return None
        active = self._active
        if active is not None and active.response.id == response_id:
            return active
        return self._oob.get(response_id)

    def _item_position(self, active: _Active) -> tuple[str, int]:
        assert active.item is not None and isinstance(active.item.id, str)
        return active.item.id, len(active.response.output) - 1

    def _add_output_item(self, active: _Active, item: ConversationItem) -> int:
        output_index = len(active.response.output)
        active.response.output.append(item)
        self._emit(
            ResponseOutputItemAddedEvent(
                event_id=self._event_id(),
                response_id=active.response.id,
                output_index=output_index,
                item=item,
            )
        )
        if not active.out_of_band:
            previous = self._order[-1] if self._order else None
            assert isinstance(item.id, str)
            self._order.append(item.id)
            self._items[item.id] = item
            self._emit(
                ConversationItemAddedEvent(
                    event_id=self._event_id(), previous_item_id=previous, item=item
                )
            )
        return output_index

    def _finish_output_item(
        self, active: _Active, item: ConversationItem, output_index: int
    ) -> None:
        self._emit(
            ResponseOutputItemDoneEvent(
                event_id=self._event_id(),
                response_id=active.response.id,
                output_index=output_index,
                item=item,
            )
        )
        if not active.out_of_band:
            assert isinstance(item.id, str)
            index = self._order.index(item.id)
            previous = self._order[index - 1] if index else None
            self._emit(
                ConversationItemDoneEvent(
                    event_id=self._event_id(), previous_item_id=previous, item=item
                )
            )

    def _open_part(self, active: _Active) -> _Part:
        if active.part is not None:
            return active.part
        kind: Literal["text", "audio"] = (
            "audio" if active.modality == "audio" else "text"
        )
        # A message item and its one content part open together and close
        # together (_close_message), so a new part always means a new item.
        item = MessageItem(
            id=self._ids.new("item_", self._now),
            object="realtime.item",
            status="in_progress",
            role="assistant",
            content=[],
        )
        active.item = item
        self._add_output_item(active, item)
        if kind == "audio":
            item.content.append(OutputAudioPart(transcript=""))
            info: Any = AudioPartInfo(transcript="")
        else:
            item.content.append(OutputTextPart(text=""))
            info = TextPartInfo(text="")
        record = _Audio(_format_type(active.format))
        assert isinstance(item.id, str)
        if kind == "audio" and not active.out_of_band:
            # Measured as it streams: a truncation may come before the end.
            self._audio[item.id] = record
        else:
            record.data = None  # nothing to retrieve it by
        active.part = _Part(kind, record)
        item_id, output_index = self._item_position(active)
        self._emit(
            ResponseContentPartAddedEvent(
                event_id=self._event_id(),
                response_id=active.response.id,
                item_id=item_id,
                output_index=output_index,
                content_index=0,
                part=info,
            )
        )
        return active.part

    def _close_message(self, active: _Active, status: str = "completed") -> None:
        """Emit the closing events of the open message item, if any."""
        item, part = active.item, active.part
        if part is None:
            return
        assert item is not None  # they open and close together
        item_id, output_index = self._item_position(active)
        base: dict[str, Any] = dict(
            response_id=active.response.id,
            item_id=item_id,
            output_index=output_index,
            content_index=0,
        )
        text = "".join(part.text)
        if part.audio.truncated:
            # A later completion keeps the truncation: what was heard.
            text = "".join(delta for _, delta in part.audio.marks)
        if part.kind == "audio":
            self._emit(ResponseOutputAudioDoneEvent(event_id=self._event_id(), **base))
            self._emit(
                ResponseOutputAudioTranscriptDoneEvent(
                    event_id=self._event_id(), transcript=text, **base
                )
            )
            item.content[0] = OutputAudioPart(transcript=text)
            info: Any = AudioPartInfo(transcript=text)
        else:
            self._emit(
                ResponseOutputTextDoneEvent(
                    event_id=self._event_id(), text=text, **base
                )
            )
            item.content[0] = OutputTextPart(text=text)
            info = TextPartInfo(text=text)
        self._emit(
            ResponseContentPartDoneEvent(event_id=self._event_id(), part=info, **base)
        )
        item.status = "completed" if status == "completed" else "incomplete"
        self._finish_output_item(active, item, output_index)
        active.item = None
        active.part = None

    def _finish(
        self,
        active: _Active,
        status: Literal["completed", "cancelled", "incomplete", "failed"],
        reason: str | None,
        error: ResponseStatusError | None = None,
    ) -> None:
        self._close_message(active, status)
        response = active.response
        response.status = status
        if status != "completed":
            response.status_details = ResponseStatusDetails(
                type=status,
                reason=reason if reason is not None else UNSET,  # type: ignore[arg-type]
                error=error if error is not None else UNSET,
            )
        input_text = sum(_tokens(self._text_of(i)) for i in self.items)
        input_audio = sum(math.ceil(a.ms / 100) for a in self._audio.values())
        output = active.output_tokens_text + active.output_tokens_audio
        response.usage = Usage(
            total_tokens=input_text + input_audio + output,
            input_tokens=input_text + input_audio,
            output_tokens=output,
            input_token_details=InputTokenDetails(
                text_tokens=input_text, audio_tokens=input_audio
            ),
            output_token_details=OutputTokenDetails(
                text_tokens=active.output_tokens_text,
                audio_tokens=active.output_tokens_audio,
            ),
        )
        if active is self._active:
            self._active = None
        else:
            del self._oob[response.id]
        self._emit(ResponseDoneEvent(event_id=self._event_id(), response=response))
        self._emit_rate_limits(response.usage.total_tokens)
        td = self._turn_detection()
        if isinstance(td, ServerVad) and isinstance(td.idle_timeout_ms, int):
            # "it's set to the `response.done` time plus audio playback duration"
            self._idle_deadline = (
                self._now + (active.audio_ms + td.idle_timeout_ms) / 1000
            )
            self._idle_audio_start = self._buffer_start_ms + self.buffered_ms

    def _emit_rate_limits(self, tokens: int) -> None:
        """``rate_limits.updated`` after ``response.done``, as the hosted API.

        The limits are the operator's (``Limits.rate_limit_*``); what is left
        counts this session's responses and tokens in the current window.
        """
        limits = self.limits
        window = limits.rate_limit_window_s
        if self._window_start is None or self._now >= self._window_start + window:
            self._window_start = self._now
            self._window_requests = 0
            self._window_tokens = 0
        self._window_requests += 1
        self._window_tokens += tokens
        reset = round(max(0.0, self._window_start + window - self._now), 3)
        self._emit(
            RateLimitsUpdatedEvent(
                event_id=self._event_id(),
                rate_limits=[
                    RateLimit(
                        name="requests",
                        limit=limits.rate_limit_requests,
                        remaining=max(
                            0, limits.rate_limit_requests - self._window_requests
                        ),
                        reset_seconds=reset,
                    ),
                    RateLimit(
                        name="tokens",
                        limit=limits.rate_limit_tokens,
                        remaining=max(
                            0, limits.rate_limit_tokens - self._window_tokens
                        ),
                        reset_seconds=reset,
                    ),
                ],
            )
        )

    @staticmethod
    def _text_of(item: ConversationItem) -> str:
        if isinstance(item, MessageItem):
            out = []
            for part in item.content:
                if isinstance(part, InputTextPart):
                    out.append(part.text)
                elif isinstance(part, OutputTextPart) and part.text is not UNSET:
                    out.append(part.text)
                elif isinstance(part, InputAudioPart | OutputAudioPart) and isinstance(
                    part.transcript, str
                ):
                    out.append(part.transcript)
            return " ".join(out)
        if isinstance(item, FunctionCallItem):
            return item.arguments
        # The engine refuses MCP items, so what is left is a call's output.
        return item.output if isinstance(item, FunctionCallOutputItem) else ""

    # --- Private methods: plumbing ---------------------------------------------------

    def _check_open(self) -> None:
        if self.state is CLOSED:
            raise InvalidState("session is closed")

    def _close(self, code: int, reason: str) -> None:
        for active in [self._active, *self._oob.values()]:
            if active is not None:
                self._actions.append(CancelResponse(active.response.id))
        self._active = None
        self._oob.clear()
        self.state = CLOSED
        self.close_code = code
        self.close_reason = reason
        self._actions.append(Close(code, reason))

    def _event_id(self) -> str:
        return self._ids.new("event_", self._now)

    def _emit(self, event: ServerEvent) -> None:
        self._outbox.append(encode(event))
        counts = self.counts
        if counts is not None:
            kind = type(event)
            counts.sent[kind] = counts.sent.get(kind, 0) + 1

    def _emit_error(self, exc: ProtocolError) -> None:
        counts = self.counts
        if counts is not None:
            code = exc.code or "null"
            counts.errors[code] = counts.errors.get(code, 0) + 1
        self._emit(
            ErrorEvent(
                event_id=self._event_id(),
                error=ErrorDetail(
                    type=exc.type,
                    code=exc.code,
                    message=exc.message,
                    param=exc.param,
                    event_id=exc.event_id,
                ),
            )
        )


#: Per session kind, the handler of each event class the state table
#: (openrealtime.state.ACCEPTED) accepts: ``session.update`` and appends go
#: straight to theirs, the rest through ``_dispatch``.
_HOT: dict[type, Callable[[Session, Any], None]] = {
    SessionUpdateEvent: Session._update_session,
    InputAudioBufferAppendEvent: Session._append,
    SessionInputAudioBufferAppendEvent: Session._append,
}
_HANDLERS: dict[str, dict[type, Callable[[Session, Any], None]]] = {
    kind: {cls: _HOT.get(cls, Session._dispatch) for cls in classes}
    for kind, classes in _ACCEPTED_CLASSES.items()
}
