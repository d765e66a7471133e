"""The contract nodes: what a kind's shape is built from.

A node maps one part of the contract's JSON onto the model: a column as is (:class:`Col`), a timestamp
(:class:`Time`), a foreign key as a Ref (:class:`FKRef`), a list of Refs kept in a link table
(:class:`LinkRefs`) or read from the rows pointing at the object (:class:`ReverseRefs`), a value computed
from the row (:class:`Derived`), a nested object of other nodes (:class:`Group`). Each node knows its
JSON Schema (``out_schema``/``in_schema``), how to dump it (``dumper``), how to load it from a body
(``load``) and which model columns it covers (``columns``). This module changes when a new kind of node
is needed, not when a field is added (that is :mod:`cwom.shapes.kinds`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import models

from .. import enums
from .. import validation as v
from ..db.refs import RefArm
from ..ids import ULID_RE

if TYPE_CHECKING:
    from .parse import Errors, Parsed
    from .refs import RefCollector

ID_SCHEMA = {"type": "string", "pattern": ULID_RE.pattern, "description": "ULID (26 characters, Crockford base32)"}
SLUG_SCHEMA = {"type": "string", "pattern": v.SLUG_RE.pattern, "maxLength": 100, "description": "a repo's slug"}
ROLE_SCHEMA = v.nullable({"type": "string", "maxLength": 64})
MAX_LINKS = 200  # Refs in one list of a body (a create's list, a PATCH's whole list, its add or its remove)

# Where an object's ref lists are kept once loaded (Shape.load_refs, refs.prime):
# {related name: [(target id, role), ...]} in the object's __dict__; the totals of its bounded lists:
# {related name: total} under TOTALS_ATTR.
REFS_ATTR = "_cwom_refs"
TOTALS_ATTR = "_cwom_totals"
# A bounded list embeds this many Refs, the newest first (see :func:`bounded`).
NEWEST = 20
API_ROOT = "/api/v1"


def ref_schema(kind: str | None) -> dict[str, Any]:
    """A Ref as the service emits it: ``{kind, id, role}`` (to ``kind``, or to any kind)."""
    kinds = [kind] if kind else list(enums.Kind.values)
    return {
        "type": "object",
        "properties": {"kind": {"type": "string", "enum": kinds}, "id": ID_SCHEMA, "role": ROLE_SCHEMA},
        "required": ["kind", "id", "role"],
        "additionalProperties": False,
    }


def ref_input_schema(kind: str) -> dict[str, Any]:
    """On input a Ref may be a bare id (to a Repo: also its slug); ``role`` may be left out."""
    obj = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(enums.Kind.values)},
            "id": ID_SCHEMA,
            "role": ROLE_SCHEMA,
        },
        "required": ["id"],
        "additionalProperties": False,
    }
    if kind == enums.Kind.REPO:
        return {"anyOf": [ID_SCHEMA, SLUG_SCHEMA, obj], "description": "a Ref to a Repo, its bare id or its slug"}
    return {"anyOf": [ID_SCHEMA, obj], "description": f"a Ref to a {kind}, or its bare id"}


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as the contract spells it: ISO-8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def make_ref(kind: str, object_id: str | None, role: str | None = None) -> dict[str, Any] | None:
    """A Ref to ``object_id`` (None for no id)."""
    if object_id is None:
        return None
    return {"kind": kind, "id": object_id, "role": role}


# --- nodes --------------------------------------------------------------------------------------------
class Node:
    read_only = False
    required = False

    def out_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def in_schema(self) -> dict[str, Any]:
        return self.out_schema()

    def dumper(self) -> Callable[[Any], Any]:
        """A function of the object giving this node's JSON value (built once per kind, called per object)."""
        raise NotImplementedError

    def dump(self, obj: Any) -> Any:
        return self.dumper()(obj)

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        """Put the body's ``value`` at ``path`` into ``parsed`` (columns, links), its Refs into ``refs``."""
        raise NotImplementedError

    def columns(self, path: str) -> dict[str, str]:
        """{model attname or field name: contract path} for mapping model errors back to the body."""
        return {}


