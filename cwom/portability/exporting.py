"""Writing a CWOM export: every selected object, link and event, streamed in bounded chunks.

Rows are read with keyset pagination (``WHERE (created_at, id) > last ORDER BY created_at, id LIMIT n``)
through each kind's shape queryset, so a chunk costs a fixed number of queries and memory stays flat
however large the database is.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from .. import shapes
from ..enums import Kind
from ..models import Artifact, Event, Issue
from . import (
    ARTIFACT_CONTENT,
    EVENT,
    ISSUE_LINK,
    ISSUE_LINK_TABLES,
    OBJECT_ORDER,
    PARENT,
    TRAILER,
    encode,
    header,
    ref,
)

DEFAULT_CHUNK = 500


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
                page = page.filter(Q(**{f"{first}__gt": last[0]}) | Q(**{first: last[0], f"{second}__gt": last[1]}))
        rows = list(page[:chunk_size])
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        last = key(rows[-1])


def _by_creation(obj: Any) -> tuple[Any, ...]:
    return (obj.created_at, obj.pk)


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
        yield encode(record)


def _objects(kind: str, selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    queryset = shapes.SHAPES[kind].queryset().filter(selection.window("created_at"))
    for chunk in keyset(queryset, ("created_at", "id"), _by_creation, chunk_size):
        for obj in chunk:
            counts.by_kind[kind] += 1
            yield shapes.dump(obj)
            if isinstance(obj, Artifact) and obj.stored_name:
                counts.by_kind[ARTIFACT_CONTENT] += 1
                yield {"kind": ARTIFACT_CONTENT, "artifact": obj.pk, "stored_name": obj.stored_name}


def _issue_links(selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    """Link rows in the order they were written, so both views of a relation keep their order."""
    for relation, (model, owner, target, target_kind) in ISSUE_LINK_TABLES.items():
        rows = model._default_manager.filter(selection.window(f"{owner}__created_at")).values_list(
            "id", f"{owner}_id", f"{target}_id", "role"
        )
        for chunk in keyset(rows, ("id",), lambda row: (row[0],), chunk_size):
            for _pk, issue_id, target_id, role in chunk:
                counts.by_kind[ISSUE_LINK] += 1
                yield {
                    "kind": ISSUE_LINK,
                    "relation": relation,
                    "issue": issue_id,
                    "target": ref(target_kind, target_id, role),
                }
    parents = Issue.objects.filter(selection.window("created_at"), parent__isnull=False).only(
        "id", "created_at", "parent_id"
    )
    for chunk in keyset(parents, ("created_at", "id"), _by_creation, chunk_size):
        for issue in chunk:
            counts.by_kind[ISSUE_LINK] += 1
            yield {
                "kind": ISSUE_LINK,
                "relation": PARENT,
                "issue": issue.pk,
                "target": ref(Kind.ISSUE, issue.parent_id),
            }


def _events(selection: Selection, chunk_size: int, counts: ExportCounts) -> Iterator[dict[str, Any]]:
    events = Event.objects.filter(selection.window("at"))
    if set(selection.kinds) != set(OBJECT_ORDER):
        events = events.filter(object_kind__in=selection.kinds)
    for chunk in keyset(events, ("id",), lambda event: (event.pk,), chunk_size):
        for event in chunk:
            counts.by_kind[EVENT] += 1
            yield {
                "kind": EVENT,
                "object": ref(event.object_kind, event.object_id),
                "action": event.action,
                "changes": event.changes,
                "principal": event.principal,
                "actor": event.actor,
                "at": shapes.iso(event.at),
            }
