"""Parsing a body: checked against the kind's JSON Schema, then turned into model terms (:class:`Parsed`)
by the shape's nodes, every Ref resolved to exactly one object of exactly the right kind.

Errors are a ``ValidationError`` keyed by contract paths (``constraints.energy.score_0_5``), with codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from .. import validation as v
from .kinds import PATCHABLE, SHAPES
from .nodes import Col, Group, Node, Time, join_path, leaves
from .refs import RefCollector
from .schema import json_schema
from .shape import Shape


@dataclass
class Parsed:
    """A body turned into model terms: column values, link lists, and writes that need extra care."""

    kind: str
    columns: dict[str, Any] = field(default_factory=dict)
    links: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # A PATCH's edits of link lists, {link name: (Refs to add, Refs to remove)}.
    link_edits: dict[str, tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]] = field(
        default_factory=dict
    )
    extras: dict[str, Any] = field(default_factory=dict)
    # Every Ref of the body as resolved through the object index, {id: kind}: these objects exist.
    known_refs: dict[str, str] = field(default_factory=dict)


class Errors:
    """The errors of one body, ``(path, code, message)`` each, raised together as one ValidationError."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.items.append((path, code, message))

    def raise_if_any(self) -> None:
        """Raise a ValidationError keyed by path (``non_field_errors`` for the body itself), if any."""
        if self.items:
            raise ValidationError(
                {
                    path or "non_field_errors": [
                        ValidationError(msg, code=code) for p, code, msg in self.items if p == path
                    ]
                    for path in dict.fromkeys(p for p, _, _ in self.items)
                }
            )


@cache
def _body_validator(kind: str, mode: str) -> Any:
    """The compiled JSON Schema of a create or PATCH body (built once per kind and mode)."""
    return v.compiled(json_schema(kind, mode))


def parse(
    kind: str,
    data: Any,
    mode: str = "in",
    known: Mapping[str, str] | None = None,
    current: Callable[[], dict[str, Any]] | None = None,
) -> Parsed:
    """Check a create (``in``) or PATCH (``patch``) body and turn it into model terms.

    ``known`` ({id: kind}) names objects the caller knows exist (a row it holds locked): a Ref to one of
    them is not looked up. ``current`` gives the object a PATCH changes in the contract's shape (called only
    when the body carries a field that cannot be written, see :func:`drop_echoed`). Raises ValidationError
    keyed by contract paths (``constraints.energy.score_0_5``) with codes.
    """
    errors = Errors()
    refs = RefCollector()
    parsed = read(kind, data, mode, refs, errors, current=current)
    parsed.known_refs = resolve(SHAPES[kind], refs, errors, known)
    if refs.resolved_slugs:  # a repo named by its slug and by its id is listed twice too
        _check_duplicates_again(SHAPES[kind], parsed, errors)
    errors.raise_if_any()
    return parsed


def parse_own(kind: str, data: dict[str, Any], known: Mapping[str, str]) -> Parsed:
    """A create body the service wrote itself (the worker's log and trace of a run) in model terms, as
    :func:`parse` gives them, without the checks of a client's body (its JSON Schema, echoed fields): the shape's
    nodes load it, and the model layer validates the object as any other. Each Ref must be one of ``known``
    ({id: kind}): nothing is looked up."""
    errors = Errors()
    refs = RefCollector()
    parsed = Parsed(kind)
    SHAPES[kind].body_group.load(data, "", parsed, errors, refs)
    if any(object_id not in known for object_id, _kind, _path in refs.wanted):
        raise ValueError("A body the service writes names only objects it holds.")
    parsed.known_refs = resolve(SHAPES[kind], refs, errors, known)
    errors.raise_if_any()
    return parsed


def read(
    kind: str,
    data: Any,
    mode: str,
    refs: RefCollector,
    errors: Errors,
    current: Callable[[], dict[str, Any]] | None = None,
) -> Parsed:
    """The first half of :func:`parse`: the body checked against the schema (raised at once), then loaded
    into model terms by the shape's nodes, its Refs gathered in ``refs`` and its problems in ``errors``, both
    left to the caller (the importer reads a chunk of bodies, then resolves all their Refs at once).
    Read-only fields sent back as they were are dropped first (:func:`drop_echoed`, ``current``)."""
    if not isinstance(data, dict):
        errors.add("", "invalid_shape", "The body must be a JSON object.")
        errors.raise_if_any()
    if mode == "patch" and not data:
        errors.add("", "empty_patch", "The body names no field to change.")
    data = drop_echoed(kind, data, mode, current, errors)
    for path, code, message in v.schema_problems(_body_validator(kind, mode), data):
        errors.add(path, code, message)
    errors.raise_if_any()
    parsed = Parsed(kind)
    body = {name: value for name, value in data.items() if name != "kind"}
    SHAPES[kind].body_group.load(body, "", parsed, errors, refs)
    return parsed


