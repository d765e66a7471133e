"""Happy paths: every endpoint answers in the contract's shape."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from cwom import shapes
from cwom.models import Event
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db

ACTOR = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}


def assert_shape(kind: str, body: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(shapes.json_schema(kind, "out")).validate(body)


def test_a_writer_creates_a_repo_and_reads_it_back(writer):
    created = writer.post("repos", {"name": "Control Tower", "slug": "control-tower", "tags": ["core"]})

    assert created.status_code == 201
    body = created.json()
    assert_shape("Repo", body)
    assert created["Location"] == f"/api/v1/repos/{body['id']}"
    assert created["ETag"]
    fetched = writer.get(f"repos/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched["ETag"] == created["ETag"]


def test_every_route_works_with_and_without_a_trailing_slash(writer, repo):
    assert writer.get("repos").status_code == 200
    assert writer.get("repos/").status_code == 200
    assert writer.get(f"repos/{repo.pk}/").json()["id"] == repo.pk
    assert writer.post("repos/", {"name": "Slash", "slug": "slash"}).status_code == 201


def test_lowercase_ids_in_paths_resolve_to_the_same_object(writer, repo):
    assert writer.get(f"repos/{repo.pk.lower()}").json()["id"] == repo.pk


def test_an_issue_is_created_with_a_bare_id_ref_and_answers_full_refs(writer, repo):
    response = writer.post("issues", {"repo": repo.pk, "title": "Add /healthz", "created_by": ACTOR})

    assert response.status_code == 201
    body = response.json()
    assert_shape("Issue", body)
    assert body["repo"] == {"kind": "Repo", "id": repo.pk, "role": None}


def test_an_issue_is_created_with_a_full_ref(writer, repo):
    response = writer.post("issues", {"repo": {"kind": "Repo", "id": repo.pk}, "title": "t"})
    assert response.status_code == 201


def test_a_writer_patches_an_issue(writer, issue):
    response = writer.patch(f"issues/{issue.pk}", {"status": "ready", "priority": "P1"})

    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["priority"] == "P1"
    assert response["ETag"]


def test_a_snapshot_is_created_and_read(writer):
    body = {"scope": "run", "owner": ACTOR, "constraints": {"energy": {"score_0_5": 4}}}
    created = writer.post("constraint_snapshots", body)

    assert created.status_code == 201
    assert_shape("ConstraintSnapshot", created.json())
    assert writer.get(f"constraint_snapshots/{created.json()['id']}").json()["constraints"]["energy"]["score_0_5"] == 4


def test_a_doctrine_ref_is_created_and_read(writer, repo):
    body = {
        "namespace": "security",
        "name": "no-secrets-in-logs",
        "version": "1.0.0",
        "type": "policy",
        "priority": "must",
        "statement": "Never log secrets.",
        "applicability": {"repo_refs": [repo.pk], "issue_types": ["feature"]},
    }
    created = writer.post("doctrine_refs", body)

    assert created.status_code == 201
    assert_shape("DoctrineRef", created.json())
    assert created.json()["applicability"]["repo_refs"] == [{"kind": "Repo", "id": repo.pk, "role": None}]


def test_a_draft_packet_is_patched_then_sealed(writer, issue):
    draft = writer.post("context_packets", {"for_issue": issue.pk, "summary": "draft", "sealed": False}).json()
    assert draft["sealed"] is False

    patched = writer.patch(f"context_packets/{draft['id']}", {"summary": "better"})
    assert patched.status_code == 200
    assert patched.json()["summary"] == "better"

    sealed = writer.post(f"context_packets/{draft['id']}/seal")
    assert sealed.status_code == 200
    assert sealed.json()["sealed"] is True
    assert sealed.json()["sealed_at"]
    assert_shape("ContextPacket", sealed.json())


def test_a_run_moves_through_its_states_and_records_artifacts(writer, issue, make):
    packet = make.packet(issue)
    run = writer.post("runs", {"for_issue": issue.pk, "inputs": {"context_packets": [packet.pk]}}).json()
    assert run["status"] == "planned"
    assert run["repo"]["id"] == issue.repo_id

    for status in ("ready", "running"):
        moved = writer.patch(f"runs/{run['id']}", {"status": status})
        assert moved.status_code == 200, moved.json()
    artifact = writer.post("artifacts", {"produced_by": run["id"], "type": "report", "title": "Report"})
    assert artifact.status_code == 201
    assert_shape("Artifact", artifact.json())
    assert artifact.json()["for_issue"]["id"] == issue.pk

    verified = writer.patch(f"artifacts/{artifact.json()['id']}", {"verification": {"status": "passed"}})
    assert verified.json()["verification"]["status"] == "passed"
    done = writer.patch(f"runs/{run['id']}", {"status": "done", "outputs": {"result_summary": "ok"}})
    assert done.status_code == 200
    assert done.json()["telemetry"]["ended_at"]
    assert done.json()["outputs"]["artifacts"] == [{"kind": "Artifact", "id": artifact.json()["id"], "role": None}]


def test_the_lineage_of_a_run_holds_its_whole_chain(writer, make):
    run = make.started_run()
    make.artifact(run)

    response = writer.get(f"runs/{run.pk}/lineage")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"run", "repo", "issue", "context_packets", "constraint_snapshot", "doctrine_refs", "artifacts"}
    assert body["run"]["id"] == run.pk
    assert len(body["artifacts"]) == 1
    assert_shape("Run", body["run"])


def test_lineage_of_an_unknown_run_is_404(writer):
    assert problem(writer.get("runs/01JD0Z8K3M5Q7R9T1V3X5Z7RNN/lineage"))["code"] == "not_found"


def test_any_id_resolves_through_objects(writer, issue):
    response = writer.get(f"objects/{issue.pk}")

    assert response.status_code == 200
    assert response.json()["kind"] == "Issue"
    assert response["Content-Location"] == f"/api/v1/issues/{issue.pk}"


def test_an_unknown_object_id_is_404(writer):
    assert problem(writer.get("objects/01JD0Z8K3M5Q7R9T1V3X5Z7AAA")).get("code") == "not_found"


def test_the_history_of_one_object_lists_its_events_oldest_first(writer, issue):
    writer.patch(f"issues/{issue.pk}", {"status": "ready"})

    events = writer.get(f"issues/{issue.pk}/events").json()["results"]

    assert [e["action"] for e in events] == ["create", "update"]
    assert events[1]["principal"] == "token:writer-agent"
    assert events[1]["changes"]["status"] == ["planned", "ready"]
    assert events[0]["object"] == {"kind": "Issue", "id": issue.pk, "role": None}


def test_the_history_of_an_object_of_another_kind_is_404(writer, issue):
    assert writer.get(f"runs/{issue.pk}/events").status_code == 404


def test_the_event_feed_filters_by_object_kind_and_action(writer, issue, make):
    run = make.started_run(issue_obj=issue)

    transitions = writer.get("events", {"kind": "Run", "action": "transition"}).json()["results"]
    by_object = writer.get("events", {"object_id": issue.pk}).json()["results"]

    assert [e["object"]["id"] for e in transitions] == [run.pk]
    assert {e["object"]["id"] for e in by_object} == {issue.pk}
    assert writer.get("events", {"action": "teleport"}).status_code == 400


def test_every_list_endpoint_answers_a_cursor_page(writer, make):
    make.artifact(make.started_run())
    make.snapshot()
    make.doctrine()
    for path in (
        "repos",
        "issues",
        "context_packets",
        "constraint_snapshots",
        "doctrine_refs",
        "runs",
        "artifacts",
        "events",
    ):
        body = writer.get(path).json()
        assert set(body) == {"next", "previous", "results"}, path
        assert body["results"], path


def test_health_needs_no_credential(outsider):
    assert outsider.get("healthz").json() == {"status": "ok"}
    assert outsider.get("readyz").json() == {"status": "ok", "database": "ok"}


def test_readiness_is_503_in_the_problem_format_when_the_database_is_down(outsider, monkeypatch):
    from django.db import OperationalError
    from django.db.backends.base.base import BaseDatabaseWrapper

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", refuse)
    response = outsider.get("readyz")

    assert response.status_code == 503
    assert problem(response)["code"] == "database_unavailable"
    assert response["Retry-After"]


def test_events_are_written_only_by_writes(writer, issue):
    before = Event.objects.count()
    writer.get(f"issues/{issue.pk}")
    writer.get("issues")
    assert Event.objects.count() == before


def test_a_lost_database_is_a_503_problem_on_any_endpoint(writer, monkeypatch):
    from django.db import OperationalError

    from cwom.models import ApiToken

    def unreachable(presented: str) -> Any:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(ApiToken, "authenticate", unreachable)
    response = writer.get("issues")

    assert response.status_code == 503
    assert problem(response)["code"] == "database_unavailable"
    assert response["Retry-After"]


def test_an_unexpected_error_is_a_500_problem_and_is_logged(writer, monkeypatch, caplog):
    from cwom import writes

    def broken(kind: str, body: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(writes, "create", broken)
    response = writer.post("repos", {"name": "x", "slug": "x"})

    assert response.status_code == 500
    assert problem(response)["code"] == "internal_error"
    assert "boom" not in response.content.decode()
    assert any("unhandled error" in record.getMessage() for record in caplog.records)
