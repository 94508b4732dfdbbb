"""The wire models cover the spec: every GA event, property and enum value.

The spec's GA event schemas (12 client, 47 server) are walked in parallel with
the models (read through :func:`msgspec.inspect.type_info`): through ``$ref``,
``oneOf``/``anyOf``, arrays and nested objects. Every mismatch is a *finding*
with a stable key, ``<where>: <kind> <detail>``, where ``<where>`` is the event
``type`` (or the named spec schema the walk went through) and a path inside it
(``[]`` for array items, ``{tag}`` for the variant of a union chosen by its
``type``). A finding must either be fixed or be listed in :data:`DEVIATIONS`
with the reason; a deviation that no longer occurs fails too, so the table
cannot rot. When a new spec version arrives, the failure lists what changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from openrealtime.models import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    ClientEvent,
    OutputAudioBufferClearEvent,
    ServerEvent,
    TranscriptionSessionUpdateEvent,
)
from tests import openapi


__all__: list[str] = []

#: Findings that are deliberate, with the reason. Keys are finding keys as
#: printed by a failing test; each must still occur (see the stale test).
DEVIATIONS: dict[str, str] = {
    # --- Audio formats: the hosted wire rules win over the spec.
    "RealtimeAudioFormats:{audio/pcm}.rate: enum modelled as a range 24000": (
        "The hosted API checks rate as a range: 'Expected a value >= 24000, "
        "but got 16000 instead.' (integer_below_min_value) [WIRE 86], not as "
        "an enum (which would be invalid_value)."
    ),
    "RealtimeAudioFormats:{audio/pcm}.rate: required in the model, optional in the spec": (
        "The hosted API answers a pcm format without rate with "
        "missing_required_parameter [WIRE 72]."
    ),
    # --- Voice: only the named voices or a custom {id}.
    "VoiceIdsShared: any string rejected (Literal|CustomVoice)": (
        "The spec allows any string, but the hosted API rejects other names "
        "with invalid_value listing the 10 voices [WIRE 59, 87]; custom voices "
        "are given as {'id': ...}."
    ),
    # --- Messages: the three message schemas share type 'message', and
    # msgspec tags a union on one field, so they are one MessageItem whose role
    # is any of the three; which content part types each role takes is
    # checked by the engine (models/items.py).
    "RealtimeConversationItemMessageSystem:{message}.role: model accepts values the spec lacks 'assistant', 'user'": (
        "One MessageItem for the three message schemas."
    ),
    "RealtimeConversationItemMessageUser:{message}.role: model accepts values the spec lacks 'assistant', 'system'": (
        "One MessageItem for the three message schemas."
    ),
    "RealtimeConversationItemMessageAssistant:{message}.role: model accepts values the spec lacks 'system', 'user'": (
        "One MessageItem for the three message schemas."
    ),
    "RealtimeConversationItemMessageSystem:{message}.content[]: model accepts variants the spec lacks 'input_audio', 'input_image', 'output_audio', 'output_text'": (
        "One content part union for all roles; the engine checks part types per role."
    ),
    "RealtimeConversationItemMessageUser:{message}.content[]: model accepts variants the spec lacks 'output_audio', 'output_text'": (
        "One content part union for all roles; the engine checks part types per role."
    ),
    "RealtimeConversationItemMessageAssistant:{message}.content[]: model accepts variants the spec lacks 'input_audio', 'input_image', 'input_text'": (
        "One content part union for all roles; the engine checks part types per role."
    ),
    # --- Content parts: one struct per part type, where the spec has one
    # object per role with every key optional.
    "RealtimeConversationItemMessageUser:{message}.content[]: split by type text->input_text; audio->input_audio; image_url->input_image; detail->input_image; transcript->input_audio": (
        "Per-type content part structs: a key of another part type (audio on "
        "an input_text part) is an unknown parameter, as unknown keys are at "
        "every depth [WIRE §3]."
    ),
    "RealtimeConversationItemMessageAssistant:{message}.content[]: split by type text->output_text; audio->output_audio; transcript->output_audio": (
        "Per-type content part structs (see the user message)."
    ),
    "RealtimeConversationItemMessageSystem:{message}.content[]{input_text}.text: required in the model, optional in the spec": (
        "An input_text part is its text; the spec's own InputTextContent "
        "requires ['type', 'text']."
    ),
    "RealtimeConversationItemMessageUser:{message}.content[]{input_text}.text: required in the model, optional in the spec": (
        "An input_text part is its text; the spec's own InputTextContent "
        "requires ['type', 'text']."
    ),
    # --- Content part announcements (response.content_part.*).
    "response.content_part.added:part: model accepts variants the spec lacks 'output_audio', 'output_text'": (
        "ContentPartInfo also decodes the item-content names of part types "
        "(output_text/output_audio) so a client can read servers that use "
        "them; the engine sends the spec's 'text'/'audio'."
    ),
    "response.content_part.done:part: model accepts variants the spec lacks 'output_audio', 'output_text'": (
        "As for response.content_part.added."
    ),
    # --- Turn detection.
    "RealtimeTurnDetection:type: model accepts values the spec lacks 'semantic_vad'": (
        "A client's turn_detection is one TurnDetectionUpdate for both "
        "variants, because a partial update may omit type; which keys belong "
        "to which variant is checked when the update is merged [WIRE 93]."
    ),
    "RealtimeTurnDetection:type: model accepts values the spec lacks 'server_vad'": (
        "As above (one TurnDetectionUpdate for both variants)."
    ),
    "RealtimeTranscriptionSessionCreateResponseGA:{transcription}.audio.input.turn_detection.type: any string rejected (Literal)": (
        "The spec types a transcription session's turn_detection loosely; the "
        "hosted API sends the same server_vad/semantic_vad objects as in a "
        "realtime session [WIRE 34], so the model reuses ServerVad|SemanticVad."
    ),
    "RealtimeTranscriptionSessionCreateResponseGA:{transcription}.audio.input.turn_detection: split by type threshold->server_vad; prefix_padding_ms->server_vad; silence_duration_ms->server_vad": (
        "As above: the VAD keys belong to the server_vad variant."
    ),
    # --- Fixed strings the spec types as any string.
    "RealtimeTranscriptionSessionCreateResponseGA:{transcription}.object: any string rejected (Literal)": (
        "The hosted API always sends 'realtime.transcription_session' [WIRE 34]."
    ),
    "conversation.created:conversation.object: any string rejected (Literal)": (
        "The spec's description: 'The object type, must be realtime.conversation'."
    ),
    # --- Tools.
    "RealtimeFunctionTool:{function}.name: required in the model, optional in the spec": (
        "A function tool is called by its name; no capture shows the hosted "
        "answer to a nameless tool (missing_required_parameter assumed)."
    ),
}


# --- The models, by the spec's ``type`` value ------------------------------------


def _tag(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str), cls
    return tag


#: Client events the hosted API knows but a WebSocket does not accept: the
#: spec lists them, GA answers them with ``invalid_value`` on ``type``.
CLIENT_SPEC_ONLY = (OutputAudioBufferClearEvent, TranscriptionSessionUpdateEvent)

#: Client events the hosted API accepts that the spec does not list (WIRE §2).
CLIENT_HOSTED_ONLY = {"session.close", "session.input_audio_buffer.append"}

CLIENT_MODELS: dict[str, type[msgspec.Struct]] = {
    _tag(cls): cls for cls in (*ClientEvent.__args__, *CLIENT_SPEC_ONLY)
}
SERVER_MODELS: dict[str, type[msgspec.Struct]] = {
    _tag(cls): cls for cls in ServerEvent.__args__
}


# --- Findings --------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One way the models differ from the spec."""

    where: str
    kind: str
    detail: str = ""
    #: The event whose walk first met it (context only, not in the key).
    event: str = ""

    @property
    def key(self) -> str:
        detail = f" {self.detail}" if self.detail else ""
        return f"{self.where}: {self.kind}{detail}"


