"""Conformance scenarios, and how their transcripts are recorded.

Each scenario is a list of steps: a client event (or raw text, or a function
of the server events seen so far, for ids the server made) and the server
event type to wait for before the next step. Recording runs a fresh server
with the scenario's responder, puts ``openrealtime record``'s relay in front
of it and drives the steps through the relay::

    .venv/bin/python -m tests.conformance.scenarios   # rewrites transcripts/*.jsonl

``test_transcripts.py`` replays every transcript against a fresh server and
against an in-process ``Session``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from openrealtime.responders.base import Responder
from openrealtime.responders.echo import EchoResponder
from openrealtime.responders.scripted import ScriptedResponder, load_fixture
from openrealtime.server import Settings
from openrealtime.tools.record import Recorder


__all__ = ["SCENARIOS", "TRANSCRIPTS", "Scenario", "record_all"]

TRANSCRIPTS = Path(__file__).parent / "transcripts"
#: Upper bound on server events read while waiting for one.
MAX_EVENTS = 500

Event = dict[str, Any] | str | Callable[[list[dict[str, Any]]], dict[str, Any]]
Step = tuple[Event, str | None]


@dataclass(frozen=True)
class Scenario:
    """A named list of steps and the responder that answers them."""

    name: str
    steps: list[Step]
    responder: Callable[[], Responder] = EchoResponder
    query: str = "model=gpt-realtime"

    @property
    def path(self) -> Path:
        """Its transcript."""
        return TRANSCRIPTS / f"{self.name}.jsonl"


def update(session: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A realtime ``session.update``."""
    event: dict[str, Any] = {
        "type": "session.update",
        "session": {"type": "realtime", **session},
    }
    if event_id is not None:
        event["event_id"] = event_id
    return event


