"""The hosted API's error messages, as templates (WIRE_RULES §1–§3, §7).

Each function returns an :class:`~openrealtime.exceptions.InvalidRequestError`
whose ``code``, ``message`` and ``param`` match the hosted API byte for byte
where a capture exists; where none does, the wording follows the same house
style and ``docs/conformance.md`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from openrealtime.exceptions import InvalidRequestError


__all__ = [
    "above_max",
    "array_too_long",
    "below_min",
    "binary_frame",
    "cannot_update_voice",
    "empty_array",
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "missing_required",
    "missing_type",
    "not_an_object",
    "pattern_mismatch",
    "session_type_switch",
    "string_too_long",
    "string_too_short",
    "supported_list",
    "too_deep",
    "unknown_parameter",
]


def _quote(value: object) -> str:
    return f"'{value}'"


def supported_list(values: Sequence[object]) -> str:
    """Join values as the hosted API does: "'a', 'b', and 'c'" / "'a' and 'b'"."""
    quoted = [_quote(v) for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _number(value: float) -> str:
    # Bounds such as 1.0 read "1", as in the hosted messages ("Expected a value
    # >= 24000"); the value the client sent is shown as it was.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def unknown_parameter(param: str) -> InvalidRequestError:
    """``Unknown parameter: 'session.tools[2].meta'.``"""
    return InvalidRequestError(
        "unknown_parameter", f"Unknown parameter: '{param}'.", param
    )


def invalid_value(
    value: object, supported: Sequence[object], param: str | None
) -> InvalidRequestError:
    """``Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.``"""
    return InvalidRequestError(
        "invalid_value",
        f"Invalid value: {_quote(value)}. Supported values are: "
        f"{supported_list(supported)}.",
        param,
    )


def invalid_type(param: str, expected: str, got: str) -> InvalidRequestError:
    """``Invalid type for 'p': expected an object, but got a string instead.``"""
    return InvalidRequestError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param,
    )


def missing_required(param: str) -> InvalidRequestError:
    """``Missing required parameter: 'session.type'.``"""
    return InvalidRequestError(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    )


def missing_type() -> InvalidRequestError:
    """An event with no ``type`` (the spec's own example of an error event)."""
    return InvalidRequestError("invalid_event", "The 'type' field is missing.", None)


def below_min(param: str, kind: str, minimum: float, got: float) -> InvalidRequestError:
    """``Invalid 'p': decimal below minimum value. Expected a value >= X, ...``"""
    return InvalidRequestError(
        f"{kind}_below_min_value",
        f"Invalid '{param}': {kind} below minimum value. Expected a value >= "
        f"{_number(minimum)}, but got {got} instead.",
        param,
    )


def above_max(param: str, kind: str, maximum: float, got: float) -> InvalidRequestError:
    """``Invalid 'p': integer above maximum value. Expected a value <= X, ...``"""
    return InvalidRequestError(
        f"{kind}_above_max_value",
        f"Invalid '{param}': {kind} above maximum value. Expected a value <= "
        f"{_number(maximum)}, but got {got} instead.",
        param,
    )


def string_too_long(param: str, maximum: int, length: int) -> InvalidRequestError:
    """``Invalid 'p': string too long. Expected a string with maximum length ...``"""
    return InvalidRequestError(
        "string_above_max_length",
        f"Invalid '{param}': string too long. Expected a string with maximum length "
        f"{maximum}, but got a string with length {length} instead.",
        param,
    )


def pattern_mismatch(param: str, pattern: str) -> InvalidRequestError:
    """``Invalid 'p': string does not match pattern. Expected a string that ...``

    OpenAI's wording for a function name such as ``get.weather``.
    """
    return InvalidRequestError(
        "invalid_value",
        f"Invalid '{param}': string does not match pattern. Expected a string that "
        f"matches the pattern '{pattern}'.",
        param,
    )


def string_too_short(param: str, minimum: int, length: int) -> InvalidRequestError:
    """The counterpart of :func:`string_too_long`."""
    return InvalidRequestError(
        "string_below_min_length",
        f"Invalid '{param}': string too short. Expected a string with minimum length "
        f"{minimum}, but got a string with length {length} instead.",
        param,
    )


def empty_array(param: str, minimum: int, length: int) -> InvalidRequestError:
    """An array below its minimum length."""
    if length == 0:
        return InvalidRequestError(
            "empty_array",
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{minimum}, but got an empty array instead.",
            param,
        )
    return InvalidRequestError(
        "array_below_min_length",
        f"Invalid '{param}': array too short. Expected an array with minimum length "
        f"{minimum}, but got an array with length {length} instead.",
        param,
    )


def array_too_long(param: str, maximum: int, length: int) -> InvalidRequestError:
    """An array (or object) above its maximum length."""
    return InvalidRequestError(
        "array_above_max_length",
        f"Invalid '{param}': array too long. Expected an array with maximum length "
        f"{maximum}, but got an array with length {length} instead.",
        param,
    )


def invalid_json() -> InvalidRequestError:
    """A text frame that is not JSON [WIRE 83; only the start was captured]."""
    return InvalidRequestError(
        "invalid_json",
        "Invalid event: failed to parse JSON value. Please check the JSON syntax "
        "of your event.",
        None,
    )


def too_deep() -> InvalidRequestError:
    """JSON nested deeper than the parser's limit (hundreds of levels)."""
    return InvalidRequestError(
        "invalid_json",
        "Invalid event: failed to parse JSON value. The event is nested too deeply.",
        None,
    )


def not_an_object(got: str) -> InvalidRequestError:
    """A JSON text frame that is not an object."""
    return InvalidRequestError(
        "invalid_event", f"Invalid event: expected an object, but got {got}.", None
    )


def binary_frame() -> InvalidRequestError:
    """A binary WebSocket frame [WIRE 84]."""
    return InvalidRequestError(
        "invalid_event",
        "Expected a text WebSocket message; binary frames are not supported.",
        None,
    )


def cannot_update_voice() -> InvalidRequestError:
    """A voice change once assistant audio exists [WIRE 102, 45]."""
    return InvalidRequestError(
        "cannot_update_voice",
        "Cannot update a conversation's voice if assistant audio is present.",
        None,
    )


def session_type_switch(to: str, frm: str) -> InvalidRequestError:
    """A ``session.update`` of the other session type [WIRE 74]."""
    return InvalidRequestError(
        "invalid_parameter",
        f"Passing a {to} session update event to a {frm} session is not allowed.",
        "session.type",
    )