@dataclass
class Col(Node):
    """A model column holding the value as is."""

    column: str
    schema: dict[str, Any]
    required: bool = False
    read_only: bool = False

    def out_schema(self) -> dict[str, Any]:
        return self.schema

    def dumper(self) -> Callable[[Any], Any]:
        return attrgetter(self.column)

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        parsed.columns[self.column] = value

    def columns(self, path: str) -> dict[str, str]:
        return {self.column: path, self.column.removesuffix("_id"): path}


@dataclass
class Time(Col):
    """A timestamp column, ISO-8601 UTC on the wire."""

    def dumper(self) -> Callable[[Any], Any]:
        get = attrgetter(self.column)
        return lambda obj: iso(get(obj))

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        if value is None:
            parsed.columns[self.column] = None
            return
        moment = v.parse_timestamp(value)
        if moment is None:
            errors.add(path, "invalid_datetime", f"{value!r} is not an ISO-8601 timestamp.")
        elif moment.tzinfo is None:
            errors.add(path, "invalid_datetime", "Timestamps need a timezone (use Z for UTC).")
        else:
            parsed.columns[self.column] = moment


@dataclass
class FKRef(Node):
    """A foreign key, emitted as a Ref."""

    column: str
    kind: str
    nullable: bool = False
    required: bool = False
    read_only: bool = False

    def out_schema(self) -> dict[str, Any]:
        return v.nullable(ref_schema(self.kind)) if self.nullable else ref_schema(self.kind)

    def in_schema(self) -> dict[str, Any]:
        schema = ref_input_schema(self.kind)
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]} if self.nullable else schema

    def dumper(self) -> Callable[[Any], Any]:
        get, kind = attrgetter(self.column), self.kind
        return lambda obj: None if (value := get(obj)) is None else {"kind": kind, "id": value, "role": None}

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        if value is None:
            parsed.columns[self.column] = None
            return
        column = self.column

        def place(found: str) -> None:  # a Repo's slug, once resolved to its id
            parsed.columns[column] = found

        object_id, _role = refs.want(value, self.kind, path, place=place)
        parsed.columns[column] = object_id

    def columns(self, path: str) -> dict[str, str]:
        return {self.column: path, self.column.removesuffix("_id"): path}


class RefList(Node):
    """A list of Refs read from another table, loaded for a batch of objects by ``Shape.load_refs``.

    ``related`` is the owner's reverse accessor to the rows; :meth:`arm` says which rows, in which order
    (one arm of the shape's single ref query, :func:`cwom.db.refs.ref_rows`). The dumper reads the list
    where ``Shape.load_refs`` (or ``prime``) left it; ``Shape.dumper`` loads an object's lists first
    when they are not there (one query).
    """

    kind: str
    related: str
    newest: int | None = None  # bounded: only the newest this many (see :func:`bounded`)

    def out_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": ref_schema(self.kind)}
        if self.newest is not None:
            schema["maxItems"] = self.newest
            schema["description"] = f"The newest {self.newest}, newest first; all of them: the `_url` beside it."
        return schema

    def arm(self, model: type[models.Model]) -> RefArm:
        """The rows of this list for owners of ``model``."""
        raise NotImplementedError

    def dumper(self) -> Callable[[Any], Any]:
        kind, related = self.kind, self.related
        return lambda obj: [
            {"kind": kind, "id": target_id, "role": role} for target_id, role in obj.__dict__[REFS_ATTR][related]
        ]


class LinkTable(NamedTuple):
    """A link table: its model, the field naming the owner, the field naming the object referred to."""

    model: type[models.Model]
    owner: str
    target: str


