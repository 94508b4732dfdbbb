"""Voice compute off the event loop: a bounded pool, fair between sessions.

Theory of operation
-------------------
Turn detection (Silero, WebRTC, energy), transcription (PocketSphinx, or
any :class:`~openrealtime.voice.asr.Transcriber`) and speech synthesis are
CPU work that must never run on a server's event loop: one session's 11 MiB
append or 10 MiB commit would freeze every other session. A
:class:`VoicePool` runs them on workers, in three groups:

* ``vad``: worker **processes** (Silero and PocketSphinx hold the GIL for
  the whole of each call, so threads would still stall the loop: see
  ``bench/README.md``, "Voice compute"). A session's detector keeps state
  from frame to frame (Silero's recurrent state, partial frames, the
  resampler), so each session is pinned to one worker, the least loaded
  when it first needs one, and its ops run there in order;
* ``asr``: worker processes for transcription, any worker for any job;
* ``io``: threads, for work that waits rather than computes (streaming
  espeak-ng's output, which runs in a subprocess of its own) and for
  engines that cannot be sent to a process (not picklable).

Every group is bounded (``workers`` processes each for ``vad`` and
``asr``, by default the number of CPUs; twice as many ``io`` threads) and
fair: work is queued per *lane* (one session's work of one kind), a lane has
at most one job in flight, and free workers take lanes round-robin, so a
session that queues a lot waits for its own work, not others for it. A big
VAD feed is cut into jobs of at most :data:`VAD_JOB_SECONDS` of audio, so it
takes its turns with the others instead of holding a worker; one worker call
carries the VAD jobs of up to :data:`VAD_BATCH` sessions, and scores their
frames together (:func:`_run_calls`: Silero's encoder and LSTM run once for
every session of the call, not once per session). Each ``vad``
process is driven over a pipe by one thread of the server's, which calls it
at most every :data:`VAD_CALL_INTERVAL` (10 ms): under load the jobs of that
time go together, in one round trip and one wake-up of the event loop, which
is what made 200 Silero sessions fit on one core. A session more
than :data:`VAD_BACKLOG_SECONDS` behind has its further audio skipped (the
timeline advances, nothing is scored) rather than queued.

Worker processes run at a lower priority (``nice`` +:data:`WORKER_NICE`):
when the CPUs are saturated, the event loop still gets the CPU it needs to
answer every session at once.

A job whose session ended is cancelled: if it has not started it is
dropped; if it runs, the engine stops at its next :func:`checkpoint` (the
transcription job calls it between deltas, PocketSphinx before decoding),
and a transcription still running :data:`CANCEL_GRACE_SECONDS` later (one
long native call) is ended with its worker process, which the pool replaces.

Worker processes are made by a ``forkserver``: a program that embeds the
server must guard its entry point with ``if __name__ == "__main__":``, as
``multiprocessing`` requires.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import functools
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, Literal, Protocol

from openrealtime.turns import (
    DetectorOp,
    DetectorSettings,
    FrameScorer,
    SpeechDetector,
    TurnEvent,
)


__all__ = [
    "CANCEL_GRACE_SECONDS",
    "JobCancelled",
    "Lane",
    "LaneExecutor",
    "VAD_BACKLOG_SECONDS",
    "VAD_JOB_SECONDS",
    "VadLane",
    "VoicePool",
    "WORKER_NICE",
    "checkpoint",
    "default_pool",
    "shutdown_default_pool",
    "usable_cpus",
]

logger = logging.getLogger("openrealtime.voice")

#: Most audio, in seconds at the input rate, that one VAD job scores.
VAD_JOB_SECONDS: Final = 0.5
#: VAD jobs of different sessions sent to a worker in one call, at most.
VAD_BATCH: Final = 256
#: Least seconds between two calls to one VAD worker process. Under load the
#: jobs that come meanwhile gather and go in one call (one round trip, one
#: wake-up of the event loop) instead of a call of one or two jobs each; a
#: job that finds its worker idle for longer goes at once.
VAD_CALL_INTERVAL: Final = 0.010
#: Audio of one session waiting for turn detection past which more audio is
#: skipped (not scored) instead of queued: memory stays bounded when the
#: workers cannot keep up.
VAD_BACKLOG_SECONDS: Final = 10.0
#: Niceness added to worker processes (the event loop keeps priority).
WORKER_NICE: Final = 5
#: Seconds a cancelled transcription may run on before its worker process
#: is ended (and replaced), freeing the CPU.
CANCEL_GRACE_SECONDS: Final = 0.25

GroupName = Literal["vad", "asr", "io"]


class JobCancelled(Exception):
    """The job was cancelled (its session ended) and stopped at a checkpoint."""


# --- Inside a worker (process or thread) ---------------------------------------

_local = threading.local()
_cancelled_job: Any = None  # a shared RawValue('q') in a worker process
_detectors: dict[int, SpeechDetector] = {}


def checkpoint() -> None:
    """Raise :class:`JobCancelled` if the job running here was cancelled.

    Engines call it between pieces of work (PocketSphinx: every second of
    audio); outside a pool job it does nothing.
    """
    check: Callable[[], bool] | None = getattr(_local, "check", None)
    if check is not None and check():
        raise JobCancelled


def _init_process(cancelled: Any) -> None:
    global _cancelled_job
    _cancelled_job = cancelled
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    # One BLAS thread per worker: the pool already runs a worker per CPU,
    # and numpy's OpenBLAS would otherwise start a thread per CPU in each
    # (batched Silero's matrix products are big enough to use them).
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(1)
    _steady_malloc()


#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _steady_malloc() -> None:
    """Keep a worker's big, short-lived arrays on the heap.

    glibc maps each allocation over its (moving) mmap threshold afresh and
    unmaps it when freed, so every batched Silero pass faulted its arrays
    in again: 24 against 10 µs per frame at 90 frames, depending on the
    allocator's history. Fixed thresholds (8 MiB to map, 32 MiB of free heap
    kept before trimming) make it the same every call. Not glibc: nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, 8 << 20)
    mallopt(_M_TRIM_THRESHOLD, 32 << 20)


