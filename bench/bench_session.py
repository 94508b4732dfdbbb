"""Server compute per session.update, side by side in one run.

Each variant takes one ``session.update`` frame (bytes) and produces the
``session.updated`` frame (bytes): decode, merge into the current session,
validate, build the full effective config, encode.

* ``openrealtime``: ``Session.receive_text`` + ``data_to_send`` (the real engine,
  including event ids and all the hosted rules);
* ``orjson-dict``: ``orjson.loads``, a recursive dict merge, ``orjson.dumps`` (no
  validation at all: the floor for "do the work in Python");
* ``sdk-pydantic``: the openai SDK's pydantic models, the way peer servers do it
  (``model_validate_json``, ``model_dump(exclude_unset=True)`` deep merge,
  re-validate the merged session, ``model_dump_json``).

Variants are interleaved round by round; the table shows medians and ratios.
Run: ``python bench/bench_session.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from benchlib import SESSION_UPDATE
from openrealtime.ids import RandomIds
from openrealtime.session import Session


# The same payload as the server benchmarks: what a real client sends.
UPDATE = orjson.dumps(SESSION_UPDATE)


def ours() -> Callable[[bytes], bytes]:
    """The engine, exactly as the server drives it."""
    session = Session(now=time.time(), ids=RandomIds())
    session.data_to_send()
    now = time.time()

    def step(frame: bytes) -> bytes:
        session.receive_text(frame, now)
        (out,) = session.data_to_send()
        return out

    return step


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def orjson_dict() -> Callable[[bytes], bytes]:
    """Plain dicts: parse, deep merge, dump. No validation."""
    session = Session(now=time.time())
    state: dict[str, Any] = orjson.loads(session.data_to_send()[0])["session"]

    def step(frame: bytes) -> bytes:
        event = orjson.loads(frame)
        _merge(state, event["session"])
        return orjson.dumps(
            {"type": "session.updated", "event_id": "event_x", "session": state}
        )

    return step


def sdk_pydantic() -> Callable[[bytes], bytes]:
    """The peer style: the openai SDK's pydantic models and model_dump merges."""
    from openai.types.realtime import (
        RealtimeSessionCreateRequest,
        SessionUpdatedEvent,
        SessionUpdateEvent,
    )

    session = Session(now=time.time())
    created = orjson.loads(session.data_to_send()[0])["session"]
    state: dict[str, Any] = {
        k: v for k, v in created.items() if k not in ("object", "id", "expires_at")
    }

    def step(frame: bytes) -> bytes:
        event = SessionUpdateEvent.model_validate_json(frame)
        patch = event.session.model_dump(exclude_unset=True)
        merged = _merge(state, patch)
        validated = RealtimeSessionCreateRequest.model_validate(merged)
        body = validated.model_dump()
        body.update(object="realtime.session", id="sess_x", expires_at=0)
        return SessionUpdatedEvent.model_validate(
            {"type": "session.updated", "event_id": "event_x", "session": body}
        ).model_dump_json()

    return step


VARIANTS: dict[str, Callable[[], Callable[[bytes], bytes]]] = {
    "openrealtime": ours,
    "orjson-dict": orjson_dict,
    "sdk-pydantic": sdk_pydantic,
}


def measure(step: Callable[[bytes], bytes], n: int) -> float:
    """Median-free single timing: µs per call over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        step(UPDATE)
    return (time.perf_counter() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds, seconds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=5000, help="calls per round")
    args = parser.parse_args(argv)
    rounds, n = (2, 300) if args.quick else (args.rounds, args.n)
    steps = {name: make() for name, make in VARIANTS.items()}
    for step in steps.values():  # warm up, and check every variant works
        assert orjson.loads(step(UPDATE))["type"] == "session.updated"
    results: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(measure(steps[name], n))
    med = {name: statistics.median(v) for name, v in results.items()}
    print(
        f"session.update -> session.updated, {rounds} rounds x {n} calls, "
        "median µs/update"
    )
    print(f"{'variant':<14}{'µs/update':>12}{'vs orjson':>12}{'pydantic/x':>12}")
    for name in names:
        print(
            f"{name:<14}{med[name]:>12.2f}{med[name] / med['orjson-dict']:>11.2f}x"
            f"{med['sdk-pydantic'] / med[name]:>11.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
