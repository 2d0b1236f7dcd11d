"""A MAD is a page of plain Python: @tool methods become typed, validated tools."""
from __future__ import annotations

import dataclasses
import enum
from typing import Literal, Optional

from typing_extensions import TypedDict

import pytest
from pydantic import BaseModel

from mads.kernel import MAD, ArgumentError, UnknownToolError, tool


class Probe(MAD):
    """Answers pings."""

    name = "probe"

    @tool
    async def ping(self, text: str, times: int = 1) -> dict:
        """Echo the text."""
        return {"echo": text * times}

    @tool
    def add(self, a: float, b: float) -> float:
        """Add two numbers (a sync tool)."""
        return a + b


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Options(TypedDict):
    verbose: bool


class Owner(BaseModel):
    name: str


class Typed(MAD):
    """Every kind of hint."""

    @tool
    def everything(self, s: str, i: int, f: float, b: bool, lit: Literal["a", "b"], colour: Colour,
                   items: list[int], mapping: dict[str, str], maybe: Optional[int], point: Point,
                   options: Options, owner: Owner) -> dict:
        """Takes every kind of argument."""
        return {"point": point, "colour": colour.value, "owner": owner.name}


def test_tools_are_named_after_their_mad_and_method() -> None:
    assert set(Probe.tools) == {"probe_ping", "probe_add", "probe_converse"}
    spec = Probe.tools["probe_ping"]
    assert spec.description == "Echo the text."
    assert spec.input_schema["required"] == ["text"]
    assert spec.input_schema["properties"]["times"]["type"] == "integer"
    assert Probe.description == "Answers pings."
    assert Typed.name == "typed"


def test_schema_covers_literal_enum_collections_optional_and_nested_objects() -> None:
    schema = Typed.tools["typed_everything"].input_schema
    props = schema["properties"]
    assert props["lit"]["enum"] == ["a", "b"]
    assert props["items"] == {"items": {"type": "integer"}, "title": "Items", "type": "array"}
    assert {"type": "null"} in props["maybe"]["anyOf"]
    defs = schema["$defs"]
    assert defs["Point"]["required"] == ["x", "y"]
    assert defs["Options"]["properties"]["verbose"]["type"] == "boolean"
    assert defs["Owner"]["properties"]["name"]["type"] == "string"
    assert defs["Colour"]["enum"] == ["red", "blue"]
    assert set(schema["required"]) == set(props)


async def test_call_coerces_key_value_strings_by_schema(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        assert await eco.call_tool("probe_ping", {"text": "ab", "times": "2"}, raw=True) == {"echo": "abab"}
        assert await eco.call_tool("probe_add", {"a": "1.5", "b": "2"}, raw=True) == 3.5


async def test_nested_arguments_arrive_as_typed_objects(make_ecosystem) -> None:
    async with make_ecosystem([Typed]) as eco:
        result = await eco.call_tool("typed_everything", {
            "s": "x", "i": 1, "f": 1.0, "b": True, "lit": "a", "colour": "blue", "items": [1],
            "mapping": {}, "maybe": None, "point": {"x": 1, "y": 2}, "options": {"verbose": True},
            "owner": {"name": "ann"}})
        assert result == {"point": {"x": 1, "y": 2}, "colour": "blue", "owner": "ann"}


@pytest.mark.parametrize(("args", "message"), [
    ({}, "probe_ping: missing required argument 'text'"),
    ({"text": "a", "times": "many"}, "probe_ping: times: expected an integer, got 'many'"),
    ({"text": "a", "colour": "red"}, "probe_ping: unexpected argument 'colour'"),
])
async def test_bad_arguments_are_one_clear_line(make_ecosystem, args, message) -> None:
    async with make_ecosystem([Probe]) as eco:
        with pytest.raises(ArgumentError) as caught:
            await eco.call_tool("probe_ping", args, raw=True)
        assert str(caught.value) == message


async def test_unknown_tool_suggests_the_closest(make_ecosystem) -> None:
    async with make_ecosystem([Probe]) as eco:
        with pytest.raises(UnknownToolError, match="did you mean probe_ping"):
            await eco.call_tool("probe_pign", {})
