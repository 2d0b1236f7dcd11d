"""Input schemas for the TUI tests, in the shape pydantic produces for tool parameters."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Priority(str, Enum):
    """How urgent an order is."""

    low = "low"
    normal = "normal"
    high = "high"


class Address(BaseModel):
    """Where an order goes."""

    street: str
    city: str = "Paris"


class Item(BaseModel):
    """One line of an order."""

    name: str
    qty: int = 1


class Email(BaseModel):
    """Contact by email."""

    kind: Literal["email"] = "email"
    address: str


class Sms(BaseModel):
    """Contact by text message."""

    kind: Literal["sms"] = "sms"
    number: str


class PlaceOrder(BaseModel):
    """The parameters of a made-up `shop_place_order` tool."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, description="How many parcels")
    priority: Priority = Priority.normal
    address: Address
    items: list[Item] = []
    contact: Annotated[Email | Sms, Field(discriminator="kind")]
    note: str | None = None


def tool_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A tool input schema the way the kernel builds it (no top-level title, `required` present)."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    schema.setdefault("required", [])
    return schema


ORDER_SCHEMA = tool_schema(PlaceOrder)

WRITE_FILE_SCHEMA: dict[str, Any] = {
    "additionalProperties": False,
    "properties": {"path": {"title": "Path", "type": "string"}, "content": {"title": "Content", "type": "string"}},
    "required": ["path", "content"],
    "type": "object",
}

READ_FILE_SCHEMA: dict[str, Any] = {
    "additionalProperties": False,
    "properties": {
        "path": {"title": "Path", "type": "string"},
        "version": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None, "title": "Version"},
    },
    "required": ["path"],
    "type": "object",
}

TOOLS: list[dict[str, Any]] = [
    {"name": "horace_write_file", "input_schema": WRITE_FILE_SCHEMA,
     "description": "Write a text file under the files root as a new version; returns path, version, sha256, size."},
    {"name": "horace_read_file", "input_schema": READ_FILE_SCHEMA,
     "description": "Read a file's current text, or an older version's; returns path, version, content, sha256."},
    {"name": "dewey_search", "description": "Search every stored conversation by full text.",
     "input_schema": {"type": "object", "properties": {"query": {"type": "string", "title": "Query"}},
                      "required": ["query"]}},
    {"name": "fiedler_list_models", "description": "List the models the LLM gateway can use.",
     "input_schema": {"type": "object", "properties": {}, "required": []}},
    {"name": "shop_place_order", "description": "Place an order for parcels.", "input_schema": ORDER_SCHEMA},
]
