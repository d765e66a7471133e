"""The whole chain over real HTTP (live server, real token), every response checked against its schema.

repo -> issue -> snapshot -> draft packet -> seal -> run planned -> ready -> running -> artifacts -> done
-> queries by every seed filter -> lineage -> events.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jsonschema

from cwom import shapes
from cwom.api.schema import PROBLEM_SCHEMA
from cwom.api.serializers import EVENT_SCHEMA
from cwom.models import ApiToken

ACTOR = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}


class Http:
    """A tiny JSON client over urllib with a bearer token."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/") + "/api/v1/"
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, params: Any = None, **headers: str
    ) -> tuple[int, Any, Any]:
        url = self.base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the live test server
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers


def valid(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(shapes.json_schema(kind, "out")).validate(body)
    return body


def valid_page(kind: str, page: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(page) == {"next", "previous", "results"}
    return [valid(kind, item) for item in page["results"]]


def test_an_agent_drives_the_whole_chain_over_http(flushable_db, live_server):
    _, secret = ApiToken.issue("e2e-agent", can_write=True)
    api = Http(live_server.url, secret)

    status, repo, headers = api.call(
        "POST", "repos", {"name": "Control Tower", "slug": "control-tower", "tags": ["core"]}
    )
    assert status == 201 and headers["Location"].endswith(repo["id"])
    valid("Repo", repo)

    status, issue, _ = api.call(
        "POST",
        "issues",
        {"repo": repo["id"], "title": "Add /healthz", "tags": ["ops"], "created_by": ACTOR, "assignees": [ACTOR]},
    )
    assert status == 201
    valid("Issue", issue)

    status, snapshot, _ = api.call(
        "POST",
        "constraint_snapshots",
        {"scope": "run", "owner": ACTOR, "constraints": {"time": {"available_minutes": 30}}},
    )
    assert status == 201
    valid("ConstraintSnapshot", snapshot)

    status, doctrine, _ = api.call(
        "POST",
        "doctrine_refs",
        {
            "namespace": "ops",
            "name": "cheap-probes",
            "version": "1",
            "type": "principle",
            "priority": "should",
            "statement": "Health probes touch nothing.",
        },
    )
    assert status == 201
    valid("DoctrineRef", doctrine)

    status, draft, _ = api.call(
        "POST",
        "context_packets",
        {
            "for_issue": issue["id"],
            "summary": "Draft",
            "sealed": False,
            "constraint_snapshot": snapshot["id"],
            "doctrine_refs": [doctrine["id"]],
        },
    )
    assert status == 201 and draft["sealed"] is False
    status, draft, headers = api.call("PATCH", f"context_packets/{draft['id']}", {"summary": "What we know."})
    assert status == 200
    status, packet, _ = api.call("POST", f"context_packets/{draft['id']}/seal", Idempotency_Key="seal-e2e")
    assert status == 200 and valid("ContextPacket", packet)["sealed"] is True
    status, again, headers = api.call("POST", f"context_packets/{draft['id']}/seal", Idempotency_Key="seal-e2e")
    assert (status, again, headers["Idempotent-Replayed"]) == (200, packet, "true")

    status, run, _ = api.call(
        "POST",
        "runs",
        {
            "for_issue": issue["id"],
            "mode": "agent",
            "executor": {"actor": ACTOR, "runtime": "ci"},
            "inputs": {
                "context_packets": [{"id": packet["id"], "role": "primary_context"}],
                "doctrine_refs": [doctrine["id"]],
                "constraint_snapshot": snapshot["id"],
            },
            "tags": ["nightly"],
        },
    )
    assert status == 201 and valid("Run", run)["status"] == "planned"

    status, stale_etag = 0, None
    for target in ("ready", "running"):
        status, run, headers = api.call("PATCH", f"runs/{run['id']}", {"status": target})
        assert status == 200 and valid("Run", run)["status"] == target
        stale_etag = stale_etag or headers["ETag"]
    status, refused, _ = api.call("PATCH", f"runs/{run['id']}", {"status": "ready"})
    assert status == 409 and refused["legal_moves"] == ["blocked", "canceled", "done", "failed"]
    jsonschema.validate(refused, PROBLEM_SCHEMA)

    artifacts = []
    for kind, title in (("code_patch", "Patch"), ("report", "Report")):
        status, artifact, _ = api.call(
            "POST",
            "artifacts",
            {"produced_by": run["id"], "type": kind, "title": title, "digest": "sha256:" + "b" * 64},
        )
        assert status == 201
        artifacts.append(valid("Artifact", artifact))

    status, refused, _ = api.call("PATCH", f"runs/{run['id']}", {"status": "done"}, If_Match=stale_etag)
    assert status == 412
    status, run, _ = api.call(
        "PATCH",
        f"runs/{run['id']}",
        {"status": "done", "outputs": {"result_summary": "Added.", "decision_log": ["ok"]}},
    )
    assert status == 200 and valid("Run", run)["status"] == "done"
    assert run["telemetry"]["duration_s"] is not None

    # The seed queries of the contract.
    _, page, _ = api.call("GET", "issues", params={"repo_id": repo["id"], "status": "planned", "tag": "ops"})
    assert [i["id"] for i in valid_page("Issue", page)] == [issue["id"]]
    _, page, _ = api.call("GET", "runs", params={"issue_id": issue["id"], "status": "done"})
    assert [r["id"] for r in valid_page("Run", page)] == [run["id"]]
    _, page, _ = api.call("GET", "artifacts", params={"run_id": run["id"], "type": "report"})
    assert [a["id"] for a in valid_page("Artifact", page)] == [artifacts[1]["id"]]
    _, page, _ = api.call("GET", "artifacts", params={"run_id": run["id"], "type": ["report", "code_patch"]})
    assert len(valid_page("Artifact", page)) == 2

    status, bundle, _ = api.call("GET", f"runs/{run['id']}/lineage")
    assert status == 200
    assert valid("Run", bundle["run"])["id"] == run["id"]
    assert valid("Issue", bundle["issue"])["id"] == issue["id"]
    assert valid("Repo", bundle["repo"])["id"] == repo["id"]
    assert valid("ConstraintSnapshot", bundle["constraint_snapshot"])["id"] == snapshot["id"]
    assert [valid("ContextPacket", p)["id"] for p in bundle["context_packets"]] == [packet["id"]]
    assert [valid("DoctrineRef", d)["id"] for d in bundle["doctrine_refs"]] == [doctrine["id"]]
    assert {valid("Artifact", a)["id"] for a in bundle["artifacts"]} == {a["id"] for a in artifacts}

    status, history, _ = api.call("GET", f"runs/{run['id']}/events")
    assert status == 200
    for event in history["results"]:
        jsonschema.validate(event, EVENT_SCHEMA)
    # the last PATCH wrote the outputs (update) and then moved the run (transition)
    assert [e["action"] for e in history["results"]] == ["create", "transition", "transition", "update", "transition"]
    assert {e["principal"] for e in history["results"]} == {"token:e2e-agent"}
    _, feed, _ = api.call("GET", "events", params={"kind": "ContextPacket", "action": "seal"})
    assert [e["object"]["id"] for e in feed["results"]] == [packet["id"]]

    status, found, _ = api.call("GET", f"objects/{artifacts[0]['id']}")
    assert status == 200 and valid("Artifact", found) == artifacts[0]

    anonymous = Http(live_server.url, None)
    status, body, headers = anonymous.call("GET", "issues")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert headers["Content-Type"] == "application/problem+json"
    jsonschema.validate(body, PROBLEM_SCHEMA)
    assert anonymous.call("GET", "healthz")[0] == 200
