"""Real ``openrealtime serve`` processes: bounded shutdown, workers that die
with their master (issue 14: SIGTERM took 27 s with one client not reading;
``kill -9`` of the ``--workers`` master left orphan workers serving the port).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_server import free_port
from tests.served import wait_up


def _start(port: int, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrealtime",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--speech",
            "none",
            "--vad",
            "energy",
            "--transcription",
            "none",
            *args,
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@contextlib.contextmanager
def _server(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = _start(port, *args)
    try:
        wait_up(proc, port)
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _stuck_client(port: int) -> socket.socket:
    """A WebSocket client that asks for a lot and never reads, so the
    server's socket buffers fill."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    update = json.dumps(
        {
            "type": "session.update",
            "session": {"type": "realtime", "instructions": "x" * 200_000},
        }
    ).encode()
    frame = bytearray([0x81, 0xFF]) + len(update).to_bytes(8, "big") + b"\0" * 4
    frame += update  # zero mask: the payload as is
    sock.settimeout(2.0)
    with contextlib.suppress(OSError):
        for _ in range(40):
            sock.sendall(frame)
    return sock


@pytest.mark.parametrize("driver", ["picows", "asgi"])
def test_sigterm_with_a_client_not_reading_is_bounded(driver: str) -> None:
    """--shutdown-timeout 2: the process is gone within the bound (plus
    start-up slack), not after the stall timeout (27 s before)."""
    with _server("--driver", driver, "--shutdown-timeout", "2") as (proc, port):
        client = _stuck_client(port)
        try:
            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
            elapsed = time.monotonic() - started
        finally:
            client.close()
    assert elapsed < 6.0, elapsed


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_with_their_master() -> None:
    """kill -9 of the --workers master: its workers exit, the port is free."""
    with _server("--workers", "2") as (proc, port):
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = {
                pid
                for pid in _children(proc.pid)
                if "openrealtime" in Path(f"/proc/{pid}/cmdline").read_text()
                or "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()
            }
            time.sleep(0.1)
        assert len(workers) >= 2, workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_sigterm_ends_the_voice_workers_too() -> None:
    """SIGTERM to the server alone (not its process group): the voice pool's
    processes (the forkserver, the turn detection workers, the resource
    tracker) end with it. Before, every server that had held a session left
    them running, adopted by init; they start with the server now, so its
    first session does not wait for them."""
    with _server() as (proc, port):
        deadline = time.monotonic() + 30
        helpers: set[int] = set()
        while len(helpers) < 3 and time.monotonic() < deadline:
            helpers = {
                pid
                for pid in _descendants(proc.pid)
                if "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()
            }
            time.sleep(0.1)
        # The forkserver and at least one worker forked from it.
        assert len(helpers) >= 3, helpers
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(h) for h in helpers):
            time.sleep(0.1)
        assert not any(_alive(h) for h in helpers)


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux only")
@pytest.mark.parametrize(
    ("flags", "policy"),
    [
        ((), getattr(os, "SCHED_BATCH", 3)),
        (("--workers", "2"), getattr(os, "SCHED_BATCH", 3)),
        (("--scheduling", "normal"), 0),
    ],
)
def test_every_thread_of_the_server_and_its_workers_has_the_policy(
    flags: tuple[str, ...], policy: int
) -> None:
    """``serve`` runs under SCHED_BATCH by default (docs/reliability.md):
    the event loop's threads, the forkserver and the voice workers forked
    from it, all of them, and uvicorn's worker processes with ``--workers``;
    ``--scheduling normal`` leaves SCHED_OTHER."""
    with _server(*flags) as (proc, _):
        deadline = time.monotonic() + 30
        processes: set[int] = set()
        while len(processes) < 4 and time.monotonic() < deadline:
            processes = {proc.pid} | _descendants(proc.pid)
            time.sleep(0.1)
        # The server, the forkserver, a worker, the resource tracker.
        assert len(processes) >= 4, processes
        policies = {}
        for pid in processes:
            with contextlib.suppress(FileNotFoundError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(ProcessLookupError):
                        policies[pid, int(tid)] = os.sched_getscheduler(int(tid))
        assert len(policies) > len(processes)  # the server has threads too
        assert set(policies.values()) == {policy}, policies


def test_workers_share_the_cpus_for_voice_workers() -> None:
    """``--workers 2``: the two servers start one turn detection worker per
    CPU between them (each its own forkserver, and its share of workers
    forked from it), not one per CPU each."""
    from openrealtime.cli import voice_workers_per_server
    from openrealtime.voice.compute import usable_cpus

    expected = 2 * voice_workers_per_server(usable_cpus(), 2)

    def vad_workers(root: int) -> set[int]:
        # Forked by a forkserver: a "multiprocessing" process whose parent
        # is one too.
        found = set()
        for pid in _descendants(root):
            with contextlib.suppress(FileNotFoundError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                if "forkserver" in Path(f"/proc/{parent}/cmdline").read_text():
                    found.add(pid)
        return found

    with _server("--workers", "2", "--vad", "silero") as (proc, _):
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while len(workers) < expected and time.monotonic() < deadline:
            workers = vad_workers(proc.pid)
            time.sleep(0.2)
        time.sleep(1.0)  # none beyond those
        assert len(vad_workers(proc.pid)) == expected


def test_vad_workers_load_the_model_before_the_port_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Silero, each turn detection worker has onnxruntime loaded by the
    time /healthz answers: the first session on a worker does not pay
    ~110 ms for it in its first job. The forkserver does not load it
    (importing onnxruntime starts threads, and it forks every worker)."""
    pytest.importorskip("onnxruntime")
    from openrealtime.voice import vad

    try:
        vad._SharedOnnxSilero.model_path()
    except ImportError:
        pytest.skip("faster-whisper's Silero model is not installed")
    monkeypatch.setenv("OPENREALTIME_VOICE_WORKERS", "2")
    with _server("--vad", "silero") as (proc, _):
        helpers = {
            pid
            for pid in _descendants(proc.pid)
            if "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()
        }
        loaded = {
            pid
            for pid in helpers
            if "onnxruntime" in Path(f"/proc/{pid}/maps").read_text()
        }
        assert len(loaded) == 2, (helpers, loaded)
        assert len(helpers) > len(loaded)  # the forkserver and resource tracker
