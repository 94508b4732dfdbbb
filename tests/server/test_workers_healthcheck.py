"""A worker that is busy (here: stopped) for longer than uvicorn's default
5 s health check keeps its sessions: `serve --workers` gives it 30 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import websockets

from openrealtime.cli import WORKER_HEALTHCHECK_S


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(pid: int) -> list[int]:
    """The spawned worker processes of the server (not its resource tracker)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                out.append(int(child))
    return out


async def test_a_worker_stalled_past_5_s_keeps_its_sessions() -> None:
    assert WORKER_HEALTHCHECK_S > 5
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrealtime",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--vad",
            "energy",
            "--speech",
            "none",
            "--transcription",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ws = await websockets.connect(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            while len(workers := _workers(proc.pid)) < 2:
                await asyncio.sleep(0.1)
            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(7.5)  # uvicorn's default would kill them
            finally:
                for pid in workers:
                    os.kill(pid, signal.SIGCONT)
            await ws.send('{"type":"session.update","session":{"type":"realtime"}}')
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert reply["type"] == "session.updated"
            assert sorted(_workers(proc.pid)) == sorted(workers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
