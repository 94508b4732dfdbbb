"""The voice pool: fair between lanes, cancellable, bounded."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from openrealtime import audio
from openrealtime.turns import (
    DetectorOp,
    DetectorSettings,
    EnergyScorer,
    SpeechDetector,
    TurnEvent,
)
from openrealtime.voice import compute
from openrealtime.voice.compute import (
    JobCancelled,
    Lane,
    VoicePool,
    checkpoint,
    usable_cpus,
)


def record(order: list[str], name: str, seconds: float = 0.02) -> str:
    time.sleep(seconds)
    order.append(name)
    return name


async def test_lanes_take_turns() -> None:
    """A lane with many jobs queued does not make another lane wait for all."""
    pool = VoicePool(1, processes=False)
    try:
        a, b = pool.lane("asr"), pool.lane("asr")
        order: list[str] = []
        jobs = [pool.run(a, record, order, f"a{i}") for i in range(4)]
        jobs.append(pool.run(b, record, order, "b0"))
        await asyncio.gather(*jobs)
        assert order.index("b0") <= 2, order
        assert [x for x in order if x.startswith("a")] == ["a0", "a1", "a2", "a3"]
    finally:
        pool.shutdown()


async def test_an_executor_makes_its_lane_at_its_first_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session's synthesis executor costs no queue until it is used: most
    sessions never speak (memory per idle session, bench/README.md)."""
    pool = VoicePool(1, processes=False)
    made: list[Lane] = []
    lane = pool.lane

    def counted(group: Any) -> Lane:
        made.append(lane(group))
        return made[-1]

    monkeypatch.setattr(pool, "lane", counted)
    try:
        executor = pool.executor()
        assert made == []
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(executor, record, [], "one", 0) == "one"
        assert await loop.run_in_executor(executor, record, [], "two", 0) == "two"
        assert len(made) == 1  # one lane, made once
    finally:
        pool.shutdown()


async def test_one_job_in_flight_per_lane() -> None:
    pool = VoicePool(2, processes=False)
    running = 0
    peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    try:
        lane = pool.lane("asr")
        await asyncio.gather(*(pool.run(lane, job) for _ in range(4)))
        assert peak == 1
    finally:
        pool.shutdown()


async def test_cancelled_queued_job_never_runs() -> None:
    pool = VoicePool(1, processes=False)
    try:
        lane = pool.lane("asr")
        order: list[str] = []
        first = asyncio.ensure_future(pool.run(lane, record, order, "first", 0.1))
        second = asyncio.ensure_future(pool.run(lane, record, order, "second"))
        await asyncio.sleep(0.02)
        second.cancel()
        assert await first == "first"
        await asyncio.sleep(0.1)
        assert order == ["first"]
    finally:
        pool.shutdown()


async def test_cancelled_running_job_stops_at_a_checkpoint() -> None:
    """Cancelling the caller frees the worker at the job's next checkpoint."""
    pool = VoicePool(1, processes=False)
    stopped = threading.Event()

    def long_job() -> None:
        try:
            for _ in range(500):
                time.sleep(0.01)
                checkpoint()
        except JobCancelled:
            stopped.set()
            raise

    try:
        lane = pool.lane("asr")
        task = asyncio.ensure_future(pool.run(lane, long_job))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(stopped.wait, 2.0)
        # The worker is free again.
        assert await pool.run(pool.lane("asr"), lambda: 42) == 42
    finally:
        pool.shutdown()


def test_checkpoint_outside_a_job_does_nothing() -> None:
    checkpoint()


async def test_cancelled_transcription_in_a_process_frees_the_worker() -> None:
    """A job stuck in one long call is ended with its process."""
    pool = VoicePool(1)
    try:
        lane = pool.lane("asr")
        task = asyncio.ensure_future(pool.run(lane, time.sleep, 60))
        await asyncio.sleep(1.0)  # the worker process starts, the job runs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        start = time.monotonic()
        assert await pool.run(lane, abs, -3) == 3
        assert time.monotonic() - start < 20
    finally:
        pool.shutdown()


