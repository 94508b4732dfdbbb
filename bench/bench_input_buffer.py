"""The input audio buffer: a growing ``bytearray`` against ``ChunkBuffer``.

N sessions each append 40 ms of 24 kHz PCM16 (1,920 bytes) in turn, as the
server's event loop does, for ``--seconds`` of audio; then each reads its
whole buffer once (a commit). Printed: µs per append (the commit's read
included), per variant and N, and the ratio. The growing ``bytearray`` was
the session's buffer until issue 18's fifth pass: alone it grows in place,
but beside other growing buffers ``realloc`` must move it, copying it all.

The engine's own cost per append, the same way (``Session.receive_text``
of every append, turn detection offloaded), is ``--engine``; run it with
``PYTHONPATH`` set to another source tree to compare commits.

    .venv/bin/python bench/bench_input_buffer.py
    .venv/bin/python bench/bench_input_buffer.py --engine --sessions 60
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time
from collections.abc import Callable


APPEND = 1920  # 40 ms of 24 kHz PCM16


def _bytearray_variant(n: int, pieces: list[bytes]) -> float:
    buffers = [bytearray() for _ in range(n)]
    start = time.process_time()
    for piece in pieces:
        for buffer in buffers:
            buffer += piece
    for buffer in buffers:
        bytes(buffer)
    return time.process_time() - start


def _chunk_variant(n: int, pieces: list[bytes]) -> float:
    from openrealtime.audio import ChunkBuffer

    buffers = [ChunkBuffer() for _ in range(n)]
    start = time.process_time()
    for piece in pieces:
        for buffer in buffers:
            buffer.append(piece)
    for buffer in buffers:
        buffer.read()
    return time.process_time() - start


def _engine(n: int, seconds: float) -> float:
    from openrealtime.session import Session

    pcm = os.urandom(int(24000 * seconds) * 2)
    frames = [
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(pcm[i : i + APPEND]).decode(),
            }
        )
        for i in range(0, len(pcm), APPEND)
    ]
    update = (
        '{"type":"session.update","session":{"type":"realtime","audio":{"input":'
        '{"turn_detection":{"type":"server_vad","create_response":false}}}}}'
    )
    sessions = []
    for _ in range(n):
        session = Session(now=time.time(), vad_offload=True)
        session.receive_text(update, time.time())
        session.data_to_send()
        session.actions_to_take()
        sessions.append(session)
    now = time.time()
    start = time.process_time()
    for frame in frames:
        for session in sessions:
            session.receive_text(frame, now)
            session.data_to_send()
            session.actions_to_take()
    return (time.process_time() - start) / (len(frames) * n) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", default="1,60,200", help="comma list of N")
    p.add_argument("--seconds", type=float, default=12.0, help="audio per session")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--engine", action="store_true", help="Session.receive_text")
    args = p.parse_args()
    levels = [int(x) for x in args.sessions.split(",")]
    if args.engine:
        for n in levels:
            best = min(_engine(n, args.seconds) for _ in range(args.rounds))
            print(f"engine, N={n}: {best:.2f} µs per append (best of {args.rounds})")
        return
    appends = int(args.seconds * 25)
    # Distinct pieces, made before the clock starts (base64 decoding makes
    # each append's bytes in the server, whichever buffer keeps them).
    pieces = [os.urandom(APPEND) for _ in range(appends)]
    variants: dict[str, Callable[[int, list[bytes]], float]] = {
        "bytearray": _bytearray_variant,
        "ChunkBuffer": _chunk_variant,
    }
    print(f"{args.seconds:g} s of 40 ms appends per session, {args.rounds} rounds")
    print(f"{'N':>5} {'bytearray µs':>13} {'ChunkBuffer µs':>15} {'ratio':>6}")
    for n in levels:
        times: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                t = variants[name](n, pieces)
                times[name].append(t / (appends * n) * 1e6)
        old = statistics.median(times["bytearray"])
        new = statistics.median(times["ChunkBuffer"])
        print(f"{n:>5} {old:>13.2f} {new:>15.2f} {old / new:>5.1f}x")


if __name__ == "__main__":
    main()
