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
from .nodes import ID_SCHEMA, REFS_ATTR, TOTALS_ATTR, Col, Derived, Group, LinkRefs, Node, RefList, Time, leaves

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
    def bounded(self) -> list[RefList]:
        """The ref lists embedded bounded (the newest only, with their totals)."""
        return [node for node in self.ref_lists if node.newest is not None]

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
        """Every ref list of ``objs`` (rows of this kind) and the totals of the bounded ones, loaded by
        :meth:`ref_rows` (one query)."""
        if not objs or not self.ref_lists:
            return
        lists, totals = self.ref_rows([obj.pk for obj in objs], using)
        for obj in objs:
            loaded = obj.__dict__.setdefault(REFS_ATTR, {})
            for node, grouped in zip(self.ref_lists, lists, strict=True):
                loaded[node.related] = grouped.get(obj.pk, [])
            obj.__dict__[TOTALS_ATTR] = {node.related: totals.get((obj.pk, node.related), 0) for node in self.bounded}

    def ref_rows(
        self, ids: list[Any], using: str = DEFAULT_DB_ALIAS, *, once: bool = False
    ) -> tuple[ref_sql.RefLists, ref_sql.RefTotals]:
        """For each of :attr:`ref_lists`, ``{owner id: [(target id, role), ...]}`` in the list's order, and
        ``{(owner id, related): total}`` of the bounded ones: one ``UNION ALL`` query of plain tuples
        (:func:`cwom.db.refs.ref_rows`; ``once``: the ids bound once, for many ids)."""
        if not self.ref_lists:
            return [], {}
        totals_of = [node.related for node in self.bounded]
        return ref_sql.ref_rows(self.ref_arms, ids, using, totals_of=totals_of, once=once)

    @cached_property
    def bounded_paths(self) -> list[list[str]]:
        """The contract paths of each bounded list and of its ``_total`` and ``_url``, as lists of keys."""
        paths = []
        for path, node in leaves(self.nodes):
            if isinstance(node, RefList) and node.newest is not None:
                *group, name = path.split(".")
                paths += [[*group, f"{name}{suffix}"] for suffix in ("", "_total", "_url")]
        return paths

    def own_state(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (this kind's contract object) without its bounded lists and their totals: what the object
        itself holds, which does not change when other objects are created (what its ETag is taken over)."""
        if not self.bounded_paths:
            return document
        own = dict(document)
        for *group, name in self.bounded_paths:
            holder = own
            for part in group:
                holder[part] = holder = dict(holder[part])
            holder.pop(name, None)
        return own

    def column_paths(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, node in self.nodes.items():
            found.update(node.columns(name))
        return found
