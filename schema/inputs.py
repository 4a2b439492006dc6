"""Input objects built straight from graphql-core's coerced values.

Strawberry converts an input object field by field through its generic type
machinery (type resolution, name conversion, one recursive call per field): a
fifth of a recordViews batch's CPU, and about as much of a like's GraphQL layer
as the resolver's own Python. For an input type whose every field is a leaf
(ID, String, Int, Float, Boolean, an enum, or one of these or null), the value
graphql-core coerced is already the converted one, so the object can be built
from it directly. Required fields are always present (graphql-core validated
them); omitted optional ones keep their defaults, as with strawberry's path.

The hook is strawberry's own ``StrawberryObjectDefinition.from_input``; it is
installed with the other fast paths and removed with FAST_PATHS=false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition

_LEAVES: tuple[object, ...] = (str, int, float, bool, strawberry.ID)
_HOOKED: list[type] = []
# (python name, GraphQL name) per input type and schema config: the name
# converter is the schema's.
_NAMES: dict[tuple[type, int], tuple[object, list[tuple[str, str]]]] = {}


def _is_leaf(type_: object) -> bool:
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    return type_ in _LEAVES or isinstance(type_, StrawberryEnumDefinition)


def leaf_input(cls: type) -> type:
    """Registers an input type for the hook; refuses one with a non-leaf field."""
    definition = get_object_definition(cls, strict=True)
    others = [f.python_name for f in definition.fields if not _is_leaf(f.type)]
    if others:
        raise TypeError(f"{cls.__name__}: not leaf fields: {', '.join(others)}")
    _HOOKED.append(cls)
    definition.from_input = _from_input
    return cls


def _field_names(cls: type, context: InputContext) -> list[tuple[str, str]]:
    config = context.config
    key = (cls, id(config))
    cached = _NAMES.get(key)
    if cached is None or cached[0] is not config:
        from_field = config.name_converter.from_field
        fields = get_object_definition(cls, strict=True).fields
        cached = (config, [(f.python_name, from_field(f)) for f in fields])
        _NAMES[key] = cached
    return cached[1]


def _from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    return cls(**{py: value[name] for py, name in _field_names(cls, context) if name in value})


def use_input_hooks(on: bool) -> None:
    """Process-wide: strawberry keeps the hook on each type's definition."""
    for cls in _HOOKED:
        get_object_definition(cls, strict=True).from_input = _from_input if on else None
