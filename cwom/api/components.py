"""Named components: every object and every enum of the OpenAPI document declared once.

The kernel's JSON Schemas (``cwom.shapes.json_schema``) are self-contained: each kind's schema repeats
the Actor, the Refs and the enums it uses. A client generator turns each repetition into its own class
(an ``IssueCreatedByActorKind`` beside a ``RunExecutorActorActorKind``), so :func:`name_components`
(a postprocessing hook, run last) factors them out of the finished document:

- the shared fragments get the names a reader expects, each computed from the kernel's own definition
  (never retyped here): ``Actor``, ``Document``, ``DataBlob``, ``Check``, ``Meta``, ``Ref`` (to any kind),
  ``<Kind>Ref`` (to one kind, ``kind`` a constant), ``RefById`` (a Ref as a body may send it), and one
  component per enum of :mod:`cwom.enums` (``Status``, ``Priority``, ``Kind``, ...);
- every other nested object or enum becomes a component named after where it sits
  (``ContextPacketInputs``, ``IssueOrdering``), and identical schemas share one component.

A single-valued enum (``{"enum": ["Issue"]}``) is written as the equivalent ``const``: it is a value, not a
type. What a schema accepts never changes: only where it is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import models

from cwom import enums, shapes
from cwom import validation as v

from .schema import PROBLEM_SCHEMA
from .views import KIND_PATHS

COMPONENTS = "#/components/schemas/"
KIND_OF_SEGMENT = {segment: kind for kind, segment in KIND_PATHS.items()}
# Keywords whose value is one subschema / a map of subschemas / a list of subschemas.
ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")
MAP = ("properties", "patternProperties", "$defs")
LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
SITE_KEYS = ("default", "description", "examples", "deprecated", "readOnly", "writeOnly")


def pascal(*parts: str) -> str:
    return "".join(word[:1].upper() + word[1:] for part in parts for word in re.split(r"[^0-9A-Za-z]+", part) if word)


def text_choices() -> list[type[models.TextChoices]]:
    """The enums of the contract, in declaration order."""
    return [
        value
        for value in vars(enums).values()
        if isinstance(value, type) and issubclass(value, models.TextChoices) and value.__module__ == enums.__name__
    ]


def known_fragments() -> list[tuple[str, dict[str, Any]]]:
    """(name, schema) of the fragments with a name of their own, from their kernel definitions."""
    ref_by_id = shapes.ref_input_schema(enums.Kind.ISSUE)["anyOf"][1]
    found: list[tuple[str, dict[str, Any]]] = [(choices.__name__, v.enum_schema(choices)) for choices in text_choices()]
    found += [
        ("Actor", v.ACTOR),
        ("Document", v.DOCUMENT),
        ("DataBlob", v.DATA_BLOB),
        ("Check", v.CHECK),
        ("Meta", shapes.META),
        ("Ref", shapes.ref_schema(None)),
        ("RefById", ref_by_id),
        ("FieldError", PROBLEM_SCHEMA["properties"]["errors"]["items"]),
    ]
    found += [(f"{kind}Ref", shapes.ref_schema(kind)) for kind in enums.Kind.values]
    return found


class ComponentNamer:
    """Lifts nested objects and enums of schemas into ``components/schemas``, one component per content."""

    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components
        self.by_content: dict[str, str] = {
            self._key(schema): name for name, schema in components.items() if isinstance(schema, dict)
        }

    @staticmethod
    def _key(schema: Any) -> str:
        return json.dumps(schema, sort_keys=True, default=str)

    def declare(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        """A reference to ``schema`` as a component: the existing one with this content, else a new one."""
        key = self._key(schema)
        if key not in self.by_content:
            unique, n = name, 2
            while unique in self.components:
                unique, n = f"{name}{n}", n + 1
            self.components[unique] = schema
            self.by_content[key] = unique
        return {"$ref": COMPONENTS + self.by_content[key]}

    def children(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        """``schema`` with each nested object or enum replaced by a reference (``name``: where it sits)."""
        out = dict(schema)
        for keyword in ONE:
            if isinstance(out.get(keyword), dict):
                out[keyword] = self.lift(out[keyword], name + ("Item" if keyword == "items" else ""))
        for keyword in MAP:
            if isinstance(out.get(keyword), dict):
                out[keyword] = {key: self.lift(sub, name + pascal(key)) for key, sub in out[keyword].items()}
        for keyword in LIST:
            if isinstance(out.get(keyword), list):
                out[keyword] = [self.lift(sub, name) if isinstance(sub, dict) else sub for sub in out[keyword]]
        return out

    def lift(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        """``schema``, itself a reference if it is an object or an enum."""
        if "$ref" in schema:
            return schema
        enum = schema.get("enum")
        if isinstance(enum, list) and None in enum:  # a nullable enum: the enum, or null
            kept = {key: value for key, value in schema.items() if key not in ("type", "enum")}
            values = [value for value in enum if value is not None]
            base = {"type": "string", "enum": values} if all(isinstance(x, str) for x in values) else {"enum": values}
            return {**kept, "anyOf": [self.lift(base, name), {"type": "null"}]}
        types = schema.get("type")
        if isinstance(types, list) and "object" in types and "null" in types:  # an object or null
            rest = [kind for kind in types if kind != "null"]
            base = {**schema, "type": rest[0] if len(rest) == 1 else rest}
            return {"anyOf": [self.lift(base, name), {"type": "null"}]}
        if isinstance(enum, list) and len(enum) == 1:
            return {**{key: value for key, value in schema.items() if key != "enum"}, "const": enum[0]}
        name = schema.get("title", name)
        schema = self.children(schema, name)
        if not (isinstance(enum, list) or schema.get("type") == "object"):
            return schema
        # What belongs to the place (a default, an enum's description there) stays beside the reference.
        local = SITE_KEYS if isinstance(enum, list) else ("default",)
        here = {key: schema.pop(key) for key in local if key in schema}
        return {**self.declare(schema.pop("title", name), schema), **here}  # a title names its component

    def component(self, name: str) -> None:
        """A top-level component with its own nested objects and enums lifted."""
        schema = self.components[name]
        if isinstance(schema, dict) and "$ref" not in schema:
            self.components[name] = self.children(schema, name)
            self.by_content.setdefault(self._key(self.components[name]), name)


def _operation_name(path: str, method: str, operation: dict[str, Any]) -> str:
    segments = [segment for segment in path.split("/")[3:] if segment and not segment.startswith("{")]
    if segments and segments[-1] == "events" or segments == ["events"]:
        return "Event"
    if segments and segments[0] in KIND_OF_SEGMENT and len(segments) == 1:
        return str(KIND_OF_SEGMENT[segments[0]])
    return pascal(operation.get("operationId") or f"{method}_{path}")


# Strings and keys never hold NUL (cwom.api.parsers and the filters refuse it: PostgreSQL cannot store it).
NO_NUL = "^[^\\u0000]*$"


def without_nul(schema: Any) -> Any:
    """``schema`` with every free string (no pattern, format, enum or const of its own) refusing NUL, and
    every free-form object's keys too."""
    if isinstance(schema, list):
        return [without_nul(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: (value if key in ("examples", "example", "default", "const", "enum") else without_nul(value))
        for key, value in schema.items()
    }
    types = out.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and not {"pattern", "format", "enum", "const"} & set(out):
        out["pattern"] = NO_NUL
    if types == "object" and "properties" not in out and "propertyNames" not in out:
        out["propertyNames"] = {"pattern": NO_NUL}
        out.setdefault("additionalProperties", json_value(FREE_FORM_DEPTH))
    return out


# How many containers deep the document follows the values of a free-form object (``meta``) to say that no
# string or key in them holds NUL; below that, any JSON. Written out level by level, so kept shallow: client
# generators cannot follow a recursive union, and a fuzzer expands each level twice (arrays, objects).
FREE_FORM_DEPTH = 3


def json_value(depth: int) -> dict[str, Any]:
    """A JSON value without NUL in its strings and keys, followed ``depth`` containers deep."""
    scalars = [{"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
    if depth == 0:
        deeper = {"title": "JsonObject0", "type": "object", "description": "Any JSON object."}
        return {"anyOf": [*scalars, {"type": "array", "items": {}}, deeper]}
    inner = json_value(depth - 1)
    return {
        "anyOf": [
            *scalars,
            {"type": "array", "items": inner},
            {
                "title": f"JsonObject{depth}",
                "type": "object",
                "description": "A JSON object (no NUL in its keys and strings).",
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": inner,
            },
        ]
    }


def name_components(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every object and enum of the document as a named component, each once."""
    result = without_nul(result)
    components = result.setdefault("components", {}).setdefault("schemas", {})
    namer = ComponentNamer(components)
    for name, fragment in known_fragments():
        namer.declare(name, namer.children(without_nul(json.loads(json.dumps(fragment))), name))
    # Objects before their create bodies before their PATCH bodies: a shared part is named after the first.
    for name in sorted(components, key=lambda name: (name.startswith("Patched"), name.endswith("Request"), name)):
        namer.component(name)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            base = _operation_name(path, method, operation)
            for parameter in operation.get("parameters", []):
                where = "schema" if "schema" in parameter else None
                if where:
                    parameter["schema"] = namer.lift(parameter["schema"], base + pascal(parameter["name"]))
                for media in parameter.get("content", {}).values():
                    media["schema"] = namer.lift(media["schema"], base + pascal(parameter["name"]))
            op_name = pascal(operation.get("operationId") or f"{method}_{path}")
            body = operation.get("requestBody", {})
            for media in body.get("content", {}).values():
                if isinstance(media.get("schema"), dict):
                    media["schema"] = namer.lift(media["schema"], op_name + "Request")
            for status, response in operation.get("responses", {}).items():
                for media in response.get("content", {}).values():
                    if isinstance(media.get("schema"), dict):
                        media["schema"] = namer.lift(media["schema"], f"{op_name}Response{status}")
                for header in response.get("headers", {}).values():
                    if isinstance(header.get("schema"), dict):
                        header["schema"] = namer.lift(header["schema"], op_name + "Header")
    result["components"]["schemas"] = dict(sorted(components.items()))
    return result
