"""Log lines a client cannot forge.

Clients choose some strings that reach the log: the model in ``?model=``
(any string with ``--allowed-model '*'``), a close frame's reason, the
request path and query in uvicorn's access log. A CR or LF in one of them
would start a new, forged log line. :func:`printable` escapes them where the
server logs such a string; :class:`SafeLogFilter`, on the handlers of
``openrealtime serve``'s logging config, escapes every string argument and
message of every record (uvicorn's access log included).
"""

from __future__ import annotations

import logging
from typing import Any


__all__ = ["SafeLogFilter", "printable"]

#: C0 controls, DEL, C1 controls and the Unicode line separators.
_UNSAFE = {
    **{code: f"\\x{code:02x}" for code in range(0x20)},
    0x7F: "\\x7f",
    **{code: f"\\x{code:02x}" for code in range(0x80, 0xA0)},
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def printable(text: str) -> str:
    """``text`` with control characters and line separators escaped."""
    if text.isprintable():
        return text
    return text.translate(_UNSAFE)


def _safe(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


class SafeLogFilter(logging.Filter):
    """Escape control characters in a record's message and string arguments
    (it changes the record, and keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = printable(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_safe(arg) for arg in args)
        elif isinstance(args, dict):
            record.args = {key: _safe(value) for key, value in args.items()}
        return True
