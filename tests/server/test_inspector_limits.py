"""The inspector under hostile input and its bounds (issue 14).

With ``--inspector`` a deeply nested frame made the inspector's
``json.loads`` raise ``RecursionError`` into the connection: close 1011, no
error event, a traceback per frame. The inspector must never raise into a
connection, and it keeps what it shows within a byte budget.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from openrealtime.server import Settings
from tests.server.conftest import running_server


MAX_EVENTS = 50


async def recv_type(ws: Any, event_type: str) -> dict[str, Any]:
    for _ in range(MAX_EVENTS):
        event = json.loads(await ws.recv())
        if event["type"] == event_type:
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"no {event_type}")


UPDATE = json.dumps({"type": "session.update", "session": {"type": "realtime"}})


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "frame",
    [
        _nested(100_000),
        # Deep, but within what json.loads parses on an empty stack.
        '{"type": "session.update", "session": ' + _nested(900) + "}",
        '{"type": "x", "a": ' + '{"b": ' * 5000 + "1" + "}" * 5000 + "}",
    ],
    ids=["array-100000", "update-900", "object-5000"],
)
async def test_nested_frames_do_not_reach_the_connection(
    driver: str, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each deeply nested frame is answered by the engine as usual; the
    session stays open and nothing is logged as an error."""
    caplog.set_level(logging.WARNING)
    settings = Settings(inspector=True)
    with running_server(settings, driver) as live:
        async with connect(
            live.ws_url(model="gpt-realtime"), proxy=None, max_size=None
        ) as ws:
            sid = (await recv_type(ws, "session.created"))["session"]["id"]
            for _ in range(3):
                await ws.send(frame)
                error = await recv_type(ws, "error")
                assert error["error"]["type"] == "invalid_request_error"
            await ws.send(UPDATE)
            await recv_type(ws, "session.updated")
            async with httpx.AsyncClient(base_url=live.http) as client:
                response = await client.get(f"/inspector/api/sessions/{sid}")
                listed = await client.get("/inspector/api/sessions")
        assert ws.close_code == 1000
    assert response.status_code == 200 and listed.status_code == 200
    events = response.json()["events"]
    assert [e["type"] for e in events][-2:] == ["session.update", "session.updated"]
    assert len(events) == 1 + 3 * 2 + 2
    assert events[1]["type"] == "(nested too deeply)"
    assert events[1]["event"]["text"] == frame[:2000]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_failing_observer_does_not_break_the_session(
    driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any observer (a user's too) that raises: the session goes on, and the
    failure is logged once, not once per frame."""
    calls = []

    def observer(session: Any) -> Any:
        def observe(direction: str, data: bytes) -> None:
            calls.append(direction)
            raise RuntimeError("observer bug")

        return observe

    caplog.set_level(logging.WARNING, logger="openrealtime")
    with running_server(Settings(), driver, observer=observer) as live:
        async with connect(live.ws_url(model="gpt-realtime"), proxy=None) as ws:
            await recv_type(ws, "session.created")
            for _ in range(5):
                await ws.send(UPDATE)
                await recv_type(ws, "session.updated")
        assert ws.close_code == 1000
    assert len(calls) == 11
    assert caplog.text.count("event observer failed") == 1


LOGIN_WITHOUT_MULTIPART = """
import sys
# A plain install: python-multipart is not there (the test extra pulls it in).
sys.modules["multipart"] = None
sys.modules["python_multipart"] = None
from starlette.testclient import TestClient
from openrealtime.server import Settings, create_app
app = create_app(Settings(api_keys=("sk-k",), inspector=True), warn_no_auth=False)
with TestClient(app) as client:
    bad = client.post("/inspector/login", data={"key": "nope"}, follow_redirects=False)
    good = client.post("/inspector/login", data={"key": "sk-k"}, follow_redirects=False)
print(bad.status_code, good.status_code, "openrealtime_inspector" in good.cookies)
"""


def test_login_form_works_without_python_multipart() -> None:
    """POST /inspector/login on a plain install (issue 14: it answered 500)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", LOGIN_WITHOUT_MULTIPART],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["401", "303", "True"]


# --- Memory budget -------------------------------------------------------------------


def _kept(inspector: Any) -> int:
    """What the inspector really holds, as JSON: every record's snapshot."""
    return sum(len(json.dumps(r.snapshot())) for r in inspector.sessions.values())


async def test_memory_stays_within_the_byte_budget(driver: str) -> None:
    """Sessions sending large updates and items: what is kept stays within
    inspector_max_bytes (1 MiB here), newest first, large frames cut."""
    budget = 1024 * 1024
    settings = Settings(inspector=True, inspector_max_bytes=budget)
    with running_server(settings, driver) as live:
        inspector = live.app.state.inspector
        for round_ in range(3):
            async with connect(
                live.ws_url(model="gpt-realtime"), proxy=None, max_size=None
            ) as ws:
                sid = (await recv_type(ws, "session.created"))["session"]["id"]
                for i in range(10):
                    update = {
                        "type": "session.update",
                        "session": {
                            "type": "realtime",
                            "instructions": f"{round_}.{i} " + "x" * 200_000,
                        },
                    }
                    await ws.send(json.dumps(update))
                    await recv_type(ws, "session.updated")
                    for _ in range(20):  # small ones, many
                        item = {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "y" * 3000}],
                            },
                        }
                        await ws.send(json.dumps(item))
                        await recv_type(ws, "conversation.item.done")
                    assert inspector.bytes <= budget
                    assert _kept(inspector) <= 2 * budget
        record = inspector.sessions[sid]
    # The newest are kept: the last update, with its instructions cut.
    last = record.updates[-1]
    assert last["status"] == "accepted"
    assert last["request"]["instructions"].startswith("2.9 xxx")
    assert last["request"]["instructions"].endswith("(200004 characters)")
    assert record.config["instructions"].startswith("2.9 ")  # whole
    assert record.events[-1]["type"] == "conversation.item.done"
    assert inspector.bytes == sum(r.bytes for r in inspector.sessions.values())


def test_closed_sessions_expire() -> None:
    """A closed session is listed for keep_closed seconds, then forgotten."""
    from openrealtime.ids import RandomIds
    from openrealtime.server.inspector import Inspector
    from openrealtime.session import Session

    now = [1000.0]
    inspector = Inspector(keep_closed=60.0, clock=lambda: now[0])
    first = inspector.observe(Session(now=0.0, ids=RandomIds()))
    first("<", b'{"type":"input_audio_buffer.clear"}')
    first.closed(1000, "")
    live = inspector.observe(Session(now=0.0, ids=RandomIds()))
    now[0] += 59
    inspector.expire()
    assert set(inspector.sessions) == {first.id, live.id}
    now[0] += 2
    inspector.expire()
    assert set(inspector.sessions) == {live.id}
    assert inspector.bytes == live.bytes
