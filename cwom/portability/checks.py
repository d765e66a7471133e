"""Yes/no checks for a bulk import chunk.

A bulk chunk only needs to know whether every line is good; when one is not, the chunk is applied
line by line, which says precisely why. :func:`body_is_valid` is the schema check of ``shapes.parse``
(the same JSON Schema document, through the same compiled yes/no check, ``validation.compiled``). The
model's rules are the model layer's (``CwomObject.full_clean_many``, for the chunk at once).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from .. import shapes
from .. import validation as v


class Refused(Exception):
    """A line of a bulk chunk is not good as it stands (the line-by-line path says why)."""


def schema_validator(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """A yes/no validator of ``schema``: the write path's compiled check (built once per schema)."""
    return v.compiled(schema).is_valid


@cache
def _shape_validator(name: str) -> Callable[[Any], bool]:
    return schema_validator(v.SHAPES[name])


@cache
def _body_validator(kind: str) -> Callable[[Any], bool]:
    return schema_validator(shapes.json_schema(kind, "in"))


def body_is_valid(kind: str, body: Any) -> bool:
    """Whether ``body`` passes the schema check of ``shapes.parse(kind, body, "in")``."""
    return isinstance(body, dict) and _body_validator(kind)(body)
