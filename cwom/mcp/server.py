"""The MCP server: the tools of :mod:`cwom.mcp.tools`, each call answered by the REST API in-process.

A call becomes one request to its endpoint, made as the caller (:mod:`cwom.mcp.rest`); the answer
becomes the result:

- success: the endpoint's JSON document, as structured content and as text; a list page adds
  ``next_cursor`` (the ``cursor`` of its ``next`` link, ``null`` on the last page); an answer with an
  ``ETag`` gives it as ``_meta.etag`` and in a second text line (what an update's ``if_match`` takes);
- refusal: a tool error (``isError``) carrying the endpoint's problem document, whatever the status
  (400, 401, 403 ``read_only``, 404, 409, 429 ...).

A read-only token is listed the read tools only; a write tool it calls anyway answers the API's 403.
The caller of a call comes from the transport: the stdio command's token, or the token the HTTP gate
authenticated (:mod:`cwom.mcp.http`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server

from cwom.api.errors import problem_body

from . import rest
from .tools import TEXT_LIMIT_BYTES, Tool, build

SERVER_NAME = "cwom"
INSTRUCTIONS = (
    "CWOM is the system of record for agents' work: repos hold issues (intent); context packets (what is known), "
    "constraint snapshots (limits) and doctrine refs (rules) brief runs (execution attempts), which produce "
    "artifacts. Typical flow: enqueue (creates issue, sealed packet and run), get_run until it is done, "
    "get_lineage or list_artifacts and get_artifact_content for its outputs, list_events for what changed, "
    "diff_runs for what differs between two runs. Pass idempotency_key to retry a write safely. "
    "Failed tool calls carry an RFC 9457 problem document whose `code` says what to fix."
)
# What an id argument may hold before it goes into a path (the API answers 404 for a malformed one).
ID_TEXT = re.compile(r"[0-9A-Za-z]{1,64}")
# Requests made at once by this process's tools, each in its own thread with its own database connection.
CONCURRENT_CALLS = 8

CallerOf = Callable[[ServerRequestContext[Any, Any]], rest.Caller]


@cache
def tools() -> dict[str, Tool]:
    return build()


def listed(tool: Tool) -> types.Tool:
    annotations = types.ToolAnnotations(
        read_only_hint=not tool.writes,
        destructive_hint=tool.name == "cancel_run",
        idempotent_hint=not tool.writes or tool.method == "PATCH",
        open_world_hint=False,
    )
    return types.Tool(
        name=tool.name, description=tool.description, input_schema=tool.input_schema, annotations=annotations
    )


def result(document: Any, *, error: bool = False, etag: str | None = None) -> types.CallToolResult:
    content: list[types.ContentBlock] = [types.TextContent(text=orjson.dumps(document).decode())]
    if etag:
        content.append(types.TextContent(text=f"etag: {etag} (pass it as if_match to an update of this object)"))
    meta = {"etag": etag} if etag else None
    return types.CallToolResult(content=content, structured_content=document, is_error=error, _meta=meta)


def bad_argument(name: str, message: str) -> types.CallToolResult:
    """A 400 problem for an argument that cannot make a request at all (an id that cannot be a path segment)."""
    errors = [{"path": name, "code": "invalid", "message": message}]
    return result(problem_body(400, "validation_error", f"{name}: {message}", errors), error=True)


def answered(tool: Tool, answer: rest.Answer) -> types.CallToolResult:
    """The tool result for the API's answer: its document, or a tool error carrying the problem."""
    document = answer.document()
    if answer.status >= 300 or document is None:
        if not isinstance(document, dict):
            detail = f"The API answered {answer.status} {answer.headers.get('location', '')}".strip()
            document = problem_body(answer.status, "unexpected_answer", detail)
        return result(document, error=True)
    if tool.page and isinstance(document, dict):
        next_link = document.get("next")
        cursors = parse_qs(urlsplit(next_link).query).get("cursor") if next_link else None
        document = {**document, "next_cursor": cursors[0] if cursors else None}
    return result(document, etag=answer.headers.get("etag"))


