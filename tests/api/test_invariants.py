"""Each contract invariant, refused through the API with the documented status and code."""

from __future__ import annotations

import pytest

from cwom.models import Event
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ"


def test_a_sealed_packet_cannot_be_patched(writer, issue, make):
    packet = make.packet(issue)

    response = writer.patch(f"context_packets/{packet.pk}", {"summary": "changed"})

    assert response.status_code == 409
    assert problem(response)["code"] in {"immutable", "sealed"}


def test_sealing_a_sealed_packet_is_a_conflict(writer, issue, make):
    packet = make.packet(issue)
    response = writer.post(f"context_packets/{packet.pk}/seal")
    assert response.status_code == 409
    assert problem(response)["code"] == "sealed"


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_snapshot_never_changes(writer, make, method):
    snapshot = make.snapshot()

    response = getattr(writer, method)(f"constraint_snapshots/{snapshot.pk}")

    assert response.status_code == 405
    body = problem(response)
    assert body["code"] == "method_not_allowed"
    assert "PATCH" not in response["Allow"]


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_doctrine_ref_never_changes(writer, make, method):
    doctrine = make.doctrine()
    response = getattr(writer, method)(f"doctrine_refs/{doctrine.pk}")
    assert response.status_code == 405
    assert problem(response)["detail"]


@pytest.mark.parametrize("path", ["repos", "issues", "context_packets", "runs", "artifacts"])
def test_nothing_is_ever_deleted_or_put(writer, path):
    assert writer.delete(f"{path}/{UNKNOWN_ID}").status_code == 405
    assert writer.put(f"{path}/{UNKNOWN_ID}", {}).status_code == 405


def test_an_illegal_transition_is_409_naming_the_legal_moves(writer, make):
    run = make.run(status="planned")

    response = writer.patch(f"runs/{run.pk}", {"status": "done"})

    assert response.status_code == 409
    body = problem(response)
    assert body["code"] == "illegal_transition"
    assert body["legal_moves"] == ["canceled", "ready"]
    assert body["current_status"] == "planned"


def test_a_terminal_run_has_no_legal_moves(writer, make):
    run = make.run(status="planned")
    writer.patch(f"runs/{run.pk}", {"status": "canceled"})
    body = problem(writer.patch(f"runs/{run.pk}", {"status": "ready"}))
    assert body["legal_moves"] == []


def test_failed_without_a_failure_is_422(writer, make):
    run = make.started_run()

    response = writer.patch(f"runs/{run.pk}", {"status": "failed"})

    assert response.status_code == 422
    assert problem(response)["code"] == "failure_required"
    error = problem(response)["errors"][0]
    assert (error["path"], error["code"]) == ("failure", "failure_required")


def test_failed_with_a_failure_is_accepted(writer, make):
    run = make.started_run()
    response = writer.patch(
        f"runs/{run.pk}", {"status": "failed", "failure": {"category": "test", "message": "3 tests failed"}}
    )
    assert response.status_code == 200
    assert response.json()["failure"] == {"category": "test", "message": "3 tests failed"}


def test_a_failure_on_another_status_is_refused(writer, make):
    run = make.started_run()
    response = writer.patch(f"runs/{run.pk}", {"status": "done", "failure": {"category": "test", "message": "x"}})
    assert response.status_code == 422
    assert problem(response)["code"] == "failure_not_allowed"


def test_an_artifact_for_a_planned_run_is_refused(writer, make):
    run = make.run(status="planned")

    response = writer.post("artifacts", {"produced_by": run.pk, "type": "report"})

    assert response.status_code == 409
    assert problem(response)["code"] == "run_not_started"
    assert problem(response)["errors"][0]["code"] == "run_not_started"


def test_a_ref_to_the_wrong_kind_is_422(writer, issue):
    response = writer.post("issues", {"repo": {"kind": "Issue", "id": issue.pk}, "title": "t"})

    assert response.status_code == 422
    assert problem(response)["code"] == "wrong_kind"
    assert problem(response)["errors"][0] == {
        "path": "repo",
        "code": "wrong_kind",
        "message": "Expected a Ref to a Repo, got kind Issue.",
    }


