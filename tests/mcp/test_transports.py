"""The MCP server driven by the SDK's own client, over stdio and over Streamable HTTP (each test runs on both).

An agent's whole chain, a refusal, a read-only token and bad arguments: every answer is the REST API's
own document or problem document.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import httpx2
import jsonschema
import pytest
from mcp import Client

from cwom import compare, shapes
from cwom.api.serializers import EVENT_SCHEMA
from cwom.mcp.tools import build
from tests.mcp.conftest import Connect, HttpServer, Service

ACTOR = {"actor_kind": "agent", "actor_id": "mcp-agent", "display": "MCP agent"}
WRITE_TOOLS = {name for name, tool in build().items() if tool.writes}
READ_TOOLS = set(build()) - WRITE_TOOLS


def valid(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(document, shapes.json_schema(kind, "out"))
    return document


async def ok(client: Client, name: str, arguments: dict[str, Any] | None = None) -> Any:
    """The structured result of a tool call that succeeded; its text is the same document."""
    result = await client.call_tool(name, arguments or {})
    assert not result.is_error, result.structured_content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def refused(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The problem document of a tool call that failed (a tool error, the same document as text)."""
    result = await client.call_tool(name, arguments)
    assert result.is_error
    problem = result.structured_content
    assert isinstance(problem, dict)
    assert json.loads(result.content[0].text) == problem
    assert problem["type"] == f"https://cwom.dev/problems/{problem['code']}"
    return problem


def run(scenario: Any) -> None:
    anyio.run(scenario)


def test_an_agent_drives_the_whole_chain(connect: Connect, service: Service) -> None:
    async def scenario() -> None:
        async with connect(service.writer) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert listed == READ_TOOLS | WRITE_TOOLS and len(listed) == 21

            repo = valid("Repo", await ok(client, "create_repo", {"name": "MCP", "slug": f"mcp-{id(client)}"}))
            issue = valid(
                "Issue",
                await ok(client, "create_issue", {"repo": repo["id"], "title": "Add /healthz", "created_by": ACTOR}),
            )
            issue = await ok(client, "update_issue", {"id": issue["id"], "priority": "P1"})
            assert issue["priority"] == "P1"
            snapshot = valid(
                "ConstraintSnapshot",
                await ok(
                    client,
                    "create_constraint_snapshot",
                    {"scope": "run", "owner": ACTOR, "constraints": {"time": {"available_minutes": 30}}},
                ),
            )
            doctrine = valid(
                "DoctrineRef",
                await ok(
                    client,
                    "create_doctrine_ref",
                    {
                        "namespace": "ops",
                        "name": f"probes-{id(client)}",
                        "version": "1",
                        "type": "principle",
                        "priority": "should",
                        "statement": "Health probes touch nothing.",
                    },
                ),
            )
            draft = await ok(
                client, "create_context_packet", {"for_issue": issue["id"], "summary": "Draft", "sealed": False}
            )
            draft = await ok(client, "update_context_packet", {"id": draft["id"], "summary": "What we know."})
            packet = valid("ContextPacket", await ok(client, "seal_context_packet", {"id": draft["id"]}))
            assert packet["sealed"] is True and packet["summary"] == "What we know."

            queued = await ok(
                client,
                "enqueue",
                {
                    "issue": issue["id"],
                    "context": {"summary": "Run it."},
                    "constraints": snapshot["id"],
                    "doctrine_refs": [doctrine["id"]],
                    "executor": {"name": "noop"},
                },
            )
            assert queued["run_url"].endswith(f"/api/v1/runs/{queued['run']['id']}")
            run_id = queued["run"]["id"]
            run = valid("Run", await ok(client, "get_run", {"id": run_id}))
            assert run["status"] == "done"  # the noop executor ran in the server before enqueue answered

            page = await ok(client, "list_runs", {"issue_id": [issue["id"]], "status": ["done"]})
            assert [r["id"] for r in page["results"]] == [run_id] and page["next_cursor"] is None
            page = await ok(client, "list_issues", {"repo_id": [repo["id"]]})
            assert [i["id"] for i in page["results"]] == [issue["id"]]

            bundle = await ok(client, "get_lineage", {"id": run_id})
            assert bundle["run"]["id"] == run_id and bundle["issue"]["id"] == issue["id"]
            assert bundle["constraint_snapshot"]["id"] == snapshot["id"]
            assert doctrine["id"] in {d["id"] for d in bundle["doctrine_refs"]}
            assert [p["id"] for p in bundle["context_packets"]] == [queued["context_packet"]["id"]]

            page = await ok(client, "list_artifacts", {"run_id": [run_id], "type": ["log"]})
            (log,) = page["results"]
            content = await ok(client, "get_artifact_content", {"id": log["id"]})
            assert content["size_bytes"] == log["size_bytes"] and content["digest"] == log["digest"]
            assert "attempt 1" in content["text"]
            assert content["content_url"].endswith(f"/api/v1/artifacts/{log['id']}/content")

            report = valid(
                "Artifact",
                await ok(
                    client,
                    "create_artifact",
                    {"produced_by": run_id, "type": "report", "title": "Review", "digest": "sha256:" + "b" * 64},
                ),
            )
            assert await ok(client, "get_object", {"id": report["id"]}) == report

            history = await ok(client, "list_events", {"object_id": [run_id]})
            for event in history["results"]:
                jsonschema.validate(event, EVENT_SCHEMA)
            assert history["results"][0]["action"] == "create"
            moves = [e["changes"]["status"] for e in history["results"] if e["action"] == "transition"]
            assert moves == [["ready", "running"], ["running", "done"]]
            assert {e["principal"] for e in history["results"] if e["action"] == "create"} == {"token:mcp-writer"}

            first = await ok(client, "list_events", {"object_id": [run_id, issue["id"]], "page_size": 1})
            assert first["next_cursor"]
            second = await ok(
                client,
                "list_events",
                {"object_id": [run_id, issue["id"]], "page_size": 1, "cursor": first["next_cursor"]},
            )
            assert second["results"][0]["id"] > first["results"][0]["id"]

            # A done run is not retried: the API's own 409, naming why.
            retried = await refused(client, "retry_run", {"id": run_id})
            assert (retried["status"], retried["code"]) == (409, "not_retryable")
            assert retried["instance"] == f"/api/v1/runs/{run_id}/retry"

    run(scenario)


