"""Reference server in the peers' style (speech-to-speech, speaches).

FastAPI websocket route, the openai SDK's pydantic models for every event,
``TypeAdapter`` parsing, a ``model_dump(exclude_unset=True)`` deep merge into
the stored session dict, re-validation, and ``model_dump_json()`` replies.
Runs under uvicorn's default stack. Usage: ``peer_fastapi.py PORT``.
"""

from __future__ import annotations

import copy
import sys
import time
import uuid
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI, WebSocket, WebSocketDisconnect  # noqa: E402
from openai.types.realtime import (  # noqa: E402
    RealtimeClientEvent,
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
)
from openai.types.realtime.realtime_error import RealtimeError  # noqa: E402
from pydantic import TypeAdapter, ValidationError  # noqa: E402

from benchlib import DEFAULT_SESSION, deep_merge  # noqa: E402


app = FastAPI()
client_events: TypeAdapter[RealtimeClientEvent] = TypeAdapter(RealtimeClientEvent)


def event_id() -> str:
    """A hosted-style event id."""
    return f"event_{uuid.uuid4().hex[:21]}"


def error_event(message: str, client_event_id: str | None) -> str:
    """An ``error`` server event as JSON."""
    err = RealtimeError(
        type="invalid_request_error", message=message, event_id=client_event_id
    )
    return RealtimeErrorEvent(
        type="error", event_id=event_id(), error=err
    ).model_dump_json()


@app.websocket("/v1/realtime")
async def realtime(websocket: WebSocket, model: str = "gpt-realtime") -> None:
    """One realtime session."""
    await websocket.accept()
    stored: dict[str, Any] = copy.deepcopy(DEFAULT_SESSION)
    stored["model"] = model
    stored["id"] = f"sess_{uuid.uuid4().hex[:21]}"
    stored["expires_at"] = int(time.time()) + 1800
    session = RealtimeSessionCreateRequest.model_validate(stored)
    created = SessionCreatedEvent(
        type="session.created", event_id=event_id(), session=session
    )
    await websocket.send_text(created.model_dump_json())
    try:
        while True:
            text = await websocket.receive_text()
            try:
                event = client_events.validate_json(text)
            except ValidationError as exc:
                await websocket.send_text(error_event(str(exc), None))
                continue
            if isinstance(event, SessionUpdateEvent):
                patch = event.session.model_dump(exclude_unset=True)
                merged = deep_merge(copy.deepcopy(stored), patch)
                try:
                    session = RealtimeSessionCreateRequest.model_validate(merged)
                except ValidationError as exc:
                    await websocket.send_text(error_event(str(exc), event.event_id))
                    continue
                stored = merged
                updated = SessionUpdatedEvent(
                    type="session.updated", event_id=event_id(), session=session
                )
                await websocket.send_text(updated.model_dump_json())
            else:
                await websocket.send_text(
                    error_event(f"unsupported event {event.type}", event.event_id)
                )
    except WebSocketDisconnect:
        return


def main() -> None:
    """Entry point: uvicorn with its defaults (uvloop, httptools)."""
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
