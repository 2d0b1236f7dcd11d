"""A tool's input form without a screen: form values, per-field errors, and the exact arguments.

A form value ("raw") is what the editors hold: text for strings, numbers and JSON, a bool
for a switch, the chosen value (or None) for an enum, a list for an array, a dict for an
object and a `ChoiceValue` for a oneOf/anyOf. `arguments()` turns it into the argument
dict a tool receives: optional fields left empty are omitted (so the tool's own default
applies), defaults are prefilled and sent as shown, integers become int, numbers float.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .fields import MISSING, FieldSpec, Kind, build_fields

Path = tuple[str | int, ...]
OMIT: Any = object()
TEXT_KINDS = (Kind.STRING, Kind.INTEGER, Kind.NUMBER, Kind.JSON)


@dataclass(frozen=True)
class ChoiceValue:
    """The form value of a oneOf/anyOf: which variant is chosen (None: none) and its value."""

    index: int | None
    raw: Any = None


class InvalidArguments(ValueError):
    """The form holds values the schema refuses; `errors` maps field paths to one-line messages."""

    def __init__(self, errors: dict[Path, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{format_path(p) or 'arguments'}: {m}" for p, m in errors.items()))


class SchemaModel:
    """A tool's input schema as form fields, with validation and argument assembly."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.root = build_fields(schema)

    def initial(self) -> dict[str, Any]:
        """The form value of a fresh form: defaults prefilled, everything else empty."""
        return initial_raw(self.root)

    def from_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The form value showing these arguments (missing ones keep their defaults)."""
        return raw_from_value(self.root, arguments)

    def validate(self, raw: dict[str, Any]) -> dict[Path, str]:
        """Errors per field path; empty when the form can be sent."""
        return assemble(self.root, raw)[1]

    def arguments(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The exact argument dict; raises InvalidArguments when a field is wrong."""
        value, errors = assemble(self.root, raw)
        if errors:
            raise InvalidArguments(errors)
        return value


def format_path(path: Path) -> str:
    """`("items", 0, "name")` -> `items[0].name`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def empty_raw(spec: FieldSpec) -> Any:
    """The form value of a field nobody has touched and that has no default."""
    if spec.kind in TEXT_KINDS:
        return ""
    if spec.kind is Kind.BOOLEAN:
        return None if spec.nullable else False
    if spec.kind is Kind.CONST:
        return spec.const
    if spec.kind is Kind.ARRAY:
        return []
    if spec.kind is Kind.OBJECT:
        return {p.name: initial_raw(p) for p in spec.properties}
    if spec.kind is Kind.CHOICE:
        if spec.nullable or not spec.required:
            return ChoiceValue(None)
        return ChoiceValue(0, initial_raw(spec.variants[0]))
    return None


def initial_raw(spec: FieldSpec) -> Any:
    """The form value of a fresh field: its default when it has one."""
    return raw_from_value(spec, spec.default) if spec.has_default else empty_raw(spec)


def raw_from_value(spec: FieldSpec, value: Any) -> Any:
    """The form value that shows `value` (an argument value) in this field."""
    kind = spec.kind
    if value is None and kind is not Kind.CONST:
        return ChoiceValue(None) if kind is Kind.CHOICE else (empty_raw(spec) if kind is not Kind.BOOLEAN else None)
    if kind is Kind.STRING:
        return value if isinstance(value, str) else json.dumps(value)
    if kind in (Kind.INTEGER, Kind.NUMBER):
        return repr(value) if isinstance(value, float) else str(value)
    if kind is Kind.JSON:
        return json.dumps(value)
    if kind is Kind.BOOLEAN:
        return bool(value)
    if kind is Kind.ENUM:
        return value if value in spec.enum else None
    if kind is Kind.CONST:
        return spec.const
    if kind is Kind.ARRAY:
        assert spec.item is not None
        return [raw_from_value(spec.item, v) for v in value] if isinstance(value, list) else []
    if kind is Kind.OBJECT:
        given = value if isinstance(value, dict) else {}
        return {p.name: raw_from_value(p, given[p.name]) if p.name in given else initial_raw(p)
                for p in spec.properties}
    return _choose_variant(spec, value)


def _choose_variant(spec: FieldSpec, value: Any) -> ChoiceValue:
    """The first variant that reproduces `value` exactly (a const tag decides first)."""
    for index, variant in enumerate(spec.variants):
        tags = [p for p in variant.properties if p.kind is Kind.CONST]
        if tags and isinstance(value, dict) and all(t.name in value and value[t.name] == t.const for t in tags):
            return ChoiceValue(index, raw_from_value(variant, value))
    fitting = None
    for index, variant in enumerate(spec.variants):
        raw = raw_from_value(variant, value)
        result, errors = assemble(variant, raw)
        if not errors and result == value and type(result) is type(value):
            return ChoiceValue(index, raw)
        names = {p.name for p in variant.properties}
        if fitting is None and not errors and isinstance(value, dict) and names >= value.keys():
            fitting = ChoiceValue(index, raw)
    return fitting or ChoiceValue(0, raw_from_value(spec.variants[0], value))


def assemble(spec: FieldSpec, raw: Any, path: Path = ()) -> tuple[Any, dict[Path, str]]:
    """The argument value of a field (OMIT when left out) and the errors found on the way."""
    errors: dict[Path, str] = {}
    value = _assemble(spec, raw, path, errors)
    if value is OMIT and spec.kind is Kind.OBJECT and not path:
        value = {}
    return value, errors


def check_text(spec: FieldSpec, text: str) -> str | None:
    """The error for one typed value (None when fine); blank is fine here, `required` is for submit."""
    if text == "":
        return None
    errors: dict[Path, str] = {}
    _assemble(spec, text, (), errors)
    return errors.get(())


def _is_blank(spec: FieldSpec, raw: Any) -> bool:
    """True when the user left the field empty."""
    if spec.kind in TEXT_KINDS:
        return raw is None or (raw.strip() == "" if spec.kind is not Kind.STRING else raw == "")
    if spec.kind in (Kind.ENUM, Kind.BOOLEAN):
        return raw is None
    if spec.kind is Kind.ARRAY:
        return not raw and not spec.required
    if spec.kind is Kind.CHOICE:
        return not isinstance(raw, ChoiceValue) or raw.index is None
    return False


def _assemble(spec: FieldSpec, raw: Any, path: Path, errors: dict[Path, str]) -> Any:
    """Build one field's value into `errors`-aware output; see `assemble`."""
    if _is_blank(spec, raw):
        if not spec.required:
            return OMIT
        if spec.nullable:
            return None
        errors[path] = "choose one" if spec.kind in (Kind.ENUM, Kind.CHOICE) else "required"
        return OMIT
    kind = spec.kind
    if kind is Kind.CONST:
        return spec.const
    if kind is Kind.BOOLEAN:
        return bool(raw)
    if kind is Kind.ENUM:
        if raw not in spec.enum:
            errors[path] = f"must be one of {', '.join(map(str, spec.enum))}"
            return OMIT
        return raw
    if kind is Kind.OBJECT:
        given = raw if isinstance(raw, dict) else {}
        result: dict[str, Any] = {}
        for prop in spec.properties:
            value = _assemble(prop, given.get(prop.name, initial_raw(prop)), (*path, prop.name), errors)
            if value is not OMIT:
                result[prop.name] = value
        return OMIT if not result and not spec.required else result
    if kind is Kind.ARRAY:
        assert spec.item is not None
        items = [_assemble(spec.item, r, (*path, i), errors) for i, r in enumerate(raw or [])]
        _check_count(spec, len(items), path, errors)
        return [None if v is OMIT else v for v in items]
    if kind is Kind.CHOICE:
        return _assemble(spec.variants[raw.index], raw.raw, path, errors)
    return _scalar(spec, raw, path, errors)


