"""Field descriptions built from a JSON Schema as pydantic's `model_json_schema()` writes it.

Headless: no textual here, so any front end (and a plain test) can use the same tree.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class _Missing:
    """The type of MISSING: a field without a default (None is a real default)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

MULTILINE_NAMES = frozenset({"content", "prompt", "body", "text"})
CONSTRAINT_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minLength", "maxLength", "pattern", "minItems", "maxItems")


class Kind(StrEnum):
    """What editor a field needs."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"
    CONST = "const"
    ARRAY = "array"
    OBJECT = "object"
    CHOICE = "choice"
    JSON = "json"


class SchemaError(ValueError):
    """A schema the form cannot follow (an unresolvable $ref)."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form: what it holds, how it is labelled, and its rules.

    `multiline` marks text worth a multi-line editor: `format: multiline|textarea`, or an
    argument named content, prompt, body or text (file contents and prompts span lines).
    """

    kind: Kind
    name: str = ""
    title: str = ""
    description: str = ""
    required: bool = False
    nullable: bool = False
    secret: bool = False
    multiline: bool = False
    default: Any = MISSING
    const: Any = MISSING
    enum: tuple[Any, ...] = ()
    properties: tuple[FieldSpec, ...] = ()
    item: FieldSpec | None = None
    variants: tuple[FieldSpec, ...] = ()
    constraints: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name shown beside the editor: the argument name (or title), `*` when required."""
        text = self.name or self.title or self.kind.value
        return f"{text} *" if self.required else text

    @property
    def has_default(self) -> bool:
        """True when the schema gives a default value."""
        return self.default is not MISSING


