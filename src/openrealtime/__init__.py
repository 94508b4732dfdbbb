"""openrealtime: the OpenAI Realtime API protocol (GA), as a library and a server.

The sans-I/O core is :class:`Session` (the engine), :mod:`openrealtime.codec`
(decode client events, encode server events, hosted error messages) and
:mod:`openrealtime.models` (wire models for every GA event). The server lives
in :mod:`openrealtime.server`.
"""

from __future__ import annotations

from openrealtime.codec import Decoder, decode_client_event, decode_server_event, encode
from openrealtime.config import (
    DEFAULT_INSTRUCTIONS,
    Defaults,
    apply_update,
    default_config,
)
from openrealtime.exceptions import (
    InvalidRequestError,
    InvalidState,
    ProtocolError,
    RealtimeError,
    ServerError,
)
from openrealtime.ids import CountingIds, RandomIds
from openrealtime.session import (
    CancelResponse,
    Close,
    Limits,
    ResponseRequest,
    Session,
    StartResponse,
    Transcribe,
)


__all__ = [
    "CancelResponse",
    "Close",
    "CountingIds",
    "DEFAULT_INSTRUCTIONS",
    "Decoder",
    "Defaults",
    "InvalidRequestError",
    "InvalidState",
    "Limits",
    "ProtocolError",
    "RandomIds",
    "RealtimeError",
    "ResponseRequest",
    "ServerError",
    "Session",
    "StartResponse",
    "Transcribe",
    "__version__",
    "apply_update",
    "decode_client_event",
    "decode_server_event",
    "default_config",
    "encode",
]

__version__ = "0.1.0"
