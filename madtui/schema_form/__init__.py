"""Forms from JSON Schema, headless: field descriptions, validation and argument assembly."""
from __future__ import annotations

from .fields import MISSING, FieldSpec, Kind, SchemaError, build_fields
from .model import ChoiceValue, InvalidArguments, Path, SchemaModel, check_text, format_path

__all__ = [
    "MISSING", "ChoiceValue", "FieldSpec", "InvalidArguments", "Kind", "Path", "SchemaError",
    "SchemaModel", "build_fields", "check_text", "format_path",
]
