"""Tests of the headless schema form model: field trees, errors per field, exact arguments."""
from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from madtui.schema_form import ChoiceValue, InvalidArguments, Kind, SchemaError, SchemaModel, check_text, format_path
from madtui.schema_form.model import raw_from_value

from .schemas import ORDER_SCHEMA, READ_FILE_SCHEMA, WRITE_FILE_SCHEMA, tool_schema


def filled_order(model: SchemaModel) -> dict[str, Any]:
    """The order form filled the way a user would: text typed, one item, the sms variant."""
    raw = model.initial()
    raw["count"] = "3"
    raw["priority"] = "high"
    raw["address"]["street"] = "1 Main St"
    raw["items"] = [{"name": "apple", "qty": "2"}, {"name": "pear", "qty": "1"}]
    raw["contact"] = ChoiceValue(1, {"kind": "sms", "number": "555"})
    return raw


def test_write_file_schema_gives_two_required_string_fields() -> None:
    root = SchemaModel(WRITE_FILE_SCHEMA).root
    assert [(f.name, f.kind, f.required, f.label) for f in root.properties] == [
        ("path", Kind.STRING, True, "path *"), ("content", Kind.STRING, True, "content *")]


def test_pydantic_schema_becomes_a_tree_of_fields() -> None:
    fields = {f.name: f for f in SchemaModel(ORDER_SCHEMA).root.properties}
    assert fields["count"].kind is Kind.INTEGER and fields["count"].constraints == {"minimum": 1}
    assert fields["count"].description == "How many parcels"
    assert fields["priority"].kind is Kind.ENUM and fields["priority"].enum == ("low", "normal", "high")
    assert [p.name for p in fields["address"].properties] == ["street", "city"]
    items = fields["items"]
    assert items.kind is Kind.ARRAY and items.item is not None and items.item.kind is Kind.OBJECT
    contact = fields["contact"]
    assert contact.kind is Kind.CHOICE and [v.title for v in contact.variants] == ["email", "sms"]
    assert fields["note"].kind is Kind.STRING and fields["note"].nullable and not fields["note"].required


def test_fresh_form_prefills_defaults_and_leaves_the_rest_empty() -> None:
    raw = SchemaModel(ORDER_SCHEMA).initial()
    assert raw == {"count": "", "priority": "normal", "address": {"street": "", "city": "Paris"}, "items": [],
                   "contact": ChoiceValue(0, {"kind": "email", "address": ""}), "note": ""}


def test_empty_required_fields_are_reported_per_path() -> None:
    model = SchemaModel(ORDER_SCHEMA)
    assert model.validate(model.initial()) == {
        ("count",): "required", ("address", "street"): "required", ("contact", "address"): "required"}


def test_arguments_are_typed_and_empty_optional_fields_are_omitted() -> None:
    model = SchemaModel(ORDER_SCHEMA)
    assert model.arguments(filled_order(model)) == {
        "count": 3, "priority": "high", "address": {"street": "1 Main St", "city": "Paris"},
        "items": [{"name": "apple", "qty": 2}, {"name": "pear", "qty": 1}],
        "contact": {"kind": "sms", "number": "555"},
    }


def test_wrong_integer_and_out_of_range_values_are_reported_beside_their_field() -> None:
    model = SchemaModel(ORDER_SCHEMA)
    raw = filled_order(model)
    raw["count"] = "0"
    raw["items"][1]["qty"] = "two"
    with pytest.raises(InvalidArguments) as caught:
        model.arguments(raw)
    assert caught.value.errors == {("count",): "must be at least 1",
                                   ("items", 1, "qty"): "must be an integer, not 'two'"}
    assert format_path(("items", 1, "qty")) == "items[1].qty"


def test_numbers_become_floats_and_must_be_finite() -> None:
    class Args(BaseModel):
        ratio: float = Field(gt=0, le=1)
        flag: bool = False

    model = SchemaModel(tool_schema(Args))
    assert model.arguments({"ratio": "1", "flag": True}) == {"ratio": 1.0, "flag": True}
    assert isinstance(model.arguments({"ratio": "0.5"})["ratio"], float)
    assert model.validate({"ratio": "nan"}) == {("ratio",): "must be a finite number"}
    assert model.validate({"ratio": "0"}) == {("ratio",): "must be more than 0"}
    assert model.validate({"ratio": "2"}) == {("ratio",): "must be at most 1"}


def test_a_blank_optional_value_is_omitted_and_a_blank_required_nullable_one_is_null() -> None:
    class Args(BaseModel):
        must: int | None
        may: int | None = None

    model = SchemaModel(tool_schema(Args))
    assert model.arguments({"must": "", "may": ""}) == {"must": None}
    read_file = SchemaModel(READ_FILE_SCHEMA)
    assert read_file.arguments(read_file.from_arguments({"path": "a.txt"})) == {"path": "a.txt"}