def build_fields(schema: dict[str, Any]) -> FieldSpec:
    """The root object field of a tool's input schema."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    root = _Builder(defs).build(schema, name="", required=True, stack=())
    if root.kind is Kind.JSON and not schema.get("properties") and schema.get("type", "object") == "object":
        root = replace(root, kind=Kind.OBJECT)
    if root.kind is not Kind.OBJECT:
        raise SchemaError("a tool's input schema must describe an object with properties")
    return root


def humanize(name: str) -> str:
    """`tool_name` -> `Tool name`, for titles the schema does not give."""
    return name.replace("_", " ").strip().capitalize()


class _Builder:
    """Walks schema nodes, resolving `$ref` against `$defs`."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def resolve(self, node: dict[str, Any], stack: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The node with `$ref` and single-element `allOf` merged in; sibling keys win."""
        node = dict(node)
        while True:
            if "$ref" in node:
                ref = node.pop("$ref")
                name = ref.rsplit("/", 1)[-1]
                if name not in self.defs:
                    raise SchemaError(f"unresolvable $ref {ref!r}")
                if name in stack:
                    return {"__recursive__": name, **node}, stack
                stack = (*stack, name)
                node = {**self.defs[name], **node}
            elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
                inner = node.pop("allOf")[0]
                node = {**inner, **node}
            else:
                return node, stack

    def build(self, node: dict[str, Any], *, name: str, required: bool, stack: tuple[str, ...]) -> FieldSpec:
        """The field for one schema node."""
        outer_title = node.get("title")
        node, stack = self.resolve(node, stack)
        base = FieldSpec(
            kind=Kind.JSON,
            name=name,
            title=outer_title or node.get("title") or humanize(name),
            description=(node.get("description") or "").strip(),
            required=required,
            secret=node.get("format") == "password" or node.get("writeOnly") is True,
            default=node.get("default", MISSING),
            constraints={k: node[k] for k in CONSTRAINT_KEYS if k in node},
        )
        if "__recursive__" in node:
            return base
        union = node.get("oneOf") or node.get("anyOf")
        if isinstance(union, list) and union:
            return self._union(base, node, union, stack)
        if "const" in node:
            return replace(base, kind=Kind.CONST, const=node["const"])
        if isinstance(node.get("enum"), list):
            values = tuple(node["enum"])
            return replace(base, kind=Kind.ENUM, enum=tuple(v for v in values if v is not None),
                           nullable=None in values)
        kind = node.get("type")
        nullable = False
        if isinstance(kind, list):
            nullable = "null" in kind
            others = [k for k in kind if k != "null"]
            if len(others) != 1:
                variants = [{**node, "type": k} for k in others]
                return self._union(replace(base, nullable=nullable), node, variants, stack)
            kind = others[0]
        base = replace(base, nullable=nullable)
        if kind == "object" or (kind is None and "properties" in node):
            return self._object(base, node, stack)
        if kind == "array":
            if "prefixItems" in node:
                return base
            item = self.build(node.get("items") or {}, name="", required=True, stack=stack)
            return replace(base, kind=Kind.ARRAY, item=item)
        if kind == "string":
            multiline = node.get("format") in ("multiline", "textarea") or name in MULTILINE_NAMES
            return replace(base, kind=Kind.STRING, multiline=multiline and not base.secret)
        if kind in ("integer", "number", "boolean"):
            return replace(base, kind=Kind(kind))
        if kind == "null":
            return replace(base, kind=Kind.CONST, const=None)
        return base

    def _object(self, base: FieldSpec, node: dict[str, Any], stack: tuple[str, ...]) -> FieldSpec:
        """An object with named properties, or free-form JSON when it has none."""
        props = node.get("properties") or {}
        if not props and node.get("additionalProperties") is not False:
            return base
        required = set(node.get("required") or [])
        children = tuple(self.build(sub, name=key, required=key in required, stack=stack)
                         for key, sub in props.items())
        return replace(base, kind=Kind.OBJECT, properties=children)

    def _union(self, base: FieldSpec, node: dict[str, Any], options: list[Any], stack: tuple[str, ...]) -> FieldSpec:
        """`anyOf`/`oneOf`: Optional[X] becomes X that may be null; several options become a choice."""
        nullable = base.nullable or any(_is_null(o) for o in options)
        rest = [o for o in options if not _is_null(o)]
        if not rest:
            return replace(base, kind=Kind.CONST, const=None)
        if len(rest) == 1:
            keep = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf", "type", "discriminator")}
            single = self.build({**rest[0], **keep}, name=base.name, required=base.required, stack=stack)
            single = replace(single, nullable=nullable, title=base.title)
            if nullable and single.kind is Kind.OBJECT:
                inner_title = self.resolve(rest[0], stack)[0].get("title") or "value"
                variant = replace(single, name="", required=True, nullable=False, default=MISSING,
                                  title=inner_title)
                return replace(base, kind=Kind.CHOICE, nullable=True, variants=(variant,))
            return single
        labels = _discriminator_labels(node)
        variants = []
        for index, option in enumerate(rest):
            variant = self.build(option, name="", required=True, stack=stack)
            ref = option.get("$ref", "") if isinstance(option, dict) else ""
            title = labels.get(ref) or _variant_title(variant, option, index)
            variants.append(replace(variant, title=title, default=MISSING))
        return replace(base, kind=Kind.CHOICE, nullable=nullable, variants=tuple(variants))


def _is_null(node: Any) -> bool:
    """True for `{"type": "null"}`."""
    return isinstance(node, dict) and node.get("type") == "null" and len(node.keys() - {"title"}) == 1


def _discriminator_labels(node: dict[str, Any]) -> dict[str, str]:
    """`$ref` -> discriminator value, from pydantic's `discriminator.mapping`."""
    mapping = (node.get("discriminator") or {}).get("mapping") or {}
    return {ref: str(value) for value, ref in mapping.items()}


def _variant_title(variant: FieldSpec, option: Any, index: int) -> str:
    """A readable name for a union option: its const tag, its title, or its type."""
    for prop in variant.properties:
        if prop.kind is Kind.CONST and isinstance(prop.const, str):
            return prop.const
    if isinstance(option, dict) and "$ref" in option:
        return variant.title
    if isinstance(option, dict) and option.get("title"):
        return str(option["title"])
    if variant.kind is Kind.JSON:
        return f"option {index + 1}"
    if variant.kind is Kind.ARRAY and variant.item is not None:
        return f"list of {variant.item.kind.value}"
    return variant.kind.value
