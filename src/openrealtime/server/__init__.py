"""The server: WebSocket ``/v1/realtime`` and REST ``client_secrets`` over ASGI.

* :func:`create_app` builds the Starlette app from :class:`Settings`.
* :class:`Connection` drives one session over any transport.
* :class:`SecretStore` keeps ephemeral keys (:class:`MemorySecretStore`).
"""

from __future__ import annotations

from openrealtime.server.app import RealtimeServer, app_from_env, create_app
from openrealtime.server.connection import Connection, EventObserver, Transcriber
from openrealtime.server.secrets import MemorySecretStore, SecretRecord, SecretStore
from openrealtime.server.settings import ConfigurationError, Settings


__all__ = [
    "ConfigurationError",
    "Connection",
    "EventObserver",
    "MemorySecretStore",
    "RealtimeServer",
    "SecretRecord",
    "SecretStore",
    "Settings",
    "Transcriber",
    "app_from_env",
    "create_app",
]
