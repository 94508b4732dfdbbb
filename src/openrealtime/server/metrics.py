"""Counters for ``GET /metrics``, in the Prometheus text format, by hand.

The engine counts its own events as it decodes and emits them
(:class:`~openrealtime.counts.EventCounts`, one per server, given to every
:class:`~openrealtime.session.Session`): a dictionary update per event, no
frame read twice. Frames that no engine produced (a refusal at the
handshake, an error of the transport, WebRTC's ``output_audio_buffer.*``)
are counted here from their bytes. Label values are bounded: client event
types outside the GA list count as ``other``, and server event types and
error codes come from the engine, never from the client.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from openrealtime.counts import EventCounts, client_event_type


__all__ = ["Metrics", "client_event_type", "server_event_type"]

_SERVER_PREFIX = b'{"type":"'
#: Where a type that starts at offset 9 must have ended (the longest is < 64).
_TYPE_END = 9 + 65
#: Server event type names cached by :meth:`Metrics.sent` (there are ~50).
_MAX_NAMES = 256


class _ErrorCode(msgspec.Struct):
    code: str | None = None


class _ErrorFrame(msgspec.Struct):
    error: _ErrorCode = msgspec.field(default_factory=_ErrorCode)


_error_decoder = msgspec.json.Decoder(_ErrorFrame)


def server_event_type(data: bytes) -> str:
    """The ``type`` of a frame the engine encoded (msgspec writes the tag first)."""
    if data.startswith(_SERVER_PREFIX):
        end = data.find(b'"', len(_SERVER_PREFIX))
        if end > 0:
            return data[len(_SERVER_PREFIX) : end].decode()
    return "other"  # pragma: no cover - every engine frame starts with its tag


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """The server's counters and gauges (one per process)."""

    def __init__(self) -> None:
        self.open_connections = 0
        self.sessions_total = 0
        self.rejected_total: Counter[str] = Counter()
        self.client_secrets_total = 0
        #: What the engines count (give it to each Session as ``counts``).
        self.counts = EventCounts()
        # Frames counted here, from their bytes (no engine made them).
        self._out: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        #: Server event types by the bytes of their names (see :meth:`sent`).
        self._names: dict[bytes, str] = {}

    @property
    def events_in(self) -> Counter[str]:
        """Client events received, by type (every client frame reaches an
        engine, which counts it)."""
        return Counter(self.counts.received_by_type())

    @property
    def events_out(self) -> Counter[str]:
        """Server events sent, by type."""
        return self._out + Counter(self.counts.sent_by_type())

    @property
    def errors(self) -> Counter[str]:
        """``error`` events sent, by code."""
        return self._errors + Counter(self.counts.errors)

    def sent(self, data: bytes) -> str:
        """Count one frame that no engine counted; return its event type.

        The type's bytes (msgspec writes the tag first) are looked up in a
        cache of names instead of being decoded.
        """
        key = data[9 : data.find(b'"', 9, _TYPE_END)]
        event_type = self._names.get(key)
        if event_type is None:
            event_type = server_event_type(data)
            if len(self._names) < _MAX_NAMES:  # engine types: a bounded set
                self._names[key] = event_type
        self._out[event_type] += 1
        if event_type == "error":
            self.count_error(_error_decoder.decode(data).error.code)
        return event_type

    def count_error(self, code: str | None) -> None:
        """Count one error sent to a client, by its code."""
        self._errors[code or "null"] += 1

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format (0.0.4)."""
        lines: list[str] = []

        def family(name: str, kind: str, doc: str) -> None:
            lines.append(f"# HELP {name} {doc}")
            lines.append(f"# TYPE {name} {kind}")

        family("openrealtime_open_connections", "gauge", "WebSocket sessions open now.")
        lines.append(f"openrealtime_open_connections {self.open_connections}")
        family("openrealtime_sessions_total", "counter", "Sessions opened.")
        lines.append(f"openrealtime_sessions_total {self.sessions_total}")
        family(
            "openrealtime_rejected_connections_total",
            "counter",
            "Connections refused at the handshake, by close reason.",
        )
        name = "openrealtime_rejected_connections_total"
        for reason, n in sorted(self.rejected_total.items()):
            lines.append(f'{name}{{reason="{_escape(reason)}"}} {n}')
        family("openrealtime_client_secrets_total", "counter", "Ephemeral keys minted.")
        lines.append(f"openrealtime_client_secrets_total {self.client_secrets_total}")
        for name, counter, doc in (
            ("openrealtime_events_received_total", self.events_in, "Client events."),
            ("openrealtime_events_sent_total", self.events_out, "Server events."),
        ):
            family(name, "counter", doc + " by type.")
            for event_type, n in sorted(counter.items()):
                lines.append(f'{name}{{type="{_escape(event_type)}"}} {n}')
        family("openrealtime_errors_total", "counter", "Error events sent, by code.")
        for code, n in sorted(self.errors.items()):
            lines.append(f'openrealtime_errors_total{{code="{_escape(code)}"}} {n}')
        return "\n".join(lines) + "\n"
