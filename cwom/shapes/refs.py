"""Refs: the ref lists of objects being read, and the Refs of a body being parsed.

Reading: ``fetch(queryset)`` evaluates a kind's queryset and loads every ref list of all its rows in one
more query (``Shape.load_refs``): the explicit step that makes a list of objects N+1-free where their lists
are read before they are dumped (``dump_many`` loads those of the objects it is given: the API's lists use
it). ``prime`` fills the lists of an object just created, ``ref_ids`` reads one list.

Parsing: a :class:`RefCollector` gathers every Ref of a body while the nodes load it, then resolves them
all against the object index in one query (and a Repo's slug against the repos in one more): the one
resolver of Refs, enqueue's included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import models

from ..enums import Kind
from ..ids import ULID_RE
from ..models import ObjectIndex, Repo
from ..validation import SLUG_RE
from .kinds import shape_for
from .nodes import REFS_ATTR, TOTALS_ATTR, LinkRefs

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
    shape = shape_for(obj)
    for node in shape.ref_lists:
        items = list(links.get(node.name, [])) if isinstance(node, LinkRefs) else []
        loaded[node.related] = items[::-1][: node.newest] if node.newest is not None else items
    obj.__dict__[TOTALS_ATTR] = {
        node.related: len(links.get(node.name, [])) if isinstance(node, LinkRefs) else 0 for node in shape.bounded
    }


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
    """The one resolver of Refs: collects every Ref of a body (nodes call :meth:`want` while loading it), then
    resolves them all in one query per form (:meth:`resolve`). ``wanted`` holds ``(id, declared kind, contract
    path)`` per Ref.

    A Ref is a bare id, ``{kind?, id, role?}``, or (to a Repo) the repo's slug; a slug is replaced by the
    repo's id once resolved, in ``wanted`` and where the node put it (its ``place``).
    """

    def __init__(self) -> None:
        self.wanted: list[tuple[str, str, str]] = []  # (id, kind, path)
        self._places: dict[int, Callable[[str], None]] = {}  # index in wanted -> where a slug's id goes
        self.resolved_slugs = False  # whether resolve() replaced a slug by its repo's id

    def want(
        self, value: Any, kind: str, path: str, place: Callable[[str], None] | None = None
    ) -> tuple[str, str | None]:
        """A Ref of the body (a bare id, a Repo's slug or ``{kind?, id, role?}``) at ``path``: its id (the slug
        as given, until :meth:`resolve`) and role. ``place`` is called with the id a slug names."""
        # A body checked against its schema has only strings here; enqueue's Refs are checked here (a value
        # that is no string is refused as no valid id by resolve()).
        object_id: Any
        if isinstance(value, dict):
            object_id, role, declared = value.get("id"), value.get("role"), value.get("kind", kind)
        else:
            object_id, role, declared = value, None, kind
        if place is not None and not _is_id(object_id):
            self._places[len(self.wanted)] = place
        self.wanted.append((object_id, declared, path))
        return object_id, role

    def resolve(
        self,
        expected: dict[str, str],
        errors: Errors,
        known: Mapping[str, str] | None = None,
        *,
        slugs: bool = True,
    ) -> dict[str, str]:
        """Check every wanted Ref against the object index, but for ``known`` ones ({id: kind} the caller
        holds, e.g. a row it has locked); returns what it found, {id: kind}. ``expected`` is the kind each
        path needs ({path: kind}, see ``parse.kind_at``). ``slugs``: a string that is no id names a Repo by
        its slug where a Repo is expected (one query for all of them)."""
        if not self.wanted:
            return {}
        known = known or {}
        by_slug = self._repo_slugs(expected) if slugs else {}
        self.resolved_slugs = bool(by_slug)
        for index, (object_id, declared, path) in enumerate(self.wanted):
            if isinstance(object_id, str) and object_id in by_slug and declared == expected[path] == Kind.REPO:
                self.wanted[index] = (by_slug[object_id], declared, path)
                if index in self._places:
                    self._places[index](by_slug[object_id])
        wanted = {w[0] for w in self.wanted if _is_id(w[0])}
        found = {object_id: known[object_id] for object_id in wanted if object_id in known}
        found.update(ObjectIndex.kinds_of(wanted - found.keys()))
        for object_id, declared, path in self.wanted:
            want_kind = expected[path]
            actual = found.get(object_id) if _is_id(object_id) else None
            if declared != want_kind:
                errors.add(path, "wrong_kind", f"Expected a Ref to a {want_kind}, got kind {declared}.")
            elif not _is_id(object_id):
                if want_kind == Kind.REPO and isinstance(object_id, str) and SLUG_RE.match(object_id):
                    errors.add(path, "unknown_ref", f"No Repo has slug {object_id!r}.")
                else:
                    errors.add(path, "invalid_id", f"{_shown(object_id)} is not a valid id (a ULID).")
            elif actual is None:
                errors.add(path, "unknown_ref", f"No {want_kind} has id {object_id}.")
            elif actual != want_kind:
                errors.add(path, "wrong_kind", f"{object_id} is {with_article(actual)}, not {with_article(want_kind)}.")
        return found

    def _repo_slugs(self, expected: dict[str, str]) -> dict[str, str]:
        """{slug: repo id} for the strings that are no id where a Repo is wanted."""
        slugs = {
            object_id
            for object_id, _declared, path in self.wanted
            if expected[path] == Kind.REPO and isinstance(object_id, str) and not _is_id(object_id)
        }
        if not slugs:
            return {}
        return dict(Repo.objects.filter(slug__in=slugs).values_list("slug", "id"))


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(ULID_RE.match(value))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def with_article(kind: str) -> str:
    """A kind's name after ``a`` or ``an`` (an Issue, a Run)."""
    return f"an {kind}" if kind[:1] in "AEIOU" else f"a {kind}"