MISSING_FIELD = "missing field"
ENUM_REJECTED = "enum value rejected"
OPEN_STRING_REJECTED = "any string rejected"
NULL_REJECTED = "null rejected"
SHAPE = "shape differs"
SPLIT = "split by type"
ENUM_AS_RANGE = "enum modelled as a range"
EXTRA_VALUE = "model accepts values the spec lacks"
EXTRA_VARIANT = "model accepts variants the spec lacks"
NOT_ALWAYS_SENT = "spec-required field may be left out"
MODEL_REQUIRES = "required in the model, optional in the spec"


# --- Spec helpers -----------------------------------------------------------------


def _resolve(node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = node.get("$ref")
    if ref is None:
        return None, node
    name = ref.rsplit("/", 1)[-1]
    return name, openapi.schemas()[name]


@dataclass(frozen=True)
class Where:
    """A place in the spec: a root (event type or schema name) and a path."""

    root: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.root}:{self.path}" if self.path else self.root

    def prop(self, name: str) -> Where:
        return Where(self.root, f"{self.path}.{name}" if self.path else name)

    def item(self) -> Where:
        return Where(self.root, f"{self.path}[]")

    def variant(self, tag: str) -> Where:
        if not self.path and tag == self.root:
            return self  # an event's own tag
        return Where(self.root, f"{self.path}{{{tag}}}")


