"""The official SDKs, unmodified, against a real server.

openai-python (async and sync) and openai-agents connect to the server on a
loopback port exactly as they connect to api.openai.com, with only the base
URL changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from openai import AsyncOpenAI, OpenAI
from openai.types.realtime import (
    AudioTranscriptionParam,
    RealtimeSessionCreateRequestParam,
    SessionUpdateEvent,
)
from openai.types.realtime.realtime_audio_config import RealtimeAudioConfig
from openai.types.realtime.realtime_audio_config_input import RealtimeAudioConfigInput
from openai.types.realtime.realtime_session_create_request import (
    RealtimeSessionCreateRequest,
)

from tests.server.conftest import API_KEY, LiveServer


#: Upper bound on events read while waiting for one (no test loops forever).
MAX_EVENTS = 200


def async_client(server: LiveServer, api_key: str = API_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key, base_url=f"{server.http}/v1", websocket_base_url=server.ws_base
    )


def sync_client(server: LiveServer, api_key: str = API_KEY) -> OpenAI:
    return OpenAI(
        api_key=api_key, base_url=f"{server.http}/v1", websocket_base_url=server.ws_base
    )


async def recv_until(connection: Any, event_type: str) -> list[Any]:
    """Read events up to and including the first of ``event_type``."""
    events = []
    for _ in range(MAX_EVENTS):
        event = await connection.recv()
        events.append(event)
        if event.type == event_type:
            return events
    raise AssertionError(f"no {event_type} in {[e.type for e in events]}")


async def test_session_created_then_update_as_dict(server: LiveServer) -> None:
    """connect() gets session.created; a dict session.update is merged."""
    client = async_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        assert created.session.type == "realtime"
        assert created.session.model == "gpt-realtime"
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"output": {"voice": "marin"}},
            }
        )
        (updated,) = await recv_until(connection, "session.updated")
        session = updated.session
        assert session.instructions == "Be brief."
        assert session.audio.output.voice == "marin"
        # Partial merge: what the update left out is kept.
        assert session.audio.input.turn_detection.type == "server_vad"
        assert session.id == created.session.id
    await client.close()


async def test_session_update_as_pydantic_model(server: LiveServer) -> None:
    """The SDK's own SessionUpdateEvent model is accepted as sent."""
    client = async_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await recv_until(connection, "session.created")
        event = SessionUpdateEvent(
            type="session.update",
            session=RealtimeSessionCreateRequest(
                type="realtime",
                output_modalities=["text"],
                instructions="From a model.",
            ),
        )
        await connection.send(event)
        (updated,) = await recv_until(connection, "session.updated")
        assert updated.session.output_modalities == ["text"]
        assert updated.session.instructions == "From a model."
    await client.close()


async def test_turn_detection_none_disables_vad(server: LiveServer) -> None:
    """``turn_detection: None`` disables VAD; an omitted one keeps it.

    openai-python #2199: older SDKs dumped pydantic events with
    ``exclude_defaults``, so ``turn_detection=None`` (the default) never reached
    the wire and VAD stayed on; a plain dict always works. The installed SDK
    dumps with ``exclude_unset``, which keeps an explicit ``None``. Either way
    the server must do what the wire says, so the test reads the SDK's own
    serialization and checks the server against it.
    """
    client = async_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await recv_until(connection, "session.created")
        omitted = SessionUpdateEvent(
            type="session.update",
            session=RealtimeSessionCreateRequest(
                type="realtime",
                audio=RealtimeAudioConfig(input=RealtimeAudioConfigInput()),
            ),
        )
        await connection.send(omitted)
        (updated,) = await recv_until(connection, "session.updated")
        assert updated.session.audio.input.turn_detection is not None

        explicit = SessionUpdateEvent(
            type="session.update",
            session=RealtimeSessionCreateRequest(
                type="realtime",
                audio=RealtimeAudioConfig(
                    input=RealtimeAudioConfigInput(turn_detection=None)
                ),
            ),
        )
        # What connection.send() writes (resources/realtime/realtime.py).
        wire = explicit.to_json(use_api_names=True, exclude_unset=True)
        await connection.send(explicit)
        (updated,) = await recv_until(connection, "session.updated")
        sdk_sends_null = '"turn_detection": null' in wire
        assert (updated.session.audio.input.turn_detection is None) == sdk_sends_null

        # Re-enable, then disable with a dict: always reaches the server.
        await connection.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
                },
            }
        )
        (updated,) = await recv_until(connection, "session.updated")
        assert updated.session.audio.input.turn_detection is not None
        await connection.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"turn_detection": None}},
                },
            }
        )
        (updated,) = await recv_until(connection, "session.updated")
        assert updated.session.audio.input.turn_detection is None
    await client.close()


