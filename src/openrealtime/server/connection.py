"""The per-connection driver: frames in, engine, frames out.

Theory of operation
-------------------
A :class:`Connection` owns one :class:`~openrealtime.session.Session` and
does for it everything that takes time or I/O. A transport adapter (the ASGI
endpoint in :mod:`openrealtime.server.app`, or another) gives it two
callbacks, ``send_text(frame)`` and ``close(code, reason)``, and feeds it::

    connection = Connection(session, send_text=..., close=..., responder=...)
    connection.start()                      # queues session.created
    try:
        async for frame in transport:       # until the client goes away
            connection.receive_text(frame)  # or receive_binary()
            await connection.drain()        # backpressure
    finally:
        await connection.aclose()           # nothing is left behind

Output order is the engine's order. Feeding the engine and queueing what it
produced happen with no ``await`` in between, wherever the input comes from
(a client frame, a responder chunk, a timer). Frames leave in one of two ways:

* an *awaitable* transport (ASGI: ``send_text``/``close`` coroutines): one
  writer sends the queue in order. The receive loop calls
  :meth:`Connection.feed_text` (or ``receive_text`` then :meth:`flush`), which
  sends the replies to a frame inline when no other send is in flight, so the
  common request/reply costs no task switch; frames from responders and
  timers wake the writer task;
* a *synchronous* transport (``write``/``write_close`` callables that buffer,
  as picows and asyncio transports do): each frame is written the moment the
  engine produces it, with no queue and no task. The adapter reports its
  transport's flow control with :meth:`pause_writing`/:meth:`resume_writing`,
  and :meth:`drain` (which responders await after every chunk) waits while
  writing is paused.

The engine's actions run here:

* ``StartResponse``: a task iterates the responder and reports each chunk;
* ``CancelResponse``: that task is cancelled (the engine already sent
  ``response.done`` with status ``cancelled``);
* ``DetectSpeech`` (a session made with ``vad_offload=True``): the op goes
  to the session's lane of the voice pool (:mod:`openrealtime.voice.compute`),
  which scores the audio on a worker and reports the turn events back;
* ``Transcribe``: the configured transcriber runs in the voice pool (or a
  thread when there is none), or the item fails with a clear message when
  there is no transcriber or the audio is longer than
  ``max_transcription_seconds``;
* ``Close``: the frames already queued are sent, then the close frame.

The engine's one timer (session expiry, idle timeout) is a ``loop.call_at``,
re-armed only when ``session.get_timer()`` changed, converting the engine's
epoch seconds to the loop's clock. A deadline more than :data:`FAR_S` off
(an idle session's expiry, an hour away) first waits on the loop's shared
coarse schedule (:func:`~openrealtime.server.slots.far_deadlines`: a loop
timer each was ~0.55 KiB of an idle session) and takes its own loop timer
once it is near, so it fires as precisely as before.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Literal, Protocol

from openrealtime.exceptions import InvalidRequestError
from openrealtime.ids import RandomIds
from openrealtime.models.client_events import ClientEvent
from openrealtime.models.server_events import LogProb
from openrealtime.models.session import Transcription
from openrealtime.responders.base import Chunk, Responder, apply_chunk, failure
from openrealtime.server.early import EarlyTranscription
from openrealtime.server.handshake import error_frame
from openrealtime.server.metrics import Metrics, client_event_type, server_event_type
from openrealtime.server.slots import far_deadlines
from openrealtime.session import (
    CancelResponse,
    Close,
    DetectSpeech,
    ResponseRequest,
    Session,
    StartResponse,
    Transcribe,
)
from openrealtime.turns import SpeechDetector, TurnEvent
from openrealtime.voice.asr import (
    TokenUsage,
    TranscriptDelta,
    UnsupportedLanguage,
    run_transcriber,
)
from openrealtime.voice.compute import Lane, LaneExecutor, VadLane, VoicePool
from openrealtime.voice.transcribe import iterate_in_thread


__all__ = [
    "Connection",
    "EventObserver",
    "NO_TRANSCRIBER",
    "Transcriber",
]

logger = logging.getLogger("openrealtime.server")

#: The failure reported for input audio transcription with no recognizer.
NO_TRANSCRIBER = "No transcription engine is configured on this server."

Direction = Literal["<", ">"]


class EventObserver(Protocol):
    """Sees every frame of a connection: ``<`` from the client, ``>`` to it."""

    def __call__(self, direction: Direction, data: bytes) -> None:
        """Called once per frame, in order; must not block."""
        ...


#: Seconds off past which the engine's deadline waits on the loop's shared
#: coarse schedule before it takes a loop timer of its own.
FAR_S = 30.0

#: Seconds a response waits for pending transcripts of the user's turn.
TRANSCRIPT_WAIT = 10.0

#: Client frames held, at most, while turn detection catches up, and their
#: bytes; past either, the client is closed (1013): it sends audio faster
#: than this server can score it and does not stop when asked to wait.
MAX_HELD = 256
MAX_HELD_BYTES = 32 * 1024 * 1024
#: The frame cap when the driver stops reading at the first held frame
#: (``on_held``): what is held past it is only what one read of the socket had
#: already brought (picows' read buffer grows to the largest frame seen, so
#: one read can bring hundreds of small frames); the byte cap still holds.
MAX_HELD_PAUSED = 65536

#: The error a client gets when it overruns the held frames.
BACKLOG_FULL = InvalidRequestError(
    "input_audio_backlog_full",
    "Input audio arrives faster than this server can process it; the "
    "connection is closed. Send audio at most at real time.",
    None,
)

#: The most audio one transcription takes, by default (seconds).
MAX_TRANSCRIPTION_SECONDS = 120.0

#: The failure reported for a commit longer than the transcription cap.
TOO_LONG = (
    "Audio of {seconds:.1f} seconds is longer than {limit:g} seconds, the most "
    "this server transcribes at once."
)


class Transcriber(Protocol):
    """Turns one utterance of PCM16 audio into text (run in a thread).

    The same shape as :class:`openrealtime.voice.Transcriber`.
    """

    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Iterator[str]:
        """Yield text deltas whose concatenation is the transcript."""
        ...


class _Flag:
    """:class:`asyncio.Event` with no list of waiters until one waits.

    A connection has three; asyncio's allocates a deque (~760 bytes) for
    each when created, which was a third of an idle session's Python memory.
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if not self._set:
            self._set = True
            waiters, self._waiters = self._waiters, None
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        """Reset the flag."""
        self._set = False

    async def wait(self) -> None:
        """Return once the flag is set."""
        if self._set:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)


