"""The picows driver's write-buffer cap fits what a well-behaved client causes.

Regression test for issue 14: with a 4 MiB cap, a client that sent 8 MiB
``instructions`` in five ``session.update`` events (each answered by a
``session.updated`` as large) and read normally was dropped after three. One
client frame can make several events as large as itself (a response echoing
an item of the frame's size writes about 4.4 to 4.7 times its size before the
client can read any of it, measured), so the cap scales with the frame cap.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from openrealtime.server import Settings
from openrealtime.server.picows_driver import RealtimeProtocol, write_buffer_cap
from tests.server.conftest import running_server


LIMIT = 60.0


async def _read_until(ws: Any, event_type: str, count: int) -> list[dict[str, Any]]:
    events = []
    seen = 0
    while seen < count:
        event = json.loads(await ws.recv())
        events.append(event)
        if event["type"] == event_type:
            seen += 1
    return events


async def test_large_updates_and_responses_are_not_dropped(driver: str) -> None:
    """Five 8 MiB updates sent before reading their answers, then two
    responses echoing 8 MiB items (each about 37 MiB of events written at
    once): every answer arrives, the session stays open."""
    size = 8 * 1024 * 1024
    with running_server(Settings(), driver) as live:
        async with connect(
            live.ws_url(model="gpt-realtime"), max_size=None, proxy=None
        ) as ws:
            async with asyncio.timeout(LIMIT):
                await ws.recv()  # session.created
                for i in range(5):
                    update = {
                        "type": "session.update",
                        "session": {
                            "type": "realtime",
                            "instructions": str(i) * size,
                            "output_modalities": ["text"],
                        },
                    }
                    await ws.send(json.dumps(update))
                updated = await _read_until(ws, "session.updated", 5)
                assert [e["type"] for e in updated] == ["session.updated"] * 5
                assert updated[-1]["session"]["instructions"] == "4" * size
                events = []
                for text in ("a", "b"):
                    item = {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": text * size}],
                        },
                    }
                    await ws.send(json.dumps(item))
                    await ws.send(json.dumps({"type": "response.create"}))
                    events += await _read_until(ws, "response.done", 1)
        assert ws.close_code == 1000  # ours: the server never dropped us
    done = [e for e in events if e["type"] == "response.done"]
    assert [d["response"]["status"] for d in done] == ["completed"] * 2


def test_cap_scales_with_the_frame_cap() -> None:
    """Six frames' worth, at least 4 MiB; a subclass may still set its own."""
    assert write_buffer_cap(RealtimeProtocol, 16 * 1024 * 1024) == 96 * 1024 * 1024
    assert write_buffer_cap(RealtimeProtocol, 1024) == 4 * 1024 * 1024

    class Fixed(RealtimeProtocol):
        max_write_buffer = 12345

    assert write_buffer_cap(Fixed, 16 * 1024 * 1024) == 12345
