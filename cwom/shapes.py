"""The contract shape of each kind, written once.

A kind's shape is a tree of nodes that maps the contract's JSON (nested groups, Refs) onto the
model's columns and link tables. From that one description come:

- ``dump(obj)``: the object in the contract's JSON shape (API responses, lineage, export, the
  bundle an executor receives);
- ``json_schema(kind, mode)``: JSON Schema 2020-12 for the object (``out``), a create body (``in``)
  and a PATCH body (``patch``) — committed under ``cwom/spec/jsonschema`` and used by the API docs;
- ``parse(kind, data, mode)``: a body checked against that schema and turned into column values and
  link lists, with every Ref resolved to exactly one object of exactly the right kind.

This module knows nothing about HTTP or DRF; :mod:`cwom.writes` applies what ``parse`` returns.

Reading is cheap whatever the size of an object's ref lists: ``Shape.queryset()`` loads the rows, then
every ref list (link tables, an issue's runs, a run's artifacts) of the whole batch of rows in one
``UNION ALL`` query of plain tuples, no model instances; ``dump`` is a tree of closures built once per kind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from operator import attrgetter
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import ModelIterable

from . import enums
from . import validation as v
from .ids import ULID_RE
from .models import (
    KIND_MODELS,
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineApplicableRepo,
    DoctrineRef,
    Issue,
    IssueBlock,
    IssueConstraintSnapshot,
    IssueContextPacket,
    IssueDoctrineRef,
    IssueDuplicate,
    ObjectIndex,
    PacketDoctrineRef,
    Repo,
    Run,
    RunContextPacket,
    RunDoctrineRef,
)

SCHEMA_VERSION = "0.1"
ID_SCHEMA = {"type": "string", "pattern": ULID_RE.pattern, "description": "ULID (26 characters, Crockford base32)"}
ROLE_SCHEMA = v.nullable({"type": "string", "maxLength": 64})


def ref_schema(kind: str | None) -> dict[str, Any]:
    kinds = [kind] if kind else list(enums.Kind.values)
    return {
        "type": "object",
        "properties": {"kind": {"type": "string", "enum": kinds}, "id": ID_SCHEMA, "role": ROLE_SCHEMA},
        "required": ["kind", "id", "role"],
        "additionalProperties": False,
    }


def ref_input_schema(kind: str) -> dict[str, Any]:
    """On input a Ref may be a bare id; ``role`` may be left out."""
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
    return {"anyOf": [ID_SCHEMA, obj], "description": f"a Ref to a {kind}, or its bare id"}


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def make_ref(kind: str, object_id: str | None, role: str | None = None) -> dict[str, Any] | None:
    if object_id is None:
        return None
    return {"kind": kind, "id": object_id, "role": role}


# --- parse results -------------------------------------------------------------------------------
@dataclass
class Parsed:
    """A body turned into model terms: column values, link lists, and writes that need extra care."""

    kind: str
    columns: dict[str, Any] = field(default_factory=dict)
    links: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    # Every Ref of the body as resolved through the object index, {id: kind}: these objects exist.
    known_refs: dict[str, str] = field(default_factory=dict)


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.items.append((path, code, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(
                {
                    path or "non_field_errors": [
                        ValidationError(msg, code=code) for p, code, msg in self.items if p == path
                    ]
                    for path in dict.fromkeys(p for p, _, _ in self.items)
                }
            )


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

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
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

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
        parsed.columns[self.column] = value

    def columns(self, path: str) -> dict[str, str]:
        return {self.column: path, self.column.removesuffix("_id"): path}


@dataclass
class Time(Col):
    """A timestamp column, ISO-8601 UTC on the wire."""

    def dumper(self) -> Callable[[Any], Any]:
        get = attrgetter(self.column)
        return lambda obj: iso(get(obj))

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
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

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
        if value is None:
            parsed.columns[self.column] = None
            return
        object_id, _role = refs.want(value, self.kind, path)
        parsed.columns[self.column] = object_id

    def columns(self, path: str) -> dict[str, str]:
        return {self.column: path, self.column.removesuffix("_id"): path}


# Where Shape.queryset() (or prime) leaves each object's ref lists: {related name: [(id, role), ...]}.
REFS_ATTR = "_cwom_refs"
REF_BATCH = 500


class RefList(Node):
    """A list of Refs read from another table, loaded for a batch of objects by :meth:`Shape.load_refs`.

    ``related`` is the owner's reverse accessor to the rows. Each list is one arm of the shape's single
    ref query (``select_sql``). An object that was not loaded through its shape's queryset (or primed)
    loads its lists on first use (one query).
    """

    kind: str
    related: str

    def out_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": ref_schema(self.kind)}

    def select_sql(self, model: type[models.Model], number: int, owners: str, connection: Any) -> str:
        """This list's arm of the ref query: columns ``n`` (its number), ``o`` (owner id), ``t`` (target id),
        ``r`` (role) and the sort keys ``k1`` (a time) and ``k2`` (an integer), in that order, for the rows
        whose owner column matches ``owners`` (``IN (%s, ...)`` or ``= ANY(%s::text[])``)."""
        raise NotImplementedError

    def dumper(self) -> Callable[[Any], Any]:
        kind, related = self.kind, self.related

        def dump(obj: Any) -> list[dict[str, Any]]:
            loaded = obj.__dict__.get(REFS_ATTR)
            if loaded is None or related not in loaded:
                shape_for(obj).load_refs([obj])
                loaded = obj.__dict__[REFS_ATTR]
            return [{"kind": kind, "id": target_id, "role": role} for target_id, role in loaded[related]]

        return dump


def _null_of(field: models.Field[Any, Any], connection: Any) -> str:
    """A typed NULL (the arms of a UNION need one type per column on PostgreSQL)."""
    return f"CAST(NULL AS {field.db_type(connection)})"


def _owner_column(model: type[models.Model], related: str) -> str:
    """The column of the related rows pointing at ``model`` (``issue_id`` for Issue.doctrine_ref_links)."""
    return model._meta.get_field(related).field.attname  # type: ignore[union-attr]


@dataclass
class LinkRefs(RefList):
    """A list of Refs kept in a link table (``related`` is the owner's reverse accessor to its rows)."""

    name: str
    related: str
    target: str
    kind: str
    read_only: bool = False

    def in_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": ref_input_schema(self.kind), "maxItems": 200}

    def select_sql(self, model: type[models.Model], number: int, owners: str, connection: Any) -> str:
        # Ordered by the link row's id (the order the links were written in).
        q, owner = connection.ops.quote_name, _owner_column(model, self.related)
        table = _link_model(model, self.related)._meta.db_table
        return (
            f"SELECT {number} AS n, {q(owner)} AS o, {q(self.target + '_id')} AS t, {q('role')} AS r, "  # noqa: S608 - names from _meta
            f"{_null_of(models.DateTimeField(), connection)} AS k1, {q('id')} AS k2 "
            f"FROM {q(table)} WHERE {q(owner)} {owners}"
        )

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
        items = [refs.want(item, self.kind, f"{path}.{i}") for i, item in enumerate(value)]
        if len({object_id for object_id, _ in items}) != len(items):
            errors.add(path, "duplicate_ref", "The same object is listed twice.")
        parsed.links[self.name] = items

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
    """Read-only Refs to every row pointing at this object (an issue's runs, a run's artifacts), oldest first.

    Derived (no column or link table of its own); served by an index on ``(owner, created_at, id)``:
    an index-only scan in the list's order.
    """

    def __init__(self, related: str, kind: str) -> None:
        self.related, self.kind = related, kind
        super().__init__(fn=self.dump, schema=self.out_schema())

    def select_sql(self, model: type[models.Model], number: int, owners: str, connection: Any) -> str:
        # Ordered by (created_at, id), oldest first.
        q, owner = connection.ops.quote_name, _owner_column(model, self.related)
        table = _link_model(model, self.related)._meta.db_table
        return (
            f"SELECT {number} AS n, {q(owner)} AS o, {q('id')} AS t, "  # noqa: S608 - names from _meta
            f"{_null_of(models.CharField(max_length=64), connection)} AS r, {q('created_at')} AS k1, 0 AS k2 "
            f"FROM {q(table)} WHERE {q(owner)} {owners}"
        )


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

    def load(self, value: Any, path: str, parsed: Parsed, errors: _Errors, refs: _RefCollector) -> None:
        if value is None:  # only reachable when nullable: clear every column of the group
            for child in self.children.values():
                if isinstance(child, Col):
                    parsed.columns[child.column] = None
            return
        for name, child_value in value.items():
            self.children[name].load(child_value, _join(path, name), parsed, errors, refs)

    def columns(self, path: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, child in self.children.items():
            found.update(child.columns(_join(path, name)))
        if self.nullable_via:
            found[path] = path
        return found


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _RefCollector:
    """Collects every Ref of a body, then resolves them all in one query."""

    def __init__(self) -> None:
        self.wanted: list[tuple[str, str, str]] = []  # (id, kind, path)

    def want(self, value: Any, kind: str, path: str) -> tuple[str, str | None]:
        if isinstance(value, str):
            object_id, role, declared = value, None, kind
        else:
            object_id, role, declared = value["id"], value.get("role"), value.get("kind", kind)
        self.wanted.append((object_id, declared, path))
        return object_id, role

    def resolve(
        self, expected: dict[str, str], errors: _Errors, known: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Check every wanted Ref against the object index, but for ``known`` ones ({id: kind} the caller
        holds, e.g. a row it has locked); returns what it found, {id: kind}."""
        if not self.wanted:
            return {}
        known = known or {}
        wanted = {w[0] for w in self.wanted}
        found = {object_id: known[object_id] for object_id in wanted if object_id in known}
        found.update(ObjectIndex.kinds_of(wanted - found.keys()))
        for object_id, declared, path in self.wanted:
            want_kind = expected[path]
            actual = found.get(object_id)
            if declared != want_kind:
                errors.add(path, "wrong_kind", f"Expected a Ref to a {want_kind}, got kind {declared}.")
            elif actual is None:
                errors.add(path, "unknown_ref", f"No {want_kind} has id {object_id}.")
            elif actual != want_kind:
                errors.add(path, "wrong_kind", f"{object_id} is a {actual}, not a {want_kind}.")
        return found


# --- the kinds ---------------------------------------------------------------------------------------
def _enum(choices: type[models.TextChoices], nullable: bool = False) -> dict[str, Any]:
    return v.enum_schema(choices, nullable=nullable)


def _num(minimum: float | None = None, maximum: float | None = None, integer: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return v.nullable(schema)


def _str(max_length: int, nullable: bool = False) -> dict[str, Any]:
    schema = {"type": "string", "maxLength": max_length}
    return v.nullable(schema) if nullable else schema


TS = {"type": "string", "format": "date-time"}
ACTOR = v.ACTOR
ACTOR_OR_NULL = v.nullable(v.ACTOR)
STR_LIST = v.STR_LIST
TAGS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}, "maxItems": 32}
META = {"type": "object", "description": "free-form; namespaced keys recommended (github.*, jct.*)"}


@dataclass
class Shape:
    """A kind's full shape: its model and its body nodes between the shared head and tail."""

    kind: str
    model: type[models.Model]
    body: dict[str, Node]
    select_related: tuple[str, ...] = ()
    mutable: bool = True

    @cached_property
    def nodes(self) -> dict[str, Node]:
        head: dict[str, Node] = {
            "kind": Derived(lambda obj: obj.KIND, {"type": "string", "const": self.kind}),
            "id": Col("id", ID_SCHEMA),
        }
        tail: dict[str, Node] = {
            "created_by": Col("created_by", ACTOR_OR_NULL),
            "tags": Col("tags", TAGS),
            "meta": Col("meta", META),
            "created_at": Time("created_at", TS, read_only=True),
        }
        if self.kind != enums.Kind.CONSTRAINT_SNAPSHOT:
            tail["updated_at"] = Time("updated_at", TS, read_only=True)
        return {**head, **self.body, **tail}

    @cached_property
    def dumper(self) -> Callable[[Any], dict[str, Any]]:
        return Group(self.nodes).dumper()  # type: ignore[no-any-return]

    @cached_property
    def ref_lists(self) -> list[RefList]:
        return [node for node in _leaves(Group(self.nodes)) if isinstance(node, RefList)]

    def queryset(self) -> models.QuerySet[Any]:
        """The model's rows with everything ``dump`` touches loaded in a fixed number of queries.

        One query for the rows, then one query for every ref list of all of them (:meth:`load_refs`).
        """
        queryset = ShapeQuerySet(self.model)
        if self.select_related:  # select_related() with no names would join every foreign key
            queryset = queryset.select_related(*self.select_related)
        queryset.shape = self
        return queryset

    def load_refs(self, objs: list[Any], using: str = DEFAULT_DB_ALIAS) -> None:
        """Every ref list of ``objs`` (rows of this kind), loaded by :meth:`ref_rows`."""
        if not objs or not self.ref_lists:
            return
        lists = self.ref_rows([obj.pk for obj in objs], using)
        for obj in objs:
            loaded = obj.__dict__.setdefault(REFS_ATTR, {})
            for node, grouped in zip(self.ref_lists, lists, strict=True):
                loaded[node.related] = grouped.get(obj.pk, [])

    def ref_rows(self, ids: list[Any], using: str = DEFAULT_DB_ALIAS) -> list[dict[Any, list[tuple[str, str | None]]]]:
        """For each of :attr:`ref_lists`, ``{owner id: [(target id, role), ...]}`` in the list's order.

        One ``UNION ALL`` query of plain tuples, no model instances. On PostgreSQL the ids go as one array
        literal per arm (``owner = ANY(%s::text[])``), spelled once: psycopg binds one string, not one
        placeholder per id and arm, and the planner sees a constant array (an index scan, or a hashed
        lookup when it reads a small table whole), all ids in one query; elsewhere as ``IN (%s, ...)``,
        ``REF_BATCH`` ids a query.
        """
        lists: list[dict[Any, list[tuple[str, str | None]]]] = [{} for _ in self.ref_lists]
        if not ids or not self.ref_lists:
            return lists
        connection = connections[using]
        array = connection.vendor == "postgresql" and all(isinstance(i, str) for i in ids)
        step = len(ids) if array else REF_BATCH
        for start in range(0, len(ids), step):
            batch = ids[start : start + step]
            if array:
                quoted = (i.replace("\\", "\\\\").replace('"', '\\"') for i in batch)
                owners, per_arm = "= ANY(%s::text[])", ["{" + ",".join(f'"{i}"' for i in quoted) + "}"]
            else:
                owners, per_arm = "IN (" + ", ".join(["%s"] * len(batch)) + ")", batch
            arms = [node.select_sql(self.model, n, owners, connection) for n, node in enumerate(self.ref_lists)]
            params = per_arm * len(arms)
            with connection.cursor() as cursor:
                # The sort keys stay in the database: decoding a timestamp per row costs more than the rest.
                union = " UNION ALL ".join(arms)
                cursor.execute(f"SELECT n, o, t, r FROM ({union}) refs ORDER BY n, o, k1, k2, t", params)  # noqa: S608 - arms above
                for number, owner_id, target_id, role in cursor.fetchall():
                    lists[number].setdefault(owner_id, []).append((target_id, role))
        return lists

    def column_paths(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, node in self.nodes.items():
            found.update(node.columns(name))
        return found


def _link_model(model: type[models.Model], related: str) -> type[models.Model]:
    return model._meta.get_field(related).related_model  # type: ignore[return-value]


def ref_ids(obj: Any, related: str) -> list[str]:
    """The ids in ``obj``'s ref list ``related`` (loaded by its shape's queryset, or one query)."""
    for node in shape_for(obj).ref_lists:
        if node.related == related:
            return [ref["id"] for ref in node.dumper()(obj)]
    raise KeyError(f"{obj.KIND} has no ref list {related!r}")


class ShapeQuerySet(models.QuerySet[Any]):
    """A kind's rows that load their ref lists (:meth:`Shape.load_refs`) when the rows are fetched."""

    shape: Shape | None = None

    def _clone(self) -> ShapeQuerySet:
        clone: ShapeQuerySet = super()._clone()  # type: ignore[misc]
        clone.shape = self.shape
        return clone

    def _fetch_all(self) -> None:
        fresh = self._result_cache is None
        super()._fetch_all()  # type: ignore[misc]
        if fresh and self.shape is not None and self._iterable_class is ModelIterable:
            self.shape.load_refs(self._result_cache, using=self.db)  # type: ignore[arg-type]


SHAPES: dict[str, Shape] = {
    enums.Kind.REPO: Shape(
        enums.Kind.REPO,
        Repo,
        {
            "name": Col("name", _str(255), required=True),
            "slug": Col("slug", {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 100}, required=True),
            "source": Group(
                {
                    "system": Col("source_system", _str(64)),
                    "external_id": Col("source_external_id", _str(255, nullable=True)),
                    "url": Col("source_url", _str(2048, nullable=True)),
                }
            ),
            "default_branch": Col("default_branch", _str(255)),
            "visibility": Col("visibility", _enum(enums.Visibility)),
            "owners": Col("owners", v.ACTOR_LIST),
            "policy": Group(
                {
                    "allowed_tools": Col("policy_allowed_tools", STR_LIST),
                    "secrets_profile": Col("policy_secrets_profile", _str(255, nullable=True)),
                }
            ),
            "links": Col("links", STR_LIST),
        },
    ),
    enums.Kind.ISSUE: Shape(
        enums.Kind.ISSUE,
        Issue,
        {
            "repo": FKRef("repo_id", enums.Kind.REPO, required=True),
            "title": Col("title", {"type": "string", "minLength": 1, "maxLength": 500}, required=True),
            "description": Col("description", _str(200_000)),
            "type": Col("type", _enum(enums.IssueType)),
            "priority": Col("priority", _enum(enums.Priority)),
            "status": Col("status", _enum(enums.Status)),
            "assignees": Col("assignees", v.ACTOR_LIST),
            "watchers": Col("watchers", v.ACTOR_LIST),
            "doctrine_refs": LinkRefs("doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF),
            "constraints": LinkRefs("constraints", "constraint_links", "snapshot", enums.Kind.CONSTRAINT_SNAPSHOT),
            "context_packets": LinkRefs("context_packets", "context_packet_links", "packet", enums.Kind.CONTEXT_PACKET),
            "acceptance": Group(
                {
                    "criteria": Col("acceptance_criteria", STR_LIST),
                    "tests_expected": Col("acceptance_tests_expected", v.nullable(STR_LIST)),
                }
            ),
            "relationships": Group(
                {
                    "parent": FKRef("parent_id", enums.Kind.ISSUE, nullable=True),
                    "blocks": LinkRefs("blocks", "block_links", "blocked", enums.Kind.ISSUE),
                    "blocked_by": LinkRefs("blocked_by", "blocked_by_links", "blocker", enums.Kind.ISSUE),
                    "duplicates": LinkRefs("duplicates", "duplicate_links", "duplicate_of", enums.Kind.ISSUE),
                }
            ),
            "runs": ReverseRefs("runs", enums.Kind.RUN),
        },
    ),
    enums.Kind.CONTEXT_PACKET: Shape(
        enums.Kind.CONTEXT_PACKET,
        ContextPacket,
        {
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE, required=True),
            "version": Col("version", {"type": "string", "minLength": 1, "maxLength": 64}),
            "summary": Col("summary", _str(200_000)),
            "inputs": Group(
                {
                    "documents": Col("inputs_documents", v.list_of(v.DOCUMENT)),
                    "data_blobs": Col("inputs_data_blobs", v.list_of(v.DATA_BLOB)),
                    "links": Col("inputs_links", STR_LIST),
                }
            ),
            "assumptions": Col("assumptions", STR_LIST),
            "open_questions": Col("open_questions", STR_LIST),
            "instructions": Col("instructions", _str(200_000)),
            "doctrine_refs": LinkRefs("doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF),
            "constraint_snapshot": FKRef("constraint_snapshot_id", enums.Kind.CONSTRAINT_SNAPSHOT, nullable=True),
            "sealed": Col("sealed", {"type": "boolean"}),
            "sealed_at": Time("sealed_at", v.nullable(TS), read_only=True),
        },
    ),
    enums.Kind.CONSTRAINT_SNAPSHOT: Shape(
        enums.Kind.CONSTRAINT_SNAPSHOT,
        ConstraintSnapshot,
        {
            "scope": Col("scope", _enum(enums.ConstraintScope)),
            "captured_at": Time("captured_at", TS),
            "owner": Col("owner", ACTOR_OR_NULL),
            "constraints": Group(
                {
                    "time": Group(
                        {
                            "available_minutes": Col("time_available_minutes", _num(minimum=0)),
                            "deadline": Time("time_deadline", v.nullable(TS)),
                        }
                    ),
                    "energy": Group(
                        {
                            "score_0_5": Col("energy_score_0_5", _num(0, 5)),
                            "notes": Col("energy_notes", _str(4000, nullable=True)),
                        }
                    ),
                    "health": Group(
                        {
                            "flags": Col("health_flags", STR_LIST),
                            "notes": Col("health_notes", _str(4000, nullable=True)),
                        }
                    ),
                    "budget": Group(
                        {
                            "usd_available": Col("budget_usd_available", _num(minimum=0)),
                            "burn_limit_usd": Col("budget_burn_limit_usd", _num(minimum=0)),
                        }
                    ),
                    "tools": Group(
                        {
                            "allowed": Col("tools_allowed", STR_LIST),
                            "blocked": Col("tools_blocked", STR_LIST),
                        }
                    ),
                    "environment": Group(
                        {
                            "location": Col("environment_location", _str(255, nullable=True)),
                            "connectivity": Col("environment_connectivity", _enum(enums.Connectivity, nullable=True)),
                            "device": Col("environment_device", _str(255, nullable=True)),
                        }
                    ),
                    "risk": Group(
                        {
                            "tolerance": Col("risk_tolerance", _enum(enums.RiskTolerance, nullable=True)),
                            "notes": Col("risk_notes", _str(4000, nullable=True)),
                        }
                    ),
                }
            ),
        },
        mutable=False,
    ),
    enums.Kind.DOCTRINE_REF: Shape(
        enums.Kind.DOCTRINE_REF,
        DoctrineRef,
        {
            "namespace": Col("namespace", {"type": "string", "minLength": 1, "maxLength": 100}, required=True),
            "name": Col("name", {"type": "string", "minLength": 1, "maxLength": 200}, required=True),
            "version": Col("version", {"type": "string", "minLength": 1, "maxLength": 64}, required=True),
            "type": Col("type", _enum(enums.DoctrineType), required=True),
            "priority": Col("priority", _enum(enums.DoctrinePriority), required=True),
            "statement": Col("statement", {"type": "string", "minLength": 1, "maxLength": 200_000}, required=True),
            "rationale": Col("rationale", _str(200_000, nullable=True)),
            "links": Col("links", STR_LIST),
            "applicability": Group(
                {
                    "repo_refs": LinkRefs("repo_refs", "repo_links", "repo", enums.Kind.REPO),
                    "issue_types": Col("applicability_issue_types", v.list_of(_enum(enums.IssueType))),
                    "tags": Col("applicability_tags", STR_LIST),
                }
            ),
        },
        mutable=False,
    ),
    enums.Kind.RUN: Shape(
        enums.Kind.RUN,
        Run,
        {
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE, required=True),
            "repo": FKRef("repo_id", enums.Kind.REPO),
            "status": Col("status", _enum(enums.Status)),
            "mode": Col("mode", _enum(enums.RunMode)),
            "executor": Group(
                {
                    "actor": Col("executor_actor", ACTOR_OR_NULL),
                    "runtime": Col("executor_runtime", _str(64)),
                    "toolchain": Col("executor_toolchain", STR_LIST),
                }
            ),
            "inputs": Group(
                {
                    "context_packets": LinkRefs(
                        "context_packets", "context_packet_links", "packet", enums.Kind.CONTEXT_PACKET
                    ),
                    "doctrine_refs": LinkRefs(
                        "doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF
                    ),
                    "constraint_snapshot": FKRef(
                        "constraint_snapshot_id", enums.Kind.CONSTRAINT_SNAPSHOT, nullable=True
                    ),
                }
            ),
            "plan": Group(
                {
                    "steps": Col("plan_steps", STR_LIST),
                    "risk_notes": Col("plan_risk_notes", STR_LIST),
                }
            ),
            "telemetry": Group(
                {
                    "started_at": Time("started_at", v.nullable(TS), read_only=True),
                    "ended_at": Time("ended_at", v.nullable(TS), read_only=True),
                    "duration_s": Col("duration_s", _num(minimum=0), read_only=True),
                }
            ),
            "cost": Group(
                {
                    "usd": Col("cost_usd", _num(minimum=0)),
                    "tokens": Col("cost_tokens", _num(minimum=0, integer=True)),
                    "compute_s": Col("cost_compute_s", _num(minimum=0)),
                }
            ),
            "outputs": Group(
                {
                    "artifacts": ReverseRefs("artifacts", enums.Kind.ARTIFACT),
                    "result_summary": Col("result_summary", _str(200_000, nullable=True)),
                    "decision_log": Col("decision_log", {"type": "array", "items": v.STRING, "maxItems": 10_000}),
                }
            ),
            "failure": Group(
                {
                    "category": Col("failure_category", _enum(enums.FailureCategory)),
                    "message": Col("failure_message", _str(20_000)),
                },
                nullable_via="failure_category",
            ),
        },
    ),
    enums.Kind.ARTIFACT: Shape(
        enums.Kind.ARTIFACT,
        Artifact,
        {
            "produced_by": FKRef("produced_by_id", enums.Kind.RUN, required=True),
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE),
            "type": Col("type", _enum(enums.ArtifactType), required=True),
            "title": Col("title", _str(500)),
            "uri": Col("uri", _str(2048, nullable=True)),
            "digest": Col("digest", _str(200, nullable=True)),
            "media_type": Col("media_type", _str(255, nullable=True)),
            "size_bytes": Col("size_bytes", _num(minimum=0, integer=True)),
            "preview": Col("preview", _str(20_000, nullable=True)),
            "verification": Group(
                {
                    "status": Col("verification_status", _enum(enums.VerificationStatus)),
                    "checks": Col("verification_checks", v.list_of(v.CHECK)),
                }
            ),
        },
    ),
}

# Fields a PATCH may touch, per kind (None: every writable field). Snapshots and doctrine refs have no PATCH.
PATCHABLE: dict[str, set[str] | None] = {
    enums.Kind.REPO: None,
    enums.Kind.ISSUE: None,
    enums.Kind.CONTEXT_PACKET: None,
    enums.Kind.RUN: None,
    enums.Kind.ARTIFACT: {"verification"},  # everything else is fixed at creation
}


def shape_for(kind_or_model: str | type[models.Model] | models.Model) -> Shape:
    if isinstance(kind_or_model, str):
        return SHAPES[kind_or_model]
    return SHAPES[kind_or_model.KIND]  # type: ignore[union-attr]


def prime(obj: Any, link_rows: dict[str, list[models.Model]]) -> None:
    """Fill the ref lists of a just-created ``obj`` so ``dump`` needs no query.

    ``link_rows`` holds the link rows just written, by link name; every other list ``dump``
    reads (runs, artifacts) is empty for an object that did not exist a moment ago.
    Column values are normalised as a read from the database would give them (45 -> 45.0).
    """
    for model_field in obj._meta.concrete_fields:
        setattr(obj, model_field.attname, model_field.to_python(getattr(obj, model_field.attname)))
    loaded = obj.__dict__.setdefault(REFS_ATTR, {})
    for node in shape_for(obj).ref_lists:
        rows = link_rows.get(node.name, []) if isinstance(node, LinkRefs) else []
        loaded[node.related] = [(getattr(row, f"{node.target}_id"), row.role) for row in rows]  # type: ignore[attr-defined]


def _leaves(node: Node) -> Iterable[Node]:
    if isinstance(node, Group):
        for child in node.children.values():
            yield from _leaves(child)
    else:
        yield node


def dump(obj: Any) -> dict[str, Any]:
    """``obj`` in the contract's JSON shape (load it through ``shape_for(obj).queryset()`` first)."""
    return shape_for(obj).dumper(obj)


def dump_many(objs: Iterable[Any]) -> list[dict[str, Any]]:
    return [dump(obj) for obj in objs]


def json_schema(kind: str, mode: str = "out") -> dict[str, Any]:
    """JSON Schema 2020-12 of ``kind``: the object (``out``), a create body (``in``), a PATCH body (``patch``)."""
    shape = SHAPES[kind]
    if mode == "out":
        group = Group(shape.nodes)
        schema = group.out_schema()
        title = kind
    else:
        nodes = {name: node for name, node in shape.nodes.items() if name != "kind"}
        if mode == "patch":
            allowed = PATCHABLE.get(kind)
            nodes = {
                name: node for name, node in nodes.items() if name != "id" and (allowed is None or name in allowed)
            }
        schema = Group(nodes).in_schema()
        schema["properties"]["kind"] = {"type": "string", "const": kind}
        if mode == "patch":
            schema["required"] = []
        title = f"{kind} ({'create' if mode == 'in' else 'update'} body)"
    suffix = "" if mode == "out" else f".{mode}"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://cwom.dev/schema/v{SCHEMA_VERSION}/{kind}{suffix}.json",
        "title": title,
        **schema,
    }


@cache
def _body_validator(kind: str, mode: str) -> Any:
    """The compiled JSON Schema of a create or PATCH body (built once per kind and mode)."""
    return v.compiled(json_schema(kind, mode))


def parse(kind: str, data: Any, mode: str = "in", known: Mapping[str, str] | None = None) -> Parsed:
    """Check a create (``in``) or PATCH (``patch``) body and turn it into model terms.

    ``known`` ({id: kind}) names objects the caller knows exist (a row it holds locked): a Ref to one of
    them is not looked up. Raises ValidationError keyed by contract paths (``constraints.energy.score_0_5``)
    with codes.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("", "invalid_shape", "The body must be a JSON object.")
        errors.raise_if_any()
    if mode == "patch" and not data:
        errors.add("", "empty_patch", "The body names no field to change.")
    problems = v.schema_errors(_body_validator(kind, mode), data)
    for path, message in problems:
        errors.add(path, _schema_code(message), message)
    errors.raise_if_any()
    shape = SHAPES[kind]
    parsed = Parsed(kind)
    refs = _RefCollector()
    group = Group({name: node for name, node in shape.nodes.items() if name != "kind"})
    body = {name: value for name, value in data.items() if name != "kind"}
    group.load(body, "", parsed, errors, refs)
    expected = {path: _kind_at(shape, path) for _id, _kind, path in refs.wanted}
    parsed.known_refs = refs.resolve(expected, errors, known)
    errors.raise_if_any()
    return parsed


def _schema_code(message: str) -> str:
    if message.startswith("Unexpected field"):
        return "unexpected_field"
    return "invalid_choice" if "allowed values" in message else "invalid"


def _kind_at(shape: Shape, path: str) -> str:
    node: Node = Group(shape.nodes)
    for part in path.split("."):
        if part.isdigit():
            continue
        node = node.children[part]  # type: ignore[attr-defined]
    return node.kind  # type: ignore[attr-defined]


def error_path(kind: str, field_name: str) -> str:
    """The contract path of a model field named in an error (``inputs_data_blobs`` -> ``inputs.data_blobs``)."""
    return SHAPES[kind].column_paths().get(field_name, field_name)


LINK_TABLES: dict[tuple[str, str], tuple[type[models.Model], str, str]] = {
    # (kind, link name) -> (link model, owner field, target field)
    (enums.Kind.ISSUE, "doctrine_refs"): (IssueDoctrineRef, "issue", "doctrine_ref"),
    (enums.Kind.ISSUE, "constraints"): (IssueConstraintSnapshot, "issue", "snapshot"),
    (enums.Kind.ISSUE, "context_packets"): (IssueContextPacket, "issue", "packet"),
    (enums.Kind.ISSUE, "blocks"): (IssueBlock, "blocker", "blocked"),
    (enums.Kind.ISSUE, "blocked_by"): (IssueBlock, "blocked", "blocker"),
    (enums.Kind.ISSUE, "duplicates"): (IssueDuplicate, "issue", "duplicate_of"),
    (enums.Kind.CONTEXT_PACKET, "doctrine_refs"): (PacketDoctrineRef, "packet", "doctrine_ref"),
    (enums.Kind.DOCTRINE_REF, "repo_refs"): (DoctrineApplicableRepo, "doctrine_ref", "repo"),
    (enums.Kind.RUN, "context_packets"): (RunContextPacket, "run", "packet"),
    (enums.Kind.RUN, "doctrine_refs"): (RunDoctrineRef, "run", "doctrine_ref"),
}

if set(KIND_MODELS) != set(SHAPES):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("Every kind needs a shape.")
