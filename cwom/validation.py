"""Validators for the small embedded shapes (Actor, Source, documents, ...) and the size caps.

The shapes are written once as JSON Schema fragments (``cwom.shapes`` assembles them into the
per-kind schemas); here they become Django validators so ``full_clean()`` enforces them on every
write path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema_rs
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from django.utils.deconstruct import deconstructible
from jsonschema import Draft202012Validator

from . import enums


def enum_schema(choices: type[enums.models.TextChoices], nullable: bool = False) -> dict[str, Any]:
    values: list[Any] = list(choices.values)
    if nullable:
        return {"enum": [*values, None]}
    return {"type": "string", "enum": values}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    if "enum" in schema:
        return {**schema, "type": [schema.get("type", "string"), "null"], "enum": [*schema["enum"], None]}
    if isinstance(schema.get("type"), str) and set(schema) <= {"type", "format", "maxLength", "minimum", "maximum"}:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def limit(name: str) -> int:
    return int(settings.CWOM_LIMITS[name])


def _blanks() -> str:
    """The characters ``str.strip()`` removes, as the inside of a regex character class, spelled with
    ``\\uXXXX`` escapes (read alike by Python, ECMA 262 and Rust regexes, unlike ``\\s``)."""
    blank = [code for code in range(0x10000) if chr(code).isspace()]
    runs: list[list[int]] = []
    for code in blank:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs)


# A regex character class body: what strip() removes (a value of only these is blank to the API).
BLANKS = _blanks()

STRING = {"type": "string", "maxLength": 4000}
TEXT = {"type": "string", "maxLength": 200_000}
SHORT = {"type": "string", "maxLength": 255}
URI = {"type": "string", "maxLength": 2048}
TIMESTAMP = {"type": "string", "format": "date-time"}
STR_LIST = {"type": "array", "items": STRING, "maxItems": 200}

ACTOR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "actor_kind": enum_schema(enums.ActorKind),
        "actor_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "display": {"type": "string", "maxLength": 255},
    },
    "required": ["actor_kind", "actor_id", "display"],
    "additionalProperties": False,
}
ACTOR_LIST = {"type": "array", "items": ACTOR, "maxItems": 200}

DOCUMENT = {
    "type": "object",
    "properties": {
        "title": SHORT,
        "uri": URI,
        "digest": nullable(SHORT),
        "excerpt": nullable(TEXT),
    },
    "required": ["title", "uri"],
    "additionalProperties": False,
}
DATA_BLOB = {
    "type": "object",
    "properties": {
        "name": SHORT,
        "media_type": SHORT,
        "uri": nullable(URI),
        "inline": nullable(TEXT),
        "digest": nullable(SHORT),
    },
    "required": ["name", "media_type"],
    "additionalProperties": False,
}
CHECK = {
    "type": "object",
    "properties": {
        "name": SHORT,
        "status": enum_schema(enums.VerificationStatus),
        "evidence_uri": nullable(URI),
    },
    "required": ["name", "status"],
    "additionalProperties": False,
}


def list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "maxItems": 200}


class CompiledSchema:
    """A schema ready to check values: ``is_valid`` answers fast, ``validator`` explains the errors.

    The yes/no is jsonschema-rs (Draft 2020-12, formats as annotations: the ``format`` keywords the kernel
    writes are ``date-time``, which jsonschema's format checker does not check either). Where the two could
    differ, jsonschema-rs is the stricter (a NaN against a bound, a ``$`` before a final newline), and a
    "no" always goes to jsonschema, which has the last word; a value jsonschema-rs cannot take (a lone
    surrogate, a key that is not a string) is checked by jsonschema alone.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        try:
            self.fast: Any = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
        except (ValueError, jsonschema_rs.ValidationError):  # a schema it cannot compile: jsonschema alone
            self.fast = None
        self.is_valid: Callable[[Any], bool] = self._is_valid if self.fast is not None else self.validator.is_valid

    def _is_valid(self, value: Any) -> bool:
        try:
            return bool(self.fast.is_valid(value))
        except ValueError:  # not a value jsonschema-rs can read
            return bool(self.validator.is_valid(value))


@cache
def _compile(schema_json: str) -> CompiledSchema:
    return CompiledSchema(json.loads(schema_json))


# The module's own schema constants, by identity: they never change, so they are found without encoding
# the schema again on every call (see ``compiled``).
_CONSTANTS: dict[int, tuple[dict[str, Any], CompiledSchema]] = {}


def compiled(schema: dict[str, Any]) -> CompiledSchema:
    """``schema`` compiled once; a schema built on the fly is found again by its canonical JSON."""
    known = _CONSTANTS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    return _compile(json.dumps(schema, sort_keys=True))


def _register_constants(*schemas: dict[str, Any]) -> None:
    for schema in schemas:
        _CONSTANTS[id(schema)] = (schema, _compile(json.dumps(schema, sort_keys=True)))


def schema_errors(schema: dict[str, Any] | CompiledSchema, value: Any) -> list[tuple[str, str]]:
    """(dotted path, message) for each way ``value`` breaks ``schema``; empty when it fits.

    ``schema`` may also be what :func:`compiled` returns (what callers on a hot path keep).
    """
    checked = schema if isinstance(schema, CompiledSchema) else compiled(schema)
    if checked.is_valid(value):  # the common case: nothing to sort or explain
        return []
    validator = checked.validator
    found = []
    for error in sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            # One error per unexpected key, at that key's own path.
            known = error.schema.get("properties", {})
            for key in sorted(set(error.instance) - set(known)):
                allowed = ", ".join(known) or "none"
                found.append((f"{path}.{key}" if path else key, f"Unexpected field {key!r}; allowed: {allowed}."))
            continue
        found.append((path, _message(error)))
    return found


def _message(error: Any) -> str:
    if error.validator == "enum":
        allowed = ", ".join("null" if v is None else str(v) for v in error.validator_value)
        return f"{error.instance!r} is not one of the allowed values: {allowed}."
    return str(error.message)


@deconstructible
class ShapeValidator:
    """Validates a JSON column against one of the shape fragments above, by name."""

    def __init__(self, shape: str) -> None:
        self.shape = shape

    def __call__(self, value: Any) -> None:
        checked = self.__dict__.get("_checked")
        if checked is None:
            checked = self.__dict__["_checked"] = compiled(SHAPES[self.shape])
        problems = schema_errors(checked, value)
        if problems:
            raise ValidationError(
                [
                    ValidationError(f"{path}: {msg}" if path else msg, code=_code(msg), params=None)
                    for path, msg in problems
                ]
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeValidator) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash(self.shape)


def _code(message: str) -> str:
    return "invalid_choice" if "allowed values" in message else "invalid_shape"


SHAPES: dict[str, dict[str, Any]] = {
    "actor": ACTOR,
    "actor_or_null": nullable(ACTOR),
    "actor_list": ACTOR_LIST,
    "str_list": STR_LIST,
    "str_list_or_null": nullable(STR_LIST),
    "documents": list_of(DOCUMENT),
    "data_blobs": list_of(DATA_BLOB),
    "checks": list_of(CHECK),
    "issue_types": list_of(enum_schema(enums.IssueType)),
}
_register_constants(ACTOR, *SHAPES.values())


def json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def validate_meta(value: Any) -> None:
    """``meta``: a JSON object, at most CWOM_LIMITS['meta_bytes'] when encoded, not absurdly nested."""
    if not isinstance(value, dict):
        raise ValidationError("meta must be a JSON object.", code="invalid_shape")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > limit("meta_bytes"):
        raise ValidationError(
            "meta is %(size)d bytes; the limit is %(limit)d.",
            code="too_large",
            params={"size": size, "limit": limit("meta_bytes")},
        )
    if json_depth(value) > limit("json_depth"):
        raise ValidationError("meta is nested too deeply.", code="too_deep")


def validate_tags(value: Any) -> None:
    """``tags``: a short list of short, non-empty, distinct strings."""
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValidationError("tags must be a list of strings.", code="invalid_shape")
    if len(value) > limit("tags_count"):
        raise ValidationError("at most %(n)d tags are allowed.", code="too_many", params={"n": limit("tags_count")})
    for tag in value:
        if not tag.strip() or len(tag) > limit("tag_length"):
            raise ValidationError(
                "each tag is 1 to %(n)d characters.", code="invalid_tag", params={"n": limit("tag_length")}
            )
    if len(set(value)) != len(value):
        raise ValidationError("tags must be distinct.", code="duplicate_tag")


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An ISO-8601 string as a datetime, or None when it is not one (malformed or impossible, e.g. minute 99).

    A naive result is returned as is: callers decide whether a missing timezone is an error. An aware one is
    in UTC: RFC 3339 allows offsets up to ±23:59, PostgreSQL takes ±15:59.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value.strip())
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is not None:
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:  # the first or last moments of the calendar: kept as written
            return moment
    return moment