def artifact_content(caller: rest.Caller, tool: Tool, artifact_id: str) -> types.CallToolResult:
    """The artifact's bytes as text when small UTF-8; otherwise its size, media type and download URL."""
    meta = rest.call(caller, "GET", tool.path.removesuffix("/content").format(id=artifact_id))
    artifact = meta.document()
    if meta.status != 200 or not isinstance(artifact, dict):
        return answered(tool, meta)
    path = tool.path.format(id=artifact["id"])
    about = {
        "artifact": {"kind": "Artifact", "id": artifact["id"]},
        "media_type": artifact.get("media_type"),
        "size_bytes": artifact.get("size_bytes"),
        "digest": artifact.get("digest"),
        "content_url": caller.url(path),
        "text": None,
    }
    size = artifact.get("size_bytes") or 0
    if size > TEXT_LIMIT_BYTES:
        reason = f"The content is {size} bytes, more than the {TEXT_LIMIT_BYTES} bytes given as text: download it."
        return result({**about, "reason": reason})
    answer = rest.call(caller, "GET", path, limit=TEXT_LIMIT_BYTES + 1)
    if answer.status != 200:
        return answered(tool, answer)
    if answer.truncated:
        return result({**about, "reason": f"The content is more than {TEXT_LIMIT_BYTES} bytes: download it."})
    try:
        text = answer.body.decode("utf-8")
    except UnicodeDecodeError:
        return result({**about, "reason": "The content is not UTF-8 text: download it."})
    return result({**about, "size_bytes": len(answer.body), "text": text})


def call_tool(caller: rest.Caller, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """One tool call, made synchronously (in a worker thread) as ``caller``."""
    tool = tools().get(name)
    if tool is None:
        return result(problem_body(404, "unknown_tool", f"No tool is named {name!r}."), error=True)
    arguments = dict(arguments)
    segments: dict[str, str] = {}
    for name in tool.path_arguments:
        segments[name] = arguments.pop(name, None)
        if not isinstance(segments[name], str) or not ID_TEXT.fullmatch(segments[name]):
            return bad_argument(name, "Required: the object's id, a ULID (26 letters and digits).")
    if tool.name == "get_artifact_content":
        return artifact_content(caller, tool, segments["id"])
    headers: dict[str, str] = {}
    if tool.header_argument is not None and tool.header_argument[0] in arguments:
        argument, header = tool.header_argument
        value = arguments.pop(argument)
        if not isinstance(value, str):
            return bad_argument(argument, f"Must be a string: it is sent as the {header} header.")
        headers[header] = value
    if tool.arguments == "none" and arguments:
        takes = ", ".join(f"`{name}`" for name in tool.input_schema["properties"])
        return bad_argument(sorted(arguments)[0], f"Unknown argument: this tool takes only {takes}.")
    answer = rest.call(
        caller,
        tool.method,
        tool.path.format(**segments),
        query=arguments if tool.arguments == "query" else None,
        body=arguments if tool.arguments == "body" else None,
        headers=headers,
    )
    return answered(tool, answer)


def build_server(caller_of: CallerOf) -> Server[Any]:
    """The MCP server; ``caller_of`` tells who makes a request (from its context)."""
    limiter = anyio.CapacityLimiter(CONCURRENT_CALLS)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = caller_of(ctx)
        return types.ListToolsResult(
            tools=[listed(tool) for tool in tools().values() if caller.can_write or not tool.writes]
        )

    async def on_call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        caller = caller_of(ctx)
        arguments = params.arguments or {}
        return await anyio.to_thread.run_sync(call_tool, caller, params.name, arguments, limiter=limiter)

    return Server(
        SERVER_NAME,
        version="0.1.0",
        title="CWOM service",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
    )
