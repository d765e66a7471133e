"""Validators for the small embedded shapes (Actor, Source, documents, ...) and the size caps.

The shapes are written once as JSON Schema fragments (``cwom.shapes`` assembles them into the
per-kind schemas); here they become Django validators so ``full_clean()`` enforces them on every
write path.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
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
from .ids import ULID_RE

# A repo's slug (also accepted wherever a Ref to a Repo is).
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")


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
# A JSON Schema pattern: a string that is not blank and holds no NUL.
NOT_BLANK = f"^[^\\u0000]*[^{BLANKS}\\u0000][^\\u0000]*$"

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
    """(dotted path, message) for each way ``value`` breaks ``schema``; empty when it fits (see
    :func:`schema_problems`, which gives each one's code too)."""
    return [(path, message) for path, _code, message in schema_problems(schema, value)]


def schema_problems(schema: dict[str, Any] | CompiledSchema, value: Any) -> list[tuple[str, str, str]]:
    """(dotted path, code, message) for each way ``value`` breaks ``schema``; empty when it fits.

    Messages are written for the client, never jsonschema's own text: a missing field is reported at its
    own path, an unexpected one with the closest allowed name ("did you mean"), a value that fits none of
    a Ref's forms by the form its type is closest to (a string that is no id: "not a valid id").
    ``schema`` may also be what :func:`compiled` returns (what callers on a hot path keep).
    """
    checked = schema if isinstance(schema, CompiledSchema) else compiled(schema)
    if checked.is_valid(value):  # the common case: nothing to sort or explain
        return []
    found: list[tuple[str, str, str]] = []
    for error in sorted(checked.validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]):
        found += _explain(error)
    return found


def _join(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


_JSON_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {str: "a string", dict: "an object", list: "an array"}
    return names.get(type(value), type(value).__name__)


def _fits_type(value: Any, wanted: Any) -> bool:
    """Whether ``value`` has one of the JSON types ``wanted`` names (a schema's ``type``)."""
    for name in [wanted] if isinstance(wanted, str) else wanted:
        if name in ("number", "integer"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True
        elif isinstance(value, _JSON_TYPES.get(name, ())) and not (name != "boolean" and isinstance(value, bool)):
            return True
    return False


def _explain(error: Any) -> list[tuple[str, str, str]]:
    """One jsonschema error as ``(path, code, message)`` items a client can act on."""
    path = ".".join(str(part) for part in error.absolute_path)
    kind, instance, wanted = error.validator, error.instance, error.validator_value
    if kind == "additionalProperties" and isinstance(instance, dict):
        # One error per unexpected key, at that key's own path.
        allowed = list(error.schema.get("properties", {}))
        return [
            (_join(path, key), "unexpected_field", unexpected_field_message(key, allowed))
            for key in sorted(set(instance) - set(allowed))
        ]
    if kind == "required" and isinstance(instance, dict):
        return [(_join(path, name), "required", "This field is required.") for name in wanted if name not in instance]
    if kind in ("anyOf", "oneOf"):
        return _explain_alternatives(error, path)
    code, message = _explain_value(kind, instance, wanted)
    return [(path, code, message)]


def _explain_value(kind: str, instance: Any, wanted: Any) -> tuple[str, str]:
    """(code, message) of a value that breaks the keyword ``kind`` (with the keyword's value ``wanted``)."""
    shown = _shown(instance)
    if kind == "type":
        names = " or ".join([wanted] if isinstance(wanted, str) else wanted)
        return "invalid_type", f"Expected {names}, got {_type_name(instance)}."
    if kind == "enum":
        allowed = ", ".join("null" if v is None else str(v) for v in wanted)
        return "invalid_choice", f"{shown} is not one of the allowed values: {allowed}."
    if kind == "const":
        return "invalid_choice", f"Must be {_shown(wanted)}, got {shown}."
    if kind == "pattern":
        if wanted == ULID_RE.pattern:
            return "invalid_id", f"{shown} is not a valid id ({ID_FORM})."
        if wanted == SLUG_RE.pattern:
            return "invalid", f"{shown} is not a valid slug ({SLUG_FORM})."
        return "invalid", f"{shown} does not have the expected form."
    if kind == "minLength" and instance == "":
        return "empty_value", "Must not be empty."
    if kind in ("maxLength", "minLength"):
        bound, code = ("at most", "too_long") if kind == "maxLength" else ("at least", "too_short")
        return code, f"Must be {bound} {wanted} characters long (got {len(instance)})."
    if kind in ("maxItems", "minItems"):
        bound, code = ("at most", "too_many") if kind == "maxItems" else ("at least", "too_few")
        return code, f"Must have {bound} {wanted} items (got {len(instance)})."
    if kind in _RELATIONS:
        return "out_of_range", f"Must be {_RELATIONS[kind]} {wanted} (got {shown})."
    if kind == "format":
        return ("invalid_datetime" if wanted == "date-time" else "invalid"), f"{shown} is not a valid {wanted}."
    return "invalid", f"{shown} does not fit this field ({kind})."


ID_FORM = "a ULID: 26 characters of Crockford base32"
SLUG_FORM = "letters, digits, '-' and '_'"
_RELATIONS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _explain_alternatives(error: Any, path: str) -> list[tuple[str, str, str]]:
    """A value that fits none of an ``anyOf``/``oneOf``: explained by the alternative of its own type (a Ref
    given as an object: that object's errors); a string that is neither a Repo's id nor its slug says so."""
    fitting = _fitting_branches(error)
    if len(fitting) == 1:
        return [item for sub in fitting[0] for item in _explain(sub)]
    patterns = {sub.validator_value for branch in fitting for sub in branch if sub.validator == "pattern"}
    if patterns == {ULID_RE.pattern, SLUG_RE.pattern}:
        message = f"{_shown(error.instance)} is not a valid id ({ID_FORM}) nor a repo slug ({SLUG_FORM})."
        return [(path, "invalid_id", message)]
    if fitting:
        return [item for sub in fitting[0] for item in _explain(sub)]
    return [(path, "invalid", f"{_shown(error.instance)} fits none of the accepted forms.")]


def _fitting_branches(error: Any) -> list[list[Any]]:
    """The errors of each alternative of an ``anyOf``/``oneOf`` whose type the value has."""
    branches: dict[int, list[Any]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return [
        branches[index]
        for index, alternative in enumerate(error.validator_value)
        if branches.get(index) and ("type" not in alternative or _fits_type(error.instance, alternative["type"]))
    ]


def unexpected_field_message(key: str, allowed: list[str]) -> str:
    """The message for an unexpected key: the closest allowed name ("Did you mean 'title'?"), else them all."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f"Unexpected field {key!r}. Did you mean {close[0]!r}?"
    return f"Unexpected field {key!r}; allowed: {', '.join(allowed) or 'none'}."


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@deconstructible
class ShapeValidator:
    """Validates a JSON column against one of the shape fragments above, by name."""

    def __init__(self, shape: str) -> None:
        self.shape = shape

    def __call__(self, value: Any) -> None:
        checked = self.__dict__.get("_checked")
        if checked is None:
            checked = self.__dict__["_checked"] = compiled(SHAPES[self.shape])
        problems = schema_problems(checked, value)
        if problems:
            raise ValidationError(
                [
                    ValidationError(f"{path}: {message}" if path else message, code=code, params=None)
                    for path, code, message in problems
                ]
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeValidator) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash(self.shape)


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
