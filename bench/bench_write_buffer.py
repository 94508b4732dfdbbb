"""How much one client frame makes the picows driver write at once.

The write-buffer cap (``picows_driver.write_buffer_cap``) must hold what a
client that reads normally can cause. This measures the peak socket write
buffer, in frame caps, for two workloads sent before reading:

* ``update``: N ``session.update`` events with frame-sized ``instructions``
  (each answered by a ``session.updated`` as large);
* ``response``: a frame-sized ``input_text`` item and ``response.create``
  with the echo responder (the item, the response's text and its ``done``
  events all carry the text).

Bounded: a few frames of a few MiB, on loopback, then it stops.

    .venv/bin/python bench/bench_write_buffer.py --frame-mib 2 --count 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server.conftest import running_server  # noqa: E402

from openrealtime.server import Settings  # noqa: E402
from openrealtime.server.picows_driver import RealtimeProtocol, _Session  # noqa: E402


class _Unbounded(RealtimeProtocol):
    max_write_buffer = 1 << 40  # measure, never drop


async def _run(kind: str, frame_mib: int, count: int) -> float:
    peak = 0
    write = _Session._write

    def measured(self: Any, data: bytes) -> None:
        nonlocal peak
        write(self, data)
        peak = max(peak, self._tcp.get_write_buffer_size())

    _Session._write = measured  # type: ignore[method-assign]
    frame = frame_mib << 20
    size = frame - 200
    try:
        with running_server(
            Settings(max_frame_bytes=frame), "picows", protocol=_Unbounded
        ) as live:
            async with connect(
                live.ws_url(model="gpt-realtime"), max_size=None, proxy=None
            ) as ws:
                await ws.recv()
                if kind == "update":
                    for i in range(count):
                        update = {
                            "type": "session.update",
                            "session": {
                                "type": "realtime",
                                "instructions": str(i) * size,
                            },
                        }
                        await ws.send(json.dumps(update))
                    for _ in range(count):
                        await ws.recv()
                else:
                    text_only = {
                        "type": "session.update",
                        "session": {"type": "realtime", "output_modalities": ["text"]},
                    }
                    await ws.send(json.dumps(text_only))
                    await ws.recv()
                    for _ in range(count):
                        item = {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "a" * size}],
                            },
                        }
                        await ws.send(json.dumps(item))
                        await ws.send(json.dumps({"type": "response.create"}))
                        while json.loads(await ws.recv())["type"] != "response.done":
                            pass
    finally:
        _Session._write = write  # type: ignore[method-assign]
    return peak / frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame-mib", type=int, default=2)
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    print(f"{'workload':<10} {'frame':>6} {'peak write buffer':>20}")
    for kind in ("update", "response"):
        ratio = asyncio.run(_run(kind, args.frame_mib, args.count))
        print(f"{kind:<10} {args.frame_mib:>4}Mi {ratio:>17.2f} x frame")


if __name__ == "__main__":
    main()
