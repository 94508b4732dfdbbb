"""``POST /v1/realtime/client_secrets``: mint an ephemeral key and its session.

The body (``RealtimeCreateClientSecretRequest``) is decoded with the same
codec as client events, so a mistake gets the same error as it would in a
``session.update`` (``unknown_parameter`` with ``param`` such as
``session.audio.output.voice``), and the session is built with the same
merge rules. The answer is the key, its expiry and the effective session,
whose ``expires_at`` is ``0`` "as hosted echoes it" (WIRE_RULES §5).

This module knows no web framework: :func:`create_client_secret` takes the
body and headers and returns a status, a body and a content type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from secrets import token_hex
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from msgspec.structs import replace

from openrealtime.codec import Decoder
from openrealtime.config import SessionKind, apply_update, default_config
from openrealtime.exceptions import InvalidRequestError, ProtocolError, ServerError
from openrealtime.ids import IdFactory, ephemeral_key
from openrealtime.models.base import Wire
from openrealtime.models.session import (
    RealtimeSessionUpdate,
    SessionConfig,
    SessionUpdate,
)
from openrealtime.server.handshake import (
    bad_api_key,
    find_api_key,
    invalid_model,
    key_accepted,
)
from openrealtime.server.secrets import (
    SecretRecord,
    SecretStore,
    SecretStoreUnavailable,
)
from openrealtime.server.settings import Settings


__all__ = [
    "ClientSecretCreateRequest",
    "ClientSecretCreateResponse",
    "ExpiresAfter",
    "RestResult",
    "authorize",
    "create_client_secret",
    "request_id",
    "rest_error",
]

#: "This default to 600 seconds (10 minutes) if not specified."
DEFAULT_TTL = 600
#: The model of a realtime session minted without one.
DEFAULT_MODEL = "gpt-realtime"


class ExpiresAfter(Wire, kw_only=True):
    """``expires_after``: when the key stops opening sessions."""

    #: "Only `created_at` is currently supported."
    anchor: Literal["created_at"] | UnsetType = UNSET
    #: "Select a value between `10` and `7200` (2 hours)."
    seconds: Annotated[int, Meta(ge=10, le=7200)] | UnsetType = UNSET


class ClientSecretCreateRequest(Wire, kw_only=True):
    """The body of ``POST /v1/realtime/client_secrets``."""

    expires_after: ExpiresAfter | UnsetType = UNSET
    session: SessionUpdate | UnsetType = UNSET


class ClientSecretCreateResponse(msgspec.Struct, kw_only=True):
    """``RealtimeCreateClientSecretResponse``."""

    value: str
    expires_at: int
    session: SessionConfig


_decoder: Decoder[ClientSecretCreateRequest] = Decoder(ClientSecretCreateRequest)
_encoder = msgspec.json.Encoder()

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
    "or as the password field (with blank username) if you're accessing the API "
    "from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means "
    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
    "payload, but what was sent was not valid JSON. If you have trouble figuring "
    "out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)


@dataclass(frozen=True, slots=True)
class RestResult:
    """An HTTP answer: status, body and content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


def rest_error(error: ProtocolError, status: int = 400) -> RestResult:
    """A REST error: ``{"error": {message, type, param, code}}`` (WIRE_RULES §7).

    "A 401 adds ``"status":401`` and ``content-type: text/plain``."
    """
    body: dict[str, object] = {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }
    if status == 401:
        body["status"] = 401
        return RestResult(401, _encoder.encode(body), "text/plain; charset=utf-8")
    return RestResult(status, _encoder.encode(body))


#: Why a key cannot be minted while the shared store is down.
STORE_DOWN = (
    "The ephemeral key store is unavailable. Please retry later; sessions "
    "already open are not affected."
)


def authorize(headers: Mapping[str, str], settings: Settings) -> RestResult | None:
    """The 401 of a request that may not mint keys, or ``None``.

    It reads only headers, so the app calls it before reading the body.
    """
    key = find_api_key(headers)
    if key is not None and key.startswith("ek_"):
        # An ephemeral key opens sessions; it cannot mint more keys.
        return rest_error(bad_api_key(key), 401)
    if settings.api_keys:
        if key is None:
            return rest_error(InvalidRequestError(None, _NO_KEY, None), 401)
        if not key_accepted(key, settings):
            return rest_error(bad_api_key(key), 401)
    return None


def decode_request(body: bytes) -> ClientSecretCreateRequest | RestResult:
    """Decode a ``{session, expires_after}`` body, or the hosted 400 for it
    (``client_secrets``' body, and the ``session`` part of a WebRTC call)."""
    try:
        return _decoder.decode(body)
    except InvalidRequestError as exc:
        if exc.code in ("invalid_json", "invalid_event"):
            return rest_error(InvalidRequestError(None, _BAD_JSON, None))
        exc.event_id = None
        return rest_error(exc)


def session_of(request: ClientSecretCreateRequest) -> SessionUpdate:
    """The request's session, a realtime one when absent."""
    if isinstance(request.session, UnsetType):
        return RealtimeSessionUpdate()
    return request.session


async def create_client_secret(
    body: bytes,
    headers: Mapping[str, str],
    *,
    settings: Settings,
    secrets: SecretStore,
    ids: IdFactory,
    now: float,
) -> RestResult:
    """Mint an ephemeral key for a session.

    Args:
        body: the request body (JSON; empty means ``{}``).
        headers: request headers, looked up by lower-case name.
        settings: the server settings (API keys, models, defaults).
        secrets: where the key is kept.
        ids: id factory for the session id.
        now: the time, in seconds since the epoch.

    Returns:
        200 with ``{value, expires_at, session}``, 400 for a bad body,
        401 for a missing or wrong key.
    """
    denied = authorize(headers, settings)
    if denied is not None:
        return denied
    request = decode_request(body or b"{}")
    if isinstance(request, RestResult):
        return request
    update = session_of(request)
    kind: SessionKind = "transcription"
    model = ""
    if isinstance(update, RealtimeSessionUpdate):
        kind = "realtime"
        model = update.model if isinstance(update.model, str) else DEFAULT_MODEL
        if not settings.model_allowed(model):
            return rest_error(invalid_model(model, "session.model"))
    try:
        config = default_config(
            kind,
            id=ids.new("sess_", now),
            model=model,
            created_at=int(now),
            defaults=settings.defaults,
        )
        # The same merge as a session.update over the server's defaults.
        config = apply_update(config, update, defaults=settings.defaults)
    except ProtocolError as exc:
        return rest_error(exc)
    ttl = DEFAULT_TTL
    if not isinstance(request.expires_after, UnsetType) and isinstance(
        request.expires_after.seconds, int
    ):
        ttl = request.expires_after.seconds
    value = ephemeral_key()
    expires_at = int(now) + ttl
    record = SecretRecord(session=config, created_at=int(now), expires_at=expires_at)
    try:
        await secrets.put(value, record, ttl)
    except SecretStoreUnavailable:
        # The shared store (Redis) is down: no key can be minted that every
        # node would accept. Sessions already open are not affected.
        return rest_error(
            ServerError(None, code="service_unavailable", message=STORE_DOWN), 503
        )
    response = ClientSecretCreateResponse(
        value=value,
        expires_at=expires_at,
        # "The REST client_secrets echo has session.expires_at: 0" (§5).
        session=replace(config, expires_at=0),
    )
    return RestResult(200, _encoder.encode(response))


def request_id() -> str:
    """A REST response's ``x-request-id``: ``req_`` + 32 hex, as the hosted API."""
    return "req_" + token_hex(16)
