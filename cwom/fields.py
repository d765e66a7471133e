"""JSON columns read with orjson, and JSON list columns with membership lookups that work on PostgreSQL and
SQLite alike.

:class:`JSONField` is Django's, but decodes what it reads with orjson: Django reads ``jsonb`` as text (on
PostgreSQL too: its backend registers a text loader) and ``json.loads`` every value, several times slower
for the small documents of a page of rows (a list request decodes hundreds).

``tags__has_any=["a", "b"]`` — the list holds at least one of the strings. On PostgreSQL this is
the jsonb ``?|`` operator, served by a GIN index; on SQLite it is an ``EXISTS`` over ``json_each``.

``assignees__has_actor=["maria"]`` — a list of Actor objects holds one with one of these ``actor_id``s.
On PostgreSQL, ``@>`` containment per id (GIN-served), on SQLite ``json_each`` + ``json_extract``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from django.db import models
from django.db.models import Lookup

# 19 digits in a row: maybe an integer beyond 64 bits, which orjson would read as a float.
_LONG_NUMBER = re.compile(r"[0-9]{19}")


def loads(text: str) -> Any:
    """JSON text decoded to the values ``json.loads`` gives, by orjson wherever orjson gives the same."""
    if not _LONG_NUMBER.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # a lone surrogate, a number beyond a double: json.loads decides
            pass
    return json.loads(text)


_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _refuse(value: Any) -> Any:
    raise TypeError


class JSONField(models.JSONField):  # type: ignore[type-arg]
    """``models.JSONField`` decoding with orjson: the same values as ``json.loads``.

    Django's own path reads what orjson would read differently or refuses: text holding 19 digits in a
    row (an integer beyond 64 bits, which orjson turns into a float), a lone surrogate. A behaviour of
    reading only: migrations see a plain ``models.JSONField``.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, str) and self.decoder is None:
            try:
                return loads(value)
            except ValueError:  # not JSON: Django's own path answers (it gives the text back)
                pass
        return super().from_db_value(value, expression, connection)

    def validate(self, value: Any, model_instance: Any) -> None:
        """Django's check, its encoding test by orjson where orjson encodes the value (the standard encoder
        tests what orjson refuses or hands over: datetimes, dataclasses, subclasses of the basic types, large
        integers). orjson also encodes enum members and UUIDs, which no write path puts in a document."""
        if self.encoder is not None:
            super().validate(value, model_instance)
            return
        try:
            orjson.dumps(value, default=_refuse, option=_PASSTHROUGH)
        except (orjson.JSONEncodeError, TypeError):
            super().validate(value, model_instance)
            return
        models.Field.validate(self, value, model_instance)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if type(self) is JSONField:
            path = "django.db.models.JSONField"
        return name, path, args, kwargs


class JSONListField(JSONField):
    """A JSON column holding a list (tags, string lists, Actor lists)."""


class _ListLookup(Lookup):
    # Params are lists, as Django 5.2's compilers expect (its lookups ``.extend()`` them); django-stubs 6
    # declares tuples (Django 6), hence ``ignore[override]`` on these methods.

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        # The values are bound as plain parameters below, not as JSON documents.
        return "%s", list(value)

    def _values(self) -> list[str]:
        values = self.rhs if isinstance(self.rhs, list | tuple) else [self.rhs]
        return [str(v) for v in values]


@JSONListField.register_lookup
class HasAny(_ListLookup):
    lookup_name = "has_any"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"({lhs} ?| %s::text[])", [*lhs_params, self._values()]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self._values()
        marks = ", ".join(["%s"] * len(values))
        sql = f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value IN ({marks}))"  # noqa: S608 - placeholders only
        return sql, [*lhs_params, *values]


@JSONListField.register_lookup
class HasActor(_ListLookup):
    lookup_name = "has_actor"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self._values()
        if not values:  # no id to look for: nothing matches (and "()" is not SQL)
            return "FALSE", []
        clauses = " OR ".join([f"{lhs} @> %s::jsonb"] * len(values))
        params: list[Any] = []
        for value in values:
            params += [*lhs_params, json.dumps([{"actor_id": value}])]
        return f"({clauses})", params

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self._values()
        marks = ", ".join(["%s"] * len(values))
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) "  # noqa: S608 - placeholders only
            f"WHERE json_extract(json_each.value, '$.actor_id') IN ({marks}))",
            [*lhs_params, *values],
        )
