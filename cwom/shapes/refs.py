"""Refs: the ref lists of objects being read, and the Refs of a body being parsed.

Reading: ``fetch(queryset)`` evaluates a kind's queryset and loads every ref list of all its rows in one
more query (``Shape.load_refs``): the explicit step that makes a list of objects N+1-free where their lists
are read before they are dumped (``dump_many`` loads those of the objects it is given: the API's lists use
it). ``prime`` fills the lists of an object just created, ``ref_ids`` reads one list.

Parsing: a :class:`RefCollector` gathers every Ref of a body while the nodes load it, then resolves them
all against the object index in one query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import models

from ..models import ObjectIndex
from .kinds import shape_for
from .nodes import REFS_ATTR, LinkRefs

if TYPE_CHECKING:
    from .parse import Errors


def fetch(queryset: models.QuerySet[Any]) -> list[Any]:
    """The rows of ``queryset`` (a kind's ``Shape.queryset()``, filtered), with every ref list loaded:
    one query for the rows, one for all their ref lists."""
    objs = list(queryset)
    shape_for(queryset.model).load_refs(objs, using=queryset.db)
    return objs


def prime(obj: Any, links: Mapping[str, list[tuple[str, str | None]]]) -> None:
    """Fill the ref lists of a just-created ``obj`` so ``dump`` needs no query.

    ``links`` holds the links just written, ``(target id, role)`` by link name; every other list ``dump``
    reads (runs, artifacts) is empty for an object that did not exist a moment ago.
    Column values are normalised as a read from the database would give them (45 -> 45.0).
    """
    for model_field in obj._meta.concrete_fields:
        setattr(obj, model_field.attname, model_field.to_python(getattr(obj, model_field.attname)))
    loaded = obj.__dict__.setdefault(REFS_ATTR, {})
    for node in shape_for(obj).ref_lists:
        loaded[node.related] = list(links.get(node.name, [])) if isinstance(node, LinkRefs) else []


def ref_ids(obj: Any, related: str) -> list[str]:
    """The ids in ``obj``'s ref list ``related`` (loaded by ``fetch`` or ``Shape.load_refs``, else one query)."""
    shape = shape_for(obj)
    for node in shape.ref_lists:
        if node.related == related:
            if REFS_ATTR not in obj.__dict__:
                shape.load_refs([obj])
            return [ref["id"] for ref in node.dumper()(obj)]
    raise KeyError(f"{obj.KIND} has no ref list {related!r}")


class RefCollector:
    """Collects every Ref of a body (nodes call :meth:`want` while loading it), then resolves them all in
    one query (:meth:`resolve`). ``wanted`` holds ``(id, declared kind, contract path)`` per Ref."""

    def __init__(self) -> None:
        self.wanted: list[tuple[str, str, str]] = []  # (id, kind, path)

    def want(self, value: Any, kind: str, path: str) -> tuple[str, str | None]:
        """A Ref of the body (a bare id or ``{kind?, id, role?}``) at ``path``: its id and role."""
        if isinstance(value, str):
            object_id, role, declared = value, None, kind
        else:
            object_id, role, declared = value["id"], value.get("role"), value.get("kind", kind)
        self.wanted.append((object_id, declared, path))
        return object_id, role

    def resolve(
        self, expected: dict[str, str], errors: Errors, known: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Check every wanted Ref against the object index, but for ``known`` ones ({id: kind} the caller
        holds, e.g. a row it has locked); returns what it found, {id: kind}. ``expected`` is the kind each
        path needs ({path: kind}, see ``parse.kind_at``)."""
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
