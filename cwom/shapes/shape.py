"""A kind's shape: its model and its tree of nodes, with the fields every kind shares around its own.

From a :class:`Shape` come the object's JSON (``dumper``), the rows' query (``queryset``) and the ref lists
of a batch of rows in one query (``load_refs``, ``ref_rows``: the SQL is :mod:`cwom.db.refs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models

from .. import enums
from .. import validation as v
from ..db import refs as ref_sql
from .nodes import ID_SCHEMA, REFS_ATTR, Col, Derived, Group, LinkRefs, Node, RefList, Time, leaves

TS = {"type": "string", "format": "date-time"}
ACTOR_OR_NULL = v.nullable(v.ACTOR)
# Distinct, each with something besides whitespace and no NUL (``validate_tags``, the JSON parser).
TAGS = {
    "type": "array",
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": v.NOT_BLANK,
    },
    "maxItems": 32,
    "uniqueItems": True,
}
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
    def body_group(self) -> Group:
        """The nodes a body is loaded by (``parse``): all but ``kind``."""
        return Group({name: node for name, node in self.nodes.items() if name != "kind"})

    @cached_property
    def dumper(self) -> Callable[[Any], dict[str, Any]]:
        """The object in the contract's shape. An object whose ref lists were not loaded (by :meth:`load_refs`,
        ``fetch``, ``dump_many`` or ``prime``) loads them first: one query."""
        dump: Callable[[Any], dict[str, Any]] = Group(self.nodes).dumper()
        if not self.ref_lists:
            return dump
        load = self.load_refs

        def dump_loaded(obj: Any) -> dict[str, Any]:
            if REFS_ATTR not in obj.__dict__:
                load([obj])
            return dump(obj)

        return dump_loaded

    @cached_property
    def ref_lists(self) -> list[RefList]:
        return [node for _path, node in leaves(self.nodes) if isinstance(node, RefList)]

    @cached_property
    def links(self) -> list[LinkRefs]:
        """The kind's links (the ref lists kept in link tables), in declaration order."""
        return [node for node in self.ref_lists if isinstance(node, LinkRefs)]

    @cached_property
    def ref_arms(self) -> list[ref_sql.RefArm]:
        """The rows of each of :attr:`ref_lists`, as :func:`cwom.db.refs.ref_rows` reads them."""
        return [node.arm(self.model) for node in self.ref_lists]

    def queryset(self) -> models.QuerySet[Any]:
        """The model's rows, with the foreign keys ``dump`` follows joined.

        Read the rows with ``fetch`` (or dump them with ``dump_many``): one more query for all their ref
        lists. ``dump`` of a row whose lists were not loaded loads its own (one query per row).
        """
        queryset: models.QuerySet[Any] = models.QuerySet(self.model)
        if self.select_related:  # select_related() with no names would join every foreign key
            queryset = queryset.select_related(*self.select_related)
        return queryset

    def load_refs(self, objs: list[Any], using: str = DEFAULT_DB_ALIAS) -> None:
        """Every ref list of ``objs`` (rows of this kind), loaded by :meth:`ref_rows` (one query)."""
        if not objs or not self.ref_lists:
            return
        lists = self.ref_rows([obj.pk for obj in objs], using)
        for obj in objs:
            loaded = obj.__dict__.setdefault(REFS_ATTR, {})
            for node, grouped in zip(self.ref_lists, lists, strict=True):
                loaded[node.related] = grouped.get(obj.pk, [])

    def ref_rows(self, ids: list[Any], using: str = DEFAULT_DB_ALIAS) -> ref_sql.RefLists:
        """For each of :attr:`ref_lists`, ``{owner id: [(target id, role), ...]}`` in the list's order:
        one ``UNION ALL`` query of plain tuples (:func:`cwom.db.refs.ref_rows`)."""
        if not self.ref_lists:
            return []
        return ref_sql.ref_rows(self.ref_arms, ids, using)

    def column_paths(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, node in self.nodes.items():
            found.update(node.columns(name))
        return found
