"""Encode server events, decode client events, and explain bad frames.

Theory of operation
-------------------
Decoding takes one of two paths:

* **Fast path**: msgspec decodes the frame straight into typed Structs with a
  decoder built once at import. A valid frame costs a few microseconds.
* **Slow path**, only when msgspec rejects a frame: the frame is decoded again
  as plain JSON, and :func:`explain` walks it against the same types (read
  through :mod:`msgspec.inspect`) in document order. The first failure becomes
  the hosted API's error (code, message, ``param`` as a dotted path with
  ``[i]`` for array items). msgspec's own wording never reaches a client.

Because both paths read the same type definitions, they agree on what is
valid; a test fuzzes them against each other.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, Literal, TypeVar

import msgspec
import msgspec.inspect as mi

from openrealtime import errors
from openrealtime.exceptions import InvalidRequestError
from openrealtime.models.client_events import CLIENT_EVENT_TYPES, ClientEvent
from openrealtime.models.server_events import ServerEvent


__all__ = [
    "Decoder",
    "decode_client_event",
    "decode_server_event",
    "encode",
    "explain",
]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()

#: Encode any wire model (a server event, an effective config) to JSON bytes.
encode: Callable[[Any], bytes] = _encoder.encode


#: What msgspec raises for bytes that are not JSON. Invalid UTF-8 inside a
#: string raises ``UnicodeDecodeError``, not ``DecodeError``.
_NOT_JSON = (msgspec.DecodeError, UnicodeDecodeError)


class Decoder(Generic[T]):
    """A JSON decoder for one wire type, reporting failures as hosted errors.

    Args:
        type: the wire type (a Struct or a union of Structs).
        root: the ``param`` prefix of the decoded object (``""`` for an event,
            ``"session"`` for the body of a REST session).
        type_values: the values listed when an unknown top-level ``type`` is
            rejected (for events: the twelve GA client event types).
    """

    def __init__(
        self,
        type: Any,
        *,
        root: str = "",
        type_values: tuple[str, ...] | None = None,
    ) -> None:
        self._decoder = msgspec.json.Decoder(type)
        for values in _literals(type, set()):
            _LITERAL_ORDER.setdefault(frozenset(values), values)
        self._type = type
        self._info = mi.type_info(type)
        self._root = root
        self._type_values = type_values

    def decode(self, data: bytes | str) -> T:
        """Decode ``data``.

        A key given twice keeps its last value, as in JSON parsers generally
        (msgspec alone would check every occurrence).

        Raises:
            InvalidRequestError: the hosted error for the first failure found.
        """
        try:
            result: T = self._decoder.decode(data)
        except RecursionError:
            raise errors.too_deep() from None
        except msgspec.ValidationError:
            try:
                # msgspec may stop at a bad value before it sees the JSON end.
                raw = msgspec.json.decode(data)
            except _NOT_JSON:
                raise errors.invalid_json() from None
            except RecursionError:  # pragma: no cover - the fast path hits it first
                raise errors.too_deep() from None
            error = self._explain_raw(raw)
            if error is None:
                # Valid as a parsed object: a duplicate key's earlier value
                # was what msgspec rejected. Decode the object as parsed.
                result = msgspec.convert(raw, self._type)
                return result
            raise error from None
        except _NOT_JSON:
            raise errors.invalid_json() from None
        return result

    def explain(self, data: bytes | str) -> InvalidRequestError:
        """Return the hosted error for a frame the fast path rejected."""
        try:
            raw = msgspec.json.decode(data)
        except _NOT_JSON:
            return errors.invalid_json()
        except RecursionError:
            return errors.too_deep()
        error = self._explain_raw(raw)
        if error is None:  # pragma: no cover - the two paths disagree: a bug
            error = InvalidRequestError(
                "invalid_value", "Invalid value in your request.", self._root or None
            )
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            error.event_id = event_id if isinstance(event_id, str) else None
        return error

    def _explain_raw(self, raw: Any) -> InvalidRequestError | None:
        """The hosted error for parsed JSON, or ``None`` when it is valid."""
        if not isinstance(raw, dict) and not self._root:
            return errors.not_an_object(_kind(raw))
        error = explain(raw, self._info, self._root, type_values=self._type_values)
        if error is not None:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            error.event_id = event_id if isinstance(event_id, str) else None
        return error


# --- The slow path -----------------------------------------------------------------


def _literals(tp: Any, seen: set[Any]) -> Iterator[tuple[Any, ...]]:
    """Every ``Literal[...]`` reachable from a type, in declaration order."""
    if id(tp) in seen:
        return
    seen.add(id(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        yield typing.get_args(tp)
    elif isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        for hint in typing.get_type_hints(tp, include_extras=True).values():
            yield from _literals(hint, seen)
    elif origin is not None or isinstance(tp, types.UnionType):
        for arg in typing.get_args(tp):
            yield from _literals(arg, seen)


#: msgspec.inspect sorts Literal values; error messages list them in the
#: order of the spec, so keep that order, keyed by the set of values.
_LITERAL_ORDER: dict[frozenset[Any], tuple[Any, ...]] = {}


def _ordered(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return _LITERAL_ORDER.get(frozenset(values), values)


def _kind(value: object) -> str:
    """How the hosted API names a JSON value's type: "a string", "null"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _expected(t: mi.Type) -> str:
    """How the hosted API names an expected type."""
    match t:
        case mi.StrType() | mi.LiteralType():
            return "a string"
        case mi.BoolType():
            return "a boolean"
        case mi.IntType():
            return "an integer"
        case mi.FloatType():
            return "a decimal"
        case mi.ListType():
            return "an array"
        case mi.NoneType():
            return "null"
        case mi.UnionType():
            names: list[str] = []
            for member in _members(t):
                name = _expected(member)
                if name not in names:
                    names.append(name)
            if len(names) == 1:
                return names[0]
            return "one of " + ", ".join(names[:-1]) + " or " + names[-1]
        case mi.Metadata():
            return _expected(t.type)
        case _:
            return "an object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def explain(
    value: Any,
    t: mi.Type,
    path: str = "",
    *,
    type_values: tuple[str, ...] | None = None,
) -> InvalidRequestError | None:
    """Find the first reason why ``value`` is not a valid ``t``.

    Args:
        value: decoded JSON.
        t: a type from :func:`msgspec.inspect.type_info`.
        path: the ``param`` of ``value``.
        type_values: the values to list for an unknown tag at the root.

    Returns:
        The hosted error, or ``None`` when ``value`` is valid.
    """
    match t:
        case mi.AnyType():
            return None
        case mi.Metadata():
            error = explain(value, t.type, path)
            # A pattern a model checks itself (see FunctionTool.name).
            extra = t.extra or {}
            if error is None and "check" in extra and not extra["check"](value):
                return errors.pattern_mismatch(path, extra["pattern"])
            return error
        case mi.UnionType():
            return _explain_union(value, t, path, type_values)
        case mi.StructType():
            if not isinstance(value, dict):
                return errors.invalid_type(path, "an object", _kind(value))
            return _explain_struct(value, t, path)
        case mi.LiteralType():
            if value in t.values and type(value) is type(t.values[0]):
                return None
            if isinstance(value, str) and all(isinstance(v, str) for v in t.values):
                return errors.invalid_value(value, _ordered(t.values), path)
            return errors.invalid_type(path, _expected(t), _kind(value))
        case mi.StrType():
            if not isinstance(value, str):
                return errors.invalid_type(path, "a string", _kind(value))
            if t.max_length is not None and len(value) > t.max_length:
                return errors.string_too_long(path, t.max_length, len(value))
            if t.min_length is not None and len(value) < t.min_length:
                return errors.string_too_short(path, t.min_length, len(value))
            if t.pattern is not None and re.search(t.pattern, value) is None:
                return errors.pattern_mismatch(path, t.pattern)
            return None
        case mi.BoolType():
            if isinstance(value, bool):
                return None
            return errors.invalid_type(path, "a boolean", _kind(value))
        case mi.IntType():
            if isinstance(value, bool) or not isinstance(value, int):
                return errors.invalid_type(path, "an integer", _kind(value))
            return _explain_range(value, t, path, "integer")
        case mi.FloatType():
            if isinstance(value, bool) or not isinstance(value, int | float):
                return errors.invalid_type(path, "a decimal", _kind(value))
            return _explain_range(value, t, path, "decimal")
        case mi.NoneType():
            if value is None:
                return None
            return errors.invalid_type(path, "null", _kind(value))
        case mi.ListType():
            if not isinstance(value, list):
                return errors.invalid_type(path, "an array", _kind(value))
            for i, item in enumerate(value):
                error = explain(item, t.item_type, f"{path}[{i}]")
                if error is not None:
                    return error
            if t.min_length is not None and len(value) < t.min_length:
                return errors.empty_array(path, t.min_length, len(value))
            if t.max_length is not None and len(value) > t.max_length:
                return errors.array_too_long(path, t.max_length, len(value))
            return None
        case mi.DictType():
            if not isinstance(value, dict):
                return errors.invalid_type(path, "an object", _kind(value))
            for key, item in value.items():
                error = explain(key, t.key_type, _join(path, key))
                if error is None:
                    error = explain(item, t.value_type, _join(path, key))
                if error is not None:
                    return error
            if t.max_length is not None and len(value) > t.max_length:
                return errors.array_too_long(path, t.max_length, len(value))
            return None
        case _:  # pragma: no cover - a wire type we do not use
            raise AssertionError(f"unexpected wire type {t!r}")


