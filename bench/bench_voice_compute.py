"""Threads or processes for voice compute? Do the engines release the GIL?

For each engine (Silero VAD frames of 32 ms, PocketSphinx decoding one
utterance of 1 s of noise per call), run its work on 1 and 2 threads of this
process while the main thread wakes every 1 ms, as an event loop would; then
run the same work in 1 and 2 worker processes. Reports the engine's
throughput (calls/s) and the main thread's wake-up gaps (p50, p99, max). An
engine that releases the GIL leaves the gaps near 1 ms on threads and
doubles its throughput with two threads; one that holds it stretches the
gaps to its call length (or the interpreter's 5 ms switch interval) and
gains nothing from a second thread.

    python bench/bench_voice_compute.py [--seconds 3] [--engines silero,sphinx]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import sys
import threading
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402


def silero_work(seconds: float) -> int:
    import numpy as np

    from openrealtime.voice.vad import SileroScorer

    scorer = SileroScorer()
    frame = np.random.default_rng(0).normal(0, 3000, 512).astype("<i2").tobytes()
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        scorer.score(frame)
        n += 1
    return n


def sphinx_work(seconds: float) -> int:
    import numpy as np
    from pocketsphinx import Decoder  # type: ignore[import-untyped]

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    chunk = np.random.default_rng(0).normal(0, 3000, 16000).astype("<i2").tobytes()
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        decoder.start_utt()
        decoder.process_raw(chunk, full_utt=True)
        decoder.end_utt()
        n += 1
    return n


WORK = {"silero": silero_work, "sphinx": sphinx_work}


def ticker(stop: threading.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append((now - last) * 1000)
        last = now


def run(engine: str, mode: str, workers: int, seconds: float) -> dict[str, float]:
    work = WORK[engine]
    # Load the model first, outside the measured window.
    work(0.0)
    stop = threading.Event()
    gaps: list[float] = []
    tick = threading.Thread(target=ticker, args=(stop, gaps))
    executor: concurrent.futures.Executor
    if mode == "threads":
        executor = concurrent.futures.ThreadPoolExecutor(workers)
    else:
        executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("forkserver")
        )
        list(executor.map(work, [0.0] * workers))  # start and load the models
    with executor:
        tick.start()
        futures = [executor.submit(work, seconds) for _ in range(workers)]
        calls = sum(f.result() for f in futures)
        stop.set()
        tick.join()
    ordered = sorted(gaps)
    return {
        "calls_per_s": calls / seconds,
        "gap_p50": benchlib.percentile(ordered, 50),
        "gap_p99": benchlib.percentile(ordered, 99),
        "gap_max": ordered[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--engines", default="silero,sphinx")
    args = parser.parse_args(argv)
    benchlib.warn_if_busy()
    rows = []
    for engine in args.engines.split(","):
        base: float | None = None
        for mode in ("threads", "processes"):
            for workers in (1, 2):
                r = run(engine, mode, workers, args.seconds)
                if base is None:
                    base = r["calls_per_s"]
                rows.append(
                    [
                        engine,
                        mode,
                        str(workers),
                        benchlib.fmt(r["calls_per_s"], 1),
                        f"{benchlib.ratio(r['calls_per_s'], base):.2f}x",
                        benchlib.fmt(r["gap_p50"], 2),
                        benchlib.fmt(r["gap_p99"], 2),
                        benchlib.fmt(r["gap_max"], 1),
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(
        benchlib.table(
            [
                "engine",
                "on",
                "workers",
                "calls/s",
                "vs 1 thread",
                "loop gap p50 ms",
                "p99 ms",
                "max ms",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
