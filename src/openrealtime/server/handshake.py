"""What happens between the WebSocket upgrade and ``session.created``.

The hosted GA API accepts every upgrade (101) and only then checks the
request, answering a failure with one ``error`` event and a close frame
(WIRE_RULES §7). :func:`negotiate` runs those checks in the hosted order:

1. the Beta header: ``beta_api_shape_disabled``, close 4000;
2. authentication, when API keys are configured or the key is an ephemeral
   ``ek_`` key: close 3000;
3. the model (or ``?intent=transcription``): close 4000.

It reads only headers, the query string and the offered subprotocols, so
every transport adapter shares it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openrealtime.codec import encode
from openrealtime.config import SessionKind
from openrealtime.exceptions import InvalidRequestError, ProtocolError, ServerError
from openrealtime.ids import IdFactory
from openrealtime.models.server_events import ErrorDetail, ErrorEvent
from openrealtime.models.session import RealtimeSessionConfig, SessionConfig
from openrealtime.server.secrets import SecretStore, SecretStoreUnavailable
from openrealtime.server.settings import Settings


__all__ = [
    "API_KEY_SUBPROTOCOL",
    "Accepted",
    "Rejected",
    "bad_api_key",
    "close_reason",
    "error_frame",
    "find_api_key",
    "invalid_model",
    "key_accepted",
    "mask_key",
    "missing_auth",
    "negotiate",
    "select_subprotocol",
]

#: Browsers cannot set headers, so they pass the key as a subprotocol.
API_KEY_SUBPROTOCOL = "openai-insecure-api-key."
_BETA_SUBPROTOCOL = "openai-beta.realtime-v1"

#: Close codes of the hosted API: "3000 for auth, 4000 for request shape".
CLOSE_AUTH = 3000
CLOSE_REQUEST = 4000


@dataclass(frozen=True, slots=True)
class Accepted:
    """The connection may open a session.

    Attributes:
        kind: ``"realtime"`` or ``"transcription"``.
        model: the model alias as connected (``""`` for transcription).
        initial: the config minted with the ephemeral key used, if any.
    """

    kind: SessionKind
    model: str
    initial: SessionConfig | None = None
    #: ``?call_id=``: a sideband connection that joins this WebRTC call.
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """The connection must be refused: send ``error``, then close.

    Attributes:
        error: the error to send.
        code: the close code (3000 auth, 4000 request shape).
        reason: the close reason, ``"<type>.<code>"`` or just the type.
    """

    error: ProtocolError
    code: int
    reason: str


def close_reason(error: ProtocolError) -> str:
    """The close reason of a fatal error: "``<error.type>.<error.code>``, or
    just the type when the code is null" (WIRE_RULES §1)."""
    return f"{error.type}.{error.code}" if error.code else error.type


def error_frame(error: ProtocolError, ids: IdFactory, now: float) -> bytes:
    """Encode an ``error`` event in the engine's envelope (WIRE_RULES §1)."""
    return encode(
        ErrorEvent(
            event_id=ids.new("event_", now),
            error=ErrorDetail(
                type=error.type,
                code=error.code,
                message=error.message,
                param=error.param,
                event_id=error.event_id,
            ),
        )
    )


def mask_key(key: str) -> str:
    """Mask a key as OpenAI does in its messages.

    The first eight and last four characters stay
    ("``sk-CmlKF***************************************jP2n``", a 51-character
    key). Keys of 12 characters or fewer keep only their first three.
    """
    if len(key) <= 12:
        return key[:3] + "*" * (len(key) - 3)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def missing_auth() -> InvalidRequestError:
    """No key: "Missing bearer or basic authentication in header", code null."""
    return InvalidRequestError(
        None, "Missing bearer or basic authentication in header", None
    )


def bad_api_key(key: str) -> InvalidRequestError:
    """A key that is not accepted (``invalid_api_key``)."""
    return InvalidRequestError(
        "invalid_api_key",
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key "
        "at https://platform.openai.com/account/api-keys.",
        None,
    )


def _beta() -> InvalidRequestError:
    return InvalidRequestError(
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime "
        "for the GA API.",
        None,
    )


#: The values ``?intent=`` takes: a conversation or a transcription session.
_INTENTS = frozenset({"realtime", "transcription"})


def _model_with_intent(model: str) -> InvalidRequestError:
    return InvalidRequestError(
        "invalid_model",
        f'Model "{model}" cannot be used with intent=transcription. Connect with '
        "?intent=transcription alone and set the transcription model in "
        "session.audio.input.transcription.model.",
        None,
    )


def _missing_model() -> InvalidRequestError:
    return InvalidRequestError(
        "missing_model",
        "You must provide a model parameter, for example "
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
        None,
    )


def invalid_model(model: str, param: str | None = None) -> InvalidRequestError:
    """A model the server does not serve (``invalid_model``)."""
    return InvalidRequestError(
        "invalid_model", f'Model "{model}" is not supported in realtime mode.', param
    )


