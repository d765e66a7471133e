"""The reaper: lost workers, ignored cancels and lost messages never leave a run stuck."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cwom import writes
from execution import lifecycle, runner
from execution.enqueue import enqueue
from execution.models import RunExecution
from execution.reaper import reap
from tests.execution.helpers import artifacts_by_type, assert_digest_matches, enqueue_body, status_moves

pytestmark = pytest.mark.django_db


def claimed_run(heartbeat_age_s: float = 0, **execution_fields):
    """An enqueued run claimed by a worker whose last heartbeat is ``heartbeat_age_s`` old."""
    run = enqueue(enqueue_body(executor={"name": "scripted", "config": {}})).run
    claim = lifecycle.claim(run.pk, "lost-worker:1")
    RunExecution.objects.filter(run=run).update(
        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age_s), **execution_fields
    )
    return writes.reload(run), claim


def test_a_live_run_is_left_alone(dispatched):
    run, _ = claimed_run(heartbeat_age_s=5)
    assert reap().as_dict() == {"requeued": [], "failed": [], "canceled": [], "redispatched": []}
    assert writes.reload(run).status == "running"


def test_a_run_whose_worker_died_is_requeued_and_redispatched(dispatched, django_capture_on_commit_callbacks):
    run, claim = claimed_run(heartbeat_age_s=600)
    dispatched.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = reap()
    assert report.requeued == [run.pk]
    assert writes.reload(run).status == "ready"
    assert status_moves(run.pk)[-2:] == [["running", "blocked"], ["blocked", "ready"]]
    assert [m["args"] for m in dispatched] == [[run.pk]]
    # The dead attempt is fenced; the next delivery runs attempt 2 to the end.
    assert lifecycle.finish(claim, lifecycle.Outcome(status="done")) == "fenced"
    assert runner.execute_run(run.pk, worker="new-worker:1") == "done"
    assert RunExecution.objects.get(run=run).attempt == 2


def test_a_lost_run_with_no_attempts_left_fails_as_worker_lost(dispatched):
    run, _ = claimed_run(heartbeat_age_s=600, max_attempts=1)
    assert reap().failed == [run.pk]
    run = writes.reload(run)
    assert run.status == "failed" and run.failure_category == "runtime"
    assert run.failure_message.startswith("Worker lost: no heartbeat since")
    found = artifacts_by_type(run.pk)
    assert "stopped heartbeating" in assert_digest_matches(found["log"][0]).decode()
    trace = json.loads(assert_digest_matches(found["trace"][0]))
    assert [e["to"] for e in trace["timeline"] if "to" in e] == ["ready", "running", "failed"]
    assert trace["timeline"][-1]["principal"] == "system:reaper"


def test_a_lost_run_past_its_time_limit_fails_rather_than_rerunning(dispatched):
    run, _ = claimed_run(heartbeat_age_s=600, claimed_at=timezone.now() - timedelta(hours=3))
    assert reap().failed == [run.pk]
    assert "time limit" in writes.reload(run).failure_message


def test_a_lost_run_with_a_pending_cancel_ends_canceled(dispatched):
    run, _ = claimed_run(heartbeat_age_s=600)
    lifecycle.request_cancel(run.pk)
    # the cancel itself is recent, so it is the stale heartbeat that ends the run
    assert reap().canceled == [run.pk]
    assert writes.reload(run).status == "canceled"


def test_a_cancel_ignored_past_its_grace_is_forced(dispatched, execution_settings):
    run, claim = claimed_run(heartbeat_age_s=1)
    assert lifecycle.request_cancel(run.pk).outcome == "requested"
    assert reap().canceled == []
    later = timezone.now() + timedelta(seconds=execution_settings["cancel_grace_seconds"] + 1)
    RunExecution.objects.filter(run=run).update(heartbeat_at=later)
    assert reap(now=later).canceled == [run.pk]
    assert writes.reload(run).status == "canceled"
    assert sorted(artifacts_by_type(run.pk)) == ["log", "trace"]
    # The stuck worker finally finishes: it is fenced out and records nothing.
    assert lifecycle.finish(claim, lifecycle.Outcome(status="done")) == "fenced"
    assert len(artifacts_by_type(run.pk)["log"]) == 1


def test_a_ready_run_whose_message_was_lost_is_dispatched_again(
    dispatched, execution_settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = enqueue(enqueue_body()).run
    assert reap().redispatched == []  # just dispatched: not lost
    later = timezone.now() + timedelta(seconds=execution_settings["redispatch_after_seconds"] + 1)
    dispatched.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reap(now=later).redispatched == [run.pk]
    assert [m["args"] for m in dispatched] == [[run.pk]]
    assert RunExecution.objects.get(run=run).dispatch_count == 2


def test_a_run_whose_dispatch_failed_is_dispatched_soon(dispatched, django_capture_on_commit_callbacks):
    run = enqueue(enqueue_body()).run  # on_commit never ran: as if the broker was down
    assert RunExecution.objects.get(run=run).dispatched_at is None
    assert reap().redispatched == []
    with django_capture_on_commit_callbacks(execute=True):
        assert reap(now=timezone.now() + timedelta(seconds=20)).redispatched == [run.pk]
    assert len(dispatched) == 1


def test_a_broker_outage_at_dispatch_leaves_the_run_ready_for_the_reaper(
    execution_settings, monkeypatch, django_capture_on_commit_callbacks
):
    from execution import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.execute_run, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        result = enqueue(enqueue_body())
    assert writes.reload(result.run).status == "ready"
    assert RunExecution.objects.get(run=result.run).dispatched_at is None


def test_cwom_reap_prints_what_it_did(dispatched):
    run, _ = claimed_run(heartbeat_age_s=600, max_attempts=1)
    out = io.StringIO()
    call_command("cwom_reap", stdout=out)
    assert json.loads(out.getvalue())["failed"] == [run.pk]
