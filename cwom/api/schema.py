"""drf-spectacular glue: the OpenAPI 3.1 document is built from the kernel's JSON Schemas.

- Components: each kind's object (``Issue``), create body (``IssueRequest``) and PATCH body
  (``PatchedIssueRequest``) are exactly ``cwom.shapes.json_schema(kind, "out"|"in"|"patch")``
  (JSON Schema 2020-12, which OpenAPI 3.1 uses natively); ``Event``, ``RunLineage`` and ``Problem`` are
  the API's own.
- :class:`CwomAutoSchema` derives summaries, descriptions, examples and the special operations
  (``seal``, ``lineage``, ``events``) from the view's kind and action, so no viewset repeats them.
- :func:`document_errors` (a postprocessing hook) adds the problem-details responses every operation can
  give, with examples, and the headers (``Idempotency-Key``, ``If-Match``, ``X-CWOM-Actor``, ``ETag``,
  ``Location``, ``Retry-After``).
- :func:`canonical_paths` (a preprocessing hook) documents each route once, without the optional slash.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from django.db.models import Field
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiFilterExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiExample

from cwom import shapes
from cwom.enums import Kind
from cwom.spec import example

from . import filters
from .serializers import EVENT_SCHEMA, LINK_LIST_ACTIONS, EventSerializer, KindSerializer

COMPONENTS = "#/components/schemas/"


def _prune(value: Any, schema: dict[str, Any]) -> Any:
    """Keep only what a write body accepts (drops read-only fields such as ``id``, ``runs``)."""
    if isinstance(value, dict) and "properties" in schema:
        return {k: _prune(v, schema["properties"][k]) for k, v in value.items() if k in schema["properties"]}
    return value


def body_example(kind: str, mode: str) -> dict[str, Any]:
    body = _prune(example(kind), shapes.json_schema(kind, mode))
    body.pop("id", None)
    body.pop("kind", None)
    return body


def component_schema(kind: str, mode: str) -> dict[str, Any]:
    """The kernel's JSON Schema of ``kind`` as a component: named by the component (no ``title``), and a
    create body declares the defaults the model applies to what it leaves out."""
    schema = json.loads(json.dumps(shapes.json_schema(kind, mode)))
    for key in ("$schema", "$id", "title"):
        schema.pop(key, None)
    if mode == "in":
        declare_defaults(kind, schema)
    return schema


def declare_defaults(kind: str, schema: dict[str, Any]) -> None:
    """Each writable column's model default, at its contract path in ``schema`` (a constant, ``[]`` or ``{}``;
    generated values such as ids and timestamps are not defaults a client could rely on)."""
    shape = shapes.SHAPES[kind]
    for path, node in shapes.leaves(shape.nodes):
        if type(node) is not shapes.Col or node.read_only or node.column == "id":
            continue
        field = shape.model._meta.get_field(node.column)
        if not isinstance(field, Field) or not field.has_default():
            continue
        default = field.default
        if callable(default):
            if default not in (list, dict):
                continue
            default = default()
        target = schema
        for part in path.split("."):
            target = target.get("properties", {}).get(part, {})
        if target:
            target["default"] = default.value if hasattr(default, "value") else default


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"{COMPONENTS}{name}"}


# Components declared by name outside the kinds (the execution app's bodies): built when the document is.
NAMED: dict[str, Callable[[], dict[str, Any]]] = {}


def named(name: str, schema: Callable[[], dict[str, Any]]) -> dict[str, str]:
    """Declare the component ``name`` (``schema()`` builds it, with the settings of the moment); a reference."""
    if NAMED.setdefault(name, schema) is not schema:
        raise ValueError(f"Component {name} is declared twice.")
    return ref(name)


def inlined(schema: Any) -> Any:
    """``schema`` with the references this module declares (:func:`named` ones, and a kind's create body,
    ``<Kind>Request``) replaced by what they name: a schema that stands alone (an MCP tool's arguments)."""
    if isinstance(schema, list):
        return [inlined(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    target = schema.get("$ref", "")
    if len(schema) == 1 and target.startswith(COMPONENTS):
        name = target.removeprefix(COMPONENTS)
        if name in NAMED:
            return inlined(NAMED[name]())
        kind = name.removesuffix("Request")
        if name.endswith("Request") and kind in Kind.values:
            return inlined(component_schema(kind, "in"))
    return {key: inlined(value) for key, value in schema.items()}


# --- extensions -------------------------------------------------------------------------------------
class KindSerializerExtension(OpenApiSerializerExtension):
    """A kind's serializer is documented by the kernel's JSON Schema for it."""

    target_class = KindSerializer
    match_subclasses = True

    def get_name(self, auto_schema: AutoSchema, direction: str) -> str:
        return str(self.target.kind)

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        kind = self.target.kind
        if direction == "response":
            return component_schema(kind, "out")
        return component_schema(kind, "patch" if getattr(self.target, "partial", False) else "in")


# Paths of the lists under an object (cursor-paged, no ETag).
SUB_LISTS = ("/events", *(f"/{name}" for name in LINK_LIST_ACTIONS))


class EventSerializerExtension(OpenApiSerializerExtension):
    """The history feed's event."""

    target_class = EventSerializer

    def get_name(self, auto_schema: AutoSchema, direction: str) -> str:
        return "Event"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = copy.deepcopy(EVENT_SCHEMA)
        schema.pop("title", None)
        return schema


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer cwom_<key>_<secret>``."""

    target_class = "cwom.api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cwom_<key_id>_<secret>",
            "description": "An API token created by an operator (`manage.py cwom_token`), read-only or "
            "read-write, and optionally expiring (past it: 401 `token_expired`). Send `Authorization: Bearer "
            "cwom_...` (the `Token` scheme is accepted too). Reads need any token; writes need a read-write token. "
            "Calls without a valid credential are rate-limited per client address (429 `throttled`).",
        }


class CwomFilterDocs(OpenApiFilterExtension):
    """Each filter of a kind's FilterSet as a query parameter, with its own schema."""

    target_class = filters.CwomFilterBackend
    priority = 1

    def get_schema_operation_parameters(self, auto_schema: AutoSchema, *args: Any, **kwargs: Any) -> list[Any]:
        view = auto_schema.view
        if getattr(view, "action", None) != "list":
            return []
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is None:
            return []
        parameters = []
        for name, flt in filterset_class.base_filters.items():
            schema = flt.openapi_schema() if hasattr(flt, "openapi_schema") else {"type": "string"}
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": False,
                "description": filters.filter_description(name, flt),
                "schema": schema,
            }
            if schema.get("type") == "array":
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
        return parameters


# --- the AutoSchema -----------------------------------------------------------------------------------
LINEAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A run's whole chain: Issue + ContextPackets + ConstraintSnapshot + DoctrineRefs -> Run -> "
    "Artifacts, each object in the contract's shape.",
    "properties": {
        "run": ref(Kind.RUN),
        "repo": ref(Kind.REPO),
        "issue": ref(Kind.ISSUE),
        "context_packets": {"type": "array", "items": ref(Kind.CONTEXT_PACKET)},
        "constraint_snapshot": {"anyOf": [ref(Kind.CONSTRAINT_SNAPSHOT), {"type": "null"}]},
        "doctrine_refs": {"type": "array", "items": ref(Kind.DOCTRINE_REF)},
        "artifacts": {
            "type": "array",
            "items": ref(Kind.ARTIFACT),
            "maxItems": shapes.NEWEST,
            "description": "The run's outputs.artifacts, newest first; all of them: the run's outputs.artifacts_url.",
        },
    },
    "required": ["run", "repo", "issue", "context_packets", "constraint_snapshot", "doctrine_refs", "artifacts"],
    "additionalProperties": False,
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The process answers (and, for readyz, its database).",
    "properties": {"status": {"type": "string", "enum": ["ok"]}, "database": {"type": "string", "enum": ["ok"]}},
    "required": ["status"],
}

SUMMARIES = {
    "list": "List {plural} (filtered, cursor-paged)",
    "retrieve": "Get one {kind}",
    "create": "Create {a} {kind}",
    "partial_update": "Change {a} {kind}",
    "events": "History of one {kind}",
    "context_packets": "All context packets linked to an issue",
    "constraints": "All constraint snapshots linked to an issue",
    "seal": "Seal a draft context packet",
    "lineage": "The run's whole chain",
}

DESCRIPTIONS = {
    "list": "Several values of one filter OR together (repeat the parameter or separate with commas); "
    "filters AND together. Unknown parameters, unknown enum values and empty values (`?status=`; only `q` "
    "may be empty) are a 400: leave a parameter out rather than send it empty.",
    "retrieve": "The object in the contract's shape, with an `ETag` to send back in `If-Match`.",
    "create": "The body is the contract's shape without the server-set fields; a Ref may be a bare id. "
    "`Idempotency-Key` makes retries safe. Answers 201 with `Location` and `ETag`.",
    "partial_update": "Only the fields sent change. Send `If-Match` with the ETag you read to refuse a lost "
    'update (412). A link list changes by `{"add": [...], "remove": [...]}`; a whole list replaces it '
    "only under `If-Match` (428 otherwise), and never a bounded list (422 `bounded_list`).",
    "events": "Every recorded change of this object (create, update, seal, transition), oldest first.",
    "context_packets": "The issue's `context_packets`, whole, as Refs with their roles, newest first (the "
    "issue's representation shows the newest 20 and `context_packets_total`).",
    "constraints": "The issue's `constraints`, whole, as Refs, newest first (the issue's representation shows "
    "the newest 20 and `constraints_total`).",
    "seal": "One-way: a sealed packet never changes again. Sealing a sealed packet is a 409 `sealed`.",
    "lineage": "Repo, issue, context packets, constraint snapshot, doctrine refs (the run's and its packets') "
    "and artifacts, in one response: what an agent loads to start or audit a run.",
}

PATCH_RULES: dict[str, str] = {
    Kind.CONTEXT_PACKET: ' Only a draft may change (409 `immutable` once sealed); `"sealed": true` seals it.',
    Kind.RUN: " `status` moves the state machine: illegal moves are a 409 `illegal_transition` listing "
    "`legal_moves`; `failed` needs a `failure`; inputs freeze at the start; `decision_log` only grows.",
    Kind.ARTIFACT: " Only `verification` (and tags/meta) may change.",
    Kind.REPO: " The slug never changes.",
}


# operationId = <tag>_<verb>: a generated client reads ``api.runs.runs_get``, ``api.runs.runs_cancel``.
VERBS = {
    "list": "list",
    "retrieve": "get",
    "create": "create",
    "partial_update": "update",
    "events": "events",
    "context_packets": "context_packets",
    "constraints": "constraints",
    "seal": "seal",
    "lineage": "lineage",
}
SYSTEM_VIEWS = {"HealthView": "system_health", "ReadyView": "system_ready", "ObjectView": "objects_get"}


class CwomAutoSchema(AutoSchema):
    """Operation docs derived from the view's kind and action (one place for all seven kinds)."""

    def _kind(self) -> str | None:
        return getattr(self.view, "kind", None) or None

    def get_tags(self) -> list[str]:
        name = SYSTEM_VIEWS.get(type(self.view).__name__)
        if name and "_" in name:
            return [name.split("_")[0]]
        return super().get_tags()

    def get_operation_id(self) -> str:
        view_name = type(self.view).__name__
        if view_name in SYSTEM_VIEWS:
            return SYSTEM_VIEWS[view_name]
        act = getattr(self.view, "action", None)
        if act in VERBS:
            return f"{self.get_tags()[0]}_{VERBS[act]}"
        return super().get_operation_id()

    def get_summary(self) -> str | None:
        kind, act = self._kind(), getattr(self.view, "action", None)
        if kind and act in SUMMARIES:
            plural = type(self.view).__name__.removesuffix("ViewSet")
            article = "an" if kind[0] in "AEIOU" else "a"
            return SUMMARIES[act].format(kind=kind, a=article, plural=f"{plural}s")
        return super().get_summary()

    def get_description(self) -> str:  # type: ignore[override]
        kind, act = self._kind(), getattr(self.view, "action", None)
        if kind and act in DESCRIPTIONS:
            text = DESCRIPTIONS[act]
            if act == "partial_update":
                text += PATCH_RULES.get(kind, "")
            return text
        return super().get_description()

    def get_request_serializer(self) -> Any:
        if getattr(self.view, "action", None) in ("seal", "events", "lineage", *LINK_LIST_ACTIONS):
            return None
        return super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        act = getattr(self.view, "action", None)
        if act == "events":
            return EventSerializer(many=True)
        if act in LINK_LIST_ACTIONS:
            page = {"type": "array", "items": ref(f"{LINK_LIST_ACTIONS[act]}Ref")}
            return {200: self._get_paginator().get_paginated_response_schema(page)}
        if act == "lineage":
            self._register("RunLineage", LINEAGE_SCHEMA)
            return {200: ref("RunLineage")}
        view_name = type(self.view).__name__
        if view_name == "ObjectView":
            return {200: {"oneOf": [ref(kind) for kind in Kind.values], "discriminator": {"propertyName": "kind"}}}
        if view_name in ("HealthView", "ReadyView"):
            self._register("Health", STATUS_SCHEMA)
            return {200: ref("Health")}
        return super().get_response_serializers()

    def _register(self, name: str, schema: dict[str, Any]) -> None:
        self.registry.register_on_missing(
            ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        )

    def get_examples(self) -> list[OpenApiExample]:
        kind, act = self._kind(), getattr(self.view, "action", None)
        if not kind or act not in ("list", "retrieve", "create", "partial_update", "seal"):
            return []
        found = [OpenApiExample(kind, value=example(kind), response_only=True, status_codes=["200", "201"])]
        if act == "create":
            found.append(OpenApiExample(f"New {kind}", value=body_example(kind, "in"), request_only=True))
        if act == "partial_update":
            found.append(OpenApiExample(f"{kind} change", value=_patch_example(kind), request_only=True))
        return found


def _patch_example(kind: str) -> dict[str, Any]:
    examples: dict[str, dict[str, Any]] = {
        Kind.ISSUE: {"status": "ready", "priority": "P1"},
        Kind.RUN: {"status": "running"},
        Kind.ARTIFACT: {"verification": {"status": "passed", "checks": []}},
        Kind.CONTEXT_PACKET: {"summary": "Updated draft summary."},
        Kind.REPO: {"name": "Control Tower (renamed)"},
    }
    return examples.get(kind, {"tags": ["example"]})


# --- hooks --------------------------------------------------------------------------------------------
def canonical_paths(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """Preprocessing hook: one entry per route, documented without the optional trailing slash."""
    kept = []
    seen = set()
    for path, path_regex, method, callback in endpoints:
        if getattr(callback, "cls", None) is not None and callback.cls.__name__ == "NotFoundView":
            continue
        path = path.rstrip("/") if path != "/" else path
        if (path, method) in seen:
            continue
        seen.add((path, method))
        kept.append((path, path_regex, method, callback))
    return kept


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details: the body of every 4xx/5xx answer (media type application/problem+json).",
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "https://cwom.dev/problems/<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for humans."},
        "code": {"type": "string", "description": "Stable machine-readable code (e.g. sealed, illegal_transition)."},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Contract path in the body, or a query parameter."},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["path", "code", "message"],
            },
        },
        "legal_moves": {"type": "array", "items": {"type": "string"}, "description": "illegal_transition only."},
        "current_status": {"type": ["string", "null"]},
        "requested_status": {"type": "string"},
        "expected_status": {"type": "string"},
        "current_etag": {"type": "string", "description": "precondition_failed only."},
        "expired_at": {"type": "string", "format": "date-time", "description": "token_expired only."},
    },
    "required": ["type", "title", "status", "detail", "code", "errors"],
}


