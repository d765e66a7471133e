"""Contract objects straight from column values: each kind's shape compiled for rows, not model instances.

``shapes.dump(obj)`` walks a kind's node tree over a model instance whose relations were prefetched;
for an export of millions of rows that machinery (one queryset clone per object and relation) is most
of the cost. Here the same node tree is compiled once per kind into a reader of ``values_list`` rows:
a chunk of rows is read with one query and all its ref lists with one more (``Shape.ref_rows``, the query
the API's lists use). The output is the same dict ``shapes.dump`` gives for the same row
(the portability tests hold the two together for every kind).

On PostgreSQL (``text=True``) the rows come as the wire needs them: timestamps spelled by the database in
``shapes.iso``'s form (:class:`IsoUtc`), JSON columns as their text, decoded with orjson. Django's
converters (a Python timestamp parser and ``json.loads`` per value) were a third of an export's time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models
from django.db.models import Func, TextField
from django.db.models.functions import Cast

from .. import fields, shapes

Reader = Callable[["_Row"], Any]


class _Row:
    """One row with its ref lists, standing in for the model instance."""

    __slots__ = ("KIND", "links", "totals", "values")

    def __init__(
        self, kind: str, values: Sequence[Any], links: dict[str, list[tuple[Any, Any]]], totals: dict[str, int]
    ):
        self.KIND = kind
        self.values = values
        self.links = links
        self.totals = totals


@dataclass
class RowShape:
    """A kind's shape compiled for rows: the columns to select and a reader per contract field."""

    kind: str
    model: type[models.Model]
    columns: list[str] = field(default_factory=list)
    floats: list[int] = field(default_factory=list)  # positions of float columns (NaN/inf need care)
    readers: dict[str, Reader] = field(default_factory=dict)
    text: bool = False  # timestamps and JSON columns read as text (PostgreSQL)
    times: set[int] = field(default_factory=set)  # positions read as ISO text (text mode)
    documents: set[int] = field(default_factory=set)  # positions read as JSON text (text mode)
    raw: set[int] = field(default_factory=set)  # positions read as Django converts them

    def position(self, column: str, use: str = "raw") -> int:
        if column not in self.columns:
            self.columns.append(column)
        at = self.columns.index(column)
        if use != "raw" and not self.text:
            use = "raw"
        {"raw": self.raw, "time": self.times, "json": self.documents}[use].add(at)
        if len([used for used in (self.raw, self.times, self.documents) if at in used]) > 1:
            raise TypeError(f"{self.kind}.{column} is read both as text and as a value")
        return at

    def select(self) -> list[Any]:
        """What to pass to ``values_list`` for :attr:`columns`: a column, or its text in text mode."""
        return [
            IsoUtc(column) if at in self.times else Cast(column, TextField()) if at in self.documents else column
            for at, column in enumerate(self.columns)
        ]

    def rows(self, chunk: Sequence[Sequence[Any]]) -> list[_Row]:
        """The chunk's rows (tuples of :attr:`columns`, pk first) with their ref lists and the totals of the
        bounded ones (one query)."""
        shape = shapes.SHAPES[self.kind]
        ids = [values[0] for values in chunk]
        lists, totals = shape.ref_rows(ids, using=connection.alias, once=True)
        named = [(node.related, grouped) for node, grouped in zip(shape.ref_lists, lists, strict=True)]
        bounded = [node.related for node in shape.bounded]
        empty: list[Any] = []
        return [
            _Row(
                self.kind,
                values,
                {related: grouped.get(values[0], empty) for related, grouped in named},
                {related: totals.get((values[0], related), 0) for related in bounded},
            )
            for values in chunk
        ]

    def dump(self, row: _Row) -> dict[str, Any]:
        """The contract object of ``row``: what ``shapes.dump`` gives for its model instance."""
        return {name: read(row) for name, read in self.readers.items()}

    def exact_floats(self, row: _Row) -> bool:
        """False when a float column holds NaN or an infinity (which only the standard encoder spells)."""
        return all(row.values[i] is None or math.isfinite(row.values[i]) for i in self.floats)


def row_shape(kind: str, extra_columns: Iterable[str] = (), *, text: bool = False) -> RowShape:
    """``kind``'s shape compiled for rows; ``extra_columns`` are selected too (after the shape's own), as
    raw values unless the shape reads them already. ``text``: rows are read with :meth:`RowShape.select`
    on PostgreSQL (timestamps and JSON as text)."""
    shape = shapes.SHAPES[kind]
    compiled = RowShape(kind, shape.model, columns=[shape.model._meta.pk.attname], text=text)
    compiled.position(compiled.columns[0])
    compiled.readers = {name: _reader(node, compiled) for name, node in shape.nodes.items()}
    for column in extra_columns:
        if column not in compiled.columns:
            compiled.position(column)
    compiled.floats = [
        i for i, column in enumerate(compiled.columns) if isinstance(_field(shape.model, column), models.FloatField)
    ]
    return compiled


def _field(model: type[models.Model], attname: str) -> Any:
    return next(f for f in model._meta.concrete_fields if f.attname == attname)


class IsoUtc(Func):
    """A timestamp as ``shapes.iso`` spells it (``2026-01-02T03:04:05.000006Z``; no fraction when it is 0),
    by PostgreSQL."""

    template = (
        "regexp_replace(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
        "'\\.000000$', '') || 'Z'"
    )
    output_field = TextField()


def json_text(value: str | None) -> Any:
    """A JSON column's text as Django's JSONField gives it (``json.loads``' values)."""
    return None if value is None else fields.loads(value)


def _plain_json(f: Any) -> bool:
    """A JSONField that decodes as plain ``json.loads`` does (Django's, or the project's orjson one)."""
    return (
        isinstance(f, models.JSONField)
        and f.decoder is None
        and type(f).from_db_value in (models.JSONField.from_db_value, fields.JSONField.from_db_value)
    )


def _reader(node: shapes.Node, compiled: RowShape) -> Reader:
    # Time before Col: a Time is a Col.
    if isinstance(node, shapes.Time):
        if compiled.text:
            at = compiled.position(node.column, "time")
            return lambda row: row.values[at]
        at, iso = compiled.position(node.column), shapes.iso
        return lambda row: iso(row.values[at])
    if isinstance(node, shapes.Col):
        if compiled.text and _plain_json(_field(compiled.model, node.column)):
            at, decode = compiled.position(node.column, "json"), json_text
            return lambda row: decode(row.values[at])
        at = compiled.position(node.column)
        return lambda row: row.values[at]
    if isinstance(node, shapes.FKRef):
        at, kind, make_ref = compiled.position(node.column), node.kind, shapes.make_ref
        return lambda row: make_ref(kind, row.values[at])
    if isinstance(node, shapes.Total):
        related = node.related
        return lambda row: row.totals[related]
    if isinstance(node, shapes.ListURL):
        url = node.url
        return lambda row: url(row.values[0])
    if isinstance(node, shapes.RefList):  # before Derived: an issue's runs are both
        related, kind = node.related, node.kind
        return lambda row: [{"kind": kind, "id": target, "role": role} for target, role in row.links[related]]
    if isinstance(node, shapes.Derived):
        return node.fn
    if isinstance(node, shapes.Group):
        children = {name: _reader(child, compiled) for name, child in node.children.items()}
        if node.nullable_via is None:
            return lambda row: {name: read(row) for name, read in children.items()}
        via = compiled.position(node.nullable_via)
        return lambda row: None if row.values[via] is None else {name: read(row) for name, read in children.items()}
    raise TypeError(f"{compiled.kind}: no row reader for {type(node).__name__}")
