"""The error explainer on its own, with small types for every kind it handles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi
import pytest
from msgspec import Meta

from openrealtime import codec
from openrealtime.codec import Decoder, explain
from openrealtime.exceptions import InvalidRequestError, ProtocolError, ServerError


class Thing(msgspec.Struct, forbid_unknown_fields=True):
    flag: bool | None = None
    count: int | str | None = None
    ratio: float | bool | None = None
    name: Annotated[str, Meta(min_length=2)] | None = None
    tags: Annotated[list[str], Meta(min_length=2, max_length=3)] | None = None
    table: (
        Annotated[dict[Annotated[str, Meta(max_length=3)], int], Meta(max_length=2)]
        | None
    ) = None
    nothing: None = None
    choice: Literal[1, 2] | None = None
    described: Annotated[int, Meta(description="only a description")] = 0
    maybe: Annotated[int, Meta(description="d")] | None = None
    nested: (
        Annotated[Annotated[int, Meta(ge=0)] | list[int], Meta(description="x")] | None
    ) = None


INFO = mi.type_info(Thing)


def why(doc: dict[str, Any]) -> tuple[str | None, str, str | None] | None:
    error = explain(doc, INFO)
    return None if error is None else (error.code, error.message, error.param)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"flag": 1},
            (
                "invalid_type",
                "Invalid type for 'flag': expected one of a boolean or null, but got an integer instead.",
                "flag",
            ),
        ),
        (
            {"count": 1.5},
            (
                "invalid_type",
                "Invalid type for 'count': expected one of an integer, a string or null, but got a decimal instead.",
                "count",
            ),
        ),
        (
            {"count": []},
            (
                "invalid_type",
                "Invalid type for 'count': expected one of an integer, a string or null, but got an array instead.",
                "count",
            ),
        ),
        (
            {"ratio": "x"},
            (
                "invalid_type",
                "Invalid type for 'ratio': expected one of a decimal, a boolean or null, but got a string instead.",
                "ratio",
            ),
        ),
        (
            {"name": "x"},
            (
                "string_below_min_length",
                "Invalid 'name': string too short. Expected a string with minimum length 2, but got a string with length 1 instead.",
                "name",
            ),
        ),
        (
            {"tags": []},
            (
                "empty_array",
                "Invalid 'tags': empty array. Expected an array with minimum length 2, but got an empty array instead.",
                "tags",
            ),
        ),
        (
            {"tags": ["a"]},
            (
                "array_below_min_length",
                "Invalid 'tags': array too short. Expected an array with minimum length 2, but got an array with length 1 instead.",
                "tags",
            ),
        ),
        (
            {"tags": ["a", "b", "c", "d"]},
            (
                "array_above_max_length",
                "Invalid 'tags': array too long. Expected an array with maximum length 3, but got an array with length 4 instead.",
                "tags",
            ),
        ),
        (
            {"table": {"abcd": 1}},
            (
                "string_above_max_length",
                "Invalid 'table.abcd': string too long. Expected a string with maximum length 3, but got a string with length 4 instead.",
                "table.abcd",
            ),
        ),
        (
            {"table": {"a": "x"}},
            (
                "invalid_type",
                "Invalid type for 'table.a': expected an integer, but got a string instead.",
                "table.a",
            ),
        ),
        (
            {"table": {"a": 1, "b": 2, "c": 3}},
            (
                "array_above_max_length",
                "Invalid 'table': array too long. Expected an array with maximum length 2, but got an array with length 3 instead.",
                "table",
            ),
        ),
        (
            {"table": 5},
            (
                "invalid_type",
                "Invalid type for 'table': expected one of an object or null, but got an integer instead.",
                "table",
            ),
        ),
        (
            {"nothing": 1},
            (
                "invalid_type",
                "Invalid type for 'nothing': expected null, but got an integer instead.",
                "nothing",
            ),
        ),
        (
            {"choice": 3},
            (
                "invalid_type",
                "Invalid type for 'choice': expected one of a string or null, but got an integer instead.",
                "choice",
            ),
        ),
        (
            {"described": "x"},
            (
                "invalid_type",
                "Invalid type for 'described': expected an integer, but got a string instead.",
                "described",
            ),
        ),
        (
            {"maybe": "x"},
            (
                "invalid_type",
                "Invalid type for 'maybe': expected one of an integer or null, but got a string instead.",
                "maybe",
            ),
        ),
        (
            {"nested": -1},
            (
                "integer_below_min_value",
                "Invalid 'nested': integer below minimum value. Expected a value >= 0, but got -1 instead.",
                "nested",
            ),
        ),
        (
            {"nested": "x"},
            (
                "invalid_type",
                "Invalid type for 'nested': expected one of an integer, an array or null, but got a string instead.",
                "nested",
            ),
        ),
    ],
)
def test_every_kind(doc: dict[str, Any], expected: tuple[str, str, str]) -> None:
    """Each kind of type gives its hosted-style error, with the path."""
    assert why(doc) == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"flag": True, "count": 3, "ratio": 1, "name": "ab", "tags": ["a", "b"]},
        {"table": {"a": 1}, "nothing": None, "choice": 2, "nested": [1, 2]},
        {"count": "many", "ratio": False, "nested": 0, "described": 1, "maybe": 3},
    ],
)
def test_valid_documents_have_no_error(doc: dict[str, Any]) -> None:
    """What msgspec accepts, the explainer accepts."""
    msgspec.convert(doc, Thing)
    assert why(doc) is None


def test_decoder_explain_paths() -> None:
    """Decoder.explain: not JSON, too deep, and a rooted object."""
    decoder: Decoder[Thing] = Decoder(Thing, root="body")
    assert decoder.explain(b"{").code == "invalid_json"
    assert decoder.explain(b"[" * 100_000).code == "invalid_json"
    error = decoder.explain(b'{"flag": 2}')
    assert (error.param, error.event_id) == ("body.flag", None)
    with pytest.raises(InvalidRequestError) as raised:
        decoder.decode(b'{"flag": 2}')
    assert raised.value.param == "body.flag"


def test_literal_order_is_the_declared_order() -> None:
    """Supported values are listed as declared, not sorted (msgspec sorts them)."""
    Decoder(Literal["b", "a", "c"])  # decoders record the declared order
    error = explain("z", mi.type_info(Literal["b", "a", "c"]), "p")
    assert error is not None
    assert (
        error.message == "Invalid value: 'z'. Supported values are: 'b', 'a', and 'c'."
    )
    assert codec._ordered(("x", "y")) == ("x", "y")


def test_protocol_error_repr_and_equality() -> None:
    """Errors compare by their wire identity and show it in repr."""
    a = InvalidRequestError("c", "m", "p", "e")
    assert a == InvalidRequestError("c", "m", "p", "e")
    assert a != InvalidRequestError("c", "m", "p", None)
    assert a != ServerError("e")
    assert (a == "x") is False
    assert (
        repr(a) == "InvalidRequestError(code='c', message='m', param='p', event_id='e')"
    )
    assert isinstance(ServerError(), ProtocolError)
    assert ServerError(code="x", message="y").code == "x"


def test_a_pattern_in_meta_is_explained_too() -> None:
    """msgspec's own ``Meta(pattern=...)`` (no wire model uses it now: see
    FunctionTool.name) and a pattern a model checks itself, read from
    ``Meta(extra=...)``, give the same error."""
    plain = mi.type_info(Annotated[str, Meta(pattern="^[a-z]+$")])
    checked = mi.type_info(
        Annotated[str, Meta(extra={"pattern": "^[a-z]+$", "check": str.isalpha})]
    )
    for info in (plain, checked):
        error = explain("a1", info, "name")
        assert error is not None
        assert (error.code, error.param) == ("invalid_value", "name")
        assert error.message == (
            "Invalid 'name': string does not match pattern. Expected a string "
            "that matches the pattern '^[a-z]+$'."
        )
        assert explain("ab", info, "name") is None
    # Another kind's error comes first; an extra without a check is ignored.
    assert explain(5, checked, "name") is not None
    other = mi.type_info(Annotated[str, Meta(extra={"unit": "ms"})])
    assert explain("a1", other, "name") is None
