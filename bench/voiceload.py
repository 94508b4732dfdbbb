"""Voice load against a live server: the attacks of issue 14, and a bystander.

Each *role* is one kind of client; run one per process so that the clients
never share a GIL with each other or with what measures them::

    python bench/voiceload.py stream  --url URL --seconds 10 [--sessions 1]
    python bench/voiceload.py append  --url URL --count 3 --mib 11
    python bench/voiceload.py commit  --url URL --mib 10 [--disconnect]
    python bench/voiceload.py flood   --url URL --count 1000 [--mib 2]
    python bench/voiceload.py bystander --url URL --seconds 5

Every role prints one JSON line with what it saw. ``stream`` sends speech
(espeak-ng) and pauses at real time in 40 ms appends with server VAD and
input transcription on, so VAD and transcription are kept busy; ``append``
sends big appends of noise with server VAD on (VAD scores all of it);
``commit`` appends ``--mib`` of noise with transcription on and VAD off,
commits, then waits for the transcription's outcome or (``--disconnect``)
hangs up at once; ``flood`` puts VAD behind with ``--mib`` of noise, then
sends ``--count`` 100 ms appends as fast as the socket takes them, with a
``session.update`` every tenth (held until VAD catches up: the server must
slow it down, not close it); ``bystander`` measures its ``session.update`` round trips.
Importable too (:func:`bystander`, :func:`stream`, ...), for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from typing import Any

import websockets


#: Largest raw audio per append (base64 of it stays under the 16 MiB frame cap).
APPEND_MAX = 11 * 1024 * 1024

UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {"type": "realtime", "instructions": "You are a bystander."},
    }
)


def noise(nbytes: int, seed: int = 0) -> bytes:
    """White noise at about -20 dBFS, PCM16."""
    import numpy as np

    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 3000, nbytes // 2).clip(-32768, 32767)
    return bytes(samples.astype("<i2").tobytes())


def speech_clip() -> bytes:
    """A spoken sentence then 800 ms of silence, PCM16 24 kHz (espeak-ng)."""
    from openrealtime import audio
    from openrealtime.voice.tts import EspeakSynthesizer

    text = "Hello there. What is the weather like in Paris today?"
    spoken = b"".join(EspeakSynthesizer().synthesize(text, voice="echo", speed=1.0))
    return spoken + audio.silence(800, 24000)


async def _open(url: str) -> Any:
    ws = await websockets.connect(url, max_size=None, open_timeout=30)
    created = json.loads(await ws.recv())
    assert created["type"] == "session.created", created
    return ws


async def _update(ws: Any, session: dict[str, Any]) -> None:
    await ws.send(
        json.dumps(
            {"type": "session.update", "session": {"type": "realtime", **session}}
        )
    )
    while json.loads(await ws.recv())["type"] != "session.updated":
        pass


async def bystander(
    url: str, seconds: float, interval: float = 0.01, warmup: float = 0.0
) -> list[float]:
    """Round trips (ms) of ``session.update`` for ``seconds``, one at a time."""
    ws = await _open(url)
    try:
        end = time.monotonic() + warmup + seconds
        start = time.monotonic() + warmup
        out: list[float] = []
        while (now := time.monotonic()) < end:
            await ws.send(UPDATE)
            while json.loads(await ws.recv())["type"] != "session.updated":
                pass
            if now >= start:
                out.append((time.monotonic() - now) * 1000)
            await asyncio.sleep(interval)
        return out
    finally:
        await ws.close()


async def _stream_one(url: str, seconds: float, clip: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    ws = await _open(url)
    try:
        await _update(
            ws,
            {
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {
                            "type": "server_vad",
                            "create_response": False,
                        },
                    }
                }
            },
        )

        async def read() -> None:
            async for frame in ws:
                kind = json.loads(frame)["type"]
                counts[kind] = counts.get(kind, 0) + 1

        reader = asyncio.create_task(read())
        step = 24000 * 2 * 40 // 1000  # 40 ms
        t0 = time.monotonic()
        sent = 0
        position = 0
        while time.monotonic() - t0 < seconds:
            chunk = clip[position : position + step]
            position = (position + step) % (len(clip) - step)
            await ws.send(
                json.dumps(
                    {
                        "type": "input_audio_buffer.append",
                        "audio": base64.b64encode(chunk).decode(),
                    }
                )
            )
            sent += 1
            delay = t0 + sent * 0.04 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        reader.cancel()
        return counts
    finally:
        await ws.close()


async def stream(url: str, seconds: float, sessions: int = 1) -> dict[str, int]:
    """``sessions`` clients streaming speech at real time; events seen, summed."""
    clip = speech_clip()
    results = await asyncio.gather(
        *(_stream_one(url, seconds, clip) for _ in range(sessions))
    )
    total: dict[str, int] = {}
    for counts in results:
        for kind, n in counts.items():
            total[kind] = total.get(kind, 0) + n
    return total


async def append(url: str, count: int, mib: float, hold: float = 0.0) -> dict[str, Any]:
    """``count`` appends of ``mib`` MiB of noise with server VAD on, then stay
    connected ``hold`` seconds (VAD works on it meanwhile)."""
    ws = await _open(url)
    try:
        await _update(
            ws, {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
        )
        data = base64.b64encode(noise(min(int(mib * 1024 * 1024), APPEND_MAX))).decode()
        frame = json.dumps({"type": "input_audio_buffer.append", "audio": data})
        t0 = time.monotonic()
        for _ in range(count):
            await ws.send(frame)
        sent = time.monotonic() - t0
        await asyncio.sleep(hold)
        return {"appends": count, "send_s": round(sent, 3)}
    finally:
        await ws.close()


async def commit(url: str, mib: float, disconnect: bool) -> dict[str, Any]:
    """Append ``mib`` MiB of noise, commit with transcription on."""
    ws = await _open(url)
    try:
        await _update(
            ws,
            {
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": None,
                    }
                }
            },
        )
        left = int(mib * 1024 * 1024)
        seed = 0
        while left > 0:
            size = min(left, APPEND_MAX)
            size -= size % 2
            data = base64.b64encode(noise(size, seed)).decode()
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": data})
            )
            left -= size
            seed += 1
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        if disconnect:
            return {"committed_mib": mib, "outcome": "disconnected"}
        t0 = time.monotonic()
        async for frame in ws:
            event = json.loads(frame)
            kind = event["type"]
            if kind.startswith("conversation.item.input_audio_transcription."):
                if kind.endswith(".failed") or kind.endswith(".completed"):
                    return {
                        "committed_mib": mib,
                        "outcome": kind,
                        "error": event.get("error"),
                        "seconds": round(time.monotonic() - t0, 3),
                    }
            if kind == "error":
                return {
                    "committed_mib": mib,
                    "outcome": "error",
                    "error": event["error"],
                }
        return {"committed_mib": mib, "outcome": "closed"}
    finally:
        await ws.close()


async def flood(url: str, count: int, mib: float) -> dict[str, Any]:
    """VAD behind, then ``count`` appends (and an update every tenth) sent as
    fast as the server reads them; what came back."""
    ws = await _open(url)
    seen: dict[str, Any] = {"updated": 0, "errors": []}

    async def read() -> None:
        async for frame in ws:
            event = json.loads(frame)
            if event["type"] == "session.updated":
                seen["updated"] += 1
            elif event["type"] == "error":
                seen["errors"].append(event["error"]["code"])

    try:
        await _update(
            ws,
            {
                "audio": {
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "create_response": False,
                        }
                    }
                }
            },
        )
        reader = asyncio.create_task(read())
        big = base64.b64encode(noise(int(mib * 1024 * 1024))).decode()
        small = base64.b64encode(noise(24000 * 2 // 10, seed=1)).decode()
        t0 = time.monotonic()
        sent = updates = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": big})
            )
            for i in range(count):
                await ws.send(
                    json.dumps({"type": "input_audio_buffer.append", "audio": small})
                )
                sent += 1
                if i % 10 == 9:
                    await ws.send(UPDATE)
                    updates += 1
        send_s = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while (
            seen["updated"] < updates and not reader.done()
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        reader.cancel()
        return {
            "appends": sent,
            "updates": updates,
            **seen,
            "close_code": ws.close_code,
            "send_s": round(send_s, 3),
            "seconds": round(time.monotonic() - t0, 3),
        }
    finally:
        await ws.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "role", choices=["stream", "append", "commit", "flood", "bystander"]
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--mib", type=float, default=11.0)
    parser.add_argument("--disconnect", action="store_true")
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.role == "stream":
        result: Any = asyncio.run(stream(args.url, args.seconds, args.sessions))
    elif args.role == "append":
        result = asyncio.run(append(args.url, args.count, args.mib, args.hold))
    elif args.role == "commit":
        result = asyncio.run(commit(args.url, args.mib, args.disconnect))
    elif args.role == "flood":
        result = asyncio.run(flood(args.url, args.count, args.mib))
    else:
        result = asyncio.run(bystander(args.url, args.seconds))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    sys.exit(main())