def _scalar(spec: FieldSpec, text: str, path: Path, errors: dict[Path, str]) -> Any:
    """A typed value from text: str, int, float or parsed JSON, checked against the constraints."""
    kind = spec.kind
    if kind is Kind.STRING:
        _check_string(spec, text, path, errors)
        return text
    if kind is Kind.JSON:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            errors[path] = f"not valid JSON ({exc.msg} at column {exc.colno})"
            return OMIT
    cleaned = text.strip()
    try:
        number: int | float = int(cleaned) if kind is Kind.INTEGER else float(cleaned)
    except ValueError:
        errors[path] = f"must be {'an integer' if kind is Kind.INTEGER else 'a number'}, not {cleaned!r}"
        return OMIT
    if isinstance(number, float) and not math.isfinite(number):
        errors[path] = "must be a finite number"
        return OMIT
    _check_bounds(spec, number, path, errors)
    return number


def _check_bounds(spec: FieldSpec, number: float, path: Path, errors: dict[Path, str]) -> None:
    """minimum / maximum / exclusiveMinimum / exclusiveMaximum."""
    c = spec.constraints
    if "minimum" in c and number < c["minimum"]:
        errors[path] = f"must be at least {c['minimum']}"
    elif "exclusiveMinimum" in c and number <= c["exclusiveMinimum"]:
        errors[path] = f"must be more than {c['exclusiveMinimum']}"
    elif "maximum" in c and number > c["maximum"]:
        errors[path] = f"must be at most {c['maximum']}"
    elif "exclusiveMaximum" in c and number >= c["exclusiveMaximum"]:
        errors[path] = f"must be less than {c['exclusiveMaximum']}"


def _check_string(spec: FieldSpec, text: str, path: Path, errors: dict[Path, str]) -> None:
    """minLength / maxLength / pattern."""
    c = spec.constraints
    if "minLength" in c and len(text) < c["minLength"]:
        errors[path] = f"must be at least {c['minLength']} characters"
    elif "maxLength" in c and len(text) > c["maxLength"]:
        errors[path] = f"must be at most {c['maxLength']} characters"
    elif "pattern" in c and _search(c["pattern"], text) is None:
        errors[path] = f"must match {c['pattern']}"


def _search(pattern: str, text: str) -> re.Match[str] | bool | None:
    """re.search, treating a pattern Python cannot compile as matching (the tool will judge)."""
    try:
        return re.search(pattern, text)
    except re.error:
        return True


def _check_count(spec: FieldSpec, count: int, path: Path, errors: dict[Path, str]) -> None:
    """minItems / maxItems."""
    c = spec.constraints
    if "minItems" in c and count < c["minItems"]:
        errors[path] = f"needs at least {c['minItems']} item{'s' if c['minItems'] != 1 else ''}"
    elif "maxItems" in c and count > c["maxItems"]:
        errors[path] = f"takes at most {c['maxItems']} item{'s' if c['maxItems'] != 1 else ''}"


__all__ = [
    "MISSING", "OMIT", "ChoiceValue", "FieldSpec", "InvalidArguments", "Kind", "Path", "SchemaModel",
    "assemble", "build_fields", "check_text", "empty_raw", "format_path", "initial_raw", "raw_from_value",
]
