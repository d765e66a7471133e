"""Contract objects straight from column values: each kind's shape compiled for rows, not model instances.

``shapes.dump(obj)`` walks a kind's node tree over a model instance whose relations were prefetched;
for an export of millions of rows that machinery (one queryset clone per object and relation) is most
of the cost. Here the same node tree is compiled once per kind into a reader of ``values_list`` rows:
a chunk of rows is read with one query, each link table and each derived list for the whole chunk with
one more, grouped in Python. The output is the same dict ``shapes.dump`` gives for the same row
(the portability tests hold the two together for every kind).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection, models
from django.db.models import Prefetch

from .. import shapes

Reader = Callable[["_Row"], Any]


class _Related:
    """A related row as a Derived node's function sees it (``o.id``)."""

    __slots__ = ("id",)

    def __init__(self, pk: Any) -> None:
        self.id = pk

    @property
    def pk(self) -> Any:
        return self.id


class _Rows:
    """What ``getattr(obj, related)`` gives a Derived function: ``.all()`` of the related rows."""

    __slots__ = ("items",)

    def __init__(self, items: list[_Related]) -> None:
        self.items = items

    def all(self) -> list[_Related]:
        return self.items


class _Row:
    """One row with its links and derived lists, standing in for the model instance."""

    __slots__ = ("KIND", "derived", "links", "values")

    def __init__(
        self, kind: str, values: Sequence[Any], links: dict[str, list[tuple[Any, Any]]], derived: dict[str, _Rows]
    ):
        self.KIND = kind
        self.values = values
        self.links = links
        self.derived = derived

    def __getattr__(self, name: str) -> Any:
        try:
            return self.derived[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class _LinkTable:
    related: str  # the owner's reverse accessor (``doctrine_ref_links``)
    model: type[models.Model]
    owner: str  # attname of the link row's owner column
    target: str  # attname of the link row's target column


@dataclass
class _DerivedList:
    name: str  # the owner's reverse accessor (``runs``)
    queryset: models.QuerySet[Any]
    owner: str  # attname of the related row's column pointing at the owner


@dataclass
class RowShape:
    """A kind's shape compiled for rows: the columns to select, the link tables and lists to read per chunk."""

    kind: str
    model: type[models.Model]
    columns: list[str] = field(default_factory=list)
    links: list[_LinkTable] = field(default_factory=list)
    derived: list[_DerivedList] = field(default_factory=list)
    floats: list[int] = field(default_factory=list)  # positions of float columns (NaN/inf need care)
    readers: dict[str, Reader] = field(default_factory=dict)
    _lists_sql: str | None = None

    def position(self, column: str) -> int:
        if column not in self.columns:
            self.columns.append(column)
        return self.columns.index(column)

    def rows(self, chunk: Sequence[Sequence[Any]]) -> list[_Row]:
        """The chunk's rows (tuples of :attr:`columns`, pk first) with their links and lists.

        On PostgreSQL every link table and derived list of the chunk comes in one query (each part
        aggregated in its own order); elsewhere in one query each.
        """
        ids = [values[0] for values in chunk]
        links: dict[str, dict[Any, list[tuple[Any, Any]]]] = {}
        derived: dict[str, dict[Any, list[_Related]]] = {}
        parts = self._lists_in_one_query(ids) if connection.vendor == "postgresql" else self._lists_one_by_one(ids)
        for table, items in zip(self.links, parts, strict=False):
            grouped: dict[Any, list[tuple[Any, Any]]] = defaultdict(list)
            for owner, target, role in items:
                grouped[owner].append((target, role))
            links[table.related] = grouped
        for item, items in zip(self.derived, parts[len(self.links) :], strict=True):
            found: dict[Any, list[_Related]] = defaultdict(list)
            for owner, pk in items:
                found[owner].append(_Related(pk))
            derived[item.name] = found
        empty: list[Any] = []
        return [
            _Row(
                self.kind,
                values,
                {name: grouped.get(values[0], empty) for name, grouped in links.items()},
                {name: _Rows(found.get(values[0], empty)) for name, found in derived.items()},
            )
            for values in chunk
        ]

    def _lists_one_by_one(self, ids: list[Any]) -> list[Iterable[Sequence[Any]]]:
        parts: list[Iterable[Sequence[Any]]] = []
        for table in self.links:
            query = table.model._default_manager.filter(**{f"{table.owner}__in": ids}).order_by("id")
            parts.append(query.values_list(table.owner, table.target, "role"))
        for item in self.derived:
            parts.append(item.queryset.filter(**{f"{item.owner}__in": ids}).values_list(item.owner, "pk"))
        return parts

    def _lists_in_one_query(self, ids: list[Any]) -> list[Iterable[Sequence[Any]]]:
        if not self.links and not self.derived:
            return []
        if self._lists_sql is None:
            self._lists_sql = self._compose_lists_sql()
        with connection.cursor() as cursor:
            cursor.execute(self._lists_sql, [ids])
            row = cursor.fetchone()
        return [orjson.loads(part) if part is not None else [] for part in row]

    def _compose_lists_sql(self) -> str:
        """One SELECT of one JSON array per link table and derived list: ``[[owner, ...], ...]`` in order."""
        quote = connection.ops.quote_name
        chunk = "(SELECT ids FROM chunk)::text[]"
        parts = []
        for table in self.links:
            meta = table.model._meta
            owner, target = (quote(_field(table.model, name).column) for name in (table.owner, table.target))
            row = f"json_build_array({owner}, {target}, {quote('role')})"
            parts.append(
                f"(SELECT json_agg({row} ORDER BY {quote(str(meta.pk.column))})::text "  # noqa: S608 - our own names
                f"FROM {quote(meta.db_table)} WHERE {owner} = ANY({chunk}))"
            )
        for item in self.derived:
            query = item.queryset.query
            if query.where or query.low_mark or query.high_mark is not None:
                raise TypeError(f"{self.kind}.{item.name}: only an ordered queryset can be read in one query")
            model = item.queryset.model
            names = [name for name in query.order_by if isinstance(name, str)]
            if len(names) != len(query.order_by):
                raise TypeError(f"{self.kind}.{item.name}: ordered by an expression")
            order = ", ".join(
                f"{quote(_field(model, model._meta.get_field(name.lstrip('-')).attname).column)}"
                f"{' DESC' if name.startswith('-') else ''}"
                for name in names
                if name.lstrip("-") != "pk"
            ) or quote(str(model._meta.pk.column))
            owner = quote(_field(model, item.owner).column)
            row = f"json_build_array({owner}, {quote(str(model._meta.pk.column))})"
            parts.append(
                f"(SELECT json_agg({row} ORDER BY {order})::text "  # noqa: S608 - our own names
                f"FROM {quote(model._meta.db_table)} WHERE {owner} = ANY({chunk}))"
            )
        return f"WITH chunk AS MATERIALIZED (SELECT %s::text[] AS ids) SELECT {', '.join(parts)}"

    def dump(self, row: _Row) -> dict[str, Any]:
        """The contract object of ``row``: what ``shapes.dump`` gives for its model instance."""
        return {name: read(row) for name, read in self.readers.items()}

    def exact_floats(self, row: _Row) -> bool:
        """False when a float column holds NaN or an infinity (which only the standard encoder spells)."""
        return all(row.values[i] is None or math.isfinite(row.values[i]) for i in self.floats)


def row_shape(kind: str, extra_columns: Iterable[str] = ()) -> RowShape:
    """``kind``'s shape compiled for rows; ``extra_columns`` are selected too (after the shape's own)."""
    shape = shapes.SHAPES[kind]
    compiled = RowShape(kind, shape.model, columns=[shape.model._meta.pk.attname])
    compiled.readers = {name: _reader(node, compiled) for name, node in shape.nodes.items()}
    for column in extra_columns:
        compiled.position(column)
    compiled.floats = [
        i for i, column in enumerate(compiled.columns) if isinstance(_field(shape.model, column), models.FloatField)
    ]
    return compiled


def _field(model: type[models.Model], attname: str) -> Any:
    return next(f for f in model._meta.concrete_fields if f.attname == attname)


def _reader(node: shapes.Node, compiled: RowShape) -> Reader:
    # Time before Col: a Time is a Col.
    if isinstance(node, shapes.Time):
        at, iso = compiled.position(node.column), shapes.iso
        return lambda row: iso(row.values[at])
    if isinstance(node, shapes.Col):
        at = compiled.position(node.column)
        return lambda row: row.values[at]
    if isinstance(node, shapes.FKRef):
        at, kind, make_ref = compiled.position(node.column), node.kind, shapes.make_ref
        return lambda row: make_ref(kind, row.values[at])
    if isinstance(node, shapes.LinkRefs):
        rel = compiled.model._meta.get_field(node.related)
        link_model = rel.related_model
        compiled.links.append(
            _LinkTable(node.related, link_model, rel.field.attname, _field(link_model, f"{node.target}_id").attname)  # type: ignore[union-attr, arg-type]
        )
        related, kind = node.related, node.kind
        return lambda row: [{"kind": kind, "id": target, "role": role} for target, role in row.links[related]]
    if isinstance(node, shapes.Derived):
        for lookup in node.prefetches:
            if not isinstance(lookup, Prefetch) or lookup.queryset is None:
                raise TypeError(f"{compiled.kind}: a derived list needs a Prefetch with a queryset")
            rel = compiled.model._meta.get_field(lookup.prefetch_through)
            compiled.derived.append(_DerivedList(lookup.prefetch_through, lookup.queryset, rel.field.attname))  # type: ignore[union-attr]
        return node.fn
    if isinstance(node, shapes.Group):
        children = {name: _reader(child, compiled) for name, child in node.children.items()}
        if node.nullable_via is None:
            return lambda row: {name: read(row) for name, read in children.items()}
        via = compiled.position(node.nullable_via)
        return lambda row: None if row.values[via] is None else {name: read(row) for name, read in children.items()}
    raise TypeError(f"{compiled.kind}: no row reader for {type(node).__name__}")
