"""POST /api/v1/runs/{id}/retry: a failed or canceled run is run again, with the same inputs and executor."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from cwom import writes
from cwom.models import Run
from execution import runner
from execution.enqueue import enqueue
from execution.models import RunExecution
from tests import factories
from tests.execution.helpers import client_with, enqueue_body

pytestmark = pytest.mark.django_db

FAIL = {"fail": {"category": "test", "message": "3 tests failed"}}


@pytest.fixture
def writer() -> APIClient:
    return client_with(can_write=True)


def failed_run() -> Run:
    run = enqueue(enqueue_body(executor={"name": "scripted", "config": FAIL})).run
    assert runner.execute_run(run.pk, worker="test-worker:1", task_id="task-1") == "failed"
    return Run.objects.get(pk=run.pk)


def links(run: Run, name: str) -> list[tuple[str, str | None]]:
    return writes.current_links(run, name)


def test_a_failed_run_is_retried_with_its_inputs_and_executor(
    writer: APIClient, dispatched: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    original = failed_run()
    dispatched.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = writer.post(f"/api/v1/runs/{original.pk}/retry")
    assert response.status_code == 202, response.json()
    body = response.json()
    retry = Run.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/v1/runs/{retry.pk}"
    assert body["managed_by"] == "service"  # the service executes the retry
    assert body["retry_of"] == {"kind": "Run", "id": original.pk, "role": None}
    assert body["status"] == "ready" and retry.for_issue_id == original.for_issue_id
    for name in ("context_packets", "doctrine_refs"):
        assert links(retry, name) == links(original, name)
    assert retry.constraint_snapshot_id == original.constraint_snapshot_id
    assert (retry.executor_runtime, retry.executor_toolchain) == (
        original.executor_runtime,
        original.executor_toolchain,
    )
    first, again = RunExecution.objects.get(run=original), RunExecution.objects.get(run=retry)
    assert (again.executor_name, again.executor_config) == (first.executor_name, first.executor_config)
    assert [message["args"] for message in dispatched] == [[retry.pk]]
    # The retry runs as the original did (the scripted failure again) and can be retried in turn.
    assert runner.execute_run(retry.pk, worker="test-worker:1", task_id="task-2") == "failed"
    assert writer.get(f"/api/v1/runs/{original.pk}").json()["retry_of"] is None


def test_a_canceled_run_is_retried(writer: APIClient, dispatched: list[dict[str, Any]]) -> None:
    run = enqueue(enqueue_body()).run
    assert writer.post(f"/api/v1/runs/{run.pk}/cancel").status_code == 200
    response = writer.post(f"/api/v1/runs/{run.pk}/retry")
    assert response.status_code == 202, response.json()
    assert response.json()["retry_of"]["id"] == run.pk


@pytest.mark.parametrize("status", ["ready", "done"])
def test_only_a_failed_or_canceled_run_is_retried(
    writer: APIClient, dispatched: list[dict[str, Any]], status: str
) -> None:
    run = enqueue(enqueue_body()).run
    if status == "done":
        assert runner.execute_run(run.pk, worker="test-worker:1", task_id="task-1") == "done"
    before = Run.objects.count()
    response = writer.post(f"/api/v1/runs/{run.pk}/retry")
    assert response.status_code == 409, response.json()
    assert response.json()["errors"][0]["code"] == "not_retryable"
    assert f"run {run.pk} is {status}" in response.json()["errors"][0]["message"]
    assert Run.objects.count() == before


def test_a_run_the_service_did_not_execute_is_the_clients_to_retry(writer: APIClient) -> None:
    run = factories.run(status="planned", packets=[])
    writes.transition(run, "canceled")
    response = writer.post(f"/api/v1/runs/{run.pk}/retry")
    assert response.status_code == 409, response.json()
    assert response.json()["errors"][0]["code"] == "no_executor"
    # ... which it does by creating the next run with retry_of.
    created = writer.post(
        "/api/v1/runs", {"for_issue": run.for_issue_id, "status": "planned", "retry_of": run.pk}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["retry_of"]["id"] == run.pk


def test_retry_of_names_a_failed_or_canceled_run_of_the_same_issue(writer: APIClient) -> None:
    canceled = factories.run(status="planned", packets=[])
    writes.transition(canceled, "canceled")
    running = factories.run(status="planned", packets=[])
    elsewhere = factories.issue()
    for issue_id, retried in ((elsewhere.pk, canceled.pk), (running.for_issue_id, running.pk)):
        response = writer.post(
            "/api/v1/runs", {"for_issue": issue_id, "status": "planned", "retry_of": retried}, format="json"
        )
        assert response.status_code == 409, response.json()
        assert response.json()["errors"][0] == {
            "path": "retry_of",
            "code": "not_retryable",
            "message": response.json()["errors"][0]["message"],
        }
    wrong_kind = writer.post(
        "/api/v1/runs", {"for_issue": elsewhere.pk, "status": "planned", "retry_of": elsewhere.pk}, format="json"
    )
    assert wrong_kind.status_code == 422 and wrong_kind.json()["code"] == "wrong_kind"


def test_what_a_run_retries_never_changes(writer: APIClient) -> None:
    canceled = factories.run(status="planned", packets=[])
    writes.transition(canceled, "canceled")
    retry = writes.create("Run", {"for_issue": canceled.for_issue_id, "status": "planned", "retry_of": canceled.pk})
    response = writer.patch(f"/api/v1/runs/{retry.pk}", {"retry_of": None}, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "immutable"
    assert Run.objects.get(pk=retry.pk).retry_of_id == canceled.pk
    with pytest.raises(IntegrityError, match="cwom:immutable:"), transaction.atomic():
        Run.objects.filter(pk=retry.pk).update(retry_of=None)
    other = factories.run(status="planned", packets=[])
    with pytest.raises(IntegrityError, match="cwom:not_retryable:"), transaction.atomic():
        Run.objects.filter(pk=other.pk).update(retry_of=None)  # no change: allowed
        Run.objects.bulk_create([Run(for_issue_id=other.for_issue_id, repo_id=other.repo_id, retry_of=canceled)])


def test_a_retry_with_an_idempotency_key_creates_one_run(writer: APIClient, dispatched: list[dict[str, Any]]) -> None:
    original = failed_run()
    answers = [
        writer.post(f"/api/v1/runs/{original.pk}/retry", HTTP_IDEMPOTENCY_KEY="retry-once") for _attempt in range(2)
    ]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert Run.objects.filter(retry_of=original).count() == 1
