"""Writing a CWOM export: every selected object, link and event, streamed in bounded chunks.

Rows are read with keyset pagination (``WHERE (created_at, id) > last ORDER BY created_at, id LIMIT n``)
as column values (no model instances), each link table and derived list of a chunk with one more query
(:mod:`cwom.portability.rows`), so a chunk costs a fixed number of queries and memory stays flat however
large the database is. Lines are encoded with orjson where that spells them exactly as the standard
encoder does (:func:`cwom.portability.encode_fast`).

On PostgreSQL, outside a transaction, the next chunk is read (its keyset query and its ref lists) by a
thread on its own connection while the current one is dumped, encoded and written (:func:`read_ahead`):
half of an export's time was waiting on the database, which the second core now spends in parallel.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from .. import shapes
from ..enums import Kind
from ..models import Event, Issue
from . import (
    ARTIFACT_CONTENT,
    EVENT,
    ISSUE_LINK,
    ISSUE_LINK_TABLES,
    OBJECT_ORDER,
    PARENT,
    TRAILER,
    StandardRecord,
    encode_fast,
    header,
    ref,
)
from .rows import IsoUtc, RowShape, json_text, row_shape

DEFAULT_CHUNK = 1000

T = TypeVar("T")


@dataclass
class Selection:
    """What to export: object kinds, a window on ``created_at`` (events: on ``at``), events or not."""

    kinds: tuple[str, ...] = OBJECT_ORDER
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    events: bool = True

    def window(self, column: str) -> Q:
        """``since <= column < until`` (either bound optional)."""
        condition = Q()
        if self.since is not None:
            condition &= Q(**{f"{column}__gte": self.since})
        if self.until is not None:
            condition &= Q(**{f"{column}__lt": self.until})
        return condition


@dataclass
class ExportCounts:
    """Lines written, by record kind."""

    by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def keyset(
    queryset: QuerySet[Any], ordering: tuple[str, ...], key: Callable[[Any], tuple[Any, ...]], chunk_size: int
) -> Iterator[list[Any]]:
    """``queryset`` in chunks of ``chunk_size`` rows, ordered by ``ordering`` (one or two unique-together columns)."""
    last: tuple[Any, ...] | None = None
    while True:
        page = queryset.order_by(*ordering)
        if last is not None:
            if len(ordering) == 1:
                page = page.filter(**{f"{ordering[0]}__gt": last[0]})
            else:
                first, second = ordering
                # The first bound alone lets the planner start the index scan at the position.
                page = page.filter(
                    Q(**{f"{first}__gte": last[0]}),
                    Q(**{f"{first}__gt": last[0]}) | Q(**{first: last[0], f"{second}__gt": last[1]}),
                )
        rows = list(page[:chunk_size])
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        last = key(rows[-1])


def read_ahead(chunks: Iterable[T], using: str = DEFAULT_DB_ALIAS) -> Iterator[T]:
    """``chunks`` in their order, each read by a background thread while the caller works on the one before:
    at most one chunk ahead, so memory stays bounded. The thread reads on its own connection (closed when it
    ends); an error it meets is raised here, where that chunk would have been. Inside a transaction, or on
    a database other than PostgreSQL, ``chunks`` are read here, in order (another connection would not see
    the transaction's rows)."""
    database = connections[using]
    if database.in_atomic_block or database.vendor != "postgresql":
        yield from chunks
        return
    wanted: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: read one more chunk; False: stop
    read: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()  # ("chunk" | "end" | "error", value)

    def reader() -> None:
        try:
            source = iter(chunks)
            while wanted.get():
                try:
                    read.put(("chunk", next(source)))
                except StopIteration:
                    read.put(("end", None))
                    return
        except Exception as error:  # noqa: BLE001 - handed to the caller, raised there
            read.put(("error", error))
        finally:
            connections[using].close()

    thread = threading.Thread(target=reader, name="cwom-export-read-ahead", daemon=True)
    wanted.put(True)
    thread.start()
    try:
        while True:
            state, value = read.get()
            if state == "end":
                return
            if state == "error":
                raise value
            wanted.put(True)  # the next chunk, read while this one is worked on
            yield value
    finally:
        wanted.put(False)
        thread.join()


def export_records(
    selection: Selection, *, chunk_size: int = DEFAULT_CHUNK, counts: ExportCounts | None = None
) -> Iterator[dict[str, Any]]:
    """Every record of the export, header to trailer, as dicts (see :mod:`cwom.portability`)."""
    counts = counts if counts is not None else ExportCounts()
    yield header()
    for kind in OBJECT_ORDER:
        if kind in selection.kinds:
            yield from _objects(kind, selection, chunk_size, counts)
    if Kind.ISSUE in selection.kinds:
        yield from _issue_links(selection, chunk_size, counts)
    if selection.events:
        yield from _events(selection, chunk_size, counts)
    yield {"kind": TRAILER, "counts": dict(sorted(counts.by_kind.items()))}


def export_lines(selection: Selection, **kwargs: Any) -> Iterator[str]:
    """:func:`export_records` encoded, one JSON document a line (without newlines)."""
    for record in export_records(selection, **kwargs):
        yield encode_fast(record)


_ROW_SHAPES: dict[tuple[str, bool], RowShape] = {}


def _text_rows() -> bool:
    """Whether rows are read with timestamps and JSON as text (see :mod:`cwom.portability.rows`)."""
    return connection.vendor == "postgresql"


def _row_shape(kind: str) -> RowShape:
    key = (kind, _text_rows())
    if key not in _ROW_SHAPES:
        extra = ("created_at", "stored_name") if kind == Kind.ARTIFACT else ("created_at",)
        _ROW_SHAPES[key] = row_shape(kind, extra, text=key[1])
    return _ROW_SHAPES[key]


def _objects(kind: str, selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    compiled = _row_shape(kind)
    rows = compiled.model._default_manager.filter(selection.window("created_at")).values_list(*compiled.select())
    # created_at is the keyset's first key: a datetime, or (text rows) its ISO text, which filters the same.
    at = compiled.columns.index("created_at")
    stored = compiled.columns.index("stored_name") if kind == Kind.ARTIFACT else None
    chunks = keyset(rows, ("created_at", "id"), lambda values: (values[at], values[0]), chunk_size)
    for chunk in read_ahead(compiled.rows(chunk) for chunk in chunks):
        for row in chunk:
            counts.by_kind[kind] += 1
            record = compiled.dump(row)
            yield record if compiled.exact_floats(row) else StandardRecord(record)
            if stored is not None and row.values[stored]:
                counts.by_kind[ARTIFACT_CONTENT] += 1
                yield {"kind": ARTIFACT_CONTENT, "artifact": row.values[0], "stored_name": row.values[stored]}


def _issue_links(selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    """Link rows in the order they were written, so both views of a relation keep their order."""
    for relation, (model, owner, target, target_kind) in ISSUE_LINK_TABLES.items():
        rows = model._default_manager.filter(selection.window(f"{owner}__created_at")).values_list(
            "id", f"{owner}_id", f"{target}_id", "role"
        )
        for chunk in read_ahead(keyset(rows, ("id",), lambda row: (row[0],), chunk_size)):
            for _pk, issue_id, target_id, role in chunk:
                counts.by_kind[ISSUE_LINK] += 1
                yield {
                    "kind": ISSUE_LINK,
                    "relation": relation,
                    "issue": issue_id,
                    "target": ref(target_kind, target_id, role),
                }
    parents = Issue.objects.filter(selection.window("created_at"), parent__isnull=False).values_list(
        "id", "created_at", "parent_id"
    )
    for chunk in read_ahead(keyset(parents, ("created_at", "id"), lambda row: (row[1], row[0]), chunk_size)):
        for issue_id, _created_at, parent_id in chunk:
            counts.by_kind[ISSUE_LINK] += 1
            yield {
                "kind": ISSUE_LINK,
                "relation": PARENT,
                "issue": issue_id,
                "target": ref(Kind.ISSUE, parent_id),
            }


def _events(selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    events = Event.objects.filter(selection.window("at"))
    if set(selection.kinds) != set(OBJECT_ORDER):
        events = events.filter(object_kind__in=selection.kinds)
    columns: tuple[Any, ...] = ("id", "object_kind", "object_id", "action", "changes", "principal", "actor", "at")
    if text := _text_rows():
        columns = (*columns[:4], Cast("changes", TextField()), "principal", Cast("actor", TextField()), IsoUtc("at"))
    iso = shapes.iso
    for chunk in read_ahead(keyset(events.values_list(*columns), ("id",), lambda row: (row[0],), chunk_size)):
        for _pk, object_kind, object_id, action, changes, principal, actor, at in chunk:
            counts.by_kind[EVENT] += 1
            yield {
                "kind": EVENT,
                "object": ref(object_kind, object_id),
                "action": action,
                "changes": json_text(changes) if text else changes,
                "principal": principal,
                "actor": json_text(actor) if text else actor,
                "at": at if text else iso(at),
            }
