"""The error tree. Wire-facing errors carry the hosted API's identity.

::

    RealtimeError                       base of everything raised here
    ├── ProtocolError                   a client's mistake: becomes an ``error`` event
    │   └── InvalidRequestError         error.type = "invalid_request_error"
    │       (error.code, error.message, error.param as the hosted API sends them;
    │        see :func:`openrealtime.errors` for the templates)
    ├── ServerError                     error.type = "server_error" (details: logs only)
    └── InvalidState (AssertionError)   local misuse of the engine (Sans-I/O)

A :class:`ProtocolError` never crashes anything: the engine turns it into one
``error`` event and leaves the session exactly as it was.
"""

from __future__ import annotations

from typing import ClassVar


__all__ = [
    "InvalidRequestError",
    "InvalidState",
    "ProtocolError",
    "RealtimeError",
    "ServerError",
]


class RealtimeError(Exception):
    """Base of every exception raised by openrealtime."""


class ProtocolError(RealtimeError):
    """A failure to report to the client as an ``error`` event.

    Attributes:
        code: ``error.code`` (``None`` for some auth errors).
        message: ``error.message``, exactly as the hosted API words it.
        param: ``error.param``: dotted path with ``[i]`` for array items.
        event_id: the client's ``event_id``, echoed in ``error.event_id``.
    """

    type: ClassVar[str] = "invalid_request_error"

    def __init__(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"param={self.param!r}, event_id={self.event_id!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return (self.type, self.code, self.message, self.param, self.event_id) == (
            other.type,
            other.code,
            other.message,
            other.param,
            other.event_id,
        )

    __hash__ = None  # type: ignore[assignment]


class InvalidRequestError(ProtocolError):
    """The request was malformed or not allowed (``invalid_request_error``)."""

    type: ClassVar[str] = "invalid_request_error"


class ServerError(ProtocolError):
    """Something went wrong on our side; the client sees no details."""

    type: ClassVar[str] = "server_error"

    #: The hosted API's generic wording; no details reach the client.
    GENERIC = "The server had an error while processing your request. Sorry about that!"

    def __init__(
        self,
        event_id: str | None = None,
        *,
        code: str | None = None,
        message: str = GENERIC,
    ) -> None:
        super().__init__(code, message, None, event_id)


class InvalidState(RealtimeError, AssertionError):
    """The engine was used in a way its state does not allow (Sans-I/O).

    This is a bug in the caller (the connection driver), never a client error.
    """