def _alternatives(
    node: dict[str, Any], where: Where
) -> tuple[list[tuple[Where, dict[str, Any]]], bool]:
    """Flatten ``$ref``/``anyOf``/``oneOf``: the non-null alternatives and
    whether ``null`` is allowed."""
    name, node = _resolve(node)
    if name is not None:
        where = Where(name)
    nullable = bool(node.get("nullable"))
    if node.get("type") == "null":
        return [], True
    union = node.get("anyOf") or node.get("oneOf")
    if union is None:
        return [(where, node)], nullable
    result: list[tuple[Where, dict[str, Any]]] = []
    for member in union:
        alts, member_nullable = _alternatives(member, where)
        result.extend(alts)
        nullable = nullable or member_nullable
    return result, nullable


def _enum(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return list(values) if values is not None else None


def _kind(node: dict[str, Any]) -> str | None:
    """A schema's JSON type, inferred from ``items``/``properties`` if unsaid."""
    kind = node.get("type")
    if kind is None and "items" in node:
        return "array"
    if kind is None and "properties" in node:
        return "object"
    return kind if isinstance(kind, str) else None


def _tag_values(node: dict[str, Any]) -> list[str] | None:
    """The values of an object schema's ``type`` property, if it is an enum."""
    prop = node.get("properties", {}).get("type")
    if prop is None:
        return None
    _, prop = _resolve(prop)
    return _enum(prop)


# --- Model helpers ----------------------------------------------------------------


def _strip(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _members(t: mi.Type) -> tuple[list[mi.Type], bool]:
    """A model type's members (unions flattened) and whether it takes null."""
    t = _strip(t)
    if isinstance(t, mi.UnionType):
        members = [_strip(m) for m in t.types]
    else:
        members = [t]
    nullable = any(isinstance(m, mi.NoneType) for m in members)
    return [m for m in members if not isinstance(m, mi.NoneType)], nullable


def _accepts(t: mi.Type, value: Any) -> bool:
    """Whether a scalar model type accepts a scalar JSON value."""
    match _strip(t):
        case mi.AnyType():
            return True
        case mi.LiteralType(values=values):
            return any(v == value and type(v) is type(value) for v in values)
        case mi.StrType(min_length=lo, max_length=hi):
            return (
                isinstance(value, str)
                and (lo is None or len(value) >= lo)
                and (hi is None or len(value) <= hi)
            )
        case mi.BoolType():
            return isinstance(value, bool)
        case mi.IntType(ge=ge, le=le, gt=gt, lt=lt):
            ok = isinstance(value, int) and not isinstance(value, bool)
            return ok and _in_range(value, ge, le, gt, lt)
        case mi.FloatType(ge=ge, le=le, gt=gt, lt=lt):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return ok and _in_range(value, ge, le, gt, lt)
        case _:
            return False


def _in_range(
    value: float, ge: float | None, le: float | None, gt: float | None, lt: float | None
) -> bool:
    return (
        (ge is None or value >= ge)
        and (le is None or value <= le)
        and (gt is None or value > gt)
        and (lt is None or value < lt)
    )


def _always_sent(field: mi.Field) -> bool:
    """Whether a server model always writes this field (``UNSET`` never)."""
    return (
        field.required
        or field.default is not msgspec.NODEFAULT
        or field.default_factory is not msgspec.NODEFAULT
    )


def _describe(members: list[mi.Type]) -> str:
    names = []
    for m in members:
        if isinstance(m, mi.StructType):
            names.append(m.cls.__name__)
        elif isinstance(m, mi.LiteralType):
            names.append("Literal")
        else:
            names.append(type(m).__name__.removesuffix("Type").lower())
    return "|".join(names) or "nothing"


# --- The walk ---------------------------------------------------------------------


class Walker:
    """Walk spec schemas and model types in parallel, collecting findings."""

    def __init__(self) -> None:
        self.findings: dict[str, Finding] = {}
        self._seen: set[tuple[int, str, str]] = set()
        self._event = ""
        self._side = ""

    def event(self, type_value: str, side: str, schema: dict[str, Any]) -> None:
        self._event, self._side = type_value, side
        model = CLIENT_MODELS if side == "client" else SERVER_MODELS
        self.node(schema, mi.type_info(model[type_value]), Where(type_value))

    def _add(self, where: Where, kind: str, detail: str = "") -> None:
        finding = Finding(str(where), kind, detail, self._event)
        self.findings.setdefault(finding.key, finding)

    def node(self, node: dict[str, Any], t: mi.Type, where: Where) -> None:
        members, model_nullable = _members(t)
        if any(isinstance(m, mi.AnyType) for m in members):
            return  # free-form in the model: everything is accepted
        alts, nullable = _alternatives(node, where)
        if nullable and not model_nullable:
            self._add(where, NULL_REJECTED)
        self.extras([a for _, a in alts], members, where)
        for alt_where, alt in alts:
            key = (id(alt), self._side, repr(t))
            if key in self._seen:
                continue
            self._seen.add(key)
            self.alternative(alt, members, alt_where)

    def extras(
        self, alts: list[dict[str, Any]], members: list[mi.Type], where: Where
    ) -> None:
        """What the model accepts beyond a closed spec enum or tagged union."""
        enums = [_enum(a) for a in alts]
        if alts and all(e is not None for e in enums):
            allowed = {v for e in enums for v in e or ()}
            extra = [
                v
                for m in members
                if isinstance(m, mi.LiteralType)
                for v in m.values
                if v not in allowed
            ]
            if extra:
                self._add(where, EXTRA_VALUE, ", ".join(map(repr, sorted(extra))))
        tags = [_tag_values(a) for a in alts if _kind(a) == "object"]
        if tags and all(t is not None for t in tags):
            allowed = {v for t in tags for v in t or ()}
            extra = [
                m.tag
                for m in members
                if isinstance(m, mi.StructType)
                and m.tag is not None
                and m.tag not in allowed
            ]
            if extra:
                self._add(where, EXTRA_VARIANT, ", ".join(map(repr, sorted(extra))))

    def alternative(
        self, node: dict[str, Any], members: list[mi.Type], where: Where
    ) -> None:
        values = _enum(node)
        kind = _kind(node)
        if values is not None:
            for value in values:
                takers = [m for m in members if _accepts(m, value)]
                if not takers:
                    self._add(where, ENUM_REJECTED, repr(value))
                elif not any(isinstance(m, mi.LiteralType) for m in takers):
                    if not isinstance(value, str):
                        self._add(where, ENUM_AS_RANGE, repr(value))
        elif kind == "string":
            if not any(isinstance(m, mi.StrType) for m in members):
                self._add(where, OPEN_STRING_REJECTED, f"({_describe(members)})")
        elif kind in ("integer", "number", "boolean"):
            wanted = {
                "integer": (mi.IntType, mi.FloatType),
                "number": (mi.FloatType,),
                "boolean": (mi.BoolType,),
            }[kind]
            if not any(isinstance(m, wanted) for m in members):
                self._add(where, SHAPE, f"{kind} vs {_describe(members)}")
        elif kind == "array":
            lists = [m for m in members if isinstance(m, mi.ListType)]
            if not lists:
                self._add(where, SHAPE, f"array vs {_describe(members)}")
            else:
                self.node(node.get("items", {}), lists[0].item_type, where.item())
        elif kind == "object":
            self.object(node, members, where)
        else:
            self._add(where, SHAPE, f"untyped spec node {sorted(node)}")

    def object(
        self, node: dict[str, Any], members: list[mi.Type], where: Where
    ) -> None:
        structs = [m for m in members if isinstance(m, mi.StructType)]
        dicts = [m for m in members if isinstance(m, mi.DictType)]
        props = node.get("properties")
        if not props:
            # A free-form object (JSON schema, metadata, headers...).
            if dicts:
                extra = node.get("additionalProperties")
                if isinstance(extra, dict):
                    self.node(extra, dicts[0].value_type, where.item())
            elif not structs:
                self._add(where, SHAPE, f"object vs {_describe(members)}")
            return
        tags = _tag_values(node)
        tagged = {m.tag: m for m in structs if m.tag is not None}
        untagged = [m for m in structs if m.tag is None]
        if tags and tagged:
            chosen = []
            for tag in tags:
                if tag in tagged:
                    chosen.append(tagged[tag])
                else:
                    self._add(where.prop("type"), ENUM_REJECTED, repr(tag))
            if len(chosen) == 1:
                self.struct(node, chosen[0], where.variant(chosen[0].tag))
            elif chosen:
                self.split(node, chosen, where)
        elif untagged:
            self.struct(node, untagged[0], where)
        elif tagged and tags is None and "type" in props:
            # The spec's ``type`` is an open string; the model has variants.
            self.node(props["type"], mi.LiteralType(tuple(tagged)), where.prop("type"))
            self.split(node, list(tagged.values()), where)
        elif dicts:
            return  # kept free-form in the model on purpose
        else:
            self._add(where, SHAPE, f"object vs {_describe(members)}")

    def struct(self, node: dict[str, Any], t: mi.StructType, where: Where) -> None:
        fields = {f.encode_name: f for f in t.fields}
        for name, sub in node.get("properties", {}).items():
            if t.tag is not None and name == t.tag_field:
                continue  # matched when the variant was chosen
            field = fields.get(name)
            if field is None:
                self._add(where.prop(name), MISSING_FIELD, f"(in {t.cls.__name__})")
            else:
                self.node(sub, field.type, where.prop(name))
        required = set(node.get("required", ())) - {t.tag_field}
        for name in sorted(required):
            field = fields.get(name)
            if field is None:
                continue  # reported as missing above
            if self._side == "server" and not _always_sent(field):
                self._add(where.prop(name), NOT_ALWAYS_SENT)
        self.client_required(node, t, where)

    def client_required(
        self, node: dict[str, Any], t: mi.StructType, where: Where
    ) -> None:
        required = set(node.get("required", ()))
        for field in t.fields:
            if (
                self._side == "client"
                and field.required
                and field.encode_name in node.get("properties", {})
                and field.encode_name not in required
            ):
                self._add(where.prop(field.encode_name), MODEL_REQUIRES)

    def split(
        self, node: dict[str, Any], chosen: list[mi.StructType], where: Where
    ) -> None:
        """One spec object whose ``type`` is an enum, modelled as one struct
        per value: each property must be in at least one of them."""
        by_name: dict[str, list[mi.StructType]] = {}
        for s in chosen:
            for f in s.fields:
                by_name.setdefault(f.encode_name, []).append(s)
        partial = []
        for name, sub in node.get("properties", {}).items():
            if name == "type":
                continue
            owners = by_name.get(name)
            if not owners:
                self._add(where.prop(name), MISSING_FIELD, f"(in {_describe(chosen)})")
                continue
            if len(owners) < len(chosen):
                partial.append(f"{name}->{','.join(str(s.tag) for s in owners)}")
            for s in owners:
                field = next(f for f in s.fields if f.encode_name == name)
                self.node(sub, field.type, where.variant(str(s.tag)).prop(name))
        for s in chosen:
            self.client_required(node, s, where.variant(str(s.tag)))
        if partial:
            self._add(where, SPLIT, "; ".join(partial))


@cache
def _walk() -> dict[str, Finding]:
    walker = Walker()
    for side in ("client", "server"):
        for type_value, (_, schema) in openapi.event_schemas(side.title()).items():
            models = CLIENT_MODELS if side == "client" else SERVER_MODELS
            if type_value in models:
                walker.event(type_value, side, schema)
    return walker.findings


def _report(findings: list[Finding]) -> str:
    lines = [f"  {f.key}    [first seen in {f.event}]" for f in findings]
    return "\n".join(lines)


def _of_kinds(*kinds: str) -> Iterator[Finding]:
    for finding in _walk().values():
        if finding.kind in kinds:
            yield finding


# --- Tests --------------------------------------------------------------------------


def test_spec_has_12_client_and_47_server_ga_events() -> None:
    """The spec being checked has the GA event counts this test was written for."""
    assert len(openapi.event_schemas("Client")) == 12
    assert len(openapi.event_schemas("Server")) == 47


@pytest.mark.parametrize("side", ["Client", "Server"])
def test_every_ga_event_has_a_model_tagged_with_its_type(side: str) -> None:
    """Each GA event schema's ``type`` value is the tag of one model."""
    models = CLIENT_MODELS if side == "Client" else SERVER_MODELS
    spec = openapi.event_schemas(side)
    missing = sorted(
        f"{t} ({name})" for t, (name, _) in spec.items() if t not in models
    )
    if missing:
        pytest.fail(
            "GA events with no model:\n  " + "\n  ".join(missing), pytrace=False
        )
    for type_value in spec:
        assert mi.type_info(models[type_value]).tag == type_value


def test_client_event_union_is_the_hosted_list() -> None:
    """ClientEvent holds the 12 hosted types; the spec-only two are modelled apart."""
    assert tuple(_tag(c) for c in ClientEvent.__args__) == CLIENT_EVENT_TYPES
    spec_types = set(openapi.event_schemas("Client"))
    assert spec_types - set(CLIENT_EVENT_TYPES) == {_tag(c) for c in CLIENT_SPEC_ONLY}
    assert set(CLIENT_EVENT_TYPES) - spec_types == CLIENT_HOSTED_ONLY


def test_server_event_union_is_exactly_the_spec() -> None:
    """ServerEvent has one member per GA server event, no more."""
    assert sorted(SERVER_EVENT_TYPES) == sorted(openapi.event_schemas("Server"))


def _check(kinds: tuple[str, ...], title: str) -> None:
    """Fail with a readable list of the findings of these kinds not excused."""
    found = sorted(
        (f for f in _of_kinds(*kinds) if f.key not in DEVIATIONS),
        key=lambda f: f.key,
    )
    if found:
        pytest.fail(f"{title}:\n{_report(found)}", pytrace=False)


def test_every_spec_property_is_a_model_field() -> None:
    """Every property of every GA event (recursively) exists, by encode name."""
    _check((MISSING_FIELD, SHAPE, SPLIT), "spec properties the models lack")


def test_every_spec_enum_value_is_accepted() -> None:
    """Every spec enum value, open string and null is accepted by the model."""
    _check(
        (ENUM_REJECTED, OPEN_STRING_REJECTED, NULL_REJECTED),
        "spec values the models reject",
    )


def test_spec_required_fields_are_required_in_server_models() -> None:
    """What the spec requires a server to send, server models always write."""
    _check((NOT_ALWAYS_SENT,), "spec-required fields a server model may omit")


def test_client_models_require_only_what_the_spec_requires() -> None:
    """A client may leave out what the spec lets it leave out."""
    _check((MODEL_REQUIRES,), "client fields the models require beyond the spec")


def test_every_deviation_is_still_needed() -> None:
    """Each DEVIATIONS entry still occurs, so the table cannot rot."""
    stale = sorted(set(DEVIATIONS) - set(_walk()))
    if stale:
        pytest.fail(
            "deviations that no longer occur (remove them):\n  " + "\n  ".join(stale),
            pytrace=False,
        )
