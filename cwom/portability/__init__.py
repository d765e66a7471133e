"""The CWOM export format, shared by ``cwom_export`` and ``cwom_import``.

JSON Lines, one self-describing record a line (``kind`` says which), written in dependency order so
that an import never meets a Ref to an object it has not seen yet::

    {"kind": "CwomExport", "format_version": 2, "contract": "0.1"}           header
    {"kind": "Repo", "id": "01J...", ...}                                     the objects, in the contract's
      ... DoctrineRef, ConstraintSnapshot, Issue, ContextPacket, Run, Artifact  shape, each kind by (created_at, id)
    {"kind": "ArtifactContent", "artifact": "01J...", "stored_name": "..."}   after an artifact whose bytes
                                                                               the service keeps
    {"kind": "IssueLink", "relation": "blocks", "issue": "01J...", "target": Ref}
                                                                               issue links that may point at
                                                                               later objects, in link-row order
    {"kind": "Event", "object": Ref, "action": ..., "changes": ..., "principal": ..., "actor": ..., "at": ...}
                                                                               the history, oldest first
    {"kind": "CwomExportEnd", "counts": {...}}                                trailer: the records written, by kind;
                                                                               a file without it was cut short

An Issue line carries the whole contract object, but its ``constraints``, ``context_packets`` and
``relationships`` are restored from the IssueLink lines (they may name objects that come later in the file,
and the bounded lists show only their newest); read-only, derived lists (an issue's ``runs``, a run's
``outputs.artifacts``) and every ``_total`` and ``_url`` follow from the other objects.

Format version 1 (before the bounded lists) is read too: its Issue lines carry ``constraints`` whole (and no
``constraints_total``), and its constraints have no IssueLink lines.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
from collections.abc import Iterator
from typing import Any

import orjson
from django.db import models

from .. import shapes
from ..enums import Kind
from ..shapes import SCHEMA_VERSION

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER = "CwomExport"
TRAILER = "CwomExportEnd"
ARTIFACT_CONTENT = "ArtifactContent"
ISSUE_LINK = "IssueLink"
EVENT = "Event"

# Objects are written (and must be imported) in this order: each kind only refers to kinds before it,
# except the issue links listed below.
OBJECT_ORDER: tuple[str, ...] = (
    Kind.REPO,
    Kind.DOCTRINE_REF,
    Kind.CONSTRAINT_SNAPSHOT,
    Kind.ISSUE,
    Kind.CONTEXT_PACKET,
    Kind.RUN,
    Kind.ARTIFACT,
)

# Parts of an object line that the importer takes from elsewhere: {kind: [path, ...]}.
DEFERRED_FIELDS: dict[str, tuple[str, ...]] = {Kind.ISSUE: ("constraints", "context_packets", "relationships")}
# What an object line holds that no import writes: each bounded list (an issue's runs, a run's artifacts)
# with its ``_total`` and ``_url``.
DERIVED_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(".".join(path) for path in shape.bounded_paths)
    for kind, shape in shapes.SHAPES.items()
    if shape.bounded_paths
}


def deferred_fields(kind: str, record: dict[str, Any]) -> tuple[str, ...]:
    """The fields of an object line restored from IssueLink lines: :data:`DEFERRED_FIELDS`, but for an Issue
    line of format version 1, whose ``constraints`` are whole (it has no ``constraints_total``)."""
    deferred = DEFERRED_FIELDS.get(kind, ())
    if kind == Kind.ISSUE and "constraints_total" not in record:
        return tuple(name for name in deferred if name != "constraints")
    return deferred


def _issue_link_tables() -> dict[str, tuple[type[models.Model], str, str, str]]:
    """The issue links written after every object, from the links the shapes declare (``shapes.LINK_TABLES``).

    A link is written in an IssueLink line when its target kind is not written before issues (it may
    name an object later in the file: an issue's packets, blocks and duplicates), or when the issue's line
    shows only its newest (a bounded list: its constraints). A table read from both
    ends is written once, under the link declared first (``blocks``, not ``blocked_by``). An object line
    leaves those links out (``DEFERRED_FIELDS``); no other kind may have one, as the format has no line
    for it.
    """
    tables: dict[str, tuple[type[models.Model], str, str, str]] = {}
    for kind, shape in shapes.SHAPES.items():
        written_before = OBJECT_ORDER[: OBJECT_ORDER.index(kind)]
        for path, node in shapes.leaves(shape.nodes):
            if not isinstance(node, shapes.LinkRefs) or (node.kind in written_before and node.newest is None):
                continue
            deferred = DEFERRED_FIELDS.get(kind, ()) if kind == Kind.ISSUE else ()
            if not any(path == field or path.startswith(f"{field}.") for field in deferred):
                raise RuntimeError(
                    f"{kind}.{path} links to {node.kind} objects, written after it: the format has no line for that."
                )
            table = shapes.LINK_TABLES[(kind, node.name)]
            if all(table.model is not model for model, *_rest in tables.values()):
                tables[node.name] = (*table, node.kind)
    return tables


# Issue links written after every object: relation -> (link model, issue field, target field, target kind).
# ``parent`` is a column of the issue, written as an IssueLink line too.
ISSUE_LINK_TABLES = _issue_link_tables()
PARENT = "parent"
ISSUE_LINK_RELATIONS = (*ISSUE_LINK_TABLES, PARENT)


def header() -> dict[str, Any]:
    return {"kind": HEADER, "format_version": FORMAT_VERSION, "contract": SCHEMA_VERSION}


def encode(record: dict[str, Any]) -> str:
    """One record as one line of JSON (no newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class StandardRecord(dict[str, Any]):
    """A record that only the standard encoder spells as the format says (a float column holds NaN or
    an infinity, which orjson would write as null)."""


def encode_fast(record: dict[str, Any]) -> str:
    """:func:`encode`, byte for byte, with orjson where it spells the line the same way.

    The two differ only for floats below 1e-4 (``1e-05`` vs ``0.00001``), NaN and infinities, integers
    beyond 64 bits and lone surrogates: orjson refuses the last two, and every float it writes
    differently leaves an ``e-`` or ``.0000`` in its output. Such lines go to the standard encoder.
    """
    if type(record) is not StandardRecord:
        try:
            line = orjson.dumps(record)
        except orjson.JSONEncodeError:
            pass
        else:
            if b"e-" not in line and b".0000" not in line:
                return line.decode()
    return encode(record)


def without(data: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``data`` without the dotted ``paths``."""
    result = copy.deepcopy(data)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = result
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return result


def comparable(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """An object line reduced to what its own row holds: what an idempotent import compares."""
    return without(data, DEFERRED_FIELDS.get(kind, ()) + DERIVED_FIELDS.get(kind, ()))


def ref(kind: str, object_id: str, role: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "id": object_id, "role": role}


@contextlib.contextmanager
def few_collections(threshold: int = 50_000) -> Iterator[None]:
    """Fewer cyclic garbage collections while streaming millions of short-lived, acyclic records.

    The records are freed by reference counting; what the collector would do every 700 allocations is
    walk the long-lived objects (Django's, the models') again and again: they are frozen out of its
    reach for the duration, and it runs every ``threshold`` allocations instead.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
