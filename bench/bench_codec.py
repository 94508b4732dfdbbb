"""Codec cost: decode a session.update, encode a session.updated, side by side.

Payloads are spec-sized: the ``session.update`` example of the spec (a
function tool with a JSON schema) and a realistic effective session (the
spec's ``session.updated`` example, with ``truncation`` added as GA sends it).
Each variant does the same two things:

* ``openrealtime``: ``decode_client_event`` (typed, validated, hosted errors)
  and ``encode(SessionUpdatedEvent(...))`` of the effective config;
* ``orjson``: ``orjson.loads`` and ``orjson.dumps`` of plain dicts (no
  validation: the floor);
* ``json``: the same with the stdlib ``json``;
* ``pydantic``: the openai SDK's models: ``TypeAdapter(RealtimeClientEvent)``
  ``.validate_json`` and ``SessionUpdatedEvent(...).model_dump_json()``.

Variants are interleaved round by round (A B C D, then B C D A, ...); the
table shows the median over rounds of µs per operation and ratios to orjson and
to pydantic. Run: ``python bench/bench_codec.py [--quick] [--rounds R] [--n N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from openrealtime.codec import decode_client_event, decode_server_event, encode
from openrealtime.models import SessionUpdatedEvent


SPEC = Path(
    os.environ.get(
        "OPENREALTIME_SPEC", "/work/shared/spec/openai-realtime.openapi.json"
    )
)

# A fallback when the spec file is not at hand: the same documents, trimmed.
_FALLBACK_UPDATE: dict[str, Any] = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "instructions": "You are a creative assistant that helps with design tasks.",
        "tools": [
            {
                "type": "function",
                "name": "display_color_palette",
                "description": "Call this when a user asks for a color palette.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "theme": {"type": "string", "description": "The theme."},
                        "colors": {
                            "type": "array",
                            "description": "Five hex color codes.",
                            "items": {"type": "string", "description": "Hex code"},
                        },
                    },
                    "required": ["theme", "colors"],
                },
            }
        ],
        "tool_choice": "auto",
    },
}


def payloads() -> tuple[bytes, dict[str, Any]]:
    """The session.update frame and the effective session.updated document.

    The effective session is the hosted default (WIRE_RULES §5, as the engine
    builds it) with the update's instructions, tools and tool choice applied.
    """
    from openrealtime.config import default_config

    update = _FALLBACK_UPDATE
    if SPEC.is_file():
        schemas = json.loads(SPEC.read_text())["components"]["schemas"]
        example = schemas["RealtimeClientEventSessionUpdate"]["x-oaiMeta"]["example"]
        update = json.loads(example)
    config = default_config(
        "realtime",
        id="sess_C9G8l3zp50uFv4qgxfJ8o",
        model="gpt-realtime",
        created_at=1756324625,
    )
    session = orjson.loads(encode(config))
    for key in ("instructions", "tools", "tool_choice"):
        session[key] = update["session"][key]
    updated = {
        "type": "session.updated",
        "event_id": "event_C9G8mqI3IucaojlVKE8Cs",
        "session": session,
    }
    return orjson.dumps(update), updated


Step = Callable[[], Any]


def variants(frame: bytes, updated: dict[str, Any]) -> dict[str, tuple[Step, Step]]:
    """Each variant's (decode, encode) closures over the same payloads."""
    event_id = updated["event_id"]
    ours_session = decode_server_event(orjson.dumps(updated)).session  # type: ignore[union-attr]
    dict_session = updated["session"]

    from openai.types.realtime import (
        RealtimeClientEvent,
        RealtimeSessionCreateRequest,
        SessionUpdatedEvent as SdkSessionUpdated,
    )
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
    # The SDK types session.updated with the request model; its models keep
    # extra keys (id, object, expires_at), so the document stays whole.
    sdk_session = RealtimeSessionCreateRequest.model_validate(dict_session)

    return {
        "openrealtime": (
            lambda: decode_client_event(frame),
            lambda: encode(
                SessionUpdatedEvent(event_id=event_id, session=ours_session)
            ),
        ),
        "orjson": (
            lambda: orjson.loads(frame),
            lambda: orjson.dumps(
                {
                    "type": "session.updated",
                    "event_id": event_id,
                    "session": dict_session,
                }
            ),
        ),
        "json": (
            lambda: json.loads(frame),
            lambda: json.dumps(
                {
                    "type": "session.updated",
                    "event_id": event_id,
                    "session": dict_session,
                },
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode(),
        ),
        "pydantic": (
            lambda: adapter.validate_json(frame),
            lambda: (
                SdkSessionUpdated(
                    type="session.updated", event_id=event_id, session=sdk_session
                )
                .model_dump_json(exclude_unset=True)
                .encode()
            ),
        ),
    }


def check(
    frame: bytes, updated: dict[str, Any], steps: dict[str, tuple[Step, Step]]
) -> None:
    """Every variant decodes the frame and encodes an equal session.updated."""
    expected_update = orjson.loads(frame)
    for name, (decode, enc) in steps.items():
        decoded = decode()
        as_dict = orjson.loads(encode(decoded)) if name == "openrealtime" else decoded
        if name == "pydantic":
            as_dict = decoded.model_dump(exclude_unset=True)
        assert as_dict == expected_update, name
        assert orjson.loads(enc()) == updated, name


def timed(fn: Step, n: int) -> float:
    """µs per call over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a couple of seconds")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--n", type=int, default=20000, help="calls per round")
    args = parser.parse_args(argv)
    rounds, n = (3, 2000) if args.quick else (args.rounds, args.n)

    frame, updated = payloads()
    steps = variants(frame, updated)
    check(frame, updated, steps)
    names = list(steps)
    ops = ("decode", "encode", "both")
    results: dict[tuple[str, str], list[float]] = {
        (name, op): [] for name in names for op in ops
    }
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            decode, enc = steps[name]
            d = timed(decode, n)
            e = timed(enc, n)
            results[name, "decode"].append(d)
            results[name, "encode"].append(e)
            results[name, "both"].append(d + e)
    med = {key: statistics.median(v) for key, v in results.items()}

    out_size = len(steps["openrealtime"][1]())
    print(
        f"session.update ({len(frame)} B) decode + session.updated ({out_size} B) "
        f"encode; {rounds} rounds x {n} calls, median µs/op"
    )
    print(
        f"{'variant':<14}{'decode':>9}{'encode':>9}{'both':>9}"
        f"{'vs orjson':>11}{'pydantic/x':>12}"
    )
    for name in names:
        both = med[name, "both"]
        print(
            f"{name:<14}{med[name, 'decode']:>9.2f}{med[name, 'encode']:>9.2f}"
            f"{both:>9.2f}{both / med['orjson', 'both']:>10.2f}x"
            f"{med['pydantic', 'both'] / both:>11.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