def user_text(text: str) -> dict[str, Any]:
    """A user message item."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _weather_responder() -> Responder:
    return ScriptedResponder(
        load_fixture(
            {
                "rules": [
                    {
                        "match": {"text": "weather"},
                        "reply": {
                            "function_call": {
                                "name": "get_weather",
                                "arguments": {"city": "Paris"},
                            }
                        },
                    },
                    {
                        "match": {"item_type": "function_call_output"},
                        "reply": {"text": "It is sunny in Paris."},
                    },
                ]
            }
        )
    )


def _last_output(events: list[dict[str, Any]]) -> dict[str, Any]:
    done = [e for e in events if e["type"] == "response.done"][-1]
    item: dict[str, Any] = done["response"]["output"][0]
    return item


def _call_output(events: list[dict[str, Any]]) -> dict[str, Any]:
    call = _last_output(events)
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": json.dumps({"sky": "sunny", "celsius": 21}),
        },
    }


def _retrieve_reply(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "conversation.item.retrieve", "item_id": _last_output(events)["id"]}


SCENARIOS = [
    Scenario(
        "session_update_merge",
        [
            (
                update(
                    {
                        "instructions": "Be brief.",
                        "audio": {"output": {"voice": "marin"}},
                    }
                ),
                "session.updated",
            ),
            # A threshold-only turn_detection keeps the other server_vad fields.
            (
                update(
                    {
                        "audio": {
                            "input": {
                                "turn_detection": {
                                    "type": "server_vad",
                                    "threshold": 0.7,
                                }
                            }
                        }
                    }
                ),
                "session.updated",
            ),
            # Switching variants starts from the new variant's defaults.
            (
                update(
                    {
                        "audio": {
                            "input": {
                                "turn_detection": {
                                    "type": "semantic_vad",
                                    "eagerness": "high",
                                }
                            }
                        }
                    }
                ),
                "session.updated",
            ),
            # null clears turn_detection; "" clears instructions.
            (
                update(
                    {"audio": {"input": {"turn_detection": None}}, "instructions": ""}
                ),
                "session.updated",
            ),
            (
                update({"tools": [WEATHER_TOOL], "tool_choice": "required"}),
                "session.updated",
            ),
            # [] clears tools; what is absent stays.
            (update({"tools": []}), "session.updated"),
            (
                update({"output_modalities": ["text"], "max_output_tokens": 200}),
                "session.updated",
            ),
        ],
    ),
    Scenario(
        "session_update_errors",
        [
            (
                update(
                    {
                        "audio": {
                            "input": {
                                "turn_detection": {
                                    "type": "semantic_vad",
                                    "threshold": 0.5,
                                }
                            }
                        }
                    },
                    "evt_threshold",
                ),
                "error",
            ),
            (update({"audio": {"output": {"voice": None}}}, "evt_null_voice"), "error"),
            (update({"instructions": "x", "colour": "blue"}, "evt_unknown"), "error"),
            (
                update({"output_modalities": ["text", "audio"]}, "evt_modalities"),
                "error",
            ),
            (
                {
                    "type": "session.update",
                    "event_id": "evt_switch",
                    "session": {"type": "transcription"},
                },
                "error",
            ),
            ('{"type": "session.update", "session": ', "error"),
            ({"type": "session.update"}, "error"),
            # All or nothing: the rejected updates changed nothing.
            (update({"audio": {"output": {"speed": 1.25}}}), "session.updated"),
        ],
    ),
    Scenario(
        "voice_lock",
        [
            (update({"audio": {"output": {"voice": "verse"}}}), "session.updated"),
            (user_text("Say something."), "conversation.item.done"),
            # Assistant audio locks the voice.
            ({"type": "response.create"}, "response.done"),
            (update({"audio": {"output": {"voice": "marin"}}}, "evt_voice"), "error"),
            # The same voice passes (clients that resend their whole config).
            (
                update(
                    {"audio": {"output": {"voice": "verse"}}, "instructions": "Hi."}
                ),
                "session.updated",
            ),
        ],
    ),
    Scenario(
        "text_turn_echo",
        [
            (update({"output_modalities": ["text"]}), "session.updated"),
            (user_text("Hello there, echo!"), "conversation.item.done"),
            ({"type": "response.create"}, "response.done"),
            (_retrieve_reply, "conversation.item.retrieved"),
            ({"type": "session.close"}, None),
        ],
    ),
    Scenario(
        "function_call",
        [
            (
                update({"output_modalities": ["text"], "tools": [WEATHER_TOOL]}),
                "session.updated",
            ),
            (user_text("What is the weather in Paris?"), "conversation.item.done"),
            ({"type": "response.create"}, "response.done"),
            (_call_output, "conversation.item.done"),
            ({"type": "response.create"}, "response.done"),
        ],
        responder=_weather_responder,
    ),
]


async def drive(url: str, scenario: Scenario) -> None:
    """Run a scenario's steps against ``url`` (a ``/v1/realtime`` URL)."""
    seen: list[dict[str, Any]] = []
    async with connect(f"{url}?{scenario.query}", proxy=None) as ws:

        async def until(event_type: str | None) -> None:
            for _ in range(MAX_EVENTS):
                try:
                    event = json.loads(await ws.recv())
                except Exception:
                    return  # closed
                seen.append(event)
                if event["type"] == event_type:
                    return
            raise AssertionError(f"{scenario.name}: no {event_type}")

        await until("session.created")
        for event, wait_for in scenario.steps:
            if callable(event):
                event = event(seen)
            await ws.send(event if isinstance(event, str) else json.dumps(event))
            await until(wait_for)


async def record(scenario: Scenario) -> None:
    """Record one scenario's transcript through the relay."""
    from tests.server.conftest import running_server

    settings = Settings(responder=scenario.responder, pace=0)
    with running_server(settings) as live:
        recorder = Recorder(live.ws_url(), scenario.path, once=True, log=lambda _: None)
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(recorder.run("127.0.0.1", 0, ready.set_result))
        port = await ready
        await drive(f"ws://127.0.0.1:{port}/v1/realtime", scenario)
        await task


async def record_all() -> None:
    """Record every scenario."""
    TRANSCRIPTS.mkdir(exist_ok=True)
    for scenario in SCENARIOS:
        await record(scenario)
        print(f"recorded {scenario.path}")


if __name__ == "__main__":
    asyncio.run(record_all())