def test_a_refusal_is_a_tool_error_carrying_the_problem_document(connect: Connect, service: Service) -> None:
    async def scenario() -> None:
        async with connect(service.writer) as client:
            repo = await ok(client, "create_repo", {"name": "Refusals", "slug": f"refusals-{id(client)}"})
            issue = await ok(client, "create_issue", {"repo": repo["id"], "title": "Seal twice"})
            packet = await ok(client, "create_context_packet", {"for_issue": issue["id"], "summary": "Once."})
            assert packet["sealed"] is True  # sealed at creation unless asked for a draft
            problem = await refused(client, "seal_context_packet", {"id": packet["id"]})
            assert (problem["status"], problem["code"]) == (409, "sealed")
            problem = await refused(client, "update_context_packet", {"id": packet["id"], "summary": "Twice."})
            assert problem["status"] == 409

            queued = await ok(
                client,
                "enqueue",
                {"issue": issue["id"], "context": {"summary": "Go."}, "executor": {"name": "noop"}},
            )
            problem = await refused(client, "cancel_run", {"id": queued["run"]["id"]})
            assert problem["status"] == 409  # a run that is done cannot be canceled

            missing = "01" + "0" * 24
            problem = await refused(client, "get_run", {"id": missing})
            assert (problem["status"], problem["code"]) == (404, "not_found")

    run(scenario)


def test_a_read_only_token_gets_the_read_tools_and_a_403_from_write_tools(connect: Connect, service: Service) -> None:
    async def scenario() -> None:
        async with connect(service.reader) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} == READ_TOOLS
            assert "diff_runs" in READ_TOOLS
            problem = await refused(client, "create_repo", {"name": "Nope", "slug": "nope"})
            assert (problem["status"], problem["code"]) == (403, "read_only")
            assert problem["instance"] == "/api/v1/repos"
            page = await ok(client, "list_events", {"page_size": 1})
            assert set(page) == {"next", "previous", "results", "next_cursor"}

    run(scenario)