def _problem_example(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    from .errors import problem_body

    errors = extra.pop("errors", [])
    return problem_body(status, code, detail, errors, "/api/v1/...", **extra)


# Status -> (description, example problem); a list of (name, problem) when one status has several codes.
ERROR_RESPONSES: dict[str, tuple[str, dict[str, Any] | list[tuple[str, dict[str, Any]]]]] = {
    "400": (
        "The request breaks its documented shape: body, query parameter or header (unknown enum values name "
        "the allowed ones); or it is not valid HTTP.",
        _problem_example(
            400,
            "invalid_choice",
            "type: 'epic' is not one of the allowed values: feature, bug, chore, research, ops, doc, incident.",
            errors=[
                {
                    "path": "type",
                    "code": "invalid_choice",
                    "message": "'epic' is not one of the allowed values: "
                    "feature, bug, chore, research, ops, doc, incident.",
                }
            ],
        ),
    ),
    "401": (
        "No credential (`not_authenticated`); an unknown, revoked or malformed token (`authentication_failed`); "
        "or the right secret of a token past its expiry (`token_expired`, saying when in `detail` and `expired_at`). "
        "Answers carry `WWW-Authenticate`.",
        [
            (
                "not_authenticated",
                _problem_example(401, "not_authenticated", "Authentication credentials were not provided."),
            ),
            ("authentication_failed", _problem_example(401, "authentication_failed", "Invalid or revoked token.")),
            (
                "token_expired",
                _problem_example(
                    401,
                    "token_expired",
                    "This token expired at 2027-01-31T18:00:00Z; ask an operator for a new one.",
                    expired_at="2027-01-31T18:00:00Z",
                ),
            ),
        ],
    ),
    "403": (
        "The credential is read-only.",
        _problem_example(403, "read_only", "This credential is read-only: writing needs a read-write token."),
    ),
    "404": (
        "No object with this id.",
        _problem_example(404, "not_found", "No Issue has id 01JD0Z8K3M5Q7R9T1V3X5Z7SSE."),
    ),
    "405": (
        "This kind never changes after creation.",
        _problem_example(
            405,
            "method_not_allowed",
            "ConstraintSnapshot objects never change after creation: create a new one instead.",
        ),
    ),
    "409": (
        "State conflict: sealed or immutable object, illegal run transition (with legal_moves), duplicate key.",
        _problem_example(
            409,
            "illegal_transition",
            "A run cannot move from planned to done. Legal moves from planned: canceled, ready.",
            current_status="planned",
            requested_status="done",
            legal_moves=["canceled", "ready"],
        ),
    ),
    "412": (
        "If-Match does not match the current ETag.",
        _problem_example(
            412,
            "precondition_failed",
            "The object changed since you read it (If-Match does not match its ETag).",
            current_etag='"5d41402abc4b2a76b9719d911017c592"',
        ),
    ),
    "428": (
        "The change replaces a whole link list without If-Match (send the ETag you read, or add/remove).",
        _problem_example(
            428,
            "precondition_required",
            "Replacing relationships.blocks as a whole needs If-Match with the ETag you read; or change it with "
            '{"add": [...], "remove": [...]}.',
        ),
    ),
    "414": (
        "The request line (path and query string) is too long.",
        _problem_example(414, "uri_too_long", "The request line is longer than 8190 bytes."),
    ),
    "431": (
        "Too many header fields, or one too large.",
        _problem_example(431, "header_fields_too_large", "The request has more than 100 header fields."),
    ),
    "413": (
        "The body is too large.",
        _problem_example(413, "payload_too_large", "The request body is 2000000 bytes; the limit is 1048576 bytes."),
    ),
    "415": (
        "The body is not application/json.",
        _problem_example(415, "unsupported_media_type", 'Unsupported media type "text/plain" in request.'),
    ),
    "422": (
        "Well-formed, but breaks a rule the schema cannot express: a Ref to no object or to one of another kind "
        "(`unknown_ref`, `wrong_kind`), cross-object consistency, a cursor that does not decode, an "
        "Idempotency-Key used for a different request.",
        [
            (
                "wrong_kind",
                _problem_example(
                    422,
                    "wrong_kind",
                    "repo: 01JD0Z8K3M5Q7R9T1V3X5Z7SSE is an Issue, not a Repo.",
                    errors=[
                        {
                            "path": "repo",
                            "code": "wrong_kind",
                            "message": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE is an Issue, not a Repo.",
                        }
                    ],
                ),
            ),
            (
                "idempotency_key_reused",
                _problem_example(
                    422,
                    "idempotency_key_reused",
                    "Idempotency-Key 'k-1' was first used for POST /api/v1/issues with another body.",
                ),
            ),
        ],
    ),
    "429": (
        "Too many requests; see Retry-After. Counted per principal for a valid credential, and per client "
        "address for calls without one (no credential, or a token that fails): past the address's budget a "
        "presented token is refused before it is checked, unless it authenticated lately.",
        _problem_example(429, "throttled", "Request was throttled. Expected available in 12 seconds."),
    ),
    "503": (
        "The database cannot be reached.",
        _problem_example(503, "database_unavailable", "The database cannot be reached; try again shortly."),
    ),
}

HEADER_PARAMETERS = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Makes a POST safe to retry: a retry with the same key replays the first answer (same status "
        "and body, header Idempotent-Replayed: true); the same key with another body is a 422. Scoped to the "
        "caller, kept at least 24 hours.",
        "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
    },
    "If-Match": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "The ETag you read: the change is refused with 412 if the object changed since.",
        "schema": {"type": "string"},
    },
    "X-CWOM-Actor": {
        "name": "X-CWOM-Actor",
        "in": "header",
        "required": False,
        "description": 'The actor you act for, as a JSON Actor ({"actor_kind": "agent", "actor_id": "builder-7", '
        '"display": "Builder agent 7"}); recorded on the events next to the authenticated principal. Anything '
        "else is a 400 `invalid_actor`.",
        "content": {"application/json": {"schema": ref("Actor")}},
    },
}

