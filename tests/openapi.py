"""The OpenAI Realtime spec (OpenAPI 3) as the tests read it: the GA events.

The spec file is not vendored. It is looked up at ``$OPENREALTIME_SPEC``, then
``shared/spec/`` beside the checkout, then ``/work/shared/spec/``; tests that
need it are skipped, with the reason, when none exists.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest


__all__ = [
    "SPEC_NAME",
    "event_schemas",
    "examples",
    "load",
    "schemas",
    "spec_path",
    "type_value",
]

SPEC_NAME = "openai-realtime.openapi.json"
_ROOT = Path(__file__).resolve().parent.parent


def spec_path() -> Path | None:
    """Where the spec is, or ``None``."""
    candidates = []
    if env := os.environ.get("OPENREALTIME_SPEC"):
        candidates.append(Path(env))
    for base in (_ROOT, _ROOT.parent):
        candidates.append(base / "shared" / "spec" / SPEC_NAME)
    candidates.append(Path("/work/shared/spec") / SPEC_NAME)
    return next((p for p in candidates if p.is_file()), None)


@cache
def load() -> dict[str, Any]:
    """The whole spec; skips the calling test when it cannot be found."""
    path = spec_path()
    if path is None:
        pytest.skip(f"{SPEC_NAME} not found (set OPENREALTIME_SPEC)")
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def schemas() -> dict[str, Any]:
    """``components.schemas``."""
    result: dict[str, Any] = load()["components"]["schemas"]
    return result


def type_value(schema: dict[str, Any]) -> str:
    """The one value of an event schema's ``type`` enum."""
    (value,) = schema["properties"]["type"]["enum"]
    assert isinstance(value, str)
    return value


def event_schemas(side: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """GA event schemas of one side ("Client" or "Server"), by ``type`` value.

    The GA events are the non-Beta ``RealtimeClientEvent*`` /
    ``RealtimeServerEvent*`` schemas; the bare name is the union of them all.
    Values are ``(schema name, schema)``.
    """
    prefix = f"Realtime{side}Event"
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, schema in schemas().items():
        if name.startswith(prefix) and name != prefix:
            found[type_value(schema)] = (name, schema)
    return found


def _relax(text: str) -> str:
    """Drop ``//`` comments and trailing commas outside strings.

    Some spec examples are JSON with comments (JSONC): a comment may explain
    a field, and a trailing comma may be left where a line was cut.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "}]":
            while out and out[-1].isspace():
                out.pop()
            if out and out[-1] == ",":
                out.pop()
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def examples(schema: dict[str, Any]) -> list[Any]:
    """The documents of an event schema's ``x-oaiMeta.example``.

    Most examples are one JSON document; a few are JSONC (see :func:`_relax`)
    and one (``response.create``) holds several documents in a row.
    """
    text = _relax(schema["x-oaiMeta"]["example"])
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)
