"""Several processes, one service: the sideband and the hang-up reach a call
wherever it lives (its owner in Redis, a relay over Redis pub/sub).

Real ``openrealtime serve`` processes and a real redis-server: two separate
processes (as two machines would be), and one with ``--workers 2``.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.redis_server import redis_server
from tests.server.test_multiprocess import API_KEY, serve
from tests.webrtc.helpers import Client


AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def update_through(port: int, call_id: str, instructions: str) -> dict:
    """Join the call from ``port`` and change its instructions."""
    url = f"ws://127.0.0.1:{port}/v1/realtime?call_id={call_id}"
    async with websockets.connect(url, additional_headers=AUTH) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": instructions},
                }
            )
        )
        event: dict = json.loads(await asyncio.wait_for(ws.recv(), 20))
        return event


@pytest.mark.slow
async def test_sideband_and_hangup_across_processes() -> None:
    with redis_server() as url:
        with serve("--redis-url", url) as a, serve("--redis-url", url) as b:
            client = Client()
            try:
                response = await client.connect(f"http://127.0.0.1:{a}", API_KEY)
                assert response.status_code == 201, response.text
                await client.wait_for("session.created")
                call_id = client.call_id
                assert call_id

                # The sideband on B controls the call on A, and sees its events.
                bws = f"ws://127.0.0.1:{b}/v1/realtime?call_id={call_id}"
                async with websockets.connect(bws, additional_headers=AUTH) as ws:
                    await ws.send(
                        json.dumps(
                            {
                                "type": "session.update",
                                "session": {
                                    "type": "realtime",
                                    "instructions": "relayed",
                                    "output_modalities": ["text"],
                                },
                            }
                        )
                    )
                    updated = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    assert updated["type"] == "session.updated"
                    assert updated["session"]["instructions"] == "relayed"
                    seen = await client.wait_for("session.updated")
                    assert seen["session"]["instructions"] == "relayed"
                    # The browser's events reach the sideband on B.
                    client.send({"type": "response.create"})
                    kinds: list[str] = []
                    while "response.done" not in kinds:
                        frame = await asyncio.wait_for(ws.recv(), 20)
                        kinds.append(json.loads(frame)["type"])
                    assert kinds[0] == "response.created"

                # A call that does not exist anywhere.
                missing = f"ws://127.0.0.1:{b}/v1/realtime?call_id=rtc_nowhere"
                async with websockets.connect(missing, additional_headers=AUTH) as ws:
                    error = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    assert error["error"]["code"] == "call_not_found"
                    with pytest.raises(websockets.ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 20)
                    assert ws.close_code == 4000

                # Hang up through B: the call on A ends.
                async with httpx.AsyncClient() as http:
                    hung = await http.post(
                        f"http://127.0.0.1:{b}/v1/realtime/calls/{call_id}/hangup",
                        headers=AUTH,
                    )
                    assert hung.status_code == 200, hung.text
                    for _ in range(200):
                        if client.channel.readyState == "closed":
                            break
                        await asyncio.sleep(0.05)
                    assert client.channel.readyState == "closed"
                    again = await http.post(
                        f"http://127.0.0.1:{b}/v1/realtime/calls/{call_id}/hangup",
                        headers=AUTH,
                    )
                    assert again.status_code == 404
            finally:
                await client.close()


@pytest.mark.slow
async def test_workers_share_calls() -> None:
    """--workers 2: every sideband and the hang-up reach the call, whichever
    worker the connection lands on."""
    with redis_server() as url:
        with serve("--workers", "2", "--redis-url", url) as port:
            client = Client()
            try:
                response = await client.connect(f"http://127.0.0.1:{port}", API_KEY)
                assert response.status_code == 201, response.text
                await client.wait_for("session.created")
                assert client.call_id
                for i in range(6):
                    event = await update_through(port, client.call_id, f"update {i}")
                    assert event["type"] == "session.updated", event
                    assert event["session"]["instructions"] == f"update {i}"
                async with httpx.AsyncClient() as http:
                    hung = await http.post(
                        f"http://127.0.0.1:{port}/v1/realtime/calls/"
                        f"{client.call_id}/hangup",
                        headers=AUTH,
                    )
                assert hung.status_code == 200, hung.text
                for _ in range(200):
                    if client.channel.readyState == "closed":
                        break
                    await asyncio.sleep(0.05)
                assert client.channel.readyState == "closed"
            finally:
                await client.close()
