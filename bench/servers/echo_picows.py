"""Floor server: raw picows + uvloop, fixed pre-encoded replies.

Sends a fixed ``session.created`` on connect and a fixed 1.5 KB
``session.updated`` for every text frame. Usage: ``echo_picows.py PORT
[--uvloop-transport]``: by default picows serves on aiofastnet's transport
(``ws_create_server``'s default); with the flag, on uvloop's own TCP
transport, the one openrealtime's picows driver gets from uvicorn.

With ``--engine`` each connection owns an ``openrealtime.session.Session``
and sends what it produces: the bare engine on the floor's stack, with no
``Connection``, driver, metrics or timers. The difference between it and
``openrealtime`` is what the server around the engine costs per exchange.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from picows import (  # noqa: E402
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)

from benchlib import SESSION_CREATED_BYTES, SESSION_UPDATED_BYTES  # noqa: E402


TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE


class Echo(WSListener):  # type: ignore[misc]
    """One connection: created on connect, updated per text frame."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(TEXT, SESSION_CREATED_BYTES)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            transport.send(TEXT, SESSION_UPDATED_BYTES)
        elif frame.msg_type == CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


class Engine(Echo):
    """One connection driven by the bare engine (``--engine``); other
    frames as the echo's."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        from openrealtime.session import Session

        self.session = Session(now=time.time())
        for data in self.session.data_to_send():
            transport.send(TEXT, data)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            session = self.session
            session.receive_text(frame.get_payload_as_utf8_text(), time.time())
            for data in session.data_to_send():
                transport.send(TEXT, data)
        else:
            super().on_ws_frame(transport, frame)


LISTENER: type[WSListener] = Engine if "--engine" in sys.argv else Echo


def route(request: WSUpgradeRequest) -> WSListener | None:
    """Accept only the realtime path."""
    path = request.path
    if isinstance(path, bytes):
        path = path.decode()
    return LISTENER() if path.startswith("/v1/realtime") else None


async def serve(port: int, use_aiofastnet: bool | None = None) -> None:
    """Listen on 127.0.0.1:PORT until killed."""
    server = await ws_create_server(
        route,
        "127.0.0.1",
        port,
        backlog=4096,
        websocket_handshake_timeout=60,
        use_aiofastnet=use_aiofastnet,
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    """Entry point."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    import uvloop

    uvloop.run(serve(port, False if "--uvloop-transport" in sys.argv else None))


if __name__ == "__main__":
    main()