def _explain_range(
    value: float, t: mi.IntType | mi.FloatType, path: str, kind: str
) -> InvalidRequestError | None:
    if t.ge is not None and value < t.ge:
        return errors.below_min(path, kind, t.ge, value)
    if t.le is not None and value > t.le:
        return errors.above_max(path, kind, t.le, value)
    return None


def _explain_struct(
    value: dict[str, Any], t: mi.StructType, path: str
) -> InvalidRequestError | None:
    fields = {f.encode_name: f for f in t.fields}
    for key, item in value.items():
        if t.tag_field is not None and key == t.tag_field:
            continue  # checked by the union that chose this struct
        field = fields.get(key)
        if field is None:
            # "Unknown keys are rejected at every depth ... even when its
            # value is null" [WIRE 88].
            return errors.unknown_parameter(_join(path, key))
        error = explain(item, field.type, _join(path, key))
        if error is not None:
            return error
    for field in t.fields:
        if field.required and field.encode_name not in value:
            return errors.missing_required(_join(path, field.encode_name))
    return None


def _explain_union(
    value: Any,
    t: mi.UnionType,
    path: str,
    type_values: tuple[str, ...] | None,
) -> InvalidRequestError | None:
    members = _members(t)
    if value is None:
        if any(isinstance(m, mi.NoneType) for m in members):
            return None
        return errors.invalid_type(path, _expected(t), "null")
    if isinstance(value, dict):
        structs = [m for m in members if isinstance(m, mi.StructType)]
        if len(structs) == 1 and structs[0].tag is None:
            return _explain_struct(value, structs[0], path)
        if structs:
            return _explain_tagged(value, structs, path, type_values)
        for m in members:
            if isinstance(m, mi.DictType):
                return explain(value, m, path)
        return errors.invalid_type(path, _expected(t), "an object")
    # A scalar or an array: try the members that accept its JSON type.
    for m in members:
        if _accepts(m, value):
            return explain(value, m, path)
    if isinstance(value, str):
        literals = [
            v
            for m in members
            if isinstance(m, mi.LiteralType)
            for v in _ordered(m.values)
        ]
        if literals:
            return errors.invalid_value(value, literals, path)
    if isinstance(value, float) and any(isinstance(m, mi.IntType) for m in members):
        return errors.invalid_type(path, _expected(t), "a decimal")
    return errors.invalid_type(path, _expected(t), _kind(value))


