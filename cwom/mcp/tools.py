"""The MCP tools: each one REST endpoint, its arguments that endpoint's body or query parameters.

Every input schema is derived from what the API itself validates with, so the two cannot drift: a
create tool takes ``shapes.json_schema(kind, "in")``, an update tool ``shapes.json_schema(kind, "patch")``
plus the object's ``id``, ``enqueue`` the enqueue endpoint's request schema, a list tool its FilterSet's
filters (each filter's own ``openapi_schema()``) with the paging and ordering parameters the paginator and
the ordering backend document, ``diff_runs`` the two run ids of its path. A tool that POSTs also takes
``idempotency_key`` and one that PATCHes ``if_match``, sent as the ``Idempotency-Key`` and ``If-Match``
headers (their schemas the API's own header parameters). :mod:`cwom.mcp.server` turns a call into the
request and its answer into the result.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from cwom import shapes
from cwom.api import filters, views
from cwom.api.pagination import CwomCursorPagination
from cwom.api.schema import HEADER_PARAMETERS
from cwom.enums import Kind
from execution.views import enqueue_request_schema

from .rest import API_PREFIX

# get_artifact_content answers the bytes as text up to this size; past it, where to fetch them.
TEXT_LIMIT_BYTES = 64 * 1024
# The arguments a write tool sends as request headers (not in its body), by the method that takes them.
HEADER_ARGUMENTS = {"POST": ("idempotency_key", "Idempotency-Key"), "PATCH": ("if_match", "If-Match")}
HEADER_DESCRIPTIONS = {
    "idempotency_key": "Optional. Send the same key again when you retry this call (after a timeout or a lost "
    "answer): the retry answers the first call's object instead of doing it twice.",
    "if_match": "Optional. The `etag` of the object as you last read it (in the result's `_meta`): the change "
    "is refused with a 412 `precondition_failed` if someone changed the object since.",
}
_PATH_ARGUMENT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Tool:
    """One tool: its endpoint (``{id}`` in the path is the ``id`` argument) and what its arguments are."""

    name: str
    description: str
    method: str
    path: str
    input_schema: dict[str, Any]
    writes: bool = False
    arguments: str = "none"  # "body" (the JSON body), "query" (query parameters) or "none" (only the id)
    page: bool = False  # a cursor page: the result adds ``next_cursor``

    @property
    def takes_id(self) -> bool:
        return "{id}" in self.path

    @property
    def path_arguments(self) -> tuple[str, ...]:
        """The arguments that are segments of the path (``id``, ``other_id``)."""
        return tuple(_PATH_ARGUMENT.findall(self.path))

    @property
    def header_argument(self) -> tuple[str, str] | None:
        """``(argument, header)`` of the write tool's optional header argument, if it takes one."""
        return HEADER_ARGUMENTS.get(self.method) if self.writes else None


def with_header_argument(tool: Tool) -> Tool:
    """``tool`` with its header argument (``idempotency_key`` or ``if_match``) added to its input schema."""
    if tool.header_argument is None:
        return tool
    argument, header = tool.header_argument
    schema = copy.deepcopy(tool.input_schema)
    header_schema: dict[str, Any] = HEADER_PARAMETERS[header]["schema"]  # type: ignore[assignment]
    described = {**header_schema, "description": HEADER_DESCRIPTIONS[argument]}
    schema["properties"] = {**schema["properties"], argument: described}
    return Tool(**{**tool.__dict__, "input_schema": schema})