RESPONSE_HEADERS = {
    "ETag": {"description": "Version of the object: send it back in If-Match.", "schema": {"type": "string"}},
    "Location": {"description": "Path of the created object (/api/v1/<kind>/<id>).", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}},
}


# What the HTTP server in front of the application refuses on any route (gunicorn.conf.py answers these as
# problem documents too): a malformed request, a request line or header fields past its limits.
TRANSPORT_ERRORS = ("400", "414", "431")
ERRORS_BY_METHOD = {
    "get": (),
    "post": ("403", "409", "413", "415", "422"),
    "patch": ("403", "409", "412", "413", "415", "422", "428"),
    # An artifact's bytes: any media type is taken, so no 415; a digest that does not match is a 422.
    "put": ("403", "409", "413", "422"),
}


def _errors_for(path: str, method: str) -> list[str]:
    codes = set(TRANSPORT_ERRORS)
    if path.endswith(("/healthz", "/readyz")):
        return sorted(codes | ({"503"} if path.endswith("/readyz") else set()))
    codes |= {"401", "429", "503"}
    if "{" in path:
        codes.add("404")
    codes.update(ERRORS_BY_METHOD.get(method, ()))
    if method == "get" and ("{" not in path or path.endswith(SUB_LISTS)):
        codes.add("422")  # a list's query: a cursor that does not decode, too many values in all
    return sorted(codes)


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: problem responses, write headers and response headers on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.update({name: build() for name, build in NAMED.items()})
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in _errors_for(path, method):
                description, bodies = ERROR_RESPONSES[code]
                named = bodies if isinstance(bodies, list) else [(bodies["code"], bodies)]
                response: dict[str, Any] = {
                    "description": description,
                    "content": {
                        "application/problem+json": {
                            "schema": ref("Problem"),
                            "examples": {name: {"value": body, "summary": body["detail"][:80]} for name, body in named},
                        }
                    },
                }
                if code in ("429", "503"):
                    response["headers"] = {"Retry-After": RESPONSE_HEADERS["Retry-After"]}
                responses.setdefault(code, response)
            if "requestBody" in operation:  # every documented body is expected (an empty PATCH is `{}`)
                operation["requestBody"]["required"] = True
            headers = []
            if method == "post" and "401" in responses and not path.endswith("/content"):
                headers.append(HEADER_PARAMETERS["Idempotency-Key"])
            if method == "patch":
                headers.append(HEADER_PARAMETERS["If-Match"])
            if method in ("post", "patch", "put") and "401" in responses:
                headers.append(HEADER_PARAMETERS["X-CWOM-Actor"])
            if headers:
                operation.setdefault("parameters", []).extend(headers)
            for code, response in responses.items():
                if code in ("200", "201") and "{" in path and method in ("get", "patch", "post"):
                    if not path.endswith((*SUB_LISTS, "/lineage")):
                        response.setdefault("headers", {})["ETag"] = RESPONSE_HEADERS["ETag"]
                if code == "201":
                    response.setdefault("headers", {})["Location"] = RESPONSE_HEADERS["Location"]
    # Plain JSON types only (enum members such as Kind.RUN are str subclasses YAML cannot represent).
    return json.loads(json.dumps(result, default=str))