async def test_vad_lane_in_a_process_gives_the_engine_events() -> None:
    """Ops cut into 0.5 s jobs on a worker process give the inline events."""
    pool = VoicePool(1)
    got: list[tuple[int, list[TurnEvent]]] = []
    done = asyncio.Event()

    def on_results(
        results: list[tuple[int, list[TurnEvent]]], exc: BaseException | None
    ) -> None:
        assert exc is None
        got.extend(results)
        if not lane.busy:
            done.set()

    try:
        factory = functools.partial(EnergyScorer)
        lane = pool.vad_lane(factory, on_results)
        settings = DetectorSettings(24000, 0.5, 300, 500)
        pcm = audio.silence(1000, 24000) + audio.tone(2000, 24000, 300.0, 0.5)
        pcm += audio.silence(1000, 24000)
        lane.submit(1, DetectorOp("start", settings=settings))
        lane.submit(1, DetectorOp("feed", pcm16=pcm))
        assert lane.busy and lane.backlog_seconds > 0
        await asyncio.wait_for(done.wait(), 30)
        events = [e for _, batch in got for e in batch]
        assert [e.kind for e in events] == ["started", "stopped"]
        assert events[0].ms == 700  # 1000 ms, less prefix_padding_ms
        assert lane.backlog_seconds == 0
        lane.close()
        lane.submit(1, DetectorOp("feed", pcm16=pcm))  # closed: ignored
        assert not lane.busy
    finally:
        pool.shutdown()


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        VoicePool(0)


async def test_audio_past_the_backlog_bound_is_skipped_not_queued() -> None:
    """Memory stays bounded when turn detection falls behind."""
    pool = VoicePool(1, processes=False)
    settled = asyncio.Event()

    def on_results(
        results: list[tuple[int, list[TurnEvent]]], exc: BaseException | None
    ) -> None:
        assert exc is None
        if not lane.busy:
            settled.set()

    try:
        lane = pool.vad_lane(functools.partial(EnergyScorer), on_results)
        lane.submit(
            1, DetectorOp("start", settings=DetectorSettings(24000, 0.5, 0, 500))
        )
        lane.submit(1, DetectorOp("feed", pcm16=audio.silence(12_000, 24000)))
        lane.submit(1, DetectorOp("feed", pcm16=audio.silence(5_000, 24000)))
        assert round(lane.backlog_seconds) == 12  # the 5 s were not queued
        lane.submit(1, DetectorOp("feed", pcm16=audio.silence(1_000, 24000)))
        await asyncio.wait_for(settled.wait(), 30)
        assert lane.backlog_seconds == 0
    finally:
        pool.shutdown()


async def test_many_sessions_share_worker_calls() -> None:
    """VAD jobs of many sessions go to a worker together; each gets its own."""
    pool = VoicePool(1)
    events: dict[int, list[str]] = {}
    done = asyncio.Event()
    lanes = []

    def make(k: int) -> Callable[..., None]:
        def on_results(
            results: list[tuple[int, list[TurnEvent]]], exc: BaseException | None
        ) -> None:
            assert exc is None
            for _, batch in results:
                events.setdefault(k, []).extend(e.kind for e in batch)
            if not any(lane.busy for lane in lanes):
                done.set()

        return on_results

    try:
        settings = DetectorSettings(24000, 0.5, 300, 500)
        pcm = audio.tone(600, 24000, 300.0, 0.5) + audio.silence(800, 24000)
        for k in range(40):
            lanes.append(pool.vad_lane(functools.partial(EnergyScorer), make(k)))
        for lane in lanes:
            lane.submit(1, DetectorOp("start", settings=settings))
            for i in range(0, len(pcm), 4800):  # 100 ms appends
                lane.submit(1, DetectorOp("feed", pcm16=pcm[i : i + 4800]))
        await asyncio.wait_for(done.wait(), 60)
        assert all(events.get(k) == ["started", "stopped"] for k in range(40)), events
        # 40 sessions' 600 jobs (a start and 14 appends each) went in far
        # fewer calls: the worker's calls are spaced, jobs gather meanwhile.
        assert pool._groups["vad"].calls < 40 * 15 / 4, pool._groups["vad"].calls
    finally:
        pool.shutdown()