@dataclass
class LinkRefs(RefList):
    """A list of Refs kept in a link table: the one declaration of that link.

    ``name`` is the link's name in writes and events (the contract field's name), ``related`` the owner
    model's reverse accessor to the link rows (``Issue.block_links``), ``target`` the link model's foreign
    key to the object referred to, ``kind`` that object's kind. The link table follows (:meth:`table`), and
    from it everything else that names a link: writes, the bulk import, the export's issue links and the
    API's link filters (``shapes.LINK_TABLES``, derived from these nodes).
    """

    name: str
    related: str
    target: str
    kind: str
    read_only: bool = False

    def table(self, model: type[models.Model]) -> LinkTable:
        """The link table of this list for owners of ``model``."""
        relation = model._meta.get_field(self.related)
        return LinkTable(relation.related_model, relation.field.name, self.target)  # type: ignore[union-attr, arg-type]

    def arm(self, model: type[models.Model]) -> RefArm:
        # Ordered by the link row's id (the order the links were written in).
        link = self.table(model)
        rows = link.model._meta
        return RefArm(
            rows.db_table,
            owner=rows.get_field(link.owner).attname,  # type: ignore[union-attr]
            target=rows.get_field(link.target).attname,  # type: ignore[union-attr]
            role="role",
            int_key="id",
            newest=self.newest,
        )

    def in_schema(self) -> dict[str, Any]:
        # uniqueItems refuses the same Ref written twice alike; ``load`` also the same id written two ways.
        return {"type": "array", "items": ref_input_schema(self.kind), "maxItems": MAX_LINKS, "uniqueItems": True}

    def patch_schema(self) -> dict[str, Any]:
        """In a PATCH: the whole list (replace-all, under ``If-Match`` only; never for a bounded list), or the
        Refs to add and to remove."""
        edit = {
            "type": "object",
            "properties": {"add": self.in_schema(), "remove": self.in_schema()},
            "additionalProperties": False,
            "minProperties": 1,
            "description": "Refs to add (already linked with the same role: kept) and to remove (not linked: "
            "nothing to do); removed first, so an id in both changes its role.",
        }
        whole = self.in_schema()
        if self.newest is not None:
            whole = {**whole, "description": "Only as read (it changes nothing): a bounded list takes add/remove."}
        return {"anyOf": [whole, edit]}

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        if isinstance(value, dict):  # a PATCH's {"add": [...], "remove": [...]}
            add = self._refs(value.get("add", []), f"{path}.add", errors, refs)
            remove = self._refs(value.get("remove", []), f"{path}.remove", errors, refs)
            parsed.link_edits[self.name] = (add, remove)
            return
        parsed.links[self.name] = self._refs(value, path, errors, refs)

    def _refs(self, value: list[Any], path: str, errors: Errors, refs: RefCollector) -> list[tuple[str, str | None]]:
        items: list[tuple[str, str | None]] = []

        def place_at(at: int) -> Callable[[str], None]:
            # A slug is replaced by its repo's id once the collector has resolved it.
            def place(found: str) -> None:
                items[at] = (found, items[at][1])

            return place

        for i, item in enumerate(value):
            items.append(refs.want(item, self.kind, f"{path}.{i}", place=place_at(i)))
        if len({object_id for object_id, _ in items}) != len(items):
            errors.add(path, "duplicate_ref", "The same object is listed twice.")
        return items

    def columns(self, path: str) -> dict[str, str]:
        return {self.name: path}


@dataclass
class Derived(Node):
    """A read-only value computed from the object's own columns."""

    fn: Callable[[Any], Any]
    schema: dict[str, Any]
    read_only: bool = True

    def out_schema(self) -> dict[str, Any]:
        return self.schema

    def dumper(self) -> Callable[[Any], Any]:
        return self.fn


class ReverseRefs(RefList, Derived):
    """Read-only Refs to the rows pointing at this object (an issue's runs, a run's artifacts).

    Derived (no column or link table of its own); served by an index on ``(owner, created_at, id)``:
    an index-only scan in the list's order (bounded: backwards, stopping after the newest).
    """

    def __init__(self, related: str, kind: str) -> None:
        self.related, self.kind = related, kind
        super().__init__(fn=self.dump, schema={})  # its schema: RefList's (first in the MRO)

    def arm(self, model: type[models.Model]) -> RefArm:
        # Ordered by (created_at, id), oldest first.
        relation = model._meta.get_field(self.related)
        rows: type[models.Model] = relation.related_model  # type: ignore[assignment]
        return RefArm(
            rows._meta.db_table,
            owner=relation.field.attname,  # type: ignore[union-attr]
            target="id",
            time_key="created_at",
            newest=self.newest,
        )


