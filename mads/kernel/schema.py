"""Tool input schemas from type hints, and argument coercion and validation against them.

pydantic does the heavy lifting: it already knows str, int, float, bool, Literal, Enum,
list, dict, Optional, dataclasses, TypedDict and models, and gives JSON Schema for all.
"""
from __future__ import annotations

import inspect
import json
import typing
from typing import Any, Callable

import pydantic
from pydantic import ConfigDict, ValidationError

from .errors import ArgumentError
from .message import RawJSON


class Secret(str):
    """Marks a tool parameter whose value must never be recorded (`value: Secret`)."""


def build_model(fn: Callable[..., Any], model_name: str) -> tuple[type[pydantic.BaseModel], frozenset[str]]:
    """A pydantic model of fn's parameters (self excluded) and the names of its Secret parameters."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, param in inspect.signature(fn).parameters.items():
        if name in ("self", "cls") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        if annotation is Secret:
            secrets.add(name)
            annotation = str
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model = pydantic.create_model(  # type: ignore[call-overload]
        model_name,
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    return model, frozenset(secrets)


def json_schema(model: type[pydantic.BaseModel], description: str = "") -> dict[str, Any]:
    """The JSON Schema of a tool's input, with `required` always present."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    if description:
        schema["description"] = description
    return schema


def _types_of(prop: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a schema property accepts, looking through $ref, anyOf and oneOf."""
    if "$ref" in prop:
        ref = prop["$ref"].rsplit("/", 1)[-1]
        return _types_of(defs.get(ref, {}), defs)
    kinds: set[str] = set()
    t = prop.get("type")
    if isinstance(t, str):
        kinds.add(t)
    elif isinstance(t, list):
        kinds.update(t)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in prop.get(key, []):
            kinds |= _types_of(sub, defs)
    if "enum" in prop and not kinds:
        kinds.update(type(v).__name__.replace("str", "string").replace("int", "integer") for v in prop["enum"])
    if "properties" in prop and not kinds:
        kinds.add("object")
    return kinds


def coerce(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Turn `key=value` strings into the types the schema asks for; `key:=JSON` values pass as given.

    Raises ArgumentError with one line naming the argument when a value cannot be read.
    """
    props = schema.get("properties", {})
    defs = schema.get("$defs", {})
    out: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, RawJSON):
            out[key] = value.value
            continue
        if not isinstance(value, str) or key not in props:
            out[key] = value
            continue
        kinds = _types_of(props[key], defs)
        out[key] = _coerce_one(key, value, kinds)
    return out


def _coerce_one(key: str, value: str, kinds: set[str]) -> Any:
    if "string" in kinds or not kinds:
        return value
    if value.lower() in ("null", "none") and "null" in kinds:
        return None
    if "boolean" in kinds and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return value.lower() in ("true", "yes", "1", "on")
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            if "number" not in kinds:
                raise ArgumentError(f"{key}: expected an integer, got {value!r}") from None
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            raise ArgumentError(f"{key}: expected a number, got {value!r}") from None
    if kinds & {"array", "object"}:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            if "array" in kinds and "object" not in kinds:
                return [part.strip() for part in value.split(",") if part.strip()]
            raise ArgumentError(f"{key}: expected JSON ({'/'.join(sorted(kinds))}), got {value!r}") from None
    if "boolean" in kinds:
        raise ArgumentError(f"{key}: expected true or false, got {value!r}")
    return value


def validate(tool_name: str, model: type[pydantic.BaseModel], args: dict[str, Any]) -> dict[str, Any]:
    """Validate args against the tool's model; returns keyword arguments for the call.

    Raises ArgumentError with one line: the first problem, with its argument's name.
    """
    try:
        instance = model.model_validate(args)
    except ValidationError as exc:
        raise ArgumentError(f"{tool_name}: {first_error(exc)}") from None
    return {name: getattr(instance, name) for name in type(instance).model_fields}


def first_error(exc: ValidationError) -> str:
    """The first problem of a validation error, on one line."""
    errors = exc.errors(include_url=False)
    extra = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        return f"unexpected argument {', '.join(repr(x) for x in extra)}"
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "arguments"
    if first["type"] == "missing":
        return f"missing required argument {where!r}"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{got_text}{more}"