async def test_text_turn_end_to_end(server: LiveServer) -> None:
    """A typed user message and response.create: the whole echo sequence."""
    client = async_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await recv_until(connection, "session.created")
        await connection.session.update(
            session={"type": "realtime", "output_modalities": ["text"]}
        )
        await recv_until(connection, "session.updated")
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello there"}],
            }
        )
        await connection.response.create()
        events = await recv_until(connection, "response.done")
    await client.close()
    assert [e.type for e in events] == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    assert events[6].delta == "hello there"
    done = events[-1]
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].text == "hello there"


async def test_audio_turn_streams_transcript_and_audio(server: LiveServer) -> None:
    """In audio modality the echo sends a transcript and audio deltas."""
    client = async_client(server)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await recv_until(connection, "session.created")
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            }
        )
        await connection.response.create()
        events = await recv_until(connection, "response.done")
    await client.close()
    types = [e.type for e in events]
    assert "response.output_audio_transcript.delta" in types
    assert "response.output_audio.delta" in types
    assert events[-1].response.status == "completed"


def test_sync_client(server: LiveServer) -> None:
    """The synchronous client: created, update, updated."""
    client = sync_client(server)
    with client.realtime.connect(model="gpt-realtime") as connection:
        created = connection.recv()
        assert created.type == "session.created"
        connection.session.update(session={"type": "realtime", "instructions": "sync"})
        for _ in range(MAX_EVENTS):
            event = connection.recv()
            if event.type == "session.updated":
                break
        assert event.type == "session.updated"
        assert event.session.instructions == "sync"
    client.close()


async def test_client_secret_then_connect(server: LiveServer) -> None:
    """A minted ek_ key opens a session that starts from the minted config."""
    client = async_client(server)
    session: RealtimeSessionCreateRequestParam = {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Minted instructions.",
        "audio": {"output": {"voice": "cedar"}},
    }
    secret = await client.realtime.client_secrets.create(
        session=session, expires_after={"anchor": "created_at", "seconds": 60}
    )
    await client.close()
    assert secret.value.startswith("ek_")
    assert len(secret.value) == 35
    assert secret.session is not None
    assert secret.session.type == "realtime"
    assert secret.session.expires_at == 0  # WIRE_RULES §5
    assert secret.session.instructions == "Minted instructions."

    ephemeral = async_client(server, api_key=secret.value)
    async with ephemeral.realtime.connect(model="gpt-realtime") as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        assert created.session.instructions == "Minted instructions."
        assert created.session.audio.output.voice == "cedar"
        assert created.session.expires_at > 0
    await ephemeral.close()


async def test_transcription_client_secret(server: LiveServer) -> None:
    """A transcription session minted over REST opens a transcription socket."""
    client = async_client(server)
    transcription: AudioTranscriptionParam = {"model": "gpt-4o-transcribe"}
    secret = await client.realtime.client_secrets.create(
        session={
            "type": "transcription",
            "audio": {"input": {"transcription": transcription}},
        }
    )
    await client.close()
    assert secret.session is not None
    assert secret.session.type == "transcription"

    ephemeral = async_client(server, api_key=secret.value)
    connection_manager = ephemeral.realtime.connect(
        extra_query={"intent": "transcription"}
    )
    async with connection_manager as connection:
        created = await connection.recv()
        assert created.type == "session.created"
        assert created.session.type == "transcription"
        assert created.session.audio.input.transcription.model == "gpt-4o-transcribe"
    await ephemeral.close()


async def test_openai_agents_realtime_session(server: LiveServer) -> None:
    """openai-agents' RealtimeRunner sets up its session and gets the echo.

    The Agents SDK re-sends its whole session config on connect; every key it
    sends must be accepted, or it would surface an error event.
    """
    from agents.realtime import RealtimeAgent, RealtimeRunner

    agent = RealtimeAgent(name="Echo", instructions="Repeat the user.")
    runner = RealtimeRunner(
        agent,
        config={"model_settings": {"modalities": ["text"]}},
    )
    session = await runner.run(
        model_config={
            "url": server.ws_url(model="gpt-realtime"),
            "api_key": API_KEY,
        }
    )
    errors: list[Any] = []
    seen: list[str] = []
    transcript = ""
    async with session:
        await session.send_message("echo me")
        async with asyncio.timeout(10):
            async for event in session:
                if event.type == "error":
                    errors.append(event.error)
                if event.type == "raw_model_event":
                    data = event.data
                    seen.append(data.type)
                    if data.type == "raw_server_event":
                        raw = data.data
                        if raw.get("type") == "session.updated":
                            seen.append("session.updated")
                        if raw.get("type") == "response.output_text.delta":
                            transcript += raw["delta"]
                        if raw.get("type") == "response.done":
                            break
    assert errors == []
    assert "session.updated" in seen
    assert transcript == "echo me"