def resolve(shape: Shape, refs: RefCollector, errors: Errors, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """The second half of :func:`parse`: every Ref in ``refs`` (of bodies of ``shape``) checked against the
    object index in one query (a Repo's slug in one more); returns what was found, {id: kind}."""
    expected = {path: kind_at(shape, path) for path in {path for _id, _kind, path in refs.wanted}}
    return refs.resolve(expected, errors, known)


def _check_duplicates_again(shape: Shape, parsed: Parsed, errors: Errors) -> None:
    paths = shape.column_paths()
    reported = {path for path, code, _message in errors.items if code == "duplicate_ref"}
    lists = [*parsed.links.items(), *((name, add) for name, (add, _remove) in parsed.link_edits.items())]
    for name, items in lists:
        ids = [object_id for object_id, _role in items]
        if len(set(ids)) != len(ids) and paths[name] not in reported:
            errors.add(paths[name], "duplicate_ref", "The same object is listed twice.")


def resolve_refs(refs: Sequence[tuple[Any, str, str]]) -> list[str]:
    """The ids of Refs given outside a kind's body (the enqueue body's ``issue``, ``doctrine_refs``), each
    ``(value, kind, path)``, resolved by the one resolver (:class:`RefCollector`: ids, Refs, a Repo's slug).
    Raises ValidationError keyed by those paths."""
    errors = Errors()
    collector = RefCollector()
    for value, kind, path in refs:
        collector.want(value, kind, path)
    collector.resolve({path: kind for _value, kind, path in refs}, errors)
    errors.raise_if_any()
    return [object_id for object_id, _kind, _path in collector.wanted]


def drop_echoed(
    kind: str, data: dict[str, Any], mode: str, current: Callable[[], dict[str, Any]] | None, errors: Errors
) -> dict[str, Any]:
    """``data`` without the fields a client sent back as it read them, so a GET document can be changed and
    sent again: a read-only field (``created_at``, a run's ``telemetry``), and in a PATCH a field that cannot
    be changed (an artifact's ``title``), equal to the object's current value (``current()``) is dropped; one
    that differs is refused, naming the field (``read_only_field``, a conflict with the object). A new object
    (``in``) has no values yet: there only empty ones (null, [], {}) and those every new object has (a run's
    ``managed_by``: ``client``) are dropped, others are unexpected fields of a create body."""
    shape = SHAPES[kind]
    patchable = PATCHABLE.get(kind) if mode == "patch" else None
    loaded: list[dict[str, Any]] = []

    def now() -> dict[str, Any]:
        if not loaded:
            loaded.append(current() if current is not None else {})
        return loaded[0]

    def walk(nodes: dict[str, Node], body: dict[str, Any], path: str, top: bool) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for name, value in body.items():
            node = nodes.get(name)
            field_path = join_path(path, name)
            fixed = top and mode == "patch" and (name == "id" or (patchable is not None and name not in patchable))
            if node is None or name == "kind" or (not node.read_only and not fixed):
                if isinstance(node, Group) and isinstance(value, dict) and not node.nullable_via:
                    value = walk(node.children, value, field_path, False)
                kept[name] = value
                continue
            if mode == "patch" and current is not None:
                if value == _at(now(), field_path):
                    continue
                why = "is read-only (set by the service)" if node.read_only else "cannot change after creation"
                errors.add(field_path, "read_only_field", f"{field_path} {why}: send it unchanged or leave it out.")
            elif not (_empty(value) or value == _new_value(shape, node)):
                # A create body has no such field (400); only the values a new object has pass.
                message = f"{field_path} is read-only (set by the service): leave it out of a create body."
                errors.add(field_path, "unexpected_field", message)
        return kept

    if not _needs_walk(kind, mode).intersection(data):  # the common case (and every imported line): as is
        return data
    return walk(shape.nodes, data, "", True)


@cache
def _needs_walk(kind: str, mode: str) -> frozenset[str]:
    """The top-level fields of ``kind`` whose value :func:`drop_echoed` may have to look into in ``mode``."""
    patchable = PATCHABLE.get(kind) if mode == "patch" else None
    return frozenset(
        name
        for name, node in SHAPES[kind].nodes.items()
        if name != "kind"
        and (
            node.read_only
            or (mode == "patch" and (name == "id" or (patchable is not None and name not in patchable)))
            or (isinstance(node, Group) and any(child.read_only for _path, child in leaves(node.children)))
        )
    )


def _new_value(shape: Shape, node: Node) -> Any:
    """The value a read-only column has on a new object (a run's ``managed_by``: ``client``), if fixed."""
    if not isinstance(node, Col) or isinstance(node, Time):
        return None
    field = shape.model._meta.get_field(node.column)
    return field.get_default() if isinstance(field, models.Field) else None


def _at(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(item) for item in value.values())
    return value is None or value == []


def kind_at(shape: Shape, path: str) -> str:
    """The kind a Ref at contract ``path`` of ``shape`` must name (``relationships.blocks.2``: Issue)."""
    node: Node = Group(shape.nodes)
    for part in path.split("."):
        if not isinstance(node, Group):  # inside a list: an index, or a PATCH's add/remove and an index
            break
        node = node.children[part]
    return node.kind  # type: ignore[attr-defined]


def error_path(kind: str, field_name: str) -> str:
    """The contract path of a model field named in an error (``inputs_data_blobs`` -> ``inputs.data_blobs``)."""
    return SHAPES[kind].column_paths().get(field_name, field_name)
