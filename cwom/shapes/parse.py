"""Parsing a body: checked against the kind's JSON Schema, then turned into model terms (:class:`Parsed`)
by the shape's nodes, every Ref resolved to exactly one object of exactly the right kind.

Errors are a ``ValidationError`` keyed by contract paths (``constraints.energy.score_0_5``), with codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError

from .. import validation as v
from .kinds import SHAPES
from .nodes import Group, Node
from .refs import RefCollector
from .schema import json_schema
from .shape import Shape


@dataclass
class Parsed:
    """A body turned into model terms: column values, link lists, and writes that need extra care."""

    kind: str
    columns: dict[str, Any] = field(default_factory=dict)
    links: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
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


def parse(kind: str, data: Any, mode: str = "in", known: Mapping[str, str] | None = None) -> Parsed:
    """Check a create (``in``) or PATCH (``patch``) body and turn it into model terms.

    ``known`` ({id: kind}) names objects the caller knows exist (a row it holds locked): a Ref to one of
    them is not looked up. Raises ValidationError keyed by contract paths (``constraints.energy.score_0_5``)
    with codes.
    """
    errors = Errors()
    refs = RefCollector()
    parsed = read(kind, data, mode, refs, errors)
    parsed.known_refs = resolve(SHAPES[kind], refs, errors, known)
    errors.raise_if_any()
    return parsed


def read(kind: str, data: Any, mode: str, refs: RefCollector, errors: Errors) -> Parsed:
    """The first half of :func:`parse`: the body checked against the schema (raised at once), then loaded
    into model terms by the shape's nodes, its Refs gathered in ``refs`` and its problems in ``errors``, both
    left to the caller (the importer reads a chunk of bodies, then resolves all their Refs at once)."""
    if not isinstance(data, dict):
        errors.add("", "invalid_shape", "The body must be a JSON object.")
        errors.raise_if_any()
    if mode == "patch" and not data:
        errors.add("", "empty_patch", "The body names no field to change.")
    problems = v.schema_errors(_body_validator(kind, mode), data)
    for path, message in problems:
        errors.add(path, _schema_code(message), message)
    errors.raise_if_any()
    parsed = Parsed(kind)
    body = {name: value for name, value in data.items() if name != "kind"}
    SHAPES[kind].body_group.load(body, "", parsed, errors, refs)
    return parsed


def resolve(shape: Shape, refs: RefCollector, errors: Errors, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """The second half of :func:`parse`: every Ref in ``refs`` (of bodies of ``shape``) checked against the
    object index in one query; returns what was found, {id: kind}."""
    expected = {path: kind_at(shape, path) for path in {path for _id, _kind, path in refs.wanted}}
    return refs.resolve(expected, errors, known)


def _schema_code(message: str) -> str:
    if message.startswith("Unexpected field"):
        return "unexpected_field"
    return "invalid_choice" if "allowed values" in message else "invalid"


def kind_at(shape: Shape, path: str) -> str:
    """The kind a Ref at contract ``path`` of ``shape`` must name (``relationships.blocks.2``: Issue)."""
    node: Node = Group(shape.nodes)
    for part in path.split("."):
        if part.isdigit():
            continue
        node = node.children[part]  # type: ignore[attr-defined]
    return node.kind  # type: ignore[attr-defined]


def error_path(kind: str, field_name: str) -> str:
    """The contract path of a model field named in an error (``inputs_data_blobs`` -> ``inputs.data_blobs``)."""
    return SHAPES[kind].column_paths().get(field_name, field_name)
