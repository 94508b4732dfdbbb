"""Fuzz: 100 000 random and mutated client frames through the engine.

A seeded mutator (cheap, reproducible: the seed is in the test id) takes valid
events and breaks them: keys dropped or added at any depth, values swapped for
other JSON types, strings made huge, numbers pushed out of range, objects
nested deep, bytes truncated or flipped. Every frame goes through
``Session.receive_text``. The properties:

* no exception escapes the engine;
* every frame is answered, and a frame the codec rejects gets exactly one
  ``error`` event with the hosted envelope;
* a rejected ``session.update`` never changes the effective config.

Run more: ``FUZZ_FRAMES=1000000 pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
import random
from typing import Any

import pytest

from openrealtime.codec import encode
from openrealtime.exceptions import InvalidRequestError
from openrealtime.ids import CountingIds
from openrealtime.session import Session, StartResponse


FRAMES = int(os.environ.get("FUZZ_FRAMES", "100000"))
SEEDS = 4

VALID: list[dict[str, Any]] = [
    {
        "type": "session.update",
        "event_id": "e1",
        "session": {
            "type": "realtime",
            "instructions": "Be brief.",
            "output_modalities": ["text"],
            "tools": [
                {"type": "function", "name": "f", "parameters": {"type": "object"}}
            ],
            "tool_choice": "auto",
            "max_output_tokens": 100,
            "tracing": {"workflow_name": "w"},
            "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
            "prompt": {"id": "p", "variables": {"a": "b"}},
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "whisper-1", "language": "en"},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "idle_timeout_ms": None,
                    },
                },
                "output": {
                    "format": {"type": "audio/pcmu"},
                    "voice": "ash",
                    "speed": 1.2,
                },
            },
        },
    },
    {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    },
    {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(b"\x00\x01" * 480).decode(),
    },
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {
        "type": "conversation.item.create",
        "previous_item_id": "root",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
    },
    {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 10,
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {
        "type": "response.create",
        "response": {
            "instructions": "x",
            "metadata": {"k": "v"},
            "conversation": "none",
        },
    },
    {"type": "response.cancel"},
    {"type": "session.close"},
]


class Mutator:
    """Breaks JSON documents at random, reproducibly."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def scalar(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                2**70,
                r.randint(-(10**6), 10**6),
                r.random() * 10 ** r.randint(-3, 6),
                "",
                "x" * r.choice([1, 100, 5000]),
                r.choice(
                    ["auto", "none", "audio/pcm", "server_vad", "realtime", "alloy"]
                ),
                [],
                {},
            ]
        )

    def mutate(self, doc: Any, depth: int = 0) -> Any:
        r = self.rng
        if isinstance(doc, dict):
            doc = dict(doc)
            roll = r.random()
            if doc and roll < 0.2:
                del doc[r.choice(list(doc))]
            elif roll < 0.35:
                doc[
                    r.choice(["bogus", "voice", "modalities", "id", "type", "session"])
                ] = self.scalar()
            elif doc and roll < 0.75:
                key = r.choice(list(doc))
                doc[key] = self.mutate(doc[key], depth + 1)
            elif doc:
                doc[r.choice(list(doc))] = self.scalar()
            return doc
        if isinstance(doc, list):
            doc = list(doc)
            if doc and r.random() < 0.5:
                i = r.randrange(len(doc))
                doc[i] = self.mutate(doc[i], depth + 1)
            else:
                doc.append(self.scalar())
            return doc
        return self.scalar() if r.random() < 0.7 else doc

    def frame(self) -> bytes:
        r = self.rng
        roll = r.random()
        doc = self.mutate(r.choice(VALID)) if roll < 0.8 else r.choice(VALID)
        data = json.dumps(doc).encode()
        if roll > 0.97:  # break the bytes themselves
            i = r.randrange(len(data))
            data = (
                data[:i]
                if r.random() < 0.5
                else data[:i] + bytes([r.randrange(256)]) + data[i + 1 :]
            )
        elif 0.95 < roll <= 0.97:  # nest deep
            data = (
                b'{"type":"session.update","session":'
                + b'{"a":' * 500
                + b"1"
                + b"}" * 501
            )
        return data


@pytest.mark.parametrize("seed", range(SEEDS))
def test_fuzz_engine(seed: int) -> None:
    """No exception escapes; bad frames get one error; rejected updates change nothing."""
    mutator = Mutator(seed)
    session = Session(now=0.0, ids=CountingIds())
    session.data_to_send()
    errors = accepted = 0
    for n in range(FRAMES // SEEDS):
        data = mutator.frame()
        before = encode(session.config)
        try:
            session.receive_text(data, float(n))
        except Exception as exc:  # pragma: no cover - the property under test
            pytest.fail(f"seed {seed}, frame {n}: {exc!r} escaped for {data[:300]!r}")
        events = [json.loads(d) for d in session.data_to_send()]
        for action in session.actions_to_take():
            if isinstance(action, StartResponse):
                session.response_text(action.request.response_id, "ok")
                session.response_done(action.request.response_id)
                session.data_to_send()
        if session.close_code is not None:  # session.close: start a new session
            session = Session(now=float(n), ids=CountingIds())
            session.data_to_send()
            accepted += 1
            continue
        try:
            from openrealtime.codec import decode_client_event

            decode_client_event(data)
            decodes = True
        except InvalidRequestError:
            decodes = False
        if not decodes:
            errors += 1
            assert len(events) == 1 and events[0]["type"] == "error", events
            error = events[0]["error"]
            assert set(error) == {"type", "code", "message", "param", "event_id"}
            # msgspec's own wording never reaches a client (a client's key may
            # contain a backtick, so look for msgspec's phrases, not the char).
            assert "Expected `" not in error["message"]
            assert "- at `$" not in error["message"]
        else:
            accepted += 1
        rejected = any(e["type"] == "error" for e in events)
        if rejected and b'"session.update"' in data:
            assert encode(session.config) == before
    assert errors > FRAMES // SEEDS // 10
    assert accepted > FRAMES // SEEDS // 20
