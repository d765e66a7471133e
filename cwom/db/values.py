"""Column values as the database takes them: the one value-preparation routine of every SQL fast path.

A column's value is what ``Field.get_db_prep_save`` gives (as ``save()`` prepares it), computed once per
field kind rather than per call where that is the value itself: a string for a text column, a bool, a
float, an int, an aware datetime on PostgreSQL. On PostgreSQL a JSON column's value is its document as JSON
text (``jsonb`` keeps the parsed document, whatever the spelling), by orjson where it writes the same document.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import Any

import orjson
from django.db import models

# Field classes whose get_db_prep_save hands a value of one of these Python types on unchanged.
_PLAIN_TYPES: dict[type[Any], tuple[type[Any], ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.SlugField: (str,),
    models.BooleanField: (bool,),
    models.FloatField: (float,),
    models.BigIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.BigAutoField: (int,),
}
# orjson spells these as the standard encoder does, or hands them to ``default`` (which refuses: the
# standard encoder with the field's encoder decides).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _refuse(value: Any) -> Any:
    raise TypeError


def _finite(value: Any) -> bool:
    """Whether ``value`` (a document orjson encoded) holds no NaN or infinity."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(map(_finite, value.values()))
    if kind is list or kind is tuple:
        return all(map(_finite, value))
    return True


def json_text(value: Any, encoder: type[json.JSONEncoder] | None = None) -> str | None:
    """``value`` as JSON text holding the document ``json.dumps(value, cls=encoder)`` holds.

    By orjson where it gives that document (it differs in spacing only); the standard encoder for what orjson
    spells otherwise or refuses: datetimes, dataclasses and subclasses (the encoder's own ``default``),
    integers beyond 64 bits, lone surrogates, and NaN and infinities (orjson writes ``null`` for them, which
    would store another value than the standard ``NaN``, which the database refuses).
    """
    if value is None:
        return None
    try:
        text = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, cls=encoder)
    if b"null" in text and not _finite(value):
        return json.dumps(value, cls=encoder)
    return text.decode()


def preparer(field: Any, connection: Any) -> Callable[[Any], Any]:
    """A function of a value of ``field`` giving what the database takes for it on ``connection``: what
    ``field.get_db_prep_save(value, connection)`` gives, with a JSON document as its text."""
    prepare = partial(field.get_db_prep_save, connection=connection)
    if isinstance(field, models.JSONField):
        if connection.vendor != "postgresql":
            # SQLite keeps the text as it is written, and its guard triggers compare texts: Django's spelling.
            return prepare
        return partial(json_text, encoder=field.encoder)
    target = field.target_field if field.is_relation else field
    kinds = _PLAIN_TYPES.get(type(target))
    if kinds is not None and (field.is_relation or type(field) is type(target)):
        return lambda value: value if value is None or type(value) in kinds else prepare(value)
    if type(target) is models.DateTimeField and connection.vendor == "postgresql":
        aware = dt.datetime  # psycopg takes an aware datetime as it is (the backend's adapter hands it on)
        return lambda value: (
            value if value is None or (type(value) is aware and value.tzinfo is not None) else prepare(value)
        )
    return prepare


@dataclass(frozen=True)
class Columns:
    """Some columns of a model, ready to be written: the fields, their column names, and per field how to
    read its value from an instance and how to prepare it."""

    model: type[models.Model]
    fields: tuple[Any, ...]
    readers: tuple[Callable[[Any], Any], ...]
    preparers: tuple[Callable[[Any], Any], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pairs", tuple(zip(self.readers, self.preparers, strict=True)))

    @property
    def names(self) -> list[str]:
        return [f.column for f in self.fields]

    def of(self, obj: models.Model) -> list[Any]:
        """The prepared values of ``obj`` (a new row: fields that set themselves on save, e.g. ``auto_now``,
        do as ``save()`` does)."""
        return [prepare(read(obj)) for read, prepare in self._pairs]  # type: ignore[attr-defined]

    def prepared(self, row: Sequence[Any]) -> list[Any]:
        """The prepared values of ``row`` (values of these fields, in order)."""
        return [prepare(value) for value, prepare in zip(row, self.preparers, strict=True)]


_COLUMNS: dict[tuple[type[models.Model], str, tuple[str, ...] | None], Columns] = {}


def columns(model: type[models.Model], connection: Any, attnames: Sequence[str] | None = None) -> Columns:
    """``model``'s columns ``attnames`` (default: every concrete column but an auto-increment key), built once
    per database alias. The preparers read only the backend's operations and settings, the same for every
    connection of an alias."""
    key = (model, connection.alias, None if attnames is None else tuple(attnames))
    found = _COLUMNS.get(key)
    if found is None:
        meta = model._meta
        if attnames is None:
            fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
        else:
            by_attname = {f.attname: f for f in meta.concrete_fields}
            fields = [by_attname[name] for name in attnames]
        readers = [
            partial(_pre_save, f)
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
            else attrgetter(f.attname)
            for f in fields
        ]
        found = _COLUMNS[key] = Columns(
            model, tuple(fields), tuple(readers), tuple(preparer(f, connection) for f in fields)
        )
    return found


def _pre_save(field: Any, obj: models.Model) -> Any:
    return field.pre_save(obj, True)
