"""The connection driver with a fake transport: order, actions, clean-up."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openrealtime.config import Defaults
from openrealtime.responders.base import Chunk, TextChunk
from openrealtime.server.connection import Connection
from openrealtime.server.metrics import Metrics
from openrealtime.session import ResponseRequest, Session


START = 1_700_000_000.0


class FakeTransport:
    """Collects what the connection sends; ``gate`` can hold the writer."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def types(self) -> list[str]:
        return [event["type"] for event in self.sent]


class SlowResponder:
    """Says one word, then waits for ever (until cancelled)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        try:
            yield TextChunk("thinking")
            await asyncio.Event().wait()
        finally:
            self.closed.set()


class FailingResponder:
    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        yield TextChunk("partial")
        raise RuntimeError("model crashed")


class EchoText:
    async def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        yield TextChunk("one ")
        await asyncio.sleep(0)
        yield TextChunk("two")


def make(
    responder: Any,
    clock: Any = None,
    defaults: Defaults | None = None,
    **kwargs: Any,
) -> tuple[Connection, FakeTransport]:
    metrics = kwargs.get("metrics")
    session = Session(
        model="gpt-realtime",
        now=START,
        defaults=defaults,
        counts=None if metrics is None else metrics.counts,
    )
    transport = FakeTransport()
    connection = Connection(
        session,
        send_text=transport.send_text,
        close=transport.close,
        responder=responder,
        clock=clock or (lambda: START),
        **kwargs,
    )
    return connection, transport


async def settle(transport: FakeTransport, event_type: str) -> None:
    """Let the loop run until ``event_type`` was sent (bounded)."""
    for _ in range(1000):
        if event_type in transport.types():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{event_type} never sent: {transport.types()}")


TEXT_ONLY = '{"type":"session.update","session":{"type":"realtime","output_modalities":["text"]}}'
USER_SAYS = (
    '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
    '"content":[{"type":"input_text","text":"hi"}]}}'
)


async def test_frames_go_out_in_engine_order() -> None:
    """Client frames and responder chunks interleave in the engine's order."""
    connection, transport = make(EchoText())
    connection.start()
    connection.receive_text(TEXT_ONLY)
    connection.receive_text(USER_SAYS)
    connection.receive_text('{"type":"response.create"}')
    await settle(transport, "rate_limits.updated")
    await connection.aclose()
    types = transport.types()
    assert types[:3] == [
        "session.created",
        "session.updated",
        "conversation.item.added",
    ]
    deltas = [e["delta"] for e in transport.sent if e["type"].endswith("text.delta")]
    assert deltas == ["one ", "two"]
    assert types[-2:] == ["response.done", "rate_limits.updated"]
    assert transport.sent[-2]["response"]["status"] == "completed"


async def test_cancel_stops_the_responder() -> None:
    """response.cancel: the engine says cancelled and the task is closed."""
    responder = SlowResponder()
    connection, transport = make(responder)
    connection.start()
    connection.receive_text(USER_SAYS)
    connection.receive_text('{"type":"response.create"}')
    await settle(transport, "response.output_audio_transcript.delta")
    connection.receive_text('{"type":"response.cancel"}')
    await asyncio.wait_for(responder.closed.wait(), 10)
    await settle(transport, "rate_limits.updated")
    assert transport.sent[-2]["response"]["status"] == "cancelled"
    await connection.aclose()


class RaisesAtOnce:
    """``respond`` raises before it returns a stream (not a generator)."""

    def respond(self, request: ResponseRequest) -> AsyncIterator[Chunk]:
        raise RuntimeError("no model loaded")


@pytest.mark.parametrize(
    ("responder", "message"),
    [(FailingResponder, "model crashed"), (RaisesAtOnce, "no model loaded")],
    ids=["midway", "as-it-starts"],
)
async def test_responder_failure_ends_the_response_failed(
    caplog: Any, responder: Any, message: str
) -> None:
    """A responder that raises, midway or in ``respond`` itself before any
    chunk: response.done failed, logged, socket open."""
    connection, transport = make(responder())
    connection.start()
    connection.receive_text(USER_SAYS)
    connection.receive_text('{"type":"response.create"}')
    await settle(transport, "rate_limits.updated")
    assert transport.sent[-2]["response"]["status"] == "failed"
    assert "responder failed" in caplog.text and message in caplog.text
    # One line, no traceback (that needs --debug).
    assert "Traceback" not in caplog.text
    connection.receive_text(TEXT_ONLY)
    await settle(transport, "session.updated")
    await connection.aclose()


async def test_client_vanishing_leaves_nothing_behind() -> None:
    """A disconnect mid-response cancels the responder, the timer, the writer."""
    responder = SlowResponder()
    connection, transport = make(responder)
    connection.start()
    connection.receive_text(USER_SAYS)
    connection.receive_text('{"type":"response.create"}')
    await settle(transport, "response.output_audio_transcript.delta")
    connection.disconnected(1006)
    await connection.aclose()
    assert responder.closed.is_set()
    assert connection._timer is None
    assert connection._writer is not None and connection._writer.done()
    assert not connection._tasks
    connection.receive_text(TEXT_ONLY)  # ignored once closed
    assert connection.close_code == 1006


