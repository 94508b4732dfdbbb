"""WebRTC calls end to end, with aiortc as the browser.

A real server (the voice pipeline: Silero VAD, PocketSphinx, espeak) answers
``POST /v1/realtime/calls``; the client speaks espeak sentences on its Opus
microphone track, reads the ``oai-events`` data channel and records the reply
track, as a browser would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from openrealtime.server import Settings
from openrealtime.server.pipeline import Pipeline
from openrealtime.voice.tts import EspeakSynthesizer
from tests.server.conftest import API_KEY, DRIVERS, LiveServer, running_server
from tests.webrtc.helpers import LOOPBACK_ONLY, Client, assert_loopback_peers


def speak(text: str) -> bytes:
    """espeak-ng speech as 24 kHz PCM16."""
    return b"".join(EspeakSynthesizer().synthesize(text, voice="echo", speed=1.0))


VAD = {
    "audio": {
        "input": {
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 600},
        }
    }
}
LONG = "Hello world. What is the weather like today in the city of London?"


STORY = (
    "Once upon a time there was a small cat who lived by the sea. Every morning "
    "she walked along the beach, counted the boats, greeted the fishermen and "
    "watched the gulls. In the evening she went home, ate her supper and slept "
    "by the fire until the sun came up again over the quiet water."
)


@pytest.fixture(scope="module")
def voice_server() -> Iterator[LiveServer]:
    pipeline = Pipeline(vad="silero", transcription="pocketsphinx", speech="espeak")
    settings = Settings(
        api_keys=(API_KEY,), pipeline=pipeline, inspector=True, **LOOPBACK_ONLY
    )
    with running_server(settings, "picows") as live:
        yield live


@pytest.fixture(scope="module", params=DRIVERS)
def plain_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """No voice pipeline, each transport driver (for the sideband socket)."""
    settings = Settings(api_keys=(API_KEY,), **LOOPBACK_ONLY)
    with running_server(settings, request.param) as live:
        yield live


async def open_call(server: LiveServer) -> Client:
    client = Client()
    response = await client.connect(server.http, API_KEY)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    assert response.headers["location"] == f"/v1/realtime/calls/{client.call_id}"
    return client


async def test_spoken_turn_reply_audio_barge_in_and_hangup(
    voice_server: LiveServer,
) -> None:
    client = await open_call(voice_server)
    try:
        created = await client.wait_for("session.created")
        assert created["session"]["audio"]["input"]["format"] == {
            "type": "audio/pcm",
            "rate": 24000,
        }
        client.send({"type": "session.update", "session": {"type": "realtime", **VAD}})
        await client.wait_for("session.updated")

        # 1. A spoken turn on the microphone track: VAD, transcript, reply.
        client.mic.say(speak(LONG))
        started = await client.wait_for("input_audio_buffer.speech_started")
        await client.wait_for("input_audio_buffer.speech_stopped")
        done = await client.wait_for(
            "conversation.item.input_audio_transcription.completed"
        )
        words = set(done["transcript"].lower().split())
        assert {"hello", "world", "weather", "today", "london"} & words, done
        playing = await client.wait_for("output_audio_buffer.started")
        began = time.monotonic()
        response_done = await client.wait_for("response.done")
        assert playing["response_id"] == response_done["response"]["id"]
        # The audio goes on the track, not the channel.
        assert not client.of("response.output_audio.delta")
        assert client.of("response.output_audio_transcript.done")

        # The first reply plays out: stopped, after response.done.
        await asyncio.sleep(0.5)
        assert client.loudness(began, time.monotonic()) > 0.02, "no reply heard"
        stopped = await client.wait_for(
            "output_audio_buffer.stopped", response_id=playing["response_id"]
        )
        assert client.events.index(stopped) > client.events.index(response_done)

        # 2. Barge-in: speak while a long reply plays (a story asked in text,
        # spoken back by the echo agent: far longer than the interruption).
        client.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": STORY}],
                },
            }
        )
        client.send({"type": "response.create"})
        story = await client.wait_for(
            "output_audio_buffer.started", after=client.events.index(stopped)
        )
        await asyncio.sleep(1.0)
        mark = len(client.events)
        client.mic.say(speak("Stop please."))
        await client.wait_for("input_audio_buffer.speech_started", after=mark)
        cleared = await client.wait_for("output_audio_buffer.cleared", after=mark)
        assert cleared["response_id"] == story["response_id"]
        cancelled = await client.wait_for("response.done", after=mark, timeout=20)
        assert cancelled["response"]["id"] == story["response_id"]
        assert cancelled["response"]["status"] == "cancelled"
        assert cancelled["response"]["status_details"]["reason"] == "turn_detected"
        truncated = await client.wait_for("conversation.item.truncated", after=mark)
        # Truncated to what was played: 1 s, and the time VAD took to hear it.
        assert 1000 <= truncated["audio_end_ms"] <= 3000, truncated
        (item,) = [
            o
            for o in cancelled["response"]["output"]
            if o["id"] == truncated["item_id"]
        ]
        assert item["role"] == "assistant"
        # No stopped for the cleared response.
        assert not [
            e
            for e in client.of("output_audio_buffer.stopped")
            if e["response_id"] == story["response_id"]
        ]
        # The interruption is a turn of its own; its reply plays out and stops.
        second = await client.wait_for("output_audio_buffer.started", after=mark)
        assert second["response_id"] != story["response_id"]
        await client.wait_for(
            "output_audio_buffer.stopped", response_id=second["response_id"]
        )
        assert started["audio_start_ms"] >= 0

        # 3. Hang up: the call ends, the channel closes, the session is closed.
        realtime = voice_server.app.state.realtime
        assert len(realtime.calls) == 1
        # Nothing is kept of the replies once they played or were cleared.
        call = realtime.calls.get(client.call_id)
        # The server's ICE sent and heard on loopback only.
        assert_loopback_peers(call.pc)
        playback = call.playback
        assert not (playback.heard or playback.started or playback.done)
        assert not (playback.cleared or playback.segments)
        async with httpx.AsyncClient() as http:
            hung = await http.post(
                f"{voice_server.http}/v1/realtime/calls/{client.call_id}/hangup",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
        assert hung.status_code == 200, hung.text
        deadline = time.monotonic() + 10
        while client.channel.readyState != "closed" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.channel.readyState == "closed"
        assert len(realtime.calls) == 0
        assert realtime.metrics.open_connections == 0
    finally:
        await client.close()


async def test_client_clear_cuts_a_long_reply(voice_server: LiveServer) -> None:
    """output_audio_buffer.clear during a long spoken reply: the reply, whose
    generation waits for playback (5 s ahead at most), is cancelled; the
    buffer is cleared and the item truncated to what was played."""
    client = await open_call(voice_server)
    try:
        await client.wait_for("session.created")
        client.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": STORY}],
                },
            }
        )
        client.send({"type": "response.create"})
        started = await client.wait_for("output_audio_buffer.started")
        await asyncio.sleep(1.5)
        mark = len(client.events)
        client.send({"type": "output_audio_buffer.clear", "event_id": "evt_clear"})
        cleared = await client.wait_for("output_audio_buffer.cleared", after=mark)
        assert cleared["response_id"] == started["response_id"]
        done = await client.wait_for("response.done", after=mark)
        # Still generating when cleared: more than 5 s of speech was asked for.
        assert done["response"]["status"] == "cancelled"
        truncated = await client.wait_for("conversation.item.truncated", after=mark)
        assert 1000 <= truncated["audio_end_ms"] <= 3500, truncated
        await asyncio.sleep(0.5)
        assert not client.of("output_audio_buffer.stopped")
        assert not client.of("error")
        # After the clear the track is silent again.
        now = time.monotonic()
        await asyncio.sleep(0.6)
        assert client.loudness(now + 0.2, now + 0.6) < 0.01
    finally:
        await client.close()


async def test_sideband_controls_the_call(plain_server: LiveServer) -> None:
    """A server-side WebSocket with ?call_id= sees the call's events and
    drives it: session.update, response.create."""
    client = await open_call(plain_server)
    try:
        await client.wait_for("session.created")
        url = plain_server.ws_url(call_id=client.call_id or "")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "realtime",
                            "instructions": "from the sideband",
                            "output_modalities": ["text"],
                        },
                    }
                )
            )
            updated = json.loads(await ws.recv())
            assert updated["type"] == "session.updated"
            assert updated["session"]["instructions"] == "from the sideband"
            # The browser side saw the same update.
            seen = await client.wait_for("session.updated")
            assert seen["session"]["instructions"] == "from the sideband"
            # A response requested by the browser is seen by the sideband.
            client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "ping"}],
                    },
                }
            )
            client.send({"type": "response.create"})
            types: list[str] = []
            while "response.done" not in types:
                types.append(json.loads(await asyncio.wait_for(ws.recv(), 20))["type"])
            assert "response.output_text.delta" in types
            await client.wait_for("response.done")
            # The sideband's own response.create runs on the call.
            await ws.send(json.dumps({"type": "response.create"}))
            mark = len(client.events)
            await client.wait_for("response.created", after=mark)
            await client.wait_for("response.done", after=mark)
    finally:
        await client.close()


async def test_sideband_for_unknown_call(voice_server: LiveServer) -> None:
    url = voice_server.ws_url(call_id="rtc_nope")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        error = json.loads(await ws.recv())
        assert error["type"] == "error"
        assert error["error"]["code"] == "call_not_found"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4000


def closed_in_inspector(server: LiveServer, session_id: str) -> dict[str, Any]:
    inspector = server.app.state.inspector
    summary: dict[str, Any] = inspector.sessions[session_id].summary()
    return summary


async def test_peer_that_closes_ends_its_session(voice_server: LiveServer) -> None:
    client = await open_call(voice_server)
    created = await client.wait_for("session.created")
    realtime = voice_server.app.state.realtime
    assert client.call_id is not None and realtime.calls.get(client.call_id)
    await client.close()  # the tab is closed: DTLS and SCTP go away
    deadline = time.monotonic() + 15
    while realtime.calls.get(client.call_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert realtime.calls.get(client.call_id) is None
    assert realtime.metrics.open_connections == 0
    summary = closed_in_inspector(voice_server, created["session"]["id"])
    assert summary["closed"] is not None and not summary["live"]


PEER = """
import asyncio, sys
from aiortc import RTCSessionDescription