def test_a_bare_id_of_the_wrong_kind_is_422_saying_which_kind_it_is(writer, issue):
    response = writer.post("issues", {"repo": issue.pk, "title": "t"})
    assert response.status_code == 422
    assert problem(response)["errors"][0] == {
        "path": "repo",
        "code": "wrong_kind",
        "message": f"{issue.pk} is an Issue, not a Repo.",
    }


def test_a_ref_to_an_unknown_id_is_422(writer):
    response = writer.post("issues", {"repo": UNKNOWN_ID, "title": "t"})
    assert response.status_code == 422
    assert problem(response)["code"] == "unknown_ref"
    assert problem(response)["errors"][0]["code"] == "unknown_ref"


@pytest.mark.parametrize(
    "path", ["repos", "issues", "context_packets", "constraint_snapshots", "doctrine_refs", "runs", "artifacts"]
)
def test_an_unknown_id_is_404(writer, path):
    response = writer.get(f"{path}/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


def test_a_malformed_id_is_404_too(writer):
    assert problem(writer.get("issues/not-an-id"))["code"] == "not_found"


def test_an_unknown_url_under_the_api_is_a_404_problem(writer, outsider):
    assert problem(writer.get("nothing/here"))["code"] == "not_found"
    assert problem(outsider.post("nothing/here", {}))["code"] == "not_found"


def test_unknown_enum_values_in_bodies_name_the_allowed_values(writer, repo):
    response = writer.post("issues", {"repo": repo.pk, "title": "t", "priority": "P9"})

    error = problem(response)["errors"][0]
    assert error["path"] == "priority"
    assert error["code"] == "invalid_choice"
    assert "P0, P1, P2, P3, P4" in error["message"]


def test_a_duplicate_slug_is_409(writer, repo):
    response = writer.post("repos", {"name": "Again", "slug": repo.slug})
    assert response.status_code == 409
    assert problem(response)["code"] == "duplicate"


def test_a_duplicate_doctrine_version_is_409(writer, make):
    doctrine = make.doctrine()
    body = {
        "namespace": doctrine.namespace,
        "name": doctrine.name,
        "version": doctrine.version,
        "type": "policy",
        "priority": "must",
        "statement": "Again.",
    }
    assert writer.post("doctrine_refs", body).status_code == 409


def test_a_repo_slug_never_changes(writer, repo):
    response = writer.patch(f"repos/{repo.pk}", {"slug": "renamed"})
    assert response.status_code == 409
    assert problem(response)["code"] == "immutable"


def test_a_run_inputs_freeze_once_started(writer, make):
    run = make.started_run()
    other = make.packet(run.for_issue)

    response = writer.patch(f"runs/{run.pk}", {"inputs": {"context_packets": [other.pk]}})

    assert response.status_code == 409
    assert problem(response)["code"] == "inputs_frozen"


def test_the_decision_log_only_grows(writer, make):
    run = make.started_run(outputs={"decision_log": ["one"]})

    assert writer.patch(f"runs/{run.pk}", {"outputs": {"decision_log": ["one", "two"]}}).status_code == 200
    response = writer.patch(f"runs/{run.pk}", {"outputs": {"decision_log": ["two"]}})

    assert response.status_code == 409
    assert problem(response)["code"] == "append_only"


def test_an_artifact_changes_only_its_verification(writer, make):
    artifact = make.artifact(make.started_run())
    response = writer.patch(f"artifacts/{artifact.pk}", {"title": "renamed"})
    assert response.status_code == 409
    error = problem(response)["errors"][0]
    assert (error["path"], error["code"]) == ("title", "read_only_field")
    assert error["message"] == "title cannot change after creation: send it unchanged or leave it out."


def test_a_run_cannot_be_ready_without_a_sealed_packet(writer, issue):
    response = writer.post("runs", {"for_issue": issue.pk, "status": "ready"})
    assert response.status_code == 422
    assert problem(response)["code"] == "packet_required"
    assert problem(response)["errors"][0]["code"] == "packet_required"


def test_a_refused_write_leaves_no_event(writer, make):
    run = make.run(status="planned")
    before = Event.objects.count()
    writer.patch(f"runs/{run.pk}", {"status": "done", "plan": {"steps": ["x"]}})
    assert Event.objects.count() == before


def test_an_empty_patch_is_400(writer, issue):
    assert problem(writer.patch(f"issues/{issue.pk}", {}))["errors"][0]["code"] == "empty_patch"
