"""Drive a Session with no I/O, and assert on what it sends."""

from __future__ import annotations

import json
from typing import Any

from openrealtime.config import Defaults
from openrealtime.ids import CountingIds
from openrealtime.session import Limits, Session


T0 = 1_760_000_000.0

#: Headless Chromium for the browser tests, its traffic kept on this machine:
#: no background services, and no name lookups (they ask the resolver for
#: Google hosts despite --disable-background-networking).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def new_session(
    kind: str = "realtime",
    *,
    model: str = "gpt-realtime",
    defaults: Defaults | None = None,
    limits: Limits | None = None,
    now: float = T0,
) -> Session:
    """A session with deterministic ids whose session.created was drained."""
    session = Session(
        kind=kind,  # type: ignore[arg-type]
        model=model,
        now=now,
        ids=CountingIds(),
        defaults=defaults,
        limits=limits,
    )
    session.data_to_send()
    return session


def send(
    session: Session, event: dict[str, Any], now: float = T0 + 1
) -> list[dict[str, Any]]:
    """Send one client event (as JSON); return the server events as dicts."""
    session.receive_text(json.dumps(event), now)
    return [json.loads(data) for data in session.data_to_send()]


def update(
    session: Session, patch: dict[str, Any], **event: Any
) -> list[dict[str, Any]]:
    """Send a session.update of a realtime session with this patch."""
    return send(
        session,
        {"type": "session.update", "session": {"type": "realtime", **patch}, **event},
    )


def effective(session: Session) -> dict[str, Any]:
    """The effective config as the client would see it."""
    from openrealtime.codec import encode

    result: dict[str, Any] = json.loads(encode(session.config))
    return result


def only_error(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert that exactly one error event was sent; return its ``error``."""
    assert [e["type"] for e in events] == ["error"], events
    error: dict[str, Any] = events[0]["error"]
    return error


def types(events: list[dict[str, Any]]) -> list[str]:
    """The types of a list of events."""
    return [e["type"] for e in events]