from tests.webrtc.helpers import Client

async def main() -> None:
    client = Client()
    await client.connect(sys.argv[1], sys.argv[2])
    print(client.call_id, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_peer_that_vanishes_ends_its_session(voice_server: LiveServer) -> None:
    """A peer killed outright (no DTLS close, no SCTP abort) is noticed by
    its silent microphone track within ``media_timeout``."""
    realtime = voice_server.app.state.realtime
    realtime.calls.media_timeout = 2.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PEER,
        voice_server.http,
        API_KEY,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        call_id = line.decode().strip()
        call = realtime.calls.get(call_id)
        assert call is not None
        for _ in range(100):  # the microphone flows
            if call.mic_frames:
                break
            await asyncio.sleep(0.1)
        assert call.mic_frames
        session_id = call.connection.session.config.id
        proc.kill()
        began = time.monotonic()
        # (The call lives on the server's loop, in another thread: poll.)
        while realtime.calls.get(call_id) and time.monotonic() - began < 15:
            await asyncio.sleep(0.05)
        assert realtime.calls.get(call_id) is None
        assert time.monotonic() - began < 6
        assert not closed_in_inspector(voice_server, session_id)["live"]
    finally:
        realtime.calls.media_timeout = 10.0
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_errors_as_the_hosted_rest_api(voice_server: LiveServer) -> None:
    client = Client()
    sdp = await client.offer()
    await client.close()
    base = f"{voice_server.http}/v1/realtime/calls"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient() as http:
        none = await http.post(
            base, content=sdp, headers={"Content-Type": "application/sdp"}
        )
        assert none.status_code == 401
        bad = await http.post(
            base, content=sdp, headers={"Authorization": "Bearer sk-wrong-key-000000"}
        )
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "invalid_api_key"
        junk = await http.post(base, content=b"hello", headers=auth)
        assert junk.status_code == 400
        assert junk.json()["error"]["param"] == "sdp"
        no_audio = "\r\n".join(
            line for line in sdp.split("\r\n") if not line.startswith("m=audio")
        ).replace("m=audio", "")
        no_audio = sdp.split("m=audio")[0]
        answer = await http.post(base, content=no_audio, headers=auth)
        assert answer.status_code == 400
        assert "no audio m-line" in answer.json()["error"]["message"]
        # A bad session: the same error as client_secrets gives for it.
        session = {"type": "realtime", "audio": {"output": {"voice": 7}}}
        form = await http.post(
            base,
            files={"sdp": (None, sdp), "session": (None, json.dumps(session))},
            headers=auth,
        )
        minted = await http.post(
            f"{voice_server.http}/v1/realtime/client_secrets",
            json={"session": session},
            headers=auth,
        )
        assert form.status_code == minted.status_code == 400
        assert form.json() == minted.json()
        missing = await http.post(f"{base}/rtc_nope/hangup", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "call_not_found"


async def test_multipart_offer_with_a_session(voice_server: LiveServer) -> None:
    """multipart/form-data: sdp and session, the session applied to the call."""
    client = Client()
    try:
        session = {
            "type": "realtime",
            "instructions": "from the offer",
            "audio": {"output": {"voice": "marin"}},
        }
        response = await client.connect(voice_server.http, API_KEY, session=session)
        assert response.status_code == 201, response.text
        created = await client.wait_for("session.created")
        assert created["session"]["instructions"] == "from the offer"
        assert created["session"]["audio"]["output"]["voice"] == "marin"
    finally:
        await client.close()


async def test_ephemeral_key_opens_its_minted_session(voice_server: LiveServer) -> None:
    async with httpx.AsyncClient() as http:
        minted = await http.post(
            f"{voice_server.http}/v1/realtime/client_secrets",
            json={"session": {"type": "realtime", "instructions": "minted"}},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    client = Client()
    try:
        response = await client.connect(voice_server.http, minted.json()["value"])
        assert response.status_code == 201, response.text
        created = await client.wait_for("session.created")
        assert created["session"]["instructions"] == "minted"
    finally:
        await client.close()


async def test_without_aiortc_the_error_says_how_to_install_it(
    voice_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrealtime.server import webrtc

    monkeypatch.setattr(webrtc, "missing", lambda: webrtc.MISSING)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{voice_server.http}/v1/realtime/calls",
            content=b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
            headers={
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": "application/sdp",
            },
        )
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "webrtc_unavailable"
    assert "pip install 'openrealtime[webrtc]'" in error["message"]


async def test_silence_does_not_fill_the_input_buffer(
    voice_server: LiveServer,
) -> None:
    """A microphone never stops: with server VAD the silence before speech is
    dropped now and then by the engine (it keeps the last
    ``Limits.silence_kept_ms``, here 1 s), quietly, and the next turn is
    heard as usual."""
    client = await open_call(voice_server)
    try:
        await client.wait_for("session.created")
        client.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"turn_detection": {"create_response": False}}},
                },
            }
        )
        await client.wait_for("session.updated")
        call = voice_server.app.state.realtime.calls.get(client.call_id)
        assert call is not None
        session = call.connection.session
        session.limits = dataclasses.replace(session.limits, silence_kept_ms=1000)
        await asyncio.sleep(3.0)  # silence from the microphone
        assert call.mic_frames > 100
        # Trimmed to 1 s whenever it holds more than 2 s (one 20 ms frame over).
        assert session.buffered_ms <= 2020
        assert not client.of("input_audio_buffer.cleared")
        client.mic.say(speak("Hello world."))
        started = await client.wait_for("input_audio_buffer.speech_started")
        # The timeline runs on across the dropped silence.
        assert started["audio_start_ms"] > 2500
        await client.wait_for("input_audio_buffer.committed")
    finally:
        await client.close()


