"""One attempt from claim to outcome, run in-process (the task function called directly)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from cwom import writes
from cwom.models import Event, Run, RunTransitionError
from cwom_site.celery import app as celery_app
from execution import lifecycle, runner
from execution.enqueue import enqueue
from execution.models import RunExecution
from tests.execution.helpers import (
    artifacts_by_type,
    assert_digest_matches,
    enqueue_body,
    status_moves,
    trace_of,
)

pytestmark = pytest.mark.django_db


def enqueued(executor: str = "noop", config: dict[str, Any] | None = None, **overrides: Any) -> Run:
    body = enqueue_body(executor={"name": executor, "config": config or {}}, **overrides)
    return enqueue(body).run


def run_it(run: Run) -> str | None:
    return runner.execute_run(run.pk, worker="test-worker:1", task_id="task-1")


def test_noop_run_ends_done_with_report_log_and_trace(dispatched):
    run = enqueued()
    assert run_it(run) == "done"

    run = writes.reload(run)
    assert run.status == "done"
    assert run.started_at and run.ended_at and run.duration_s is not None
    assert run.result_summary.startswith("noop:")
    assert run.decision_log == ["noop executor: no action taken"]
    found = artifacts_by_type(run.pk)
    assert sorted(found) == ["log", "report", "trace"]
    log = assert_digest_matches(found["log"][0]).decode()
    assert "attempt 1 claimed by test-worker:1" in log
    assert "ends done" in log
    report = json.loads(assert_digest_matches(found["report"][0]))
    assert report["issue"]["title"] == "Add /healthz endpoint"
    for artifact in found["log"] + found["trace"] + found["report"]:
        assert artifact.uri == f"/api/v1/artifacts/{artifact.pk}/content"
    trace = trace_of(run.pk)
    moves = [(e.get("from"), e.get("to")) for e in trace["timeline"] if e["source"] == "event" and "to" in e]
    assert moves == [(None, "ready"), ("ready", "running"), ("running", "done")]
    steps = [e["step"] for e in trace["timeline"] if e["source"] == "worker"]
    assert steps[0] == "attempt.claimed" and steps[-1] == "attempt.end" and "executor.start" in steps
    execution = RunExecution.objects.get(run=run)
    assert (execution.attempt, execution.claimed_by, execution.task_id) == (1, "test-worker:1", "task-1")
    # Every change was made by the worker principal.
    assert set(Event.objects.filter(object_id=run.pk, action="transition").values_list("principal", flat=True)) == {
        "system:worker"
    }


def test_result_fields_and_artifacts_of_an_executor_are_recorded(dispatched):
    run = enqueued("scripted", {"summary": "all good"})
    assert run_it(run) == "done"
    run = writes.reload(run)
    assert (run.result_summary, run.cost_usd, run.cost_tokens) == ("all good", 0.25, 42)
    assert run.decision_log == ["scripted: did the thing"]
    found = artifacts_by_type(run.pk)
    assert assert_digest_matches(found["report"][0]) == b"hello from scripted\n"
    (link,) = found["link"]
    assert (link.uri, link.stored_name, link.digest) == ("https://example.com/docs", "", None)


def test_the_same_task_delivered_twice_executes_once(dispatched):
    run = enqueued("scripted")
    assert run_it(run) == "done"
    assert run_it(run) is None
    assert status_moves(run.pk) == [["ready", "running"], ["running", "done"]]
    assert len(artifacts_by_type(run.pk)["log"]) == 1
    assert RunExecution.objects.get(run=run).attempt == 1


def test_unknown_and_never_enqueued_runs_are_nothing_to_claim(dispatched, ready_run):
    assert runner.execute_run("01ARZ3NDEKTSV4RRFFQ69G5FAV", worker="w") is None
    assert runner.execute_run(ready_run.pk, worker="w") is None
    assert writes.reload(ready_run).status == "ready"


def test_executor_error_fails_the_run_with_its_category_message_and_a_log(dispatched):
    run = enqueued("scripted", {"fail": {"category": "test", "message": "3 tests failed"}})
    assert run_it(run) == "failed"
    run = writes.reload(run)
    assert (run.failure_category, run.failure_message) == ("test", "3 tests failed")
    found = artifacts_by_type(run.pk)
    assert "3 tests failed" in assert_digest_matches(found["log"][0]).decode()
    assert "trace" in found and "report" not in found


def test_an_executor_crash_fails_the_run_as_runtime_with_the_traceback_in_the_log(dispatched):
    run = enqueued("scripted", {"crash": "kaboom"})
    assert run_it(run) == "failed"
    run = writes.reload(run)
    assert run.failure_category == "runtime"
    assert "RuntimeError: kaboom" in run.failure_message
    assert "Traceback" in assert_digest_matches(artifacts_by_type(run.pk)["log"][0]).decode()


def test_a_result_the_kernel_refuses_fails_the_run_instead_of_leaving_it_running(dispatched):
    run = enqueued("scripted", {"bad_artifact": True})
    assert run_it(run) == "failed"
    run = writes.reload(run)
    assert run.failure_category == "runtime"
    assert run.failure_message.startswith("The executor's result was refused: uri")
    assert sorted(artifacts_by_type(run.pk)) == ["log", "trace"]


def test_an_unknown_executor_at_run_time_is_a_policy_failure(dispatched, execution_settings):
    run = enqueued("scripted")
    del execution_settings["executors"]["scripted"]
    assert run_it(run) == "failed"
    assert writes.reload(run).failure_category == "policy"


def test_a_run_past_its_time_limit_fails(dispatched):
    # 0.005 minutes = 0.3 s; the executor would sleep 5 s, checkpointing.
    constraints = {"scope": "run", "constraints": {"time": {"available_minutes": 0.005}}}
    run = enqueued("scripted", {"sleep": 5}, constraints=constraints)
    started = timezone.now()
    assert run_it(run) == "failed"
    assert (timezone.now() - started).total_seconds() < 3
    run = writes.reload(run)
    assert run.failure_category == "runtime"
    assert run.failure_message.startswith("Timed out")


def test_cancel_before_start_cancels_at_once_and_the_worker_finds_nothing(dispatched):
    run = enqueued()
    result = lifecycle.request_cancel(run.pk, "token:maria")
    assert result.outcome == "canceled" and result.run.status == "canceled"
    assert run_it(run) is None
    assert writes.reload(run).status == "canceled"
    assert artifacts_by_type(run.pk) == {}


def test_cancel_while_running_ends_canceled_at_the_next_checkpoint(dispatched):
    run = enqueued("scripted", {"cancel_during": True, "sleep": 5})
    started = timezone.now()
    assert run_it(run) == "canceled"
    assert (timezone.now() - started).total_seconds() < 3
    run = writes.reload(run)
    assert run.status == "canceled" and run.result_summary is None
    found = artifacts_by_type(run.pk)
    assert "a cancel was requested" in assert_digest_matches(found["log"][0]).decode()
    assert "report" not in found


def test_a_late_success_never_overwrites_a_cancel(dispatched):
    # The executor never checkpoints after the cancel and returns success: the run still ends canceled.
    run = enqueued("scripted", {"cancel_during": True})
    assert run_it(run) == "canceled"
    assert status_moves(run.pk)[-1] == ["running", "canceled"]
    assert "result is not recorded" in assert_digest_matches(artifacts_by_type(run.pk)["log"][0]).decode()


def test_cancelling_a_finished_run_is_an_illegal_transition(dispatched):
    run = enqueued()
    run_it(run)
    with pytest.raises(RunTransitionError):
        lifecycle.request_cancel(run.pk)


def test_a_zombie_attempt_cannot_overwrite_a_newer_one(dispatched):
    run = enqueued("scripted")
    zombie = lifecycle.claim(run.pk, "old-worker:1")
    assert zombie is not None and zombie.attempt == 1
    # The reaper re-queues the run (the old worker looked dead) and a new worker claims it.
    run = writes.reload(run)
    writes.transition(run, "blocked")
    writes.transition(run, "ready")
    current = lifecycle.claim(run.pk, "new-worker:1")
    assert current is not None and current.attempt == 2
    assert lifecycle.heartbeat(run.pk, zombie.attempt) == "fenced"
    assert lifecycle.finish(zombie, lifecycle.Outcome(status="done", log_text="zombie\n")) == "fenced"
    assert writes.reload(run).status == "running"
    assert artifacts_by_type(run.pk) == {}
    assert lifecycle.heartbeat(run.pk, current.attempt) is None
    assert lifecycle.finish(current, lifecycle.Outcome(status="done", log_text="current\n")) == "done"
    assert assert_digest_matches(artifacts_by_type(run.pk)["log"][0]) == b"current\n"


def test_the_celery_task_runs_the_same_path_when_eager(execution_settings, django_capture_on_commit_callbacks):
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = enqueue(enqueue_body())
    finally:
        celery_app.conf.task_always_eager = eager
    assert writes.reload(result.run).status == "done"
    assert RunExecution.objects.get(run=result.run).dispatch_count == 1