def _object_schema(properties: dict[str, Any], required: list[str], title: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": title,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _id_schema(what: str) -> dict[str, Any]:
    return {**shapes.ID_SCHEMA, "description": f"The id (a ULID) of the {what}."}


def _body_schema(kind: str, mode: str) -> dict[str, Any]:
    schema = copy.deepcopy(shapes.json_schema(kind, mode))
    schema.pop("$id", None)  # the update tools' schema is this one plus the id: no longer the published one
    return schema


def _update_schema(kind: str) -> dict[str, Any]:
    schema = _body_schema(kind, "patch")
    schema["properties"] = {"id": _id_schema(kind), **schema["properties"]}
    schema["required"] = ["id"]
    schema["title"] = f"{kind}: its id and the fields to change"
    return schema


def _list_schema(viewset: type[Any], title: str) -> dict[str, Any]:
    """The query parameters of a list endpoint: its filters, then cursor, page_size and ordering."""
    properties: dict[str, Any] = {}
    for name, flt in viewset.filterset_class.base_filters.items():
        schema = flt.openapi_schema() if hasattr(flt, "openapi_schema") else {"type": "string"}
        properties[name] = {**schema, "description": filters.filter_description(name, flt)}
    view = viewset(action="list")
    for parameter in (
        *CwomCursorPagination().get_schema_operation_parameters(view),
        *filters.OrderingBackend().get_schema_operation_parameters(view),
    ):
        properties[parameter["name"]] = {**parameter["schema"], "description": parameter["description"]}
    properties["cursor"]["description"] = "The `next_cursor` of the previous page; leave out for the first page."
    return _object_schema(properties, [], title)


def _by_id(what: str) -> dict[str, Any]:
    return _object_schema({"id": _id_schema(what)}, ["id"], f"The {what}'s id")


def _two_runs() -> dict[str, Any]:
    properties = {"id": _id_schema("first run (a)"), "other_id": _id_schema("second run (b)")}
    return _object_schema(properties, ["id", "other_id"], "The ids of the two runs to compare")


def _path(kind: str, suffix: str = "") -> str:
    return f"{API_PREFIX}/{views.KIND_PATHS[kind]}{suffix}"


def _create(name: str, kind: str, description: str) -> Tool:
    return Tool(name, description, "POST", _path(kind), _body_schema(kind, "in"), writes=True, arguments="body")


def _update(name: str, kind: str, description: str) -> Tool:
    return Tool(name, description, "PATCH", _path(kind, "/{id}"), _update_schema(kind), writes=True, arguments="body")


def _list(name: str, viewset: type[Any], path: str, description: str) -> Tool:
    schema = _list_schema(viewset, f"Filters and paging of {path}")
    return Tool(name, description, "GET", path, schema, arguments="query", page=True)


def build() -> dict[str, Tool]:
    """Every tool by name, in the order they are listed."""
    tools = [
        _create(
            "create_repo",
            Kind.REPO,
            "Create a repo, the container every issue and run belongs to. Use it once per project; look for an "
            "existing one first with get_object or the issue and run lists.",
        ),
        _create(
            "create_issue",
            Kind.ISSUE,
            "Record a unit of intended work (title, description, type, priority) in a repo. Use it before "
            "briefing or running work that has no issue yet; enqueue can also create one in passing.",
        ),
        _update(
            "update_issue",
            Kind.ISSUE,
            "Change some fields of an existing issue (status, priority, assignees, description ...); only the "
            "fields you send change.",
        ),
        _create(
            "create_context_packet",
            Kind.CONTEXT_PACKET,
            "Write a briefing (what is known: summary, sources, decisions) for an issue, as a draft you can still "
            "change. Seal it with seal_context_packet before a run uses it.",
        ),
        _update(
            "update_context_packet",
            Kind.CONTEXT_PACKET,
            "Change a context packet that is still a draft; a sealed packet never changes (create a new version).",
        ),
        Tool(
            "seal_context_packet",
            "Seal a draft context packet so runs can use it. One-way: it never changes afterwards.",
            "POST",
            _path(Kind.CONTEXT_PACKET, "/{id}/seal"),
            _by_id(Kind.CONTEXT_PACKET),
            writes=True,
        ),
        _create(
            "create_constraint_snapshot",
            Kind.CONSTRAINT_SNAPSHOT,
            "Record the limits work runs under (time, budget, energy, risk ...) at this moment. Immutable once "
            "created; runs and packets pin it.",
        ),
        _create(
            "create_doctrine_ref",
            Kind.DOCTRINE_REF,
            "Record a rule or guideline (a versioned doctrine statement) that issues, packets and runs can cite.",
        ),
        Tool(
            "enqueue",
            "Start work: in one step, create or reuse an issue, seal a context packet for it, pin constraints and "
            "queue a run for an executor. Answers at once with the run; follow it with get_run.",
            "POST",
            f"{API_PREFIX}/enqueue",
            enqueue_request_schema(),
            writes=True,
            arguments="body",
        ),
        Tool(
            "cancel_run",
            "Cancel a run that has not finished: at once if it has not started, otherwise its worker stops soon.",
            "POST",
            _path(Kind.RUN, "/{id}/cancel"),
            _by_id(Kind.RUN),
            writes=True,
        ),
        Tool(
            "retry_run",
            "Run a failed or canceled run again: a new run with the same inputs and executor, linked to the old one.",
            "POST",
            _path(Kind.RUN, "/{id}/retry"),
            _by_id(Kind.RUN),
            writes=True,
        ),
        _create(
            "create_artifact",
            Kind.ARTIFACT,
            "Record an output of a run that has started (a patch, a report, a link ...), with its digest or URI.",
        ),
        Tool(
            "get_object",
            "Read any object (repo, issue, packet, snapshot, doctrine ref, run, artifact) when you have only its id.",
            "GET",
            f"{API_PREFIX}/objects/{{id}}",
            _by_id("object"),
        ),
        Tool(
            "get_run",
            "Read one run: its status, executor, timing, failure and the ids of its inputs and artifacts. Poll it "
            "after enqueue until the status is done, failed or canceled.",
            "GET",
            _path(Kind.RUN, "/{id}"),
            _by_id(Kind.RUN),
        ),
        Tool(
            "get_lineage",
            "Load a run's whole chain in one call: repo, issue, context packets, constraint snapshot, doctrine refs "
            "and artifacts. Use it to start or audit a run.",
            "GET",
            _path(Kind.RUN, "/{id}/lineage"),
            _by_id(Kind.RUN),
        ),
        Tool(
            "diff_runs",
            "Compare two runs section by section (issue, packets with text diffs, constraints, doctrine, executor, "
            "outcome, artifacts), each marked same, changed, added or removed. Use it to see why a retry behaved "
            "differently.",
            "GET",
            _path(Kind.RUN, "/{id}/diff/{other_id}"),
            _two_runs(),
        ),
        _list(
            "list_issues",
            views.IssueViewSet,
            _path(Kind.ISSUE),
            "Find issues by repo, status, type, priority, tag, assignee or text. One page at a time: pass "
            "next_cursor back as cursor for the next.",
        ),
        _list(
            "list_runs",
            views.RunViewSet,
            _path(Kind.RUN),
            "Find runs by issue, repo, status, mode, inputs or time. One page at a time: pass next_cursor back as "
            "cursor for the next.",
        ),
        _list(
            "list_artifacts",
            views.ArtifactViewSet,
            _path(Kind.ARTIFACT),
            "Find artifacts by run, issue, type, verification status or digest. One page at a time: pass "
            "next_cursor back as cursor for the next.",
        ),
        _list(
            "list_events",
            views.EventViewSet,
            f"{API_PREFIX}/events",
            "Read the history of changes (creations, updates, seals, status moves), oldest first, by object, kind, "
            "action, principal or time. Pass next_cursor back as cursor for the next page.",
        ),
        Tool(
            "get_artifact_content",
            f"Read an artifact's stored bytes as text (a log, a report, a patch) when they are at most "
            f"{TEXT_LIMIT_BYTES} bytes of UTF-8; otherwise it says how big they are and the URL to download them.",
            "GET",
            _path(Kind.ARTIFACT, "/{id}/content"),
            _by_id(Kind.ARTIFACT),
        ),
    ]
    return {tool.name: with_header_argument(tool) for tool in tools}