def _members(t: mi.UnionType) -> list[mi.Type]:
    """A union's members, with unions nested in ``Annotated`` metadata flattened."""
    members: list[mi.Type] = []
    for member in t.types:
        if isinstance(member, mi.Metadata) and isinstance(member.type, mi.UnionType):
            members.extend(_members(member.type))
        else:
            members.append(member)
    return members


def _accepts(t: mi.Type, value: Any) -> bool:
    """Whether ``t`` is the union member that a JSON value of this kind targets."""
    match t:
        case mi.Metadata():
            return _accepts(t.type, value)
        case mi.StrType():
            return isinstance(value, str)
        case mi.LiteralType():
            return value in t.values and type(value) is type(t.values[0])
        case mi.BoolType():
            return isinstance(value, bool)
        case mi.IntType():
            return isinstance(value, int) and not isinstance(value, bool)
        case mi.FloatType():
            return isinstance(value, int | float) and not isinstance(value, bool)
        case mi.ListType():
            return isinstance(value, list)
        case _:
            return False


def _explain_tagged(
    value: dict[str, Any],
    structs: list[mi.StructType],
    path: str,
    type_values: tuple[str, ...] | None,
) -> InvalidRequestError | None:
    tag_field = structs[0].tag_field
    assert tag_field is not None
    tags = {s.tag: s for s in structs}
    if tag_field not in value:
        if not path:
            return errors.missing_type()
        return errors.missing_required(_join(path, tag_field))
    tag = value[tag_field]
    if not isinstance(tag, str):
        return errors.invalid_type(_join(path, tag_field), "a string", _kind(tag))
    chosen = tags.get(tag)
    if chosen is None:
        listed = type_values if (type_values is not None and not path) else tuple(tags)
        return errors.invalid_value(tag, listed, _join(path, tag_field))
    return _explain_struct(value, chosen, path)


_client_events: Decoder[ClientEvent] = Decoder(
    ClientEvent, type_values=CLIENT_EVENT_TYPES
)

#: Decode one client event (a text frame's payload).
decode_client_event: Callable[[bytes | str], ClientEvent] = _client_events.decode

#: Decode one server event (for clients, ``record`` and ``replay``).
decode_server_event: Callable[[bytes | str], ServerEvent] = Decoder[ServerEvent](
    ServerEvent
).decode