def _run_in_process(job_id: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    cancelled = _cancelled_job
    _local.check = lambda: cancelled is not None and cancelled.value == job_id
    try:
        return fn(*args)
    finally:
        _local.check = None


def _run_in_thread(job: _Job, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    _local.check = lambda: job.cancelled
    try:
        return fn(*args)
    finally:
        _local.check = None


def _detect(
    key: int,
    factory: Callable[[int], FrameScorer],
    ops: Sequence[tuple[int, DetectorOp]],
) -> list[tuple[int, list[TurnEvent]]]:
    """Apply ops to the detector of lane ``key``; events by generation.

    :func:`_detect_steps` with each feed scored at once by its own scorer
    (a worker call of several jobs runs them side by side instead:
    :func:`_run_calls`).
    """
    steps = _detect_steps(key, factory, ops)
    try:
        detector, frames = next(steps)
        while True:
            detector, frames = steps.send(detector.detector.score(frames))
    except StopIteration as stop:
        result: list[tuple[int, list[TurnEvent]]] = stop.value
        return result


#: What a suspended :func:`_detect_steps` asks for: these frames scored by
#: this detector's scorer.
_ScoreRequest = tuple[SpeechDetector, bytes]


def _detect_steps(
    key: int,
    factory: Callable[[int], FrameScorer],
    ops: Sequence[tuple[int, DetectorOp]],
) -> Generator[_ScoreRequest, list[float], list[tuple[int, list[TurnEvent]]]]:
    """:func:`_detect` with its scoring done by the caller: each feed with
    whole frames yields them and is sent back their scores, so a worker can
    score the feeds of every session in its call together
    (:func:`_score_requests`)."""
    detector = _detectors.get(key)
    if detector is None:
        detector = _detectors[key] = SpeechDetector(factory)
    out: list[tuple[int, list[TurnEvent]]] = []
    for generation, op in ops:
        if op.kind == "feed":
            frames = detector.take_frames(op.pcm16)
            scores = (yield detector, frames) if frames else []
            events = detector.detector.decide(scores)
        else:
            events = detector.apply(op)
        if events:
            out.append((generation, events))
    return out


def _score_requests(
    requests: Sequence[_ScoreRequest],
) -> list[list[float] | BaseException]:
    """Score each request's frames (or give its exception), those of a
    scorer class that batches streams (``score_batch``, e.g. Silero) in one
    call for all of them."""
    out: list[list[float] | BaseException | None] = [None] * len(requests)
    groups: dict[Any, list[int]] = {}
    for i, (detector, _) in enumerate(requests):
        batch = getattr(type(detector.detector.scorer), "score_batch", None)
        if batch is not None and len(requests) > 1:
            groups.setdefault(batch, []).append(i)
    for batch, members in groups.items():
        try:
            scores = batch(
                [(requests[i][0].detector.scorer, requests[i][1]) for i in members]
            )
            for i, result in zip(members, scores, strict=True):
                out[i] = result
        except Exception:  # one bad stream: score each alone, below
            logger.debug(
                "batched scoring failed; scoring streams one by one", exc_info=True
            )
            for i in members:
                out[i] = None
    for i, result in enumerate(out):
        if result is None:
            detector, frames = requests[i]
            try:
                out[i] = detector.detector.score(frames)
            except Exception as exc:
                out[i] = exc
    return [result for result in out if result is not None]


_Steps = Generator[_ScoreRequest, list[float], Any]


def _run_calls(
    calls: Sequence[tuple[int, Callable[..., Any], tuple[Any, ...]]],
) -> list[tuple[bool, Any]]:
    """Run one worker call's ``(job id, fn, args)`` jobs: each result or
    exception. Turn detection jobs (:func:`_detect`) run as
    :func:`_detect_steps`: each in its place in the call up to its first
    feed, then all their frames are scored together, round after round."""
    global _current_job
    out: list[tuple[bool, Any] | None] = [None] * len(calls)
    asked: list[tuple[int, _Steps]] = []
    requests: list[_ScoreRequest] = []

    def advance(
        i: int, steps: _Steps, scores: list[float] | BaseException | None
    ) -> None:
        try:
            if isinstance(scores, BaseException):
                request = steps.throw(scores)
            elif scores is None:
                request = next(steps)
            else:
                request = steps.send(scores)
        except StopIteration as stop:
            out[i] = (True, stop.value)
        except Exception as exc:
            out[i] = (False, exc)
        else:
            asked.append((i, steps))
            requests.append(request)

    for i, (job_id, fn, args) in enumerate(calls):
        if fn is _detect:
            advance(i, _detect_steps(*args), None)
            continue
        _current_job = job_id
        try:
            out[i] = (True, fn(*args))
        except Exception as exc:
            out[i] = (False, exc)
        finally:
            _current_job = 0
    while asked:
        waiting, scored = asked, _score_requests(requests)
        asked, requests = [], []
        for (i, steps), scores in zip(waiting, scored, strict=True):
            advance(i, steps, scores)
    return [item for item in out if item is not None]


def _merge_feeds(
    ops: list[tuple[int, DetectorOp]],
) -> list[tuple[int, DetectorOp]]:
    """Adjacent feeds of one generation as one feed.

    A lane's ops queue up while its worker is busy (a backlog, a loaded
    machine), so a job may carry several 40 ms appends. Fed as one, their
    whole frames reach the scorer together
    (:class:`~openrealtime.turns.BatchScorer`: one model run for all of
    them); the resampler and the detector give what they give fed piece by
    piece, so the turn events are the same.
    """
    out: list[tuple[int, DetectorOp]] = []
    runs = itertools.groupby(ops, key=lambda item: (item[0], item[1].kind == "feed"))
    for (generation, feeds), run in runs:
        taken = list(run)
        if feeds and len(taken) > 1:
            pcm = b"".join(op.pcm16 for _, op in taken)
            taken = [(generation, DetectorOp("feed", pcm16=pcm))]
        out.extend(taken)
    return out


def _run_many(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
) -> list[tuple[bool, Any]]:
    """Run several jobs in one worker call; each result or exception."""
    return _run_calls([(0, fn, args) for fn, args in calls])


def _forget(key: int) -> None:
    _detectors.pop(key, None)


def _prime(factory: Callable[[int], FrameScorer], rate: int) -> float:
    """Do once, in a worker, what its first session's first job would pay
    for: build a scorer (a model scorer loads its engine and model here),
    its resampler, and score 100 ms of silence. Nothing is kept but what
    the scorer caches for the process. Returns the seconds it took."""
    began = time.perf_counter()
    detector = SpeechDetector(factory)
    detector.apply(DetectorOp("start", settings=DetectorSettings(rate, 0.5, 0, 500)))
    detector.apply(DetectorOp("feed", pcm16=bytes(rate // 10 * 2)))
    return time.perf_counter() - began


_current_job = 0  # in a linked worker process: the id of the job running


def _current_cancelled() -> bool:
    return _cancelled_job is not None and _cancelled_job.value == _current_job


def _serve_link(conn: Any, cancelled: Any) -> None:
    """A turn detection worker process: run each batch the server sends.

    One message each way per batch: the pickled ``(job id, fn, args)``
    calls, then their ``(ok, result or exception)`` list. It ends when the
    server closes its end of the pipe.
    """
    _init_process(cancelled)
    _local.check = _current_cancelled
    while True:
        try:
            calls = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        out = _run_calls(calls)
        try:
            data = pickle.dumps(out, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a result or an exception that cannot be sent
            failure = RuntimeError(f"a voice job's result could not be sent: {exc!r}")
            data = pickle.dumps([(False, failure)] * len(out))
        conn.send_bytes(data)


def _transcribe(
    transcriber: Any,
    pcm16: bytes,
    rate: int,
    language: str | None,
    prompt: str | None,
    logprobs: bool = False,
) -> list[str]:
    from openrealtime.voice.asr import run_transcriber

    deltas: list[str] = []
    for delta in run_transcriber(
        transcriber, pcm16, rate, language=language, prompt=prompt, logprobs=logprobs
    ):
        deltas.append(delta)
        checkpoint()
    return deltas


# --- The scheduler (on the server's side) -------------------------------------

_job_ids = itertools.count(1)
_lane_ids = itertools.count(1)


class _Done(Protocol):
    """What a job's ``on_done`` reads of its outcome (a future has it too)."""

    def cancelled(self) -> bool: ...

    def exception(self) -> BaseException | None: ...

    def result(self) -> Any: ...


class _Outcome:
    """A finished job's result or exception (cheaper than a future)."""

    __slots__ = ("_ok", "_value")

    def __init__(self, ok: bool, value: Any) -> None:
        self._ok = ok
        self._value = value

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return None if self._ok else self._value

    def result(self) -> Any:
        if not self._ok:
            raise self._value
        return self._value


class _Job:
    __slots__ = ("args", "cancelled", "fn", "id", "kill", "on_done", "started")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_done: Callable[[_Done], None],
    ) -> None:
        self.id = next(_job_ids)
        self.fn = fn
        self.args = args
        self.on_done = on_done
        self.started = False
        #: Set by a cancel while it runs (a thread job's checkpoint reads
        #: it; a flag, not a ``threading.Event``: a job is made per 40 ms
        #: append, and an Event costs a Condition and a lock each).
        self.cancelled = False
        #: End the worker process if the job, cancelled, runs on.
        self.kill = True


class Lane:
    """One session's queue of one kind of work: one job in flight at a time."""

    # "__dict__": VadLane replaces has_work and next_job on its lane.
    __slots__ = (
        "id",
        "group",
        "worker",
        "jobs",
        "running",
        "closed",
        "queued",
        "__dict__",
    )

    def __init__(self, group: _Group | _LinkedGroup, worker: int | None) -> None:
        self.id = next(_lane_ids)
        self.group = group
        self.worker = worker
        self.jobs: collections.deque[_Job] = collections.deque()
        self.running: _Job | None = None
        self.closed = False
        #: In its group's queue of lanes with work (a linked group's flag).
        self.queued = False

    def has_work(self) -> bool:
        return bool(self.jobs)

    def next_job(self) -> _Job | None:
        return self.jobs.popleft() if self.jobs else None

    def submit(self, job: _Job) -> None:
        with self.group.lock:
            self.jobs.append(job)
            self.group.wake(self)

    def cancel(self, job: _Job) -> None:
        """Drop the job if queued; stop it at its next checkpoint if running."""
        with self.group.lock:
            if job in self.jobs:
                self.jobs.remove(job)
                return
            if self.running is job:
                self.group.cancel_running(job)


class _Group:
    """N workers (processes or threads), each running one job at a time."""

    def __init__(
        self,
        name: GroupName,
        size: int,
        *,
        processes: bool,
        kill_after: float | None = None,
        batch: int = 1,
    ) -> None:
        self.name = name
        #: Jobs of different lanes one worker call may carry.
        self.batch = batch
        self.size = size
        self.processes = processes
        #: Seconds a cancelled job may run on before its process is ended
        #: (``None``: never; the ``vad`` group's workers hold sessions' state).
        self.kill_after = kill_after if processes else None
        self.lock = threading.Lock()
        self._executors: list[concurrent.futures.Executor | None] = [None] * size
        self._running: list[list[_Job]] = [[] for _ in range(size)]
        self._pinned = [0] * size
        self._cancelled: list[Any] = [None] * size
        self._killed = [False] * size
        self._ready: collections.deque[Lane] = collections.deque()
        self._shutdown = False
        # Dispatching and finishing happen on one scheduler thread: never on
        # the event loop (starting a process takes a while) and never in an
        # executor's own callback thread (calling the executor from there
        # can deadlock it).
        self._events: queue.SimpleQueue[
            tuple[int, list[tuple[Lane, _Job]], concurrent.futures.Future[Any]] | None
        ] = queue.SimpleQueue()
        self._scheduler: threading.Thread | None = None

    # Called with the lock held.

    def wake(self, lane: Lane) -> None:
        if lane.running is None and lane not in self._ready and lane.has_work():
            self._ready.append(lane)
            if self._scheduler is None:
                self._scheduler = threading.Thread(
                    target=self._schedule,
                    name=f"openrealtime-{self.name}-scheduler",
                    daemon=True,
                )
                self._scheduler.start()
            self._events.put(None)

    def cancel_running(self, job: _Job) -> None:
        job.cancelled = True
        for i, running in enumerate(self._running):
            if running == [job] and self._cancelled[i] is not None:
                self._cancelled[i].value = job.id
                if self.kill_after is not None and job.kill:
                    timer = threading.Timer(self.kill_after, self._kill, (i, job))
                    timer.daemon = True
                    timer.start()

    def _kill(self, i: int, job: _Job) -> None:
        """End worker ``i`` if it still runs the cancelled ``job``.

        For engines that do not reach a :func:`checkpoint` soon (one long
        native call): the worker dies, the pool starts a fresh one.
        """
        with self.lock:
            if self._running[i] != [job]:
                return
            self._killed[i] = True
            for process in _worker_processes(self._executors[i]):
                process.kill()

    def pin(self) -> int:
        worker = min(range(self.size), key=self._pinned.__getitem__)
        self._pinned[worker] += 1
        return worker

    def unpin(self, worker: int) -> None:
        self._pinned[worker] -= 1

    def _new_executor(self, i: int) -> tuple[concurrent.futures.Executor, Any]:
        if self.processes:
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server process that imported these once.
            context.set_forkserver_preload(["openrealtime.voice.compute", "numpy"])
            cancelled = context.RawValue("q", 0)
            executor: concurrent.futures.Executor = (
                concurrent.futures.ProcessPoolExecutor(
                    1,
                    mp_context=context,
                    initializer=_init_process,
                    initargs=(cancelled,),
                )
            )
            return executor, cancelled
        executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"openrealtime-{self.name}-{i}"
        )
        return executor, None

    def _executor(self, i: int) -> concurrent.futures.Executor:
        executor = self._executors[i]
        if executor is None:
            executor, self._cancelled[i] = self._new_executor(i)
            self._executors[i] = executor
        return executor

    def warm(self) -> None:
        """Start every worker now, without holding the lock while they start
        (so the first jobs do not wait for processes to be made)."""
        for i in range(self.size):
            with self.lock:
                if self._executors[i] is not None or self._shutdown:
                    continue
            executor, cancelled = self._new_executor(i)
            try:
                executor.submit(os.getpid).result()
            except Exception:  # pragma: no cover - a worker that cannot start
                logger.exception("voice worker %s-%d did not start", self.name, i)
                executor.shutdown(wait=False)
                continue
            with self.lock:
                if self._executors[i] is None and not self._shutdown:
                    self._executors[i] = executor
                    self._cancelled[i] = cancelled
                    continue
            executor.shutdown(wait=False)

    def _dispatch(self) -> None:
        if self._shutdown:
            return
        for i in range(self.size):
            if self._running[i]:
                continue
            pairs: list[tuple[Lane, _Job]] = []
            for lane in list(self._ready):
                if lane.worker is not None and lane.worker != i:
                    continue
                self._ready.remove(lane)
                job = lane.next_job()
                if job is None:  # pragma: no cover - only lanes with work are ready
                    continue
                lane.running = job
                job.started = True
                pairs.append((lane, job))
                if len(pairs) >= self.batch:
                    break
            if not pairs:
                continue
            jobs = [job for _, job in pairs]
            self._running[i] = jobs
            executor = self._executor(i)
            if len(jobs) == 1:
                fn, args, job_id = jobs[0].fn, jobs[0].args, jobs[0].id
            else:
                # Several sessions' jobs in one call: one round trip to the
                # worker instead of one each (the cost that dominates small
                # VAD jobs).
                fn, args, job_id = _run_many, ([(j.fn, j.args) for j in jobs],), 0
            try:
                if self.processes:
                    future = executor.submit(_run_in_process, job_id, fn, args)
                else:
                    future = executor.submit(_run_in_thread, jobs[0], fn, args)
            except Exception as exc:  # a broken process pool
                future = concurrent.futures.Future()
                future.set_exception(exc)
                self._done(i, pairs, future)
                self._settle(pairs, future)
                continue
            future.add_done_callback(functools.partial(self._finished, i, pairs))

    def _done(
        self,
        i: int,
        pairs: list[tuple[Lane, _Job]],
        future: concurrent.futures.Future[Any],
    ) -> None:
        self._running[i] = []
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, BrokenProcessPool):
            # The worker died (killed, out of memory): start a fresh one. The
            # detectors pinned there are lost; their sessions' next ops fail.
            if self._killed[i]:
                logger.info(
                    "voice worker %s-%d ended: its job was cancelled", self.name, i
                )
            else:
                logger.error("voice worker %s-%d died; restarting it", self.name, i)
            self._killed[i] = False
            executor = self._executors[i]
            self._executors[i] = None
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        for lane, _ in pairs:
            lane.running = None
            # A lane closed meanwhile still has its forget to run (its ops
            # were dropped at close).
            if lane.has_work() and lane not in self._ready:
                self._ready.append(lane)

    @staticmethod
    def _settle(
        pairs: list[tuple[Lane, _Job]], future: concurrent.futures.Future[Any]
    ) -> None:
        """Give each job its own outcome (a batch's results are per job)."""
        if len(pairs) == 1:
            pairs[0][1].on_done(future)
            return
        exc = None if future.cancelled() else future.exception()
        results = (
            [(False, exc or JobCancelled())] * len(pairs)
            if exc is not None or future.cancelled()
            else future.result()
        )
        for (_, job), (ok, value) in zip(pairs, results, strict=True):
            one: concurrent.futures.Future[Any] = concurrent.futures.Future()
            if ok:
                one.set_result(value)
            else:
                one.set_exception(value)
            job.on_done(one)

    # Called from an executor's thread.

    def _finished(
        self,
        i: int,
        pairs: list[tuple[Lane, _Job]],
        future: concurrent.futures.Future[Any],
    ) -> None:
        self._events.put((i, pairs, future))

    # The scheduler thread.

    def _schedule(self) -> None:
        while True:
            event = self._events.get()
            try:
                with self.lock:
                    if event is not None:
                        self._done(*event)
                    self._dispatch()
                if event is not None:
                    self._settle(event[1], event[2])
            except Exception:  # pragma: no cover - a bug: keep scheduling
                logger.exception("voice pool %s: scheduling failed", self.name)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the workers; with ``timeout``, wait that long for worker
        processes to exit, then kill those that run on (a long job)."""
        with self.lock:
            self._shutdown = True
            executors = [e for e in self._executors if e is not None]
            self._executors = [None] * self.size
        processes = [p for e in executors for p in _worker_processes(e)]
        # (Its shutdown(wait=False) forgets the executor's own thread.)
        threads = [getattr(e, "_executor_manager_thread", None) for e in executors]
        for executor in executors:
            executor.shutdown(wait=False, cancel_futures=True)
        if timeout is None:
            return
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
        # The workers are gone: the executors' own threads finish at once and
        # release their queues (else the resource tracker reports them).
        for thread in threads:
            if thread is not None:
                thread.join(1.0)


def _worker_processes(executor: object) -> list[Any]:
    """The live worker processes of a process pool executor (none for a
    thread pool): ``ProcessPoolExecutor`` keeps them in ``_processes``."""
    return list((getattr(executor, "_processes", None) or {}).values())


def _deliver(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    """Run ``callback(*args)`` on ``loop``, unless that loop has closed.

    Inside :func:`_delivering`, the calls are gathered and each loop gets
    them in one wake-up.
    """
    gathered: list[Any] | None = getattr(_local, "deliveries", None)
    if gathered is not None:
        gathered.append((loop, callback, args))
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
        loop.call_soon_threadsafe(callback, *args)


def _run_deliveries(calls: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    for callback, args in calls:
        try:
            callback(*args)
        except Exception:  # pragma: no cover - a bug in a callback: run the rest
            logger.exception("voice pool: a result callback failed")


@contextlib.contextmanager
def _delivering() -> Iterator[None]:
    """Gather this thread's :func:`_deliver` calls; hand each loop its share
    with one ``call_soon_threadsafe`` (one wake-up of the loop per batch of
    results, not one per job)."""
    gathered: list[tuple[asyncio.AbstractEventLoop, Callable[..., None], Any]] = []
    _local.deliveries = gathered
    try:
        yield
    finally:
        _local.deliveries = None
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for loop, callback, args in gathered:
            by_loop.setdefault(loop, []).append((callback, args))
        for loop, calls in by_loop.items():
            with contextlib.suppress(RuntimeError):  # closed: nobody waits
                loop.call_soon_threadsafe(_run_deliveries, calls)


class _Link:
    """One turn detection worker process and the pipe to it."""

    __slots__ = ("conn", "process")

    def __init__(self, conn: Any, process: Any) -> None:
        self.conn = conn
        self.process = process

    def close(self) -> None:
        """Close the server's end: the worker reads EOF and exits."""
        with contextlib.suppress(OSError):
            self.conn.close()


class _LinkedGroup:
    """Worker processes for turn detection, each driven over a pipe by one
    thread of the server's.

    Turn detection sends many small jobs (a 40 ms append every 40 ms per
    session), so the hand-off is what it costs beyond the scoring itself.
    A ``concurrent.futures`` process pool takes four thread hops per job
    (the group's scheduler, the executor's manager and its queue feeder
    threads, then a callback per future) and one wake-up of the event loop
    per result: at 180 sessions that was ~40 % of a core. Here worker ``i``
    has one thread that takes the lanes pinned to it which have work (up to
    ``batch`` of them), sends their jobs in one message, waits for the one
    reply, and hands each event loop its results in one call.

    Same interface as :class:`_Group` for :class:`Lane` and
    :class:`VadLane`; fairness is the same (a lane has one job in flight,
    lanes are served in the order they got work).
    """

    processes = True

    def __init__(
        self, name: GroupName, size: int, *, batch: int, interval: float = 0.0
    ) -> None:
        self.name = name
        self.size = size
        self.batch = batch
        #: Least seconds between two calls to one worker.
        self.interval = interval
        #: Calls made to the workers (each carries one or more jobs).
        self.calls = 0
        self.lock = threading.Lock()
        self._ready: list[collections.deque[Lane]] = [
            collections.deque() for _ in range(size)
        ]
        self._wakeups = [threading.Condition(self.lock) for _ in range(size)]
        self._idle = [False] * size
        self._threads: list[threading.Thread | None] = [None] * size
        self._links: list[_Link | None] = [None] * size
        self._starting = [threading.Lock() for _ in range(size)]
        self._running: list[list[_Job]] = [[] for _ in range(size)]
        self._cancelled: list[Any] = [None] * size
        self._pinned = [0] * size
        self._shutdown = False

    @property
    def stopped(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._shutdown

    # Called with the lock held.

    def pin(self) -> int:
        worker = min(range(self.size), key=self._pinned.__getitem__)
        self._pinned[worker] += 1
        return worker

    def unpin(self, worker: int) -> None:
        self._pinned[worker] -= 1

    def wake(self, lane: Lane) -> None:
        if lane.running is not None or lane.queued or not lane.has_work():
            return
        i = lane.worker
        if i is None:  # a lane with no state on a worker: the least busy one
            i = min(range(self.size), key=lambda k: len(self._ready[k]))
        lane.queued = True
        self._ready[i].append(lane)
        if self._threads[i] is None and not self._shutdown:
            thread = threading.Thread(
                target=self._serve, args=(i,), name=f"openrealtime-{self.name}-{i}"
            )
            thread.daemon = True
            self._threads[i] = thread
            thread.start()
        elif self._idle[i]:
            self._idle[i] = False
            self._wakeups[i].notify()

    def cancel_running(self, job: _Job) -> None:
        job.cancelled = True
        for i, running in enumerate(self._running):
            if job in running and self._cancelled[i] is not None:
                self._cancelled[i].value = job.id

    # Worker processes.

    def _link(self, i: int) -> _Link | None:
        """Worker ``i``'s process, started (and answering) if it was not."""
        with self._starting[i]:
            link = self._links[i]
            if link is not None or self._shutdown:
                return link
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server process that imported these once.
            context.set_forkserver_preload(["openrealtime.voice.compute", "numpy"])
            cancelled = context.RawValue("q", 0)
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve_link,
                args=(theirs, cancelled),
                name=f"openrealtime-{self.name}-{i}",
                daemon=True,
            )
            process.start()
            theirs.close()
            link = _Link(ours, process)
            try:  # an empty batch: the worker runs
                ours.send_bytes(pickle.dumps([]))
                ours.recv_bytes()
            except (EOFError, OSError):  # pragma: no cover - cannot start
                logger.exception("voice worker %s-%d did not start", self.name, i)
                link.close()
                return None
            with self.lock:
                if self.stopped:  # shut down while it started
                    link.close()
                    return None
                self._links[i] = link
                self._cancelled[i] = cancelled
            return link

    def warm(self) -> None:
        """Start every worker process now (so the first jobs do not wait)."""
        for i in range(self.size):
            self._link(i)

    def _call(self, i: int, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """Run ``jobs`` on worker ``i``; each one's ``(ok, value)``."""
        link = self._link(i)
        if link is None:
            return [(False, BrokenProcessPool("the voice pool is shut down"))] * len(
                jobs
            )
        try:
            message = pickle.dumps(
                [(job.id, job.fn, job.args) for job in jobs], pickle.HIGHEST_PROTOCOL
            )
        except Exception as exc:  # something a job carries cannot be sent
            return [(False, exc)] * len(jobs)
        try:
            link.conn.send_bytes(message)
            results: list[tuple[bool, Any]] = pickle.loads(link.conn.recv_bytes())
        except (EOFError, OSError) as exc:
            # The worker died (killed, out of memory): the next call starts a
            # fresh one. The detectors that lived there are lost.
            logger.error("voice worker %s-%d died; restarting it", self.name, i)
            with self.lock:
                self._links[i] = None
            link.close()
            link.process.join(1.0)
            broken = BrokenProcessPool(f"voice worker {self.name}-{i} died: {exc!r}")
            return [(False, broken)] * len(jobs)
        return results

    # Worker i's thread.

    def _serve(self, i: int) -> None:
        ready = self._ready[i]
        wakeup = self._wakeups[i]
        sent = -self.interval
        while True:
            # Under load, let jobs gather: one call carries them all.
            pause = sent + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pairs: list[tuple[Lane, _Job]] = []
            with self.lock:
                while not ready and not self._shutdown:
                    self._idle[i] = True
                    wakeup.wait()
                if self._shutdown:
                    self._idle[i] = False
                    link, self._links[i] = self._links[i], None
                    if link is not None:
                        link.close()
                    return
                while ready and len(pairs) < self.batch:
                    lane = ready.popleft()
                    lane.queued = False
                    job = lane.next_job()
                    if job is None:  # pragma: no cover - only lanes with work
                        continue
                    lane.running = job
                    job.started = True
                    pairs.append((lane, job))
                jobs = [job for _, job in pairs]
                self._running[i] = jobs
            if not jobs:  # pragma: no cover - only lanes with work are ready
                continue
            sent = time.monotonic()
            results = self._call(i, jobs)
            self.calls += 1
            with self.lock:
                self._running[i] = []
                for lane, _ in pairs:
                    lane.running = None
                    self.wake(lane)
            with _delivering():
                for job, (ok, value) in zip(jobs, results, strict=True):
                    try:
                        job.on_done(_Outcome(ok, value))
                    except Exception:  # pragma: no cover - a bug: go on
                        logger.exception("voice pool %s: on_done failed", self.name)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the workers; with ``timeout``, wait that long for worker
        processes to exit, then kill those that run on."""
        with self.lock:
            self._shutdown = True
            links = [link for link in self._links if link is not None]
            for i in range(self.size):
                if self._threads[i] is None or self._idle[i]:
                    # No thread is in a call on this link: close it here.
                    link, self._links[i] = self._links[i], None
                    if link is not None:
                        link.close()
                self._wakeups[i].notify()
        if timeout is None:
            return
        deadline = time.monotonic() + timeout
        for link in links:
            link.process.join(max(0.0, deadline - time.monotonic()))
            if link.process.is_alive():
                link.process.kill()
                link.process.join(1.0)


def _picklable(obj: object) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


class VadLane:
    """Turn detection of one session on a pinned worker.

    :meth:`submit` takes the engine's ops in order; a ``feed`` longer than
    :data:`VAD_JOB_SECONDS` is cut into pieces, and one job takes pending
    ops up to that much audio. Results come back on the event loop, one call
    of ``on_results(events, error)`` per job: the events by generation, or
    the exception the job raised. :attr:`busy` says whether any op submitted
    has not been reported yet.
    """

    def __init__(
        self,
        group: _Group | _LinkedGroup,
        factory: Callable[[int], FrameScorer],
        on_results: Callable[
            [list[tuple[int, list[TurnEvent]]], BaseException | None], None
        ],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        with group.lock:
            worker = group.pin()
        self._lane = Lane(group, worker)
        self._lane.has_work = self._has_work  # type: ignore[method-assign]
        self._lane.next_job = self._next_job  # type: ignore[method-assign]
        self._factory = factory
        self._on_results = on_results
        self._ops: collections.deque[tuple[int, DetectorOp]] = collections.deque()
        self._rate = 24000
        self._forget = False
        # On the loop: ops submitted, and ops whose job's results arrived;
        # bytes of audio submitted and not yet scored.
        self._submitted = 0
        self._settled = 0
        self._backlog = 0
        self._backlog_rate = 24000
        self._skipping = False

    @property
    def backlog_seconds(self) -> float:
        """Seconds of submitted audio not scored yet (at the last rate seen)."""
        return self._backlog / 2 / self._backlog_rate

    @property
    def busy(self) -> bool:
        """Whether some submitted op has not been reported back yet."""
        return self._settled < self._submitted

    def submit(self, generation: int, op: DetectorOp) -> None:
        """Queue one op of the engine's :class:`~openrealtime.session.DetectSpeech`."""
        group = self._lane.group
        with group.lock:
            if self._lane.closed:
                return
            self._submitted += 1
            if op.settings is not None:
                self._backlog_rate = op.settings.rate
            if op.kind == "feed" and self.backlog_seconds >= VAD_BACKLOG_SECONDS:
                # Behind by more than the bound: this audio is not scored
                # (the timeline still advances), so memory stays bounded.
                if not self._skipping:  # once per session: it may recur
                    self._skipping = True
                    logger.warning(
                        "turn detection is %.0f s behind; skipping audio "
                        "(the voice workers cannot keep up)",
                        self.backlog_seconds,
                    )
                op = DetectorOp("skip", skip_bytes=len(op.pcm16))
            else:
                self._backlog += len(op.pcm16)
            self._ops.append((generation, op))
            group.wake(self._lane)

    @property
    def pending_ops(self) -> int:
        """Ops waiting for a worker."""
        return len(self._ops)

    def close(self) -> None:
        """Drop what is queued and free the detector on its worker."""
        group = self._lane.group
        with group.lock:
            if self._lane.closed:
                return
            self._ops.clear()
            self._lane.closed = True
            self._forget = True
            assert self._lane.worker is not None
            group.unpin(self._lane.worker)
            group.wake(self._lane)

    # With the group's lock held.

    def _has_work(self) -> bool:
        return bool(self._ops) or self._forget

    def _next_job(self) -> _Job | None:
        if not self._ops:
            if not self._forget:  # pragma: no cover - only lanes with work are ready
                return None
            self._forget = False
            return _Job(_forget, (self._lane.id,), lambda future: None)
        budget = max(2, int(self._rate * VAD_JOB_SECONDS) * 2)
        taken: list[tuple[int, DetectorOp]] = []
        whole = 0  # ops taken entirely (a feed cut in two counts at its end)
        nbytes = 0
        while self._ops and budget > 0:
            generation, op = self._ops[0]
            if op.kind != "feed":
                taken.append(self._ops.popleft())
                whole += 1
                if op.settings is not None:
                    self._rate = op.settings.rate
                    budget = max(2, int(self._rate * VAD_JOB_SECONDS) * 2)
                continue
            if len(op.pcm16) <= budget:
                self._ops.popleft()
                rest: object = op.pcm16
                if isinstance(rest, memoryview):  # the end of a cut feed
                    op = DetectorOp("feed", pcm16=bytes(rest))
                taken.append((generation, op))
                whole += 1
                budget -= len(op.pcm16)
                nbytes += len(op.pcm16)
                continue
            # Cut at an even offset; the rest stays queued as a view (no copy
            # of what is left of a big feed for every piece).
            cut = budget - budget % 2
            view = memoryview(op.pcm16)
            taken.append((generation, DetectorOp("feed", pcm16=bytes(view[:cut]))))
            self._ops[0] = (generation, DetectorOp("feed", pcm16=view[cut:]))  # type: ignore[arg-type]
            nbytes += cut
            budget = 0
        return _Job(
            _detect,
            (self._lane.id, self._factory, _merge_feeds(taken)),
            functools.partial(self._done, whole, nbytes),
        )

    # On an executor's thread.

    def _done(self, whole: int, nbytes: int, future: _Done) -> None:
        if future.cancelled():
            results: list[tuple[int, list[TurnEvent]]] = []
            exc: BaseException | None = None
        else:
            exc = future.exception()
            results = [] if exc is not None else future.result()
        _deliver(self._loop, self._settle, whole, nbytes, results, exc)

    # On the loop.

    def _settle(
        self,
        whole: int,
        nbytes: int,
        results: list[tuple[int, list[TurnEvent]]],
        exc: BaseException | None,
    ) -> None:
        self._settled += whole
        self._backlog -= nbytes
        self._on_results(results, exc)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (``taskset``,
    ``docker --cpuset-cpus``, a Kubernetes static CPU policy), not every CPU
    of the machine. More workers than that only take turns on the same
    cores, with smaller batches and more wake-ups each."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class VoicePool:
    """The workers of voice compute, shared by every session of a process.

    Args:
        workers: workers of each group (``vad``, ``asr``, ``io``); ``None``
            is the number of CPUs this process may run on
            (:func:`usable_cpus`).
        processes: run ``vad`` and ``asr`` in worker processes (the
            default); ``False`` runs them on threads (for engines that
            release the GIL, or to measure the difference).
    """

    def __init__(self, workers: int | None = None, *, processes: bool = True) -> None:
        size = workers if workers is not None else usable_cpus()
        if size < 1:
            raise ValueError("a voice pool needs at least one worker")
        self.workers = size
        self.processes = processes
        self._groups: dict[GroupName, _Group | _LinkedGroup] = {
            "vad": (
                _LinkedGroup("vad", size, batch=VAD_BATCH, interval=VAD_CALL_INTERVAL)
                if processes
                else _Group("vad", size, processes=False, batch=VAD_BATCH)
            ),
            "asr": _Group(
                "asr", size, processes=processes, kill_after=CANCEL_GRACE_SECONDS
            ),
            # Threads that mostly wait (on espeak-ng's pipe): more of them.
            "io": _Group("io", max(4, 2 * size), processes=False),
        }
        self._asr_warm = False

    def vad_lane(
        self,
        factory: Callable[[int], FrameScorer],
        on_results: Callable[
            [list[tuple[int, list[TurnEvent]]], BaseException | None], None
        ],
    ) -> VadLane:
        """A session's turn detection (call on the session's event loop).

        A ``factory`` that cannot be pickled runs on threads.
        """
        return VadLane(self._groups[self._home("vad", factory)], factory, on_results)

    def _home(self, name: GroupName, payload: object) -> GroupName:
        """The group that runs ``payload``'s jobs: ``name``, or ``io``
        (threads) where ``name`` runs on processes and ``payload`` cannot be
        pickled to them."""
        group = self._groups[name]
        if group.processes and not _picklable(payload):
            return "io"
        return name

    def lane(self, group: GroupName) -> Lane:
        """A new lane (one session's queue) in ``group``."""
        return Lane(self._groups[group], None)

    async def run(
        self, lane: Lane, fn: Callable[..., Any], *args: Any, kill: bool = True
    ) -> Any:
        """Run ``fn(*args)`` in ``lane`` when its turn comes; return its result.

        Cancelling the caller drops the job, or stops it at its next
        :func:`checkpoint` and frees the worker (with ``kill``, by ending a
        worker process whose job runs on past the grace).
        """
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()

        def settle(future: _Done) -> None:
            if result.done():
                return
            if future.cancelled():
                result.cancel()
            elif (exc := future.exception()) is not None:
                result.set_exception(exc)
            else:
                result.set_result(future.result())

        job = _Job(fn, args, lambda future: _deliver(loop, settle, future))
        job.kill = kill
        lane.submit(job)
        try:
            return await result
        except asyncio.CancelledError:
            lane.cancel(job)
            raise

    async def transcribe(
        self,
        lane: Lane | None,
        transcriber: Any,
        pcm16: bytes,
        rate: int,
        *,
        language: str | None,
        prompt: str | None,
        kill: bool = True,
        logprobs: bool = False,
    ) -> list[str]:
        """Transcribe one utterance in the session's ``asr`` lane.

        A transcriber that cannot be pickled runs on the ``io`` threads.
        Pass the lane from :meth:`transcription_lane` (``None``: a new one).
        ``logprobs``: ask an engine that gives them for log probabilities.
        """
        if lane is None:
            lane = self.transcription_lane(transcriber)
        deltas: list[str] = await self.run(
            lane,
            _transcribe,
            transcriber,
            pcm16,
            rate,
            language,
            prompt,
            logprobs,
            kill=kill,
        )
        return deltas

    def transcription_lane(self, transcriber: Any) -> Lane:
        """The lane a session's transcriptions go through."""
        group = self._home("asr", transcriber)
        if group == "asr" and not self._asr_warm:
            self._asr_warm = True
            self.warm("asr")
        return self.lane(group)

    def executor(self) -> concurrent.futures.Executor:
        """An executor over one new ``io`` lane (a session's synthesis),
        made at its first job."""
        return LaneExecutor(functools.partial(self.lane, "io"))

    def prime(
        self,
        factory: Callable[[int], FrameScorer],
        rate: int = 24000,
        *,
        timeout: float = 120.0,
    ) -> list[float | BaseException]:
        """Make each turn detection worker ready for ``factory``'s scorers
        (blocks; call it from a thread, before sessions come).

        A model scorer pays for its engine and model once per worker process
        (ONNX Silero: ~110 ms to import onnxruntime and load the model), and
        without this the first session on each worker pays it in its first
        job. Each worker builds one scorer for ``rate`` and scores 100 ms of
        silence (see :func:`_prime`); a ``factory`` that runs on threads (it
        cannot be pickled) is primed once here. Returns each worker's
        seconds, or the exception it raised (logged; sessions would meet
        the same one), or :class:`TimeoutError` for one not done in time.
        """
        group = self._groups[self._home("vad", factory)]
        if not group.processes:
            try:
                return [_prime(factory, rate)]
            except Exception as exc:
                logger.warning("turn detection could not be primed: %r", exc)
                return [exc]
        done = threading.Event()
        out: list[float | BaseException] = [TimeoutError()] * group.size
        left = [group.size]
        lock = threading.Lock()

        def settle(i: int, future: _Done) -> None:
            exc = future.exception()
            if exc is not None:
                logger.warning("voice worker vad-%d could not be primed: %r", i, exc)
            with lock:
                out[i] = exc if exc is not None else future.result()
                left[0] -= 1
                if not left[0]:
                    done.set()

        for i in range(group.size):
            # A lane pinned to worker i but not counted as a session's.
            Lane(group, i).submit(
                _Job(_prime, (factory, rate), functools.partial(settle, i))
            )
        done.wait(timeout)
        with lock:
            return list(out)

    def warm(self, *groups: GroupName, background: bool = True) -> None:
        """Start the worker processes of ``groups`` (default: all) now, on a
        thread of their own unless ``background`` is false, not when the
        first job comes."""
        chosen = [self._groups[name] for name in groups or self._groups]

        def run() -> None:
            for group in chosen:
                if group.processes:
                    group.warm()

        if background:
            threading.Thread(
                target=run, name="openrealtime-voice-warm", daemon=True
            ).start()
        else:
            run()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every worker (running jobs are abandoned); with ``timeout``,
        worker processes are gone when it returns (killed past it)."""
        for group in self._groups.values():
            group.shutdown(timeout)


class LaneExecutor(concurrent.futures.Executor):
    """``loop.run_in_executor`` over a lane: one step at a time, fair.

    Given a function instead of a lane, it makes its lane with it at the
    first job: a session that never speaks keeps no queue (~0.9 KiB).
    """

    def __init__(self, lane: Lane | Callable[[], Lane]) -> None:
        self._lane = lane

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        outer: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def settle(future: _Done) -> None:
            if future.cancelled():
                outer.cancel()
            elif (exc := future.exception()) is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(future.result())

        call = functools.partial(fn, *args, **kwargs) if kwargs else fn
        lane = self._lane
        if not isinstance(lane, Lane):
            lane = self._lane = lane()
        lane.submit(_Job(call, args if not kwargs else (), settle))
        return outer


_default: VoicePool | None = None
_default_lock = threading.Lock()


def shutdown_default_pool(timeout: float = 5.0) -> None:
    """End the process's voice pool, if one was made, and its processes.

    For a server's shutdown: a process ended by a signal (uvicorn re-raises
    SIGTERM once it has shut down) runs no ``atexit`` hooks, and its worker
    processes and their forkserver would outlive it. A later
    :func:`default_pool` makes a new pool.
    """
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None:
        pool.shutdown(timeout)


def default_pool(workers: int | None = None, *, wait: bool = False) -> VoicePool:
    """The process's voice pool, made on first use.

    ``workers`` (or ``OPENREALTIME_VOICE_WORKERS``) sizes it when it is
    made; later calls return the same pool. Its turn detection workers start
    on a thread of their own, or before it returns with ``wait``.
    """
    global _default
    with _default_lock:
        if _default is None:
            if workers is None and (
                env := os.environ.get("OPENREALTIME_VOICE_WORKERS")
            ):
                workers = int(env)
            _default = VoicePool(workers)
            # Turn detection is used by most servers; transcription workers
            # start with the first session that transcribes.
            _default.warm("vad", background=not wait)
        return _default