async def called(client: Client, name: str, arguments: dict[str, Any]) -> tuple[Any, str]:
    """The document and the ETag (``_meta.etag``, also a line of text) of a tool call that succeeded."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.structured_content
    etag = result.meta["etag"]
    assert result.content[1].text.startswith(f"etag: {etag} ")
    return result.structured_content, etag


def test_diff_runs_compares_two_runs_for_a_read_only_token(connect: Connect, service: Service) -> None:
    async def scenario() -> None:
        async with connect(service.writer) as writer:
            repo = await ok(writer, "create_repo", {"name": "Diff", "slug": f"diff-{uuid.uuid4().hex[:8]}"})
            issue = await ok(writer, "create_issue", {"repo": repo["id"], "title": "Twice"})
            noop = {"name": "noop"}
            first = await ok(
                writer, "enqueue", {"issue": issue["id"], "context": {"summary": "Old."}, "executor": noop}
            )
            second = await ok(
                writer,
                "enqueue",
                {"issue": issue["id"], "context": {"summary": "New."}, "executor": noop, "mode": "hybrid"},
            )
        async with connect(service.reader) as reader:
            a, b = first["run"]["id"], second["run"]["id"]
            diff = await ok(reader, "diff_runs", {"id": a, "other_id": b})
            jsonschema.validate(diff, compare.DIFF_SCHEMA)
            assert (diff["a"]["id"], diff["b"]["id"], diff["status"]) == (a, b, "changed")
            sections = diff["sections"]
            assert sections["issue"]["status"] == "same"
            assert sections["executor"]["changes"]["mode"] == {"a": "agent", "b": "hybrid"}
            (packet,) = sections["context_packets"]["items"]
            assert packet["texts"]["summary"][-2:] == ["-Old.", "+New."]
            same = await ok(reader, "diff_runs", {"id": a, "other_id": a})
            assert same["status"] == "same"
            problem = await refused(reader, "diff_runs", {"id": a, "other_id": "01" + "0" * 24})
            assert (problem["status"], problem["code"]) == (404, "not_found")
            problem = await refused(reader, "diff_runs", {"id": a, "other_id": "../issues"})
            assert (problem["status"], problem["errors"][0]["path"]) == (400, "other_id")

    run(scenario)


def test_a_repeated_call_with_the_same_idempotency_key_answers_the_same_object(
    connect: Connect, service: Service
) -> None:
    async def scenario() -> None:
        async with connect(service.writer) as client:
            key = f"mcp-{uuid.uuid4().hex}"
            body = {"name": "Once", "slug": f"once-{uuid.uuid4().hex[:8]}", "idempotency_key": key}
            first = await ok(client, "create_repo", body)
            again = await ok(client, "create_repo", body)
            assert again == first  # replayed: no second repo, no 409 for the taken slug
            # A key is one request of this token's: the same key with another body is refused.
            problem = await refused(client, "create_repo", {**body, "name": "Other"})
            assert (problem["status"], problem["code"]) == (422, "idempotency_key_reused")
            issue = await ok(client, "create_issue", {"repo": first["id"], "title": "Once"})
            problem = await refused(client, "create_repo", {**body, "idempotency_key": ""})
            assert (problem["status"], problem["code"]) == (400, "invalid_idempotency_key")
            queued = await ok(
                client,
                "enqueue",
                {"issue": issue["id"], "context": {"summary": "Go."}, "idempotency_key": f"{key}-enqueue"},
            )
            assert (
                await ok(
                    client,
                    "enqueue",
                    {"issue": issue["id"], "context": {"summary": "Go."}, "idempotency_key": f"{key}-enqueue"},
                )
                == queued
            )

    run(scenario)


def test_an_update_with_a_stale_if_match_is_the_apis_412(connect: Connect, service: Service) -> None:
    async def scenario() -> None:
        async with connect(service.writer) as client:
            repo = await ok(client, "create_repo", {"name": "Tags", "slug": f"tags-{uuid.uuid4().hex[:8]}"})
            issue, read = await called(client, "create_issue", {"repo": repo["id"], "title": "Lost update"})
            assert (await called(client, "get_object", {"id": issue["id"]}))[1] == read
            changed, now = await called(client, "update_issue", {"id": issue["id"], "priority": "P1", "if_match": read})
            assert changed["priority"] == "P1" and now != read
            problem = await refused(client, "update_issue", {"id": issue["id"], "priority": "P3", "if_match": read})
            assert (problem["status"], problem["code"]) == (412, "precondition_failed")
            assert (await ok(client, "get_object", {"id": issue["id"]}))["priority"] == "P1"
            problem = await refused(client, "update_issue", {"id": issue["id"], "if_match": 5})
            assert (problem["status"], problem["errors"][0]["path"]) == (400, "if_match")

    run(scenario)


def rest_problem(server: HttpServer, token: str, method: str, path: str, **request: Any) -> dict[str, Any]:
    """What the REST API itself answers to this request."""
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx2.request(method, f"{server.url}{path}", headers=headers, timeout=30, **request)
    assert answer.headers["Content-Type"] == "application/problem+json"
    return dict(answer.json())


def test_bad_arguments_answer_the_apis_own_problem(connect: Connect, service: Service, http_server: HttpServer) -> None:
    cases = [
        (
            "create_issue",
            {"title": 5, "color": "red"},
            ("POST", "/api/v1/issues"),
            {"json": {"title": 5, "color": "red"}},
        ),
        ("list_runs", {"status": ["nope"]}, ("GET", "/api/v1/runs"), {"params": {"status": "nope"}}),
        ("list_issues", {"colour": ["red"]}, ("GET", "/api/v1/issues"), {"params": {"colour": "red"}}),
        ("list_events", {"page_size": 0}, ("GET", "/api/v1/events"), {"params": {"page_size": "0"}}),
    ]

    async def scenario() -> None:
        async with connect(service.writer) as client:
            for tool, arguments, (method, path), request in cases:
                problem = await refused(client, tool, arguments)
                assert 400 <= problem["status"] < 500
                assert problem == rest_problem(http_server, service.writer, method, path, **request), tool
            problem = await refused(client, "create_issue", {"title": 5, "color": "red"})
            assert {"title", "color"} <= {error["path"] for error in problem["errors"]}
            # An id that cannot be a path segment never makes a request.
            for bad in (7, "../repos", None):
                problem = await refused(client, "get_run", {"id": bad})
                assert (problem["status"], problem["errors"][0]["path"]) == (400, "id")

    run(scenario)


# --- each transport's own door ---------------------------------------------------------------------------
def test_stdio_refuses_to_start_without_a_valid_token(service: Service) -> None:
    for token, says in (
        ("", "CWOM_TOKEN is not set"),
        ("cwom_nope_nope", "CWOM_TOKEN is not a valid API token"),
    ):
        started = service.manage("cwom_mcp", env={**service.env, "CWOM_TOKEN": token})
        assert started.returncode == 2, started.stderr
        assert says in started.stderr


@pytest.mark.parametrize("authorization", [None, "Bearer cwom_nope_nope", "Basic Zm9vOmJhcg=="])
def test_http_refuses_a_request_without_a_valid_token_with_the_apis_401(
    http_server: HttpServer, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx2.post(f"{http_server.url}/mcp", json=body, headers=headers, timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="cwom"'
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == 401 and answer.json()["instance"] == "/mcp"


def test_the_asgi_entry_serves_the_rest_api_beside_mcp(http_server: HttpServer, service: Service) -> None:
    answer = httpx2.get(
        f"{http_server.url}/api/v1/repos", headers={"Authorization": f"Bearer {service.reader}"}, timeout=30
    )
    assert answer.status_code == 200 and set(answer.json()) == {"next", "previous", "results"}


def test_http_counts_each_tokens_requests_against_its_own_rate(service: Service, tmp_path_factory: Any) -> None:
    busy, other = (service.token(f"mcp-{who}-{uuid.uuid4().hex[:8]}") for who in ("busy", "other"))
    server = HttpServer({**service.env, "CWOM_THROTTLE_RATE": "3/min"}, tmp_path_factory.mktemp("logs") / "uv.log")
    try:

        def list_tools(token: str) -> httpx2.Response:
            return httpx2.post(
                f"{server.url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
                timeout=30,
            )

        answers = [list_tools(busy) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert answers[3].json()["code"] == "throttled" and int(answers[3].headers["Retry-After"]) >= 1
        assert list_tools(other).status_code == 200
    finally:
        server.stop()