@dataclass
class Total(Node):
    """The number of Refs in the bounded list ``related`` (its ``<name>_total``), from ``cwom_reftotal``."""

    related: str
    read_only = True

    def out_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "description": "How many there are in all."}

    def dumper(self) -> Callable[[Any], Any]:
        related = self.related
        return lambda obj: obj.__dict__[TOTALS_ATTR].get(related, 0)


@dataclass
class ListURL(Node):
    """Where a bounded list is read whole (its ``<name>_url``): ``path`` with the object's id in it."""

    path: str
    read_only = True

    def out_schema(self) -> dict[str, Any]:
        return {"type": "string", "description": "The paginated list of all of them (a path under the API)."}

    def url(self, object_id: str) -> str:
        return self.path.format(root=API_ROOT, id=object_id)

    def dumper(self) -> Callable[[Any], Any]:
        return lambda obj: self.url(obj.pk)


def bounded(name: str, node: RefList, path: str) -> dict[str, Node]:
    """A ref list that grows with other objects' creation (an issue's runs and packets, a run's artifacts),
    embedded bounded: the newest :data:`NEWEST` Refs, newest first, with ``<name>_total`` and ``<name>_url``
    (``path``, e.g. ``{root}/runs?issue_id={id}``) beside it. A representation's size stays constant however
    many there are; the whole list is one paginated request away."""
    node.newest = NEWEST
    return {name: node, f"{name}_total": Total(node.related), f"{name}_url": ListURL(path)}


@dataclass
class Group(Node):
    """A nested JSON object of other nodes (``source``, ``acceptance``, ``inputs``, ...)."""

    children: dict[str, Node]
    nullable_via: str | None = None  # a column that, when null, makes the whole group null (Run.failure)
    required: bool = False

    @property
    def read_only(self) -> bool:  # type: ignore[override]
        return all(child.read_only for child in self.children.values())

    def out_schema(self) -> dict[str, Any]:
        schema = {
            "type": "object",
            "properties": {name: child.out_schema() for name, child in self.children.items()},
            "required": list(self.children),
            "additionalProperties": False,
        }
        return v.nullable(schema) if self.nullable_via else schema

    def in_schema(self) -> dict[str, Any]:
        writable = {name: child for name, child in self.children.items() if not child.read_only}
        schema = {
            "type": "object",
            "properties": {name: child.in_schema() for name, child in writable.items()},
            "required": [name for name, child in writable.items() if child.required],
            "additionalProperties": False,
        }
        return v.nullable(schema) if self.nullable_via else schema

    def dumper(self) -> Callable[[Any], Any]:
        parts = [(name, child.dumper()) for name, child in self.children.items()]
        if not self.nullable_via:
            return lambda obj: {name: part(obj) for name, part in parts}
        via = attrgetter(self.nullable_via)
        return lambda obj: None if via(obj) is None else {name: part(obj) for name, part in parts}

    def load(self, value: Any, path: str, parsed: Parsed, errors: Errors, refs: RefCollector) -> None:
        if value is None:  # only reachable when nullable: clear every column of the group
            for child in self.children.values():
                if isinstance(child, Col):
                    parsed.columns[child.column] = None
            return
        for name, child_value in value.items():
            self.children[name].load(child_value, join_path(path, name), parsed, errors, refs)

    def columns(self, path: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, child in self.children.items():
            found.update(child.columns(join_path(path, name)))
        if self.nullable_via:
            found[path] = path
        return found


def join_path(path: str, name: str) -> str:
    """The contract path of ``name`` inside ``path`` (``inputs`` + ``data_blobs``: ``inputs.data_blobs``)."""
    return f"{path}.{name}" if path else name


def leaves(nodes: dict[str, Node], path: str = "") -> Iterator[tuple[str, Node]]:
    """Every node of ``nodes`` that is not a Group, with its contract path, in declaration order."""
    for name, node in nodes.items():
        if isinstance(node, Group):
            yield from leaves(node.children, join_path(path, name))
        else:
            yield join_path(path, name), node
