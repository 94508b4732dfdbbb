"""Minimal reproduction: picows server frames over 8 KiB corrupted on uvloop.

``WSTransport.send`` (server side) writes a message over 8192 bytes as
``underlying_transport.writelines([header, message])`` where ``header`` is
``PyMemoryView_FromMemory(self._write_buffer.data, ...)``: a view of picows's
own write buffer, reused by the next ``send``. When the socket cannot take
the data at once, uvloop keeps the view in its write queue; the next
``send`` overwrites the buffer, and the queued frame goes out with the next
frame's header. The client sees garbage frames (reserved bits set, bogus
lengths or close codes).

picows's own ``ws_create_server`` defaults to aiofastnet's transport, which
copies what it cannot send at once, so the bug shows with the loop's own
transport: ``use_aiofastnet=False`` here, or picows's ``WSProtocol`` run by
another server on uvloop (how openrealtime runs it, under uvicorn).

Run: ``pip install picows uvloop && python picows_reuse_repro.py``
Prints ``CORRUPTED`` (and exits 1) on picows 2.3.1 + uvloop 0.23.0.
"""

import asyncio
import socket
import struct
import sys

import uvloop
from picows import WSListener, WSMsgType, WSUpgradeRequest, ws_create_server

BIG = b"x" * 20_000  # over the 8192-byte copy threshold
ROUNDS = 20


class Server(WSListener):
    def on_ws_connected(self, transport):
        # A small send buffer (as on a slow link): the first write fills it,
        # the later ones queue in uvloop with views of picows's reused buffer.
        sock = transport.underlying_transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        for i in range(ROUNDS):
            transport.send(WSMsgType.TEXT, BIG)
            transport.send(WSMsgType.TEXT, b"y" * (9000 + i))  # also > 8 KiB
        transport.send(WSMsgType.TEXT, b"end")


def read_frames(sock):
    """A tiny blocking RFC 6455 client parser; returns the payload sizes."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(4096)
            if not chunk:
                raise EOFError("closed")
            buf += chunk

    sizes = []
    while True:
        need(2)
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70 or b0 & 0x0F not in (0x1, 0x2, 0x8, 0x9, 0xA):
            raise ValueError(f"bad frame header {buf[:2]!r} after {len(sizes)} frames")
        size, off = b1 & 0x7F, 2
        if size == 126:
            need(4)
            (size,), off = struct.unpack("!H", buf[2:4]), 4
        elif size == 127:
            need(10)
            (size,), off = struct.unpack("!Q", buf[2:10]), 10
        need(off + size)
        payload, buf = buf[off : off + size], buf[off + size :]
        if payload == b"end":
            return sizes
        expected = BIG if len(sizes) % 2 == 0 else b"y" * (9000 + len(sizes) // 2)
        if payload != expected:
            raise ValueError(f"frame {len(sizes)}: wrong payload of {size} bytes")
        sizes.append(size)


async def main():
    # The loop's own transport (uvloop's), as when picows's protocol runs
    # under another server (uvicorn); aiofastnet's transport copies.
    server = await ws_create_server(
        lambda _: Server(), "127.0.0.1", 0, use_aiofastnet=False
    )
    port = server.sockets[0].getsockname()[1]

    def client():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        try:
            return read_frames(sock)
        finally:
            sock.close()

    try:
        sizes = await asyncio.get_running_loop().run_in_executor(None, client)
        print(f"OK: {len(sizes)} frames intact")
        return 0
    except (ValueError, EOFError) as exc:
        print(f"CORRUPTED: {exc}")
        return 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
