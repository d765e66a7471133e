"""The enqueue service: one transaction, a ready run, dispatch only after commit."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from cwom.models import ContextPacket, Event, Issue, Run
from execution.enqueue import enqueue
from execution.models import RunExecution
from tests import factories
from tests.execution.helpers import enqueue_body

pytestmark = pytest.mark.django_db


def error_paths(excinfo: Any) -> dict[str, list[str]]:
    return {path: [e.code for e in errors] for path, errors in excinfo.value.error_dict.items()}


def test_enqueue_creates_issue_sealed_packet_snapshot_and_ready_run(dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = enqueue(enqueue_body())

    run = Run.objects.get(pk=result.run.pk)
    assert run.status == "ready"
    assert run.mode == "agent"
    assert run.for_issue_id == result.issue.pk
    assert result.issue.title == "Add /healthz endpoint"
    packet = ContextPacket.objects.get(pk=result.context_packet.pk)
    assert packet.sealed and packet.version == "1" and packet.for_issue_id == result.issue.pk
    assert packet.constraint_snapshot_id == result.constraint_snapshot.pk
    assert list(run.context_packet_links.values_list("packet_id", "role")) == [(packet.pk, "primary_context")]
    assert run.constraint_snapshot_id == result.constraint_snapshot.pk
    assert result.constraint_snapshot.time_available_minutes == 30
    assert list(result.issue.constraint_links.values_list("snapshot_id", flat=True)) == [result.constraint_snapshot.pk]
    execution = RunExecution.objects.get(run=run)
    assert (execution.executor_name, execution.attempt, execution.max_attempts) == ("noop", 0, 3)
    assert execution.dispatched_at is not None and execution.dispatch_count == 1
    # One message, carrying the run id only; time limits from the snapshot's 30 minutes.
    assert len(dispatched) == 1
    assert dispatched[0]["args"] == [run.pk]
    assert dispatched[0]["soft_time_limit"] == 1800
    assert dispatched[0]["time_limit"] == 1800 + 30
    assert "queue" not in dispatched[0]  # Celery's default queue
    assert result.refs()["run"] == {"kind": "Run", "id": run.pk, "role": None}


def test_nothing_is_dispatched_before_commit(dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue(enqueue_body())
        assert dispatched == []
    assert len(callbacks) == 1


def test_a_rolled_back_enqueue_dispatches_nothing_and_leaves_nothing(dispatched, django_capture_on_commit_callbacks):
    repo = factories.repo()
    runs_before = Run.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue(enqueue_body(repo))
            raise RuntimeError("the caller's transaction fails after the enqueue")
    assert callbacks == []
    assert dispatched == []
    assert Run.objects.count() == runs_before
    assert not Issue.objects.filter(repo=repo).exists()


def test_an_existing_issue_gets_the_next_packet_version(dispatched, issue):
    first = enqueue({"issue": issue.pk, "context": {"summary": "one"}})
    second = enqueue({"issue": {"kind": "Issue", "id": issue.pk}, "context": {"summary": "two"}})
    assert (first.context_packet.version, second.context_packet.version) == ("1", "2")
    assert not first.issue_created and first.issue.pk == issue.pk
    assert first.constraint_snapshot is None
    assert first.run.pk != second.run.pk


def test_constraints_may_name_an_existing_snapshot_and_doctrine_refs_are_inputs(dispatched, issue):
    snapshot = factories.snapshot(constraints={"time": {"available_minutes": 1}})
    doctrine = factories.doctrine()
    result = enqueue(
        {
            "issue": issue.pk,
            "context": {"summary": "s"},
            "constraints": {"kind": "ConstraintSnapshot", "id": snapshot.pk},
            "doctrine_refs": [doctrine.pk],
            "mode": "hybrid",
        }
    )
    run = result.run
    assert run.constraint_snapshot_id == snapshot.pk
    assert list(run.doctrine_ref_links.values_list("doctrine_ref_id", flat=True)) == [doctrine.pk]
    assert run.mode == "hybrid"
    # The issue's constraint list gained the snapshot, and that change is an event of the issue.
    assert Event.objects.filter(object_id=issue.pk, action="update", changes__has_key="constraints").exists()


def test_repo_may_be_given_by_id_or_ref(dispatched, repo):
    by_id = enqueue({"issue": {"repo": repo.pk, "title": "a"}, "context": {}})
    by_ref = enqueue({"issue": {"repo": {"kind": "Repo", "id": repo.pk}, "title": "b"}, "context": {}})
    assert by_id.issue.repo_id == by_ref.issue.repo_id == repo.pk


@pytest.mark.parametrize(
    ("change", "path", "code"),
    [
        ({"issue": {"repo": "no-such-repo", "title": "x"}}, "issue.repo", "unknown_ref"),
        ({"issue": {"repo": "{repo}", "title": ""}}, "issue.title", "empty_value"),
        ({"issue": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "issue", "unknown_ref"),
        ({"context": None}, "context", "required"),
        ({"context": {"version": "7"}}, "context.version", "invalid"),
        ({"context": {"sealed": False}}, "context.sealed", "sealed"),
        ({"context": {"summary": 5}}, "context.summary", "invalid_type"),
        ({"constraints": {"scope": "galaxy"}}, "constraints.scope", "invalid_choice"),
        ({"executor": {"name": "teleport"}}, "executor.name", "invalid_choice"),
        ({"executor": {"name": "noop", "config": {"x": 1}}}, "executor.config.x", "unknown_field"),
        ({"executor": {"name": "command", "config": {"argv": ["ls"]}}}, "executor.name", "executor_disabled"),
        ({"mode": "robot"}, "mode", "invalid_choice"),
        ({"doctrine_refs": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}, "doctrine_refs.0", "unknown_ref"),
        ({"priority": "P1"}, "priority", "unexpected_field"),
        ({"issue": "NOTAULID"}, "issue", "invalid_id"),
        ({"issue": {"kind": "Run", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}, "issue", "wrong_kind"),
        ({"doctrine_refs": [5]}, "doctrine_refs.0", "invalid_id"),
        ({"issue": {"id": {"id": "x"}}}, "issue", "invalid_id"),  # found by schemathesis: a 500
        ({"doctrine_refs": [{"id": {"id": "x"}}]}, "doctrine_refs.0", "invalid_id"),
    ],
)
def test_invalid_bodies_are_refused_by_contract_path(dispatched, repo, change, path, code):
    body = enqueue_body(repo)
    for key, value in change.items():
        if isinstance(value, dict) and value.get("repo") == "{repo}":
            value = {**value, "repo": repo.slug}
        body[key] = value
    runs_before = Run.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        enqueue(body)
    assert code in error_paths(excinfo).get(path, []), error_paths(excinfo)
    assert Run.objects.count() == runs_before
    assert dispatched == []


def test_the_command_executor_needs_an_allowlisted_program(dispatched, repo, execution_settings):
    execution_settings["command"].update(enabled=True, allowlist=["echo"])
    with pytest.raises(ValidationError) as excinfo:
        enqueue(enqueue_body(repo, executor={"name": "command", "config": {"argv": ["rm", "-rf", "/"]}}))
    assert error_paths(excinfo) == {"executor.config.argv.0": ["not_allowed"]}
    result = enqueue(enqueue_body(repo, executor={"name": "command", "config": {"argv": ["echo", "hi"]}}))
    assert result.execution.executor_config == {"argv": ["echo", "hi"]}


def test_run_tasks_go_to_the_configured_queue(dispatched, execution_settings, django_capture_on_commit_callbacks):
    execution_settings["queue"] = "runs"
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(enqueue_body())
    assert dispatched[0]["queue"] == "runs"


@pytest.mark.django_db(transaction=True)
def test_concurrent_enqueues_on_one_issue_take_distinct_versions(dispatched, is_postgres):
    if not is_postgres:
        pytest.skip("a real race needs PostgreSQL (SQLite's in-memory test database serializes differently)")
    import threading

    from django.db import connection

    issue = factories.issue()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def enqueue_one() -> None:
        try:
            barrier.wait(timeout=10)
            enqueue({"issue": issue.pk, "context": {"summary": "race"}})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    versions = sorted(ContextPacket.objects.filter(for_issue=issue).values_list("version", flat=True), key=int)
    assert versions == ["1", "2", "3", "4", "5", "6"]
    assert Run.objects.filter(for_issue=issue).count() == 6