def test_arguments_shown_in_the_form_come_back_unchanged() -> None:
    model = SchemaModel(ORDER_SCHEMA)
    args = model.arguments(filled_order(model))
    assert model.from_arguments(args)["contact"] == ChoiceValue(1, {"kind": "sms", "number": "555"})
    assert model.arguments(model.from_arguments(args)) == args


def test_a_union_of_scalars_is_a_choice_between_types() -> None:
    class Args(BaseModel):
        key: int | str

    model = SchemaModel(tool_schema(Args))
    key = model.root.properties[0]
    assert key.kind is Kind.CHOICE and [v.title for v in key.variants] == ["integer", "string"]
    assert raw_from_value(key, "abc") == ChoiceValue(1, "abc")
    assert raw_from_value(key, 7) == ChoiceValue(0, "7")
    assert model.arguments({"key": ChoiceValue(0, "7")}) == {"key": 7}
    assert model.validate({"key": ChoiceValue(0, "x")}) == {("key",): "must be an integer, not 'x'"}


def test_an_optional_object_is_a_choice_that_may_be_none() -> None:
    class Point(BaseModel):
        x: int

    class Args(BaseModel):
        at: Point | None = None

    model = SchemaModel(tool_schema(Args))
    at = model.root.properties[0]
    assert at.kind is Kind.CHOICE and at.nullable and [v.title for v in at.variants] == ["Point"]
    assert model.arguments(model.initial()) == {}
    assert model.arguments({"at": ChoiceValue(0, {"x": "4"})}) == {"at": {"x": 4}}


def test_array_and_string_constraints_are_checked() -> None:
    class Args(BaseModel):
        tags: list[str] = Field(min_length=1)
        code: str = Field(pattern=r"^[a-z]+$", max_length=4)

    model = SchemaModel(tool_schema(Args))
    assert model.validate({"tags": [], "code": "ABC"}) == {("tags",): "needs at least 1 item", ("code",): "must match ^[a-z]+$"}
    assert model.validate({"tags": ["a", ""], "code": "abcde"}) == {
        ("tags", 1): "required", ("code",): "must be at most 4 characters"}
    assert model.arguments({"tags": ["a"], "code": "ab"}) == {"tags": ["a"], "code": "ab"}


def test_a_free_form_object_is_edited_as_json() -> None:
    class Args(BaseModel):
        meta: dict[str, int] = {}

    model = SchemaModel(tool_schema(Args))
    assert model.root.properties[0].kind is Kind.JSON
    assert model.initial() == {"meta": "{}"}
    assert model.arguments({"meta": '{"a": 1}'}) == {"meta": {"a": 1}}
    assert model.validate({"meta": "{a"})[("meta",)].startswith("not valid JSON")


def test_a_recursive_schema_ends_in_a_json_field() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    class Args(BaseModel):
        tree: Node

    tree = SchemaModel(tool_schema(Args)).root.properties[0]
    children = tree.properties[1]
    assert children.kind is Kind.ARRAY and children.item is not None and children.item.kind is Kind.JSON


def test_an_unresolvable_ref_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="#/\\$defs/Nope"):
        SchemaModel({"type": "object", "properties": {"x": {"$ref": "#/$defs/Nope"}}})


def test_typed_text_is_checked_without_calling_blank_an_error() -> None:
    count = SchemaModel(ORDER_SCHEMA).root.properties[0]
    assert check_text(count, "") is None
    assert check_text(count, "-") == "must be an integer, not '-'"
    assert check_text(count, "5") is None


def test_the_model_does_not_import_textual() -> None:
    code = "import sys, madtui.schema_form; assert 'textual' not in sys.modules, 'textual imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_password_field_is_marked_secret() -> None:
    class Args(BaseModel):
        token: SecretStr
        name: str = ""

    token, name = SchemaModel(tool_schema(Args)).root.properties
    assert token.kind is Kind.STRING and token.secret and not name.secret


def test_a_tool_without_parameters_has_an_empty_form_and_no_arguments() -> None:
    for schema in ({"type": "object", "properties": {}}, {"type": "object"},
                   {"type": "object", "properties": {}, "additionalProperties": False, "required": []}):
        model = SchemaModel(schema)
        assert model.root.kind is Kind.OBJECT and model.root.properties == ()
        assert model.arguments(model.initial()) == {}


def test_file_contents_and_prompts_are_multiline_text() -> None:
    path, content = SchemaModel(WRITE_FILE_SCHEMA).root.properties
    assert content.multiline and not path.multiline
