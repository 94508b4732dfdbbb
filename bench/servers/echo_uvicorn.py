"""Reference server: bare ASGI app on uvicorn with fixed pre-encoded replies.

uvicorn with httptools, uvloop and ``ws="websockets-sansio"``; sends a fixed
``session.created`` on accept and a fixed ``session.updated`` per text frame.
Usage: ``echo_uvicorn.py PORT``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import SESSION_CREATED_BYTES, SESSION_UPDATED_BYTES  # noqa: E402


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CREATED = {"type": "websocket.send", "text": SESSION_CREATED_BYTES.decode()}
UPDATED = {"type": "websocket.send", "text": SESSION_UPDATED_BYTES.decode()}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app: only websocket /v1/realtime."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket" or scope["path"] != "/v1/realtime":
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send(CREATED)
    while True:
        msg = await receive()
        kind = msg["type"]
        if kind == "websocket.receive":
            if msg.get("text") is not None:
                await send(UPDATED)
        elif kind == "websocket.disconnect":
            return


def main() -> None:
    """Entry point."""
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
