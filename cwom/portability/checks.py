"""The write path's checks in a form a bulk import can afford: same verdicts, no query per object.

A bulk chunk only needs to know whether every line is good; when one is not, the chunk is applied
line by line through the full write path, which says precisely why. So these checks answer yes or no:

- :func:`body_is_valid` and the shape validators of the model's JSON columns use the same JSON Schema
  documents as ``shapes.parse`` and ``ShapeValidator``, through the same compiled yes/no check
  (``validation.compiled``);
- :func:`clean_fields` is ``Model.clean_fields`` with those validators swapped in;
- the checks that need other rows (Refs, a run's packets) are batched by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.db import models

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


def _shape_fields(model: type[models.Model]) -> frozenset[str]:
    return frozenset(
        f.name for f in model._meta.concrete_fields if any(isinstance(x, v.ShapeValidator) for x in f.validators)
    )


_SHAPE_FIELDS: dict[type[models.Model], frozenset[str]] = {}


def _json_fields(model: type[models.Model]) -> frozenset[str]:
    return frozenset(f.name for f in model._meta.concrete_fields if isinstance(f, models.JSONField))


_JSON_FIELDS: dict[type[models.Model], frozenset[str]] = {}


def clean_fields(obj: models.Model, exclude: list[str]) -> None:
    """``obj.clean_fields(exclude)``, the JSON shape validators run through :func:`schema_validator`.

    For an object whose JSON columns hold what a JSON document was parsed into (an import line): a
    JSONField's own check that its value encodes (``json.dumps`` of it) cannot fail for those and is left
    out; the rest of Field.validate (null, blank, choices) and every validator run.
    Raises Refused (or ValidationError) when a field would not validate.
    """
    model = type(obj)
    if model not in _SHAPE_FIELDS:
        _SHAPE_FIELDS[model] = _shape_fields(model)
        _JSON_FIELDS[model] = _json_fields(model)
    shaped, documents = _SHAPE_FIELDS[model], _JSON_FIELDS[model]
    obj.clean_fields(exclude=[*exclude, *shaped, *documents])
    for f in model._meta.concrete_fields:
        if f.name not in documents or f.name in exclude:
            continue
        raw = getattr(obj, f.attname)
        if f.blank and raw in f.empty_values:
            continue
        value = f.to_python(raw)
        models.Field.validate(f, value, obj)  # JSONField.validate minus its encoding round trip
        for validator in f.validators:
            if isinstance(validator, v.ShapeValidator):
                if not _shape_validator(validator.shape)(value):
                    raise Refused(f"{f.name}: not a valid {validator.shape}")
            else:
                validator(value)
        setattr(obj, f.attname, value)