async def test_session_expiry_closes_1001() -> None:
    """The engine's expiry timer fires: close 1001 with the hosted sentence."""
    clock = [START]
    connection, transport = make(EchoText(), clock=lambda: clock[0])
    clock[0] = START + 3600  # the timer is due at once
    connection.start()
    await asyncio.wait_for(connection.wait_closed(), 10)
    assert transport.closed == (
        1001,
        "Your session hit the maximum duration of 60 minutes.",
    )
    assert transport.types() == ["session.created"]
    await connection.aclose()


async def test_session_close_event_closes_1000() -> None:
    """session.close: pending frames go out, then close 1000."""
    connection, transport = make(EchoText())
    connection.start()
    connection.receive_text(TEXT_ONLY)
    connection.receive_text('{"type":"session.close"}')
    connection.receive_text(TEXT_ONLY)  # after the close: ignored
    await asyncio.wait_for(connection.wait_closed(), 10)
    assert transport.types() == ["session.created", "session.updated"]
    assert transport.closed == (1000, "")
    await connection.aclose()


async def test_drain_waits_for_a_slow_client() -> None:
    """Past high_water queued frames, drain() waits for the writer."""
    connection, transport = make(EchoText(), high_water=2)
    transport.gate.clear()
    connection.start()
    for _ in range(5):
        connection.receive_text(TEXT_ONLY)
    drain = asyncio.ensure_future(connection.drain())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not drain.done()
    transport.gate.set()
    await asyncio.wait_for(drain, 10)
    await connection.aclose()


async def test_observer_and_metrics_see_every_frame() -> None:
    """on_event gets both directions, in order, as bytes."""
    seen: list[tuple[str, bytes]] = []
    metrics = Metrics()
    connection, transport = make(
        EchoText(),
        on_event=lambda direction, data: seen.append((direction, data)),
        metrics=metrics,
    )
    connection.start()
    connection.receive_text(TEXT_ONLY)
    await settle(transport, "session.updated")
    await connection.aclose()
    assert [d for d, _ in seen] == [">", "<", ">"]
    assert seen[1][1] == TEXT_ONLY.encode()
    assert metrics.events_in["session.update"] == 1
    assert metrics.events_out["session.updated"] == 1


async def test_debug_logs_arrows(caplog: Any) -> None:
    """--debug logs '< session.update' and '> session.updated'."""
    caplog.set_level("DEBUG", logger="openrealtime.server")
    connection, transport = make(EchoText(), debug=True)
    connection.start()
    connection.receive_text(TEXT_ONLY)
    await settle(transport, "session.updated")
    await connection.aclose()
    messages = [r.getMessage() for r in caplog.records]
    session_id = connection.session.config.id
    assert f"{session_id} < session.update" in messages
    assert f"{session_id} > session.updated" in messages


class WordsTranscriber:
    def transcribe(
        self, pcm16: bytes, rate: int, *, language: str | None, prompt: str | None
    ) -> Any:
        yield "hello "
        yield "world"


async def test_transcriber_hook() -> None:
    """A configured transcriber runs in a thread; deltas then completed."""
    done = "conversation.item.input_audio_transcription.completed"
    finished = asyncio.Event()

    def watch(direction: str, data: bytes) -> None:
        if done.encode() in data:
            finished.set()

    connection, transport = make(
        EchoText(), transcriber=WordsTranscriber(), on_event=watch
    )
    connection.start()
    connection.receive_text(
        '{"type":"session.update","session":{"type":"realtime","audio":{"input":'
        '{"turn_detection":null,"transcription":{"model":"gpt-4o-transcribe"}}}}}'
    )
    audio = base64.b64encode(bytes(9600)).decode()
    connection.receive_text(
        json.dumps({"type": "input_audio_buffer.append", "audio": audio})
    )
    connection.receive_text('{"type":"input_audio_buffer.commit"}')
    await asyncio.wait_for(finished.wait(), 10)
    await settle(transport, done)
    await connection.aclose()
    completed = [e for e in transport.sent if e["type"] == done]
    assert completed and completed[0]["transcript"] == "hello world"


# --- Small pieces: the key mask and the secret store ------------------------------


def test_mask_key() -> None:
    """First 8 and last 4 characters stay, as in OpenAI's messages."""
    from openrealtime.server.handshake import mask_key

    assert mask_key("sk-" + "x" * 44 + "jP2n") == "sk-xxxxx" + "*" * 39 + "jP2n"
    assert mask_key("short") == "sho**"
    assert mask_key("") == ""


async def test_memory_secret_store_expires_and_sweeps() -> None:
    """Expired keys are refused, and swept when a new key is minted."""
    from openrealtime.config import default_config
    from openrealtime.server.secrets import MemorySecretStore, SecretRecord

    now = [100.0]
    store = MemorySecretStore(clock=lambda: now[0])
    config = default_config("realtime", id="sess_1", model="gpt-realtime", created_at=0)
    record = SecretRecord(session=config, created_at=100, expires_at=110)
    await store.put("ek_a", record, 10)
    await store.put("ek_b", record, 20)
    assert await store.get("ek_a") == record
    now[0] = 115.0
    await store.put("ek_c", record, 10)  # sweeps ek_a
    assert len(store) == 2
    assert await store.get("ek_a") is None
    assert await store.get("ek_b") == record
    await store.delete("ek_b")
    await store.delete("ek_unknown")
    assert await store.get("ek_b") is None
    assert len(store) == 1
