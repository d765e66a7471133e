"""GET /api/v1/runs/{a}/diff/{b}: what differs between two runs, section by section."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cwom import compare
from cwom.models import Run
from execution import runner
from execution.enqueue import enqueue
from tests import factories
from tests.execution.helpers import client_with, enqueue_body

pytestmark = pytest.mark.django_db

FAIL = {"fail": {"category": "test", "message": "3 tests failed"}}


@pytest.fixture
def reader() -> APIClient:
    return client_with(can_write=False)


@pytest.fixture
def executed(execution_settings: Any, monkeypatch: Any) -> Any:
    """Enqueue a body and run it in-process (the dispatch is held back); returns the run as it ended."""
    monkeypatch.setattr("execution.tasks.execute_run.apply_async", lambda *args, **kwargs: None)

    def run(body: dict[str, Any]) -> Run:
        run = enqueue(body).run
        runner.execute_run(run.pk, worker="test-worker:1", task_id=f"task-{run.pk}")
        return Run.objects.get(pk=run.pk)

    return run


def diff(client: APIClient, a: Run, b: Run) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs/{a.pk}/diff/{b.pk}")
    assert response.status_code == 200, response.json()
    body = response.json()
    jsonschema.validate(body, compare.DIFF_SCHEMA)
    return body


def two_bodies() -> tuple[dict[str, Any], dict[str, Any]]:
    repo = factories.repo()
    kept, old = factories.doctrine(namespace="style", name="naming"), factories.doctrine(name="secrets")
    new = factories.doctrine(name="secrets", version="2.0.0")
    gone, added = factories.doctrine(name="gone"), factories.doctrine(name="added")
    a = enqueue_body(repo, doctrine_refs=[kept.pk, old.pk, gone.pk])
    issue = enqueue(copy.deepcopy(a)).issue  # both runs against one issue
    a["issue"] = issue.pk
    b = copy.deepcopy(a)
    b["context"] |= {
        "summary": "The monitor polls /healthz every 10 s.",
        "assumptions": ["the monitor retries"],
    }
    b["constraints"]["constraints"]["time"]["available_minutes"] = 45
    b["constraints"]["constraints"]["tools"] = {"allowed": ["git"], "blocked": []}
    b["doctrine_refs"] = [kept.pk, new.pk, added.pk]
    b["executor"] = {"name": "scripted", "config": FAIL}
    b["mode"] = "hybrid"
    return a, b


def test_a_run_compared_with_itself_is_the_same_in_every_section(reader: APIClient, executed: Any) -> None:
    a, _b = two_bodies()
    run = executed(a)
    body = diff(reader, run, run)
    assert body["status"] == "same"
    assert {name: section["status"] for name, section in body["sections"].items()} == dict.fromkeys(
        body["sections"], "same"
    )
    assert body["a"] == body["b"] == {"kind": "Run", "id": run.pk, "role": None}


def test_each_section_says_what_changed(reader: APIClient, executed: Any) -> None:
    a_body, b_body = two_bodies()
    a, b = executed(a_body), executed(b_body)
    assert (a.status, b.status) == ("done", "failed")
    body = diff(reader, a, b)
    sections = body["sections"]
    assert body["status"] == "changed"
    assert sections["issue"]["status"] == sections["repo"]["status"] == "same"

    (packet,) = sections["context_packets"]["items"]
    assert packet["status"] == "changed" and packet["role"] == "primary_context"
    assert (packet["a"]["version"], packet["b"]["version"]) == ("2", "3")
    assert "-The monitor polls /healthz every 30 s." in packet["texts"]["summary"]
    assert "+The monitor polls /healthz every 10 s." in packet["texts"]["summary"]
    assert "instructions" not in packet["texts"]
    assert packet["lists"] == {"assumptions": {"added": ["the monitor retries"], "removed": []}}

    snapshot = sections["constraint_snapshot"]
    assert snapshot["status"] == "changed"
    assert snapshot["changes"]["constraints.time.available_minutes"] == {"a": 30.0, "b": 45.0}
    assert snapshot["changes"]["constraints.tools.allowed"] == {"a": [], "b": ["git"]}

    doctrine = {item["name"].split("/")[1]: item for item in sections["doctrine_refs"]["items"]}
    assert doctrine["naming"]["status"] == "same"
    assert doctrine["secrets"]["status"] == "changed"
    assert (doctrine["secrets"]["a"]["version"], doctrine["secrets"]["b"]["version"]) == ("1.0.0", "2.0.0")
    assert (doctrine["gone"]["status"], doctrine["gone"]["b"]) == ("removed", None)
    assert (doctrine["added"]["status"], doctrine["added"]["a"]) == ("added", None)

    executor = sections["executor"]["changes"]
    assert executor["mode"] == {"a": "agent", "b": "hybrid"}
    assert executor["executor.toolchain"] == {"a": ["cwom-executor:noop"], "b": ["cwom-executor:scripted"]}

    outcome = sections["outcome"]["changes"]
    assert outcome["status"] == {"a": "done", "b": "failed"}
    assert outcome["failure.category"] == {"a": None, "b": "test"}

    artifacts = {(item["type"], item["status"]) for item in sections["artifacts"]["items"]}
    assert ("report", "removed") in artifacts  # noop's report; the scripted failure writes none
    assert ("log", "changed") in artifacts  # both logs, other bytes


def test_the_diff_reads_a_fixed_number_of_queries_whatever_the_sizes(reader: APIClient, executed: Any) -> None:
    a_body, b_body = two_bodies()
    a, b = executed(a_body), executed(b_body)
    with CaptureQueriesContext(connection) as small:
        compare.diff_runs(a.pk, b.pk)
    for n in range(15):
        factories.artifact(b, title=f"extra {n}")
    big_body = copy.deepcopy(b_body)
    big_body["doctrine_refs"] = [*b_body["doctrine_refs"], *(factories.doctrine().pk for _ in range(10))]
    big = executed(big_body)
    with CaptureQueriesContext(connection) as large:
        compare.diff_runs(b.pk, big.pk)
    assert len(large) == len(small)  # two chains (cwom.lineage.run_bundle), a fixed number of queries each
    assert len(diff(reader, b, big)["sections"]["artifacts"]["items"]) >= 15


def test_an_unknown_or_malformed_run_is_a_404(reader: APIClient, executed: Any) -> None:
    run = executed(two_bodies()[0])
    unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (f"/api/v1/runs/{run.pk}/diff/{unknown}", f"/api/v1/runs/{unknown}/diff/{run.pk}"):
        response = reader.get(path)
        assert response.status_code == 404, response.json()
        assert response["Content-Type"].startswith("application/problem+json")
    assert reader.get(f"/api/v1/runs/{run.pk}/diff/NOTAULID").status_code == 404


def test_the_diff_needs_a_token(executed: Any) -> None:
    run = executed(two_bodies()[0])
    assert APIClient().get(f"/api/v1/runs/{run.pk}/diff/{run.pk}").status_code == 401


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The OpenAPI document's ``RunDiff`` component, its references resolvable (a schema standing alone)."""
    path = Path(tmp_path_factory.mktemp("schema")) / "openapi.yaml"
    call_command("spectacular", "--file", str(path))
    components = yaml.safe_load(path.read_text())["components"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/RunDiff",
        "components": components,
    }


def test_real_diffs_match_the_published_component(reader: APIClient, executed: Any, published: dict) -> None:
    a_body, b_body = two_bodies()
    a, b = executed(a_body), executed(b_body)
    factories.artifact(b, type="code_patch", title="only in b")
    same = diff(reader, a, a)
    changed = diff(reader, a, b)
    for body in (same, changed):
        jsonschema.validate(body, published)
    statuses = {item["status"] for item in changed["sections"]["artifacts"]["items"]}
    assert {"added", "removed", "changed"} <= statuses
    (packet,) = changed["sections"]["context_packets"]["items"]
    assert set(packet) == {"status", "role", "a", "b", "texts", "lists"}
    # The component says what a changed packet carries: a text diff is lines, a list change added/removed.
    for wrong in (
        {"texts": {"summary": "-old\n+new"}},
        {"texts": {"title": []}},
        {"lists": {"assumptions": ["x"]}},
        {"lists": {"assumptions": {"added": []}}},
    ):
        broken = copy.deepcopy(changed)
        broken["sections"]["context_packets"]["items"][0].update(wrong)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, published)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, compare.DIFF_SCHEMA)
