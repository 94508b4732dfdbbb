"""One client must not hurt another through voice compute (issue 14, defects 2, 3).

A real ``openrealtime serve`` (Silero VAD, PocketSphinx) runs in a process of
its own; each attacker is a client process of its own (``bench/voiceload.py``),
so nothing they do shares a GIL with the bystander measured here, whose
``session.update`` round trips must stay fast while the attack runs:

* 10 MiB of noise committed with transcription on: refused at once (longer
  than the transcription cap), with a clear ``failed`` event;
* a commit under the cap, then a disconnect: the transcription is cancelled
  and its worker freed (the server's CPU goes quiet);
* three 11 MiB appends with server VAD on;
* the fairness test: clients streaming speech at real time (VAD and
  transcription busy) while another commits the largest buffer allowed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_server import free_port


ROOT = Path(__file__).resolve().parents[2]
VOICELOAD = str(ROOT / "bench" / "voiceload.py")
sys.path.insert(0, str(ROOT / "bench"))

import voiceload  # noqa: E402


#: The bound the issue sets on a bystander's round trip, p99, in ms.
P99_MS = 50.0
_TICK = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def voice_server(*extra: str) -> Iterator[tuple[str, int]]:
    """``openrealtime serve`` with real VAD and ASR; yields (URL, pid)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openrealtime",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--vad",
            "silero",
            "--transcription",
            "pocketsphinx",
            "--speech",
            "none",
            *extra,
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the server exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def attacker(url: str, role: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, VOICELOAD, role, "--url", url, *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def outcome(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = (entry / "stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / _TICK


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def bystander(url: str, seconds: float) -> list[float]:
    """Round trips every 10 ms: a few hundred samples, so that the handful of
    scheduling hiccups a shared 2-core machine gives any process stay under
    1 % of them (the issue's bound is on p99, not on the worst)."""
    samples = await voiceload.bystander(url, seconds, interval=0.01, warmup=0.5)
    assert len(samples) > 100
    return samples


def worst(samples: list[float]) -> list[float]:
    return [round(x, 1) for x in sorted(samples)[-8:]]


async def test_ten_mib_commit_fails_at_once_and_bystander_is_unaffected() -> None:
    """Defect 2: 10 MiB of noise with transcription on costs no CPU."""
    with voice_server() as (url, _):
        attack = attacker(url, "commit", "--mib", "10")
        samples = await bystander(url, 6)
        result = outcome(attack)
    assert result["outcome"] == "conversation.item.input_audio_transcription.failed"
    error = result["error"]
    assert isinstance(error, dict) and error["code"] == "audio_too_long"
    assert "longer than 120 seconds" in error["message"]
    assert float(str(result["seconds"])) < 5
    assert p99(samples) < P99_MS, worst(samples)


async def test_disconnect_cancels_the_transcription_and_frees_its_worker() -> None:
    """Defect 2: a commit under the cap, then a disconnect: the decode stops."""
    with voice_server() as (url, pid):
        # ~109 s of noise: PocketSphinx needs tens of seconds of CPU for it.
        attack = attacker(url, "commit", "--mib", "5", "--disconnect")
        samples = await bystander(url, 5)
        assert outcome(attack)["outcome"] == "disconnected"
        time.sleep(1.5)  # the close, the cancel, the grace before the kill
        before = group_cpu(pid)
        time.sleep(2.0)
        busy = group_cpu(pid) - before
    assert busy < 0.5, f"the server used {busy:.2f} s of CPU after the client left"
    assert p99(samples) < P99_MS, worst(samples)


async def test_big_appends_do_not_stall_a_bystander() -> None:
    """Defect 3: three 11 MiB appends with server VAD on."""
    with voice_server() as (url, _):
        attack = attacker(url, "append", "--count", "3", "--mib", "11", "--hold", "8")
        samples = await bystander(url, 8)
        assert outcome(attack)["appends"] == 3
    assert p99(samples) < P99_MS, worst(samples)


@pytest.mark.parametrize("driver", ["picows", "asgi"])
async def test_fairness_streams_and_the_largest_commit(driver: str) -> None:
    """While two clients stream speech at real time (VAD and transcription
    busy) and one commits the largest buffer allowed, a bystander's
    session.update round trip stays under 50 ms at p99 (on both drivers)."""
    with voice_server("--driver", driver) as (url, _):
        streams = attacker(url, "stream", "--seconds", "11", "--sessions", "2")
        time.sleep(1.0)
        big = attacker(url, "commit", "--mib", "32")
        samples = await bystander(url, 9)
        streamed = outcome(streams)
        committed = outcome(big)
    # The load was real: turns were detected and transcribed.
    assert streamed.get("input_audio_buffer.speech_stopped", 0) >= 2
    assert streamed.get("conversation.item.input_audio_transcription.completed", 0) >= 1
    assert committed["outcome"] == "conversation.item.input_audio_transcription.failed"
    assert p99(samples) < P99_MS, worst(samples)


@pytest.mark.parametrize("driver", ["picows", "asgi"])
async def test_a_flood_behind_vad_is_slowed_down_not_closed(driver: str) -> None:
    """A client that sends audio (and updates, which must wait for the VAD's
    events) far faster than VAD scores it: on both drivers the server stops
    reading from it until VAD catches up (TCP slows it down) instead of
    holding frames until it closes it with ``input_audio_backlog_full``; every
    update is answered, and a bystander stays fast."""
    with voice_server("--driver", driver) as (url, _):
        flood = attacker(url, "flood", "--count", "1500", "--mib", "2")
        samples = await bystander(url, 6)
        result = outcome(flood)
    assert result["errors"] == [], result
    assert result["close_code"] is None, result
    assert result["appends"] == 1500
    assert result["updated"] == result["updates"] == 150, result
    assert p99(samples) < P99_MS, worst(samples)
