"""JSON Schema 2020-12 of each kind, from its shape: the object (``out``), a create body (``in``) and a
PATCH body (``patch``). Committed under ``cwom/spec/jsonschema`` (``manage.py cwom_jsonschema``), used by
the API's OpenAPI document and, compiled, by ``parse``."""

from __future__ import annotations

from typing import Any

from .kinds import PATCHABLE, SHAPES
from .nodes import Group, LinkRefs, leaves

SCHEMA_VERSION = "0.1"


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
            for path, node in leaves(nodes):
                if isinstance(node, LinkRefs) and not node.read_only:
                    _place(schema, path, node.patch_schema())
        title = f"{kind} ({'create' if mode == 'in' else 'update'} body)"
    suffix = "" if mode == "out" else f".{mode}"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://cwom.dev/schema/v{SCHEMA_VERSION}/{kind}{suffix}.json",
        "title": title,
        **schema,
    }


def _place(schema: dict[str, Any], path: str, replacement: dict[str, Any]) -> None:
    """Put ``replacement`` at the contract ``path`` of an object ``schema`` (through nested groups)."""
    *groups, name = path.split(".")
    for group in groups:
        schema = schema["properties"][group]
    schema["properties"][name] = replacement