def find_api_key(
    headers: Mapping[str, str], subprotocols: Sequence[str] = ()
) -> str | None:
    """The key a client presents: ``Authorization: Bearer <key>``, or the
    browser subprotocol ``openai-insecure-api-key.<key>``.

    Args:
        headers: request headers, looked up by lower-case name.
        subprotocols: the subprotocols the client offers.
    """
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return value
    for protocol in subprotocols:
        if protocol.startswith(API_KEY_SUBPROTOCOL):
            return protocol[len(API_KEY_SUBPROTOCOL) :] or None
    return None


def select_subprotocol(subprotocols: Sequence[str]) -> str | None:
    """The subprotocol to accept: ``realtime`` when the client offers it.

    Browsers offer ``realtime`` with the key subprotocol and fail the
    handshake unless the server picks one they offered.
    """
    return "realtime" if "realtime" in subprotocols else None


def _is_beta(headers: Mapping[str, str], subprotocols: Sequence[str]) -> bool:
    beta = headers.get("openai-beta", "")
    values = {part.strip().lower() for part in beta.split(",")}
    return "realtime=v1" in values or _BETA_SUBPROTOCOL in subprotocols


def key_accepted(key: str, settings: Settings) -> bool:
    """Whether ``key`` is one of the configured API keys (constant time)."""
    found = False
    for accepted in settings.api_keys:
        found |= hmac.compare_digest(key.encode(), accepted.encode())
    return found


async def negotiate(
    *,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    subprotocols: Sequence[str],
    settings: Settings,
    secrets: SecretStore,
) -> Accepted | Rejected:
    """Check a new connection in the hosted order (WIRE_RULES §7).

    Args:
        headers: request headers, looked up by lower-case name.
        query: the query string's parameters.
        subprotocols: the subprotocols the client offers.
        settings: the server settings (API keys, allowed models).
        secrets: where ephemeral keys are kept.

    Returns:
        :class:`Accepted` with the session to open, or :class:`Rejected`
        with the error to send and the close code and reason.
    """
    # §4: "After 2026-05-12 the beta header still gets a 101, but the first
    # frame is a beta_api_shape_disabled error and the server then closes
    # with 4000."
    if _is_beta(headers, subprotocols):
        return _reject(_beta(), CLOSE_REQUEST)
    # §7: "GA checks auth and model after the 101 upgrade". Keys are checked
    # when the operator configured some; an ephemeral key is always checked,
    # since it carries the session it opens.
    key = find_api_key(headers, subprotocols)
    initial: SessionConfig | None = None
    if key is not None and key.startswith("ek_"):
        try:
            record = await secrets.get(key)
        except SecretStoreUnavailable:
            # The key cannot be checked: refuse, as a server error (1011).
            return _reject(ServerError(None), 1011)
        if record is None:
            return _reject(bad_api_key(key), CLOSE_AUTH)
        initial = record.session
    elif settings.api_keys:
        if key is None:
            return _reject(missing_auth(), CLOSE_AUTH)
        if not key_accepted(key, settings):
            return _reject(bad_api_key(key), CLOSE_AUTH)
    call_id = query.get("call_id")
    if call_id:
        # A sideband connection joins a call's session (server side, with
        # an API key: an ephemeral key belongs to the browser of one call).
        if initial is not None:
            return _reject(_sideband_ephemeral_key(), CLOSE_AUTH)
        return Accepted(kind="realtime", model="", call_id=call_id)
    if initial is not None:
        # The minted session decides the kind and model; the URL's are not
        # needed (the key was minted for this session).
        if isinstance(initial, RealtimeSessionConfig):
            return Accepted(kind="realtime", model=initial.model, initial=initial)
        return Accepted(kind="transcription", model="", initial=initial)
    # §7: "For transcription it is ?intent=transcription with no model".
    intent = query.get("intent")
    model = query.get("model")
    if intent is not None and intent not in _INTENTS:
        # Hosted: "Invalid intent " for an empty one, close 4000.
        return _reject(
            InvalidRequestError("invalid_intent", f"Invalid intent {intent}", None),
            CLOSE_REQUEST,
        )
    if intent == "transcription":
        if model:
            # Reported of the hosted API: a model beside the transcription
            # intent is refused; the model goes in audio.input.transcription.
            return _reject(_model_with_intent(model), CLOSE_REQUEST)
        return Accepted(kind="transcription", model="")
    if not model:
        return _reject(_missing_model(), CLOSE_REQUEST)
    if not settings.model_allowed(model):
        return _reject(invalid_model(model), CLOSE_REQUEST)
    return Accepted(kind="realtime", model=model)


def _sideband_ephemeral_key() -> InvalidRequestError:
    """An ``ek_`` key offered to join a call (``?call_id=``)."""
    return InvalidRequestError(
        None,
        "A sideband connection (?call_id=) needs an API key, not an ephemeral key.",
        None,
    )


def _reject(error: ProtocolError, code: int) -> Rejected:
    return Rejected(error=error, code=code, reason=close_reason(error))