async def test_a_dead_vad_worker_fails_its_jobs_and_is_replaced() -> None:
    """A worker process that dies (here: exits mid-job) fails the jobs it
    held; the next job runs on a fresh process."""
    pool = VoicePool(1)
    try:
        lane = pool.lane("vad")
        first = await pool.run(lane, os.getpid)
        with pytest.raises(BrokenProcessPool):
            await pool.run(lane, os._exit, 3)
        second = await pool.run(lane, os.getpid)
        assert second != first
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)  # gone, and reaped
    finally:
        pool.shutdown(5.0)
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)  # shutdown with a timeout: the workers are gone


async def test_a_result_that_cannot_be_sent_back_is_that_jobs_error() -> None:
    pool = VoicePool(1)
    try:
        lane = pool.lane("vad")
        pid = await pool.run(lane, os.getpid)
        with pytest.raises(RuntimeError, match="could not be sent"):
            await pool.run(lane, threading.Lock)  # a lock does not pickle
        with pytest.raises(TypeError):
            await pool.run(lane, functools.partial, threading.Lock())  # nor here
        assert await pool.run(lane, os.getpid) == pid  # the same worker goes on
    finally:
        pool.shutdown(5.0)


async def test_shutdown_ends_idle_vad_workers() -> None:
    pool = VoicePool(2)
    pool.warm("vad", background=False)
    lane = pool.lane("vad")
    pid = await pool.run(lane, os.getpid)
    pool.shutdown(5.0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # A job submitted after the shutdown is never run (nobody waits for it).
    job = asyncio.ensure_future(pool.run(pool.lane("vad"), os.getpid))
    await asyncio.sleep(0.05)
    assert not job.done()
    job.cancel()


def spin(seconds: float) -> str:
    """Busy until ``seconds`` pass or the job is cancelled."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        checkpoint()
        time.sleep(0.002)
    return "ran out"


async def test_a_cancelled_job_on_a_vad_worker_stops_at_its_checkpoint() -> None:
    pool = VoicePool(1)
    try:
        lane = pool.lane("vad")
        await pool.run(lane, os.getpid)
        job = asyncio.ensure_future(pool.run(lane, spin, 30.0))
        await asyncio.sleep(0.3)
        job.cancel()
        start = time.monotonic()
        await pool.run(lane, os.getpid)  # the worker is free again at once
        assert time.monotonic() - start < 10
        assert job.cancelled()
    finally:
        pool.shutdown(5.0)


_scorers_built: list[int] = []  # in each process: the rates a factory built for


def counting_scorer(rate: int) -> EnergyScorer:
    _scorers_built.append(rate)
    return EnergyScorer(rate)


def scorers_built() -> list[int]:
    return list(_scorers_built)


def failing_scorer(rate: int) -> EnergyScorer:
    raise RuntimeError(f"no model for {rate} Hz")


async def test_prime_builds_a_scorer_on_every_vad_worker() -> None:
    """Each worker process builds one scorer before any session (the first
    session on a worker no longer pays for loading the model)."""
    pool = VoicePool(2)
    try:
        took = await asyncio.to_thread(pool.prime, counting_scorer, 16000)
        assert len(took) == 2 and all(isinstance(t, float) for t in took), took
        group = pool._groups["vad"]  # one lane pinned to each worker
        built = [await pool.run(Lane(group, i), scorers_built) for i in range(2)]
        assert built == [[16000], [16000]]
        pids = {await pool.run(Lane(group, i), os.getpid) for i in range(2)}
        assert len(pids) == 2 and os.getpid() not in pids
        assert _scorers_built == []  # nothing was built in this process
    finally:
        pool.shutdown(5.0)


async def test_prime_reports_a_factory_that_fails_and_the_pool_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = VoicePool(1)
    try:
        [outcome] = await asyncio.to_thread(pool.prime, failing_scorer)
        assert isinstance(outcome, RuntimeError)
        assert "no model for 24000 Hz" in str(outcome)
        assert "could not be primed" in caplog.text
        assert await pool.run(pool.lane("vad"), os.getpid) != os.getpid()
    finally:
        pool.shutdown(5.0)


async def test_prime_of_a_factory_on_threads_runs_here() -> None:
    """A factory that cannot be pickled (its sessions run on threads), or a
    pool of threads: primed once in this process."""
    built: list[int] = []

    def local(rate: int) -> EnergyScorer:
        built.append(rate)
        return EnergyScorer(rate)

    for pool in (VoicePool(1), VoicePool(2, processes=False)):
        try:
            built.clear()
            took = await asyncio.to_thread(pool.prime, local)
            assert len(took) == 1 and isinstance(took[0], float)
            assert built == [24000]
            [failed] = await asyncio.to_thread(pool.prime, lambda r: failing_scorer(r))
            assert isinstance(failed, RuntimeError)
        finally:
            pool.shutdown(5.0)


async def test_prime_waits_no_longer_than_its_timeout() -> None:
    pool = VoicePool(1)
    try:
        group = pool._groups["vad"]
        busy = asyncio.ensure_future(pool.run(Lane(group, 0), time.sleep, 3.0))
        await asyncio.sleep(0.3)  # the worker is in that job
        start = time.monotonic()
        [outcome] = await asyncio.to_thread(pool.prime, counting_scorer, timeout=0.2)
        assert isinstance(outcome, TimeoutError)
        assert time.monotonic() - start < 2.5
        await busy
    finally:
        pool.shutdown(5.0)


def test_adjacent_feeds_of_one_generation_merge() -> None:
    """Feeds in a row of one generation become one feed; anything else
    (another op, another generation) keeps its place."""
    from openrealtime.voice.compute import _merge_feeds

    start = DetectorOp("start", settings=DetectorSettings(24000, 0.5, 0, 500))
    feed = [DetectorOp("feed", pcm16=bytes([i]) * 2) for i in range(5)]
    ops = [
        (1, start),
        (1, feed[0]),
        (1, feed[1]),
        (1, feed[2]),
        (2, feed[3]),
        (2, DetectorOp("reset")),
        (2, feed[4]),
    ]
    merged = _merge_feeds(ops)
    assert [(g, op.kind, op.pcm16) for g, op in merged] == [
        (1, "start", b""),
        (1, "feed", b"\x00\x00\x01\x01\x02\x02"),
        (2, "feed", b"\x03\x03"),
        (2, "reset", b""),
        (2, "feed", b"\x04\x04"),
    ]
    assert _merge_feeds(ops[:3])[-1][1].pcm16 == b"\x00\x00\x01\x01"
    assert _merge_feeds([]) == []


async def test_queued_appends_reach_the_scorer_in_one_batch() -> None:
    """40 ms appends queued while the worker is busy are scored in one
    score_many call, and give the events of frame-by-frame scoring."""
    batches: list[int] = []
    gate = threading.Event()

    class Batch(EnergyScorer):
        def score_many(self, frames: bytes) -> list[float]:
            gate.wait(10)  # the first job holds the worker: the rest queue up
            batches.append(len(frames) // (2 * self.frame_samples))
            n = 2 * self.frame_samples
            return [self.score(frames[i : i + n]) for i in range(0, len(frames), n)]

    pool = VoicePool(1, processes=False)
    got: list[TurnEvent] = []
    done = asyncio.Event()

    def on_results(
        results: list[tuple[int, list[TurnEvent]]], exc: BaseException | None
    ) -> None:
        assert exc is None
        got.extend(e for _, batch in results for e in batch)
        if not lane.busy:
            done.set()

    settings = DetectorSettings(24000, 0.5, 300, 500)
    pcm = audio.silence(400, 24000) + audio.tone(1000, 24000, 300.0, 0.5)
    pcm += audio.silence(800, 24000)
    appends = [pcm[i : i + 1920] for i in range(0, len(pcm), 1920)]
    try:
        lane = pool.vad_lane(lambda rate: Batch(rate), on_results)
        lane.submit(1, DetectorOp("start", settings=settings))
        lane.submit(1, DetectorOp("feed", pcm16=appends[0]))
        await asyncio.sleep(0.2)  # that job is on the worker, at the gate
        for chunk in appends[1:]:
            lane.submit(1, DetectorOp("feed", pcm16=chunk))
        gate.set()
        await asyncio.wait_for(done.wait(), 30)
    finally:
        pool.shutdown()
    inline = SpeechDetector(EnergyScorer)
    inline.apply(DetectorOp("start", settings=settings))
    expected = [
        e for chunk in appends for e in inline.apply(DetectorOp("feed", pcm16=chunk))
    ]
    assert got == expected and [e.kind for e in got] == ["started", "stopped"]
    # 2.2 s in 0.5 s jobs: a few calls of 25 frames (20 ms each), not 55 of 1-2.
    assert batches[0] == 2 and max(batches) >= 20 and len(batches) <= 8


def test_default_pool_size_follows_the_cpu_affinity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server pinned to one core (taskset, a container's cpuset) would run
    # as many workers as the machine has CPUs, all taking turns on that core.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cpus() == 1
    pool = VoicePool()
    try:
        assert pool.workers == 1
    finally:
        pool.shutdown()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 5})
    assert usable_cpus() == 3


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def test_a_worker_call_scores_every_session_together_with_the_same_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sessions of recorded speech (five LibriVox readings, Debian's pocketsphinx test
    data), 40 ms appends at 24 kHz, two appends per job as a loaded worker
    gets them: the worker's calls (one job per session each) give every
    session the turn events it gets from its own detector inline, and
    Silero is called once per call for all of them."""
    pytest.importorskip("onnxruntime")
    clips = sorted(LIBRIVOX.glob("*.wav")) if LIBRIVOX.is_dir() else []
    if not clips:
        pytest.skip("pocketsphinx's LibriVox recordings are not installed")
    from openrealtime.voice.vad import SileroScorer, make_scorer

    factory = functools.partial(make_scorer, "silero")
    if factory(24000).backend != "onnx":  # type: ignore[attr-defined]
        pytest.skip("faster-whisper's Silero model is not installed")
    streams = []
    for path in clips:
        with wave.open(str(path)) as w:
            pcm = audio.resample(w.readframes(w.getnframes()), w.getframerate(), 24000)
        streams.append(audio.silence(300, 24000) + pcm + audio.silence(900, 24000))
    settings = DetectorSettings(24000, 0.5, 300, 500)
    expected = []
    for pcm in streams:
        inline = SpeechDetector(factory)
        inline.apply(DetectorOp("start", settings=settings))
        expected.append(
            [
                e
                for i in range(0, len(pcm), 1920)
                for e in inline.apply(DetectorOp("feed", pcm16=pcm[i : i + 1920]))
            ]
        )
    batches: list[int] = []
    real = SileroScorer.score_batch.__func__  # type: ignore[attr-defined]

    def counted(cls: type, requests: list[tuple[object, bytes]]) -> object:
        batches.append(len(requests))
        return real(cls, requests)

    monkeypatch.setattr(SileroScorer, "score_batch", classmethod(counted))
    keys = [9000 + k for k in range(len(streams))]
    got: list[list[TurnEvent]] = [[] for _ in streams]
    try:
        calls = [
            (
                k,
                compute._detect,
                (key, factory, [(1, DetectorOp("start", settings=settings))]),
            )
            for k, key in enumerate(keys)
        ]
        assert [ok for ok, _ in compute._run_calls(calls)] == [True] * len(keys)
        at = 0
        while any(at < len(pcm) for pcm in streams):
            calls = []
            for k, pcm in enumerate(streams):
                if at < len(pcm):
                    ops = [
                        (1, DetectorOp("feed", pcm16=pcm[i : i + 1920]))
                        for i in (at, at + 1920)
                        if i < len(pcm)
                    ]
                    calls.append((k, compute._detect, (keys[k], factory, ops)))
            for (k, _, _), (ok, results) in zip(
                calls, compute._run_calls(calls), strict=True
            ):
                assert ok, results
                got[k] += [e for _, events in results for e in events]
            at += 3840
    finally:
        for key in keys:
            compute._forget(key)
    assert got == expected
    assert len(streams) >= 3
    assert all([e.kind for e in x][:1] == ["started"] for x in expected)
    assert all([e.kind for e in x][-1:] == ["stopped"] for x in expected)
    assert max(batches) == len(streams)


class _Broken(EnergyScorer):
    """Raises on a frame that starts with 0x7f (a scorer bug)."""

    def score(self, frame: bytes) -> float:
        if frame[:1] == b"\x7f":
            raise RuntimeError("scorer bug")
        return super().score(frame)

    @classmethod
    def score_batch(
        cls, requests: list[tuple[EnergyScorer, bytes]]
    ) -> list[list[float]]:
        return [
            [
                s.score(f[i : i + 2 * s.frame_samples])
                for i in range(0, len(f), 2 * s.frame_samples)
            ]
            for s, f in requests
        ]


def test_a_worker_call_keeps_each_jobs_failure_to_itself() -> None:
    """A scorer that fails on one session's audio fails that job alone (the
    batch is retried stream by stream); a job that raises, a feed before its
    start and an unrelated job do not disturb the others."""
    settings = DetectorSettings(24000, 0.5, 0, 500)
    start = (1, DetectorOp("start", settings=settings))
    tone = audio.tone(200, 24000, 300.0, 0.5)
    bad = b"\x7f\x00" * 480 + tone[960:]
    factory = functools.partial(_Broken)
    keys = [9100, 9101, 9102, 9103]

    def boom() -> None:
        raise KeyError("job bug")

    try:
        calls: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = [
            (
                1,
                compute._detect,
                (keys[0], factory, [start, (1, DetectorOp("feed", pcm16=tone))]),
            ),
            (
                2,
                compute._detect,
                (keys[1], factory, [start, (1, DetectorOp("feed", pcm16=bad))]),
            ),
            (3, boom, ()),
            (
                4,
                compute._detect,
                (keys[2], factory, [(1, DetectorOp("feed", pcm16=tone))]),
            ),
            (
                5,
                compute._detect,
                (keys[3], factory, [start, (1, DetectorOp("feed", pcm16=tone))]),
            ),
            (6, compute._forget, (keys[2],)),
        ]
        out = compute._run_calls(calls)
        # Jobs start in their order: the forget after a session's job finds
        # the detector that job made (and removes it).
        assert keys[2] not in compute._detectors and keys[3] in compute._detectors
    finally:
        for key in keys:
            compute._forget(key)
    assert [ok for ok, _ in out] == [True, False, False, False, True, True]
    assert [e.kind for _, events in out[0][1] for e in events] == ["started"]
    assert out[4] == out[0]
    assert isinstance(out[1][1], RuntimeError) and isinstance(out[2][1], KeyError)
    assert isinstance(out[3][1], ValueError)  # a feed before 'start'


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


async def test_worker_processes_use_one_blas_thread() -> None:
    # Batched Silero's matrix products would otherwise start a BLAS thread
    # per CPU in every worker, on top of one worker per CPU.
    pool = VoicePool(1)
    try:
        threads = await pool.run(pool.lane("asr"), _blas_threads)
    finally:
        pool.shutdown()
    assert threads and set(threads) == {1}


async def test_a_lane_closed_while_its_job_runs_on_threads_frees_its_detector() -> None:
    """On threads (an engine that cannot go to a process), a session that
    ends while its turn detection job runs still has its detector freed
    once that job is done (the forget used to be dropped: a leak per such
    session)."""
    gate = threading.Event()
    running = threading.Event()

    class Slow(EnergyScorer):
        def score(self, frame: bytes) -> float:
            running.set()
            gate.wait(10)
            return super().score(frame)

    pool = VoicePool(1, processes=False)
    try:
        lane = pool.vad_lane(lambda rate: Slow(rate), lambda results, exc: None)
        key = lane._lane.id
        lane.submit(
            1, DetectorOp("start", settings=DetectorSettings(24000, 0.5, 0, 500))
        )
        lane.submit(1, DetectorOp("feed", pcm16=audio.silence(100, 24000)))
        assert await asyncio.to_thread(running.wait, 10)
        assert key in compute._detectors
        lane.close()
        gate.set()
        for _ in range(200):
            if key not in compute._detectors and not lane.busy:
                break
            await asyncio.sleep(0.01)
        assert key not in compute._detectors
    finally:
        gate.set()
        pool.shutdown()