async def test_model_in_the_query(voice_server: LiveServer) -> None:
    """POST /v1/realtime/calls?model=...: the call's model, or invalid_model."""
    client = Client()
    try:
        response = await client.connect(
            voice_server.http, API_KEY, query="?model=gpt-realtime-mini"
        )
        assert response.status_code == 201, response.text
        created = await client.wait_for("session.created")
        assert created["session"]["model"] == "gpt-realtime-mini"
    finally:
        await client.close()
    client = Client()
    try:
        response = await client.connect(voice_server.http, API_KEY, query="?model=nope")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_model"
    finally:
        await client.close()


async def test_the_openai_sdk_creates_joins_and_hangs_up_a_call(
    plain_server: LiveServer,
) -> None:
    """openai-python as a server uses it: client.realtime.calls.create (the
    multipart offer with a session), client.realtime.connect(call_id=...) as
    the sideband, client.realtime.calls.hangup."""
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(
        api_key=API_KEY,
        base_url=f"{plain_server.http}/v1",
        websocket_base_url=plain_server.ws_base,
    )
    client = Client()
    try:
        answer = await sdk.realtime.calls.create(
            sdp=await client.offer(),
            session={"type": "realtime", "instructions": "set by the SDK"},
        )
        location = answer.response.headers["location"]
        call_id = location.rsplit("/", 1)[1]
        assert answer.response.status_code == 201
        await client.answered(answer.text)
        created = await client.wait_for("session.created", 20)
        assert created["session"]["instructions"] == "set by the SDK"

        async with sdk.realtime.connect(call_id=call_id) as sideband:
            await sideband.session.update(
                session={"type": "realtime", "instructions": "from the sideband"}
            )
            event = await sideband.recv()
            assert event.type == "session.updated"
            assert event.session.instructions == "from the sideband"
        await client.wait_for("session.updated")

        await sdk.realtime.calls.hangup(call_id)
        for _ in range(100):
            if client.channel.readyState == "closed":
                break
            await asyncio.sleep(0.05)
        assert client.channel.readyState == "closed"
    finally:
        await client.close()
        await sdk.close()