class _NoQueue(collections.deque):  # type: ignore[type-arg]
    """The queue of a synchronous transport, which never queues a frame."""

    def append(self, item: object) -> None:
        raise AssertionError("a synchronous transport queues nothing")


#: Shared by every connection over a synchronous transport.
_NO_QUEUE: collections.deque[bytes | Close] = _NoQueue()


def _is_append(data: str | bytes) -> bool:
    return client_event_type(data) == "input_audio_buffer.append"


class Connection:
    """Drives one session over one transport.

    Args:
        session: the engine, just created (its ``session.created`` is queued
            by :meth:`start`).
        send_text: sends one text frame; awaited by the writer, one at a time.
        close: sends the close frame with this code and reason.
        write: instead of ``send_text``/``close``, a synchronous transport:
            buffers one text frame for sending (never blocks).
        write_close: with ``write``: buffers the close frame.
        responder: produces the content of responses.
        transcriber: recognizes user audio; ``None`` fails transcription.
        metrics: counters to update (one object per server).
        on_event: observer of every frame (for inspectors).
        debug: log every event at DEBUG, with its direction.
        high_water: frames queued before :meth:`drain` waits for the writer.
        clock: seconds since the epoch, the engine's time.
        voice: the voice pool that runs turn detection (of a session made
            with ``vad_offload=True``) and transcription; ``None``: detection
            runs here, inline, and transcription on a thread.
        max_transcription_seconds: longer audio is not transcribed (the
            item's transcription fails with a clear message); ``None``: no cap.

    Raises:
        TypeError: neither ``send_text`` and ``close`` nor ``write`` and
            ``write_close`` were given.
    """

    # Slots, not a __dict__ (~1.6 KiB per session past 30 attributes);
    # subclasses without __slots__ get a __dict__ as usual.
    __slots__ = (
        "session",
        "_send_text",
        "_close",
        "_write_now",
        "_close_now",
        "_responder",
        "_transcriber",
        "_metrics",
        "_on_event",
        "_debug",
        "_observing",
        "_observer_failed",
        "_high_water",
        "_clock",
        "_loop",
        "_queue",
        "_wakeup",
        "_drained",
        "_writer",
        "_sending",
        "_holding",
        "_tasks",
        "_transcriptions",
        "_voice",
        "_max_transcription_seconds",
        "_vad",
        "_inline_detector",
        "_asr_lanes",
        "_held",
        "_held_drained",
        "_held_bytes",
        "on_held",
        "_ids",
        "_early",
        "_timer",
        "_timer_deadline",
        "_far_slot",
        "_closing",
        "_closed",
        "close_code",
        "close_reason",
    )

    def __init__(
        self,
        session: Session,
        *,
        send_text: Callable[[bytes], Awaitable[None]] | None = None,
        close: Callable[[int, str], Awaitable[None]] | None = None,
        write: Callable[[bytes], None] | None = None,
        write_close: Callable[[int, str], None] | None = None,
        responder: Responder,
        transcriber: Transcriber | None = None,
        metrics: Metrics | None = None,
        on_event: EventObserver | None = None,
        debug: bool = False,
        high_water: int = 256,
        clock: Callable[[], float] = time.time,
        voice: VoicePool | None = None,
        max_transcription_seconds: float | None = MAX_TRANSCRIPTION_SECONDS,
    ) -> None:
        if write is not None and write_close is not None:
            send_text = close = None
        elif send_text is None or close is None:
            raise TypeError("give send_text and close, or write and write_close")
        self.session = session
        self._send_text = send_text
        self._close = close
        self._write_now = write
        self._close_now = write_close
        self._responder = responder
        self._transcriber = transcriber
        self._metrics = metrics
        self._on_event = on_event
        self._debug = debug
        # One test per frame instead of two. Metrics are not observed: the
        # engine counts its own events (the session's ``counts``), and
        # :meth:`fail` and :meth:`send_event` count the frames they add.
        self._observing = on_event is not None or debug
        self._observer_failed = False
        self._high_water = high_water
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        # A synchronous transport writes every frame at once: no queue.
        self._queue: collections.deque[bytes | Close] = (
            collections.deque() if write is None else _NO_QUEUE
        )
        self._wakeup = _Flag()
        # Set while frames may be added without waiting: the queue is at most
        # high_water long (awaitable transport), or writing is not paused.
        self._drained = _Flag(True)
        self._writer: asyncio.Task[None] | None = None
        #: A coroutine is awaiting send_text (the writer or an inline flush).
        self._sending = False
        #: receive_text is feeding a frame whose replies feed_text sends inline.
        self._holding = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # A dict as an ordered set: empty, 64 bytes against a set's 216.
        self._transcriptions: dict[asyncio.Task[None], None] = {}
        self._voice = voice
        self._max_transcription_seconds = max_transcription_seconds
        self._vad: VadLane | None = None
        self._inline_detector: SpeechDetector | None = None
        self._asr_lanes: dict[int, Lane] = {}
        # Client frames that wait for turn detection to catch up: a commit,
        # a clear or an update must see the events of the audio before it.
        # (Made at the first frame held: most sessions never hold one.)
        self._held: collections.deque[str | bytes] | None = None
        self._held_drained = _Flag(True)
        self._held_bytes = 0
        #: Called with True when client frames start to wait for turn
        #: detection and with False when none waits any more: a driver whose
        #: reads come by callback (picows) pauses reading from the socket
        #: meanwhile, as a receive loop over an awaitable transport waits in
        #: :meth:`drain` (backpressure instead of ``input_audio_backlog_full``).
        self.on_held: Callable[[bool], None] | None = None
        self._ids = RandomIds()
        #: Decodes a turn at its first silence, before VAD commits it.
        self._early = (
            EarlyTranscription(
                transcriber, self._decode_early if voice is not None else None
            )
            if transcriber is not None
            else None
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        #: The slot of far_deadlines() the deadline waits in, until it is near.
        self._far_slot: int | None = None
        self._closing = False
        self._closed = _Flag()
        #: The close code and reason, once known (ours or the client's).
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def observer(self) -> EventObserver | None:
        """The observer of every frame given as ``on_event``, if any."""
        return self._on_event

    @property
    def debug(self) -> bool:
        """Log every event at DEBUG, with its direction."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = value
        self._observing = self._on_event is not None or value

    # --- Lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Queue ``session.created``, start the writer and arm the timer."""
        if self._write_now is None:
            self._writer = self._loop.create_task(self._write())
        self._pump()

    @property
    def closing(self) -> bool:
        """Whether the server decided to close (input is ignored from then)."""
        return self._closing

    async def wait_closed(self) -> None:
        """Wait until the close frame was sent or the client went away."""
        await self._closed.wait()

    def disconnected(self, code: int | None = None, reason: str = "") -> None:
        """The client went away (its close frame or a lost transport)."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._closing = True
        self._closed.set()
        self._drained.set()
        self._drop_held()

    def _drop_held(self) -> None:
        """Forget the frames held behind the VAD (the connection is ending)."""
        self._held = None
        self._held_bytes = 0
        self._held_done()

    def _held_done(self) -> None:
        if not self._held_drained.is_set():
            self._held_drained.set()
            if self.on_held is not None:
                self.on_held(False)

    async def aclose(self) -> None:
        """Stop everything: responders, transcriptions, the timer, the writer.

        Safe to call more than once, and from a ``finally`` while cancelled.
        """
        self._closing = True
        self._cancel_timer()
        if self._vad is not None:
            self._vad.close()
        if self._early is not None:
            self._early.discard()
        tasks = [*self._tasks.values(), *self._transcriptions]
        if self._writer is not None:
            tasks.append(self._writer)
        for task in tasks:
            task.cancel()
        self._tasks.clear()
        self._transcriptions.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._drop_held()
        self._drained.set()
        self._closed.set()

    # --- Input -----------------------------------------------------------------------

    def receive_text(self, data: str | bytes) -> None:
        """Feed one text frame to the engine and queue what it produced.

        While offloaded turn detection is behind, every frame but an append
        waits (in order) until the events of the audio before it are in.
        """
        if self._closing:
            return
        vad = self._vad  # _vad_busy(), inline: every frame passes here
        held = self._held
        if held or (vad is not None and vad.busy and not self._may_pass(data)):
            if held is None:
                held = self._held = collections.deque()
            if (
                len(held) >= (MAX_HELD if self.on_held is None else MAX_HELD_PAUSED)
                or self._held_bytes + len(data) > MAX_HELD_BYTES
            ):
                logger.warning(
                    "%s: the client overran turn detection; closing",
                    self.session.config.id,
                )
                self.fail(
                    error_frame(BACKLOG_FULL, self._ids, self._clock()),
                    1013,
                    "input audio backlog full",
                )
                return
            held.append(data)
            self._held_bytes += len(data)
            if self._held_drained.is_set():
                self._held_drained.clear()
                if self.on_held is not None:
                    self.on_held(True)
            return
        self._receive_now(data)

    def _may_pass(self, data: str | bytes) -> bool:
        """Whether a frame may be fed while turn detection is behind: an
        append (past the pool's backlog bound its audio is not scored)."""
        return _is_append(data)

    def _receive_now(self, data: str | bytes) -> None:
        if self._observing:
            self._observe("<", data)
        self.session.receive_text(data, self._clock())
        self._pump()
        if (
            self._early is not None
            and self.session.speech_item_id is not None
            and not self._closing
        ):
            self._early.observe(self.session)

    async def feed_text(self, data: str | bytes) -> None:
        """:meth:`receive_text`, then send the replies and :meth:`drain`.

        For a receive loop over an awaitable transport: when no other send is
        in flight the replies go out from this coroutine, not the writer task.
        """
        self._holding = True
        try:
            self.receive_text(data)
        finally:
            self._holding = False
        await self.flush()

    def receive_binary(self, data: bytes = b"") -> None:
        """A binary frame: an error, the socket stays open (WIRE_RULES §2)."""
        if self._closing:
            return
        if self._observing:
            self._observe("<", data)
        self.session.receive_binary(self._clock())
        self._pump()

    def receive_event(self, event: ClientEvent) -> None:
        """Feed one decoded client event that came from no text frame (a
        WebRTC microphone's ``input_audio_buffer.append``, a truncate after
        barge-in) and queue what the engine produced; not observed."""
        if self._closing:
            return
        self.session.receive_event(event, self._clock())
        self._pump()

    def send_event(self, data: bytes) -> None:
        """Queue a server event that the transport, not the engine, produced
        (WebRTC's ``output_audio_buffer.*``), in order with the engine's."""
        if not self._closing:
            if self._metrics is not None:
                self._metrics.sent(data)
            self._queue_frame(data)

    def fail(self, error_frame: bytes, code: int, reason: str) -> None:
        """Send an error the engine did not produce, then close (e.g. 1009)."""
        if self._closing:
            return
        if self._metrics is not None:
            self._metrics.sent(error_frame)
        self._queue_frame(error_frame)
        self._begin_close(Close(code, reason))

    async def drain(self) -> None:
        """Wait while more than ``high_water`` frames wait to be sent, or
        while the synchronous transport paused writing."""
        if not self._held_drained.is_set():
            # Backpressure: read nothing more while frames wait for VAD (set
            # again when the connection closes).
            await self._held_drained.wait()
        if self._write_now is not None:
            while not self._drained.is_set() and not self._closed.is_set():
                await self._drained.wait()
            return
        while len(self._queue) > self._high_water and not self._closed.is_set():
            self._drained.clear()
            await self._drained.wait()

    async def flush(self) -> None:
        """Send what is queued from this coroutine when no send is in flight
        (else leave it to the writer), then :meth:`drain`."""
        if self._queue and not self._sending:
            self._sending = True
            try:
                await self._send_queue()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the transport is gone
                self._send_failed(exc)
            finally:
                self._sending = False
            if self._queue:  # a close waits there for the writer
                self._wakeup.set()
        await self.drain()

    def pause_writing(self) -> None:
        """The synchronous transport's buffer is full: :meth:`drain` waits."""
        if not self._closed.is_set():
            self._drained.clear()

    def resume_writing(self) -> None:
        """The synchronous transport's buffer drained: :meth:`drain` returns."""
        self._drained.set()

    # --- The engine's output ---------------------------------------------------------

    def _pump(self) -> None:
        # Drain frames, then act; acting may produce frames (a failed
        # transcription), so loop until the engine is quiet. No await here.
        session = self.session
        # _queue_frame's fast path, inline: a synchronous transport, no observer.
        write = None if self._observing else self._write_now
        while True:
            for data in session.data_to_send():
                if self._closing:
                    break
                if write is not None:
                    write(data)
                else:
                    self._queue_frame(data)
            actions = session.actions_to_take()
            if not actions:
                break
            for action in actions:
                match action:
                    case StartResponse(request=request):
                        self._start_response(request)
                    case CancelResponse(response_id=response_id):
                        task = self._tasks.pop(response_id, None)
                        if task is not None:
                            task.cancel()
                    case Transcribe():
                        self._transcribe(action)
                    case DetectSpeech():
                        self._detect(action)
                    case Close():
                        self._begin_close(action)
        # The engine's next deadline rarely moves: compare here, re-arm there.
        deadline = None if self._closing else session.get_timer()
        if deadline != self._timer_deadline:
            self._arm_timer(deadline)

    def _queue_frame(self, data: bytes) -> None:
        if self._observing:
            self._observe(">", data)
        if self._write_now is not None:
            self._write_now(data)
            return
        self._queue.append(data)
        if not self._holding:
            self._wakeup.set()

    def _observe(self, direction: Direction, data: str | bytes) -> None:
        if self._debug:
            event_type = (
                client_event_type(data) if direction == "<" else server_event_type(data)  # type: ignore[arg-type]
            )
            logger.debug("%s %s %s", self.session.config.id, direction, event_type)
        if self._on_event is not None:
            try:
                self._on_event(
                    direction, data.encode() if isinstance(data, str) else data
                )
            except Exception:
                # An observer (the inspector, a user's) must never break the
                # connection it watches; log its first failure only.
                if not self._observer_failed:
                    self._observer_failed = True
                    logger.warning(
                        "%s: event observer failed",
                        self.session.config.id,
                        exc_info=True,
                    )

    def _begin_close(self, close: Close) -> None:
        if self._closing:
            return
        self._closing = True
        self.close_code = close.code
        self.close_reason = close.reason
        self._drop_held()
        self._cancel_timer()
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self._close_now is not None:
            # Every earlier frame is already in the transport's buffer.
            self._close_now(close.code, close.reason)
            self._closed.set()
            self._drained.set()
            return
        self._queue.append(close)
        self._wakeup.set()

    async def _send_queue(self) -> bool:
        """Send the queue in order; return whether the close frame went out.

        Only one coroutine at a time (``_sending``). A :class:`Close` is sent
        by the writer task alone, so that closing ends it.
        """
        queue = self._queue
        send_text = self._send_text
        assert send_text is not None
        while queue:
            item = queue[0]
            if isinstance(item, Close):
                if self._writer is not asyncio.current_task():
                    return False
                queue.popleft()
                assert self._close is not None
                await self._close(item.code, item.reason)
                return True
            queue.popleft()
            await send_text(item)
            if len(queue) <= self._high_water:
                self._drained.set()
        self._drained.set()
        return False

    def _send_failed(self, exc: Exception) -> None:
        logger.debug("send failed: %r", exc)
        self._drop_held()
        self._closing = True
        self._drained.set()
        self._closed.set()

    async def _write(self) -> None:
        try:
            while True:
                if not self._sending:
                    self._sending = True
                    try:
                        if await self._send_queue():
                            return
                    finally:
                        self._sending = False
                self._wakeup.clear()
                await self._wakeup.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport is gone
            self._send_failed(exc)
        finally:
            self._drained.set()
            self._closed.set()

    # --- Timers ----------------------------------------------------------------------

    def _arm_timer(self, deadline: float | None) -> None:
        self._cancel_timer()
        if deadline is None:
            return
        self._timer_deadline = deadline
        delay = max(0.0, deadline - self._clock())
        if delay > FAR_S:
            # Woken half of FAR_S early, give or take the schedule's tick.
            self._far_slot = far_deadlines(self._loop).add(self, delay - FAR_S / 2)
            return
        self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)

    def on_due(self) -> None:
        """The coarse schedule: the deadline is near, so it is armed again,
        now with a loop timer of its own (or back on the schedule, if the
        clock moved back meanwhile)."""
        self._far_slot = None
        self._arm_timer(None if self._closing else self._timer_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._far_slot is not None:
            far_deadlines(self._loop).discard(self, self._far_slot)
            self._far_slot = None
        self._timer = None
        self._timer_deadline = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        if self._closing:
            return
        self.session.handle_timer(self._clock())
        self._pump()

    # --- Responses -------------------------------------------------------------------

    def _start_response(self, request: ResponseRequest) -> None:
        task = self._loop.create_task(self._respond(request))
        self._tasks[request.response_id] = task

    async def _respond(self, request: ResponseRequest) -> None:
        response_id = request.response_id
        session = self.session
        if self._transcriptions:
            # "The text also feeds the responder as the user's words": a turn
            # committed by VAD starts its response at once, so let its
            # transcript land first (items are shared with the request).
            await asyncio.wait(set(self._transcriptions), timeout=TRANSCRIPT_WAIT)
            if self._closing or not session.response_active(response_id):
                return
        stream: AsyncIterator[Chunk] | None = None
        try:
            # Inside the try: a responder that raises as it starts (or one
            # made at the first response, whose making fails) fails this
            # response like any other responder error.
            stream = self._responder.respond(request)
            async for chunk in stream:
                if self._closing or not session.response_active(response_id):
                    break
                apply_chunk(session, response_id, chunk)
                self._pump()
                await self.drain()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One line; the traceback only with --debug. The client learns
            # why from status_details.error.
            logger.error(
                "responder failed on %s: %s",
                response_id,
                exc,
                exc_info=self._debug,
            )
            if not self._closing:
                session.response_failed(response_id, failure(exc))
        else:
            if not self._closing:
                session.response_done(response_id)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._tasks.get(response_id) is asyncio.current_task():
                del self._tasks[response_id]
        if not self._closing:
            self._pump()

    # --- Turn detection ---------------------------------------------------------------

    def _detect(self, action: DetectSpeech) -> None:
        if self._closing:
            return
        if self._voice is None:
            # No pool: the engine's work, done here (as the engine would).
            if self._inline_detector is None:
                self._inline_detector = SpeechDetector(self.session.scorer_factory)
            events = self._inline_detector.apply(action.op)
            if events:
                self.session.speech_detected(action.generation, events)
            return
        if self._vad is None:
            self._vad = self._voice.vad_lane(
                self.session.scorer_factory, self._speech_detected
            )
        self._vad.submit(action.generation, action.op)

    def _speech_detected(
        self, results: list[tuple[int, list[TurnEvent]]], exc: BaseException | None
    ) -> None:
        if self._closing:
            return
        if exc is not None:
            logger.error(
                "%s: turn detection failed: %r",
                self.session.config.id,
                exc,
                exc_info=exc,
            )
        for generation, events in results:
            self.session.speech_detected(generation, events)
        self._pump()
        self._release_held()

    def _release_held(self) -> None:
        """Feed the frames held while turn detection was behind, in order."""
        held = self._held  # None (never held) reads as empty
        while held and not self._closing:
            if self._vad_busy() and not self._may_pass(held[0]):
                return
            data = held.popleft()
            self._held_bytes -= len(data)
            self._receive_now(data)
        if not held:
            self._held_done()

    def _vad_busy(self) -> bool:
        return self._vad is not None and self._vad.busy

    # --- Transcription ---------------------------------------------------------------

    async def _decode_early(
        self,
        engine: Transcriber,
        pcm: bytes,
        rate: int,
        settings: Transcription,
        logprobs: bool = False,
    ) -> list[str]:
        """An early decode (:mod:`openrealtime.server.early`) in this
        session's transcription lane of the voice pool. Not ended with its
        worker when cancelled: it is short, and often overtaken."""
        lane = self._asr_lane_for(engine)
        assert lane is not None and self._voice is not None
        if lane.group.processes:
            found: list[str] = await self._voice.transcribe(
                lane,
                engine,
                pcm,
                rate,
                language=settings.language,
                prompt=settings.prompt,
                kill=False,
                logprobs=logprobs,
            )
            return found

        def make() -> Iterator[str]:
            return run_transcriber(
                engine,
                pcm,
                rate,
                language=settings.language,
                prompt=settings.prompt,
                logprobs=logprobs,
            )

        stream = iterate_in_thread(make, executor=LaneExecutor(lane))
        async with contextlib.aclosing(stream) as deltas:
            return [delta async for delta in deltas]

    def _asr_lane_for(self, engine: object) -> Lane | None:
        """This session's lane of the voice pool for ``engine`` (``None``: no
        pool): processes for an engine that can be pickled, else threads."""
        if self._voice is None:
            return None
        lane = self._asr_lanes.get(id(engine))
        if lane is None:
            lane = self._asr_lanes[id(engine)] = self._voice.transcription_lane(engine)
        return lane

    def _transcribe(self, action: Transcribe) -> None:
        if self._transcriber is None:
            self.session.transcription_failed(action.item_id, NO_TRANSCRIBER)
            return
        seconds = len(action.pcm16) / 2 / action.rate
        limit = self._max_transcription_seconds
        if limit is not None and seconds > limit:
            self.session.transcription_failed(
                action.item_id,
                TOO_LONG.format(seconds=seconds, limit=limit),
                code="audio_too_long",
            )
            return
        task = self._loop.create_task(self._run_transcriber(self._transcriber, action))
        self._transcriptions[task] = None
        task.add_done_callback(self._transcription_done)

    def _transcription_done(self, task: asyncio.Task[None]) -> None:
        self._transcriptions.pop(task, None)

    async def _run_transcriber(
        self, transcriber: Transcriber, action: Transcribe
    ) -> None:
        settings = action.transcription
        include = self.session.config.include or ()
        logprobs = "item.input_audio_transcription.logprobs" in include
        early = (
            self._early.take(action, logprobs=logprobs)
            if self._early is not None
            else None
        )
        if early is not None:
            try:
                found = await early
            except asyncio.CancelledError:
                if not early.cancelled():
                    raise  # this task was cancelled, not the early decode
            except Exception:
                pass  # the normal decode below reports it
            else:
                if not self._closing:
                    for delta in found:
                        self._transcription_delta(action, delta)
                    self._transcription_completed(action, found)
                    self._pump()
                return

        def make_engine() -> Transcriber:
            # A router picks the engine for the session's model (issue 16).
            select = getattr(transcriber, "for_model", None)
            engine: Transcriber = (
                transcriber if select is None else select(settings.model)
            )
            return engine

        def make(engine: Transcriber) -> Iterator[str]:
            return run_transcriber(
                engine,
                action.pcm16,
                action.rate,
                language=settings.language,
                prompt=settings.prompt,
                logprobs=logprobs,
            )

        deltas: list[str] = []
        try:
            engine = make_engine()
            lane = self._asr_lane_for(engine)
            if lane is not None and lane.group.processes:
                # A worker process (an engine that holds the GIL, such as
                # PocketSphinx, whose deltas come after the decode anyway).
                found = await self._voice.transcribe(  # type: ignore[union-attr]
                    lane,
                    engine,
                    action.pcm16,
                    action.rate,
                    language=settings.language,
                    prompt=settings.prompt,
                    logprobs=logprobs,
                )
                if self._closing:
                    return
                for delta in found:
                    deltas.append(delta)
                    self._transcription_delta(action, delta)
            else:
                # Each delta goes out as the engine yields it (streaming, as
                # the hosted gpt-4o-transcribe models do), on the pool's
                # threads when there is a pool (bounded, fair per session).
                executor = LaneExecutor(lane) if lane is not None else None
                stream_ = iterate_in_thread(lambda: make(engine), executor=executor)
                async with contextlib.aclosing(stream_) as stream:
                    async for delta in stream:
                        if self._closing:
                            return
                        deltas.append(delta)
                        self._transcription_delta(action, delta)
                        self._pump()
        except UnsupportedLanguage as exc:
            # A setting the engine cannot honour: say so, as a failed transcript.
            if not self._closing:
                self.session.transcription_failed(
                    action.item_id, str(exc), code="unsupported_language"
                )
                self._pump()
            return
        except Exception:
            logger.exception("transcriber failed on %s", action.item_id)
            if not self._closing:
                self.session.transcription_failed(
                    action.item_id, "The transcription engine failed on this audio."
                )
                self._pump()
            return
        if self._closing:
            return
        self._transcription_completed(action, deltas)
        self._pump()

    def _transcription_delta(self, action: Transcribe, delta: str) -> None:
        """Report one delta, with the log probabilities it carries, if any."""
        logprobs = delta.logprobs if isinstance(delta, TranscriptDelta) else None
        self.session.transcription_delta(
            action.item_id,
            str(delta),
            action.content_index,
            logprobs=None if logprobs is None else list(logprobs),
        )

    def _transcription_completed(self, action: Transcribe, deltas: list[str]) -> None:
        """Report the transcript: all the deltas' log probabilities (None if
        any delta lacks them) and the last delta's token usage, if any."""
        logprobs: list[LogProb] | None = [] if deltas else None
        usage: TokenUsage | None = None
        for delta in deltas:
            carried = delta.logprobs if isinstance(delta, TranscriptDelta) else None
            if carried is None:
                logprobs = None
            elif logprobs is not None:
                logprobs.extend(carried)
            if isinstance(delta, TranscriptDelta) and delta.usage is not None:
                usage = delta.usage
        self.session.transcription_completed(
            action.item_id,
            "".join(deltas),
            action.content_index,
            logprobs=logprobs,
            input_tokens=None
            if usage is None
            else usage.audio_tokens + usage.text_tokens,
            output_tokens=None if usage is None else usage.output_tokens,
            audio_tokens=None if usage is None else usage.audio_tokens,
            text_tokens=None if usage is None else usage.text_tokens,
        )
