"""The fast yes/no of cwom.validation (jsonschema-rs) agrees with jsonschema on every schema the kernel writes.

``schema_errors`` asks jsonschema only when the fast check says no, so a fast "yes" that jsonschema would
refuse lets a bad value through: values here are drawn near each schema (right shapes, wrong types,
edge lengths and bounds, missing and unexpected keys) and both verdicts must match.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from cwom import enums, shapes
from cwom import validation as v

ODD_VALUES: list[Any] = [None, True, False, 0, 1, -1, 1.0, 2.5, -0.5, 10**20, "", "x", "P2", [], {}, [None], {"a": 1}]


def near(schema: Any, rng: random.Random, wrong: float, depth: int = 0) -> Any:
    """A value shaped by ``schema``; each part is off (wrong type, length, bound, key) with odds ``wrong``."""

    def off() -> bool:
        return rng.random() < wrong

    if off() or depth > 6 or not isinstance(schema, dict):
        return rng.choice(ODD_VALUES)
    if "anyOf" in schema:
        return near(rng.choice(schema["anyOf"]), rng, wrong, depth + 1)
    if "enum" in schema:
        return "not-in-enum" if off() else rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"] + "x" if off() else schema["const"]
    kind = schema.get("type", "string")
    kind = rng.choice(kind) if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        body = {
            name: near(sub, rng, wrong, depth + 1)
            for name, sub in props.items()
            if (name in required and not off()) or rng.random() < 0.5
        }
        if off():
            body["unexpected"] = 1
        return body
    if kind == "array":
        limit = schema.get("maxItems", 3)
        size = limit + 1 if off() and limit < 5 else rng.choice([0, 1, min(limit, 2)])
        return [near(schema.get("items", {}), rng, wrong, depth + 1) for _ in range(size)]
    if kind in ("number", "integer"):
        low, high = schema.get("minimum", -5), schema.get("maximum", 10**6)
        if off():
            return rng.choice([low - 1, high + 1, 3.5, True, "3"])
        return rng.choice([low, high, (low + high) // 2, float(low)])
    if kind == "boolean":
        return 0 if off() else rng.choice([True, False])
    if kind == "null":
        return 0 if off() else None
    if "pattern" in schema:
        return rng.choice(["01arz3ndektsv4rrffq69g5fav", "8" * 26, "x"]) if off() else "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    length = min(schema.get("maxLength", 10), 300)
    if off():
        return rng.choice(["a" * (length + 1), 7, None]) if length < 300 else 7
    return "a" * rng.choice([schema.get("minLength", 0), length])


SCHEMAS = [
    *(shapes.json_schema(kind, mode) for kind in enums.Kind.values for mode in ("in", "patch", "out")),
    *v.SHAPES.values(),
    v.ACTOR,
]


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_the_fast_check_agrees_with_jsonschema(index: int) -> None:
    schema = SCHEMAS[index]
    checked = v.compiled(schema)
    rng = random.Random(index)  # noqa: S311 - test data, not secrets
    verdicts = set()
    for i in range(300):
        value = near(schema, rng, wrong=0.0 if i % 3 == 0 else 0.03 if i % 3 == 1 else 0.2)
        verdict = checked.validator.is_valid(value)
        assert checked.is_valid(value) == verdict, value
        verdicts.add(verdict)
    assert verdicts == {True, False}  # both sides were tried


def test_every_kernel_schema_has_a_fast_check() -> None:
    for schema in SCHEMAS:
        assert v.compiled(schema).fast is not None, schema.get("title")


@pytest.mark.parametrize("value", ["\ud800", {1: "x"}, {"a": float("nan")}, [1, 2**70]])
def test_values_the_fast_check_cannot_read_get_jsonschemas_verdict(value: Any) -> None:
    for schema in SCHEMAS:
        checked = v.compiled(schema)
        assert checked.is_valid(value) == checked.validator.is_valid(value)
