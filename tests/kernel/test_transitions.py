"""The run state machine: the whole 7x7 table, the rules attached to each move, and the telemetry."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.utils import timezone

from cwom import writes
from cwom.enums import RUN_TRANSITIONS, TERMINAL_STATUSES, Status
from cwom.models import Event, Issue, Run, RunContextPacket, RunTransitionError
from tests.kernel.assertions import refused

pytestmark = pytest.mark.django_db

# How to bring a fresh ready run to each status, one legal move at a time.
PATH_FROM_READY: dict[str, list[str]] = {
    Status.READY: [],
    Status.RUNNING: [Status.RUNNING],
    Status.BLOCKED: [Status.BLOCKED],
    Status.DONE: [Status.RUNNING, Status.DONE],
    Status.FAILED: [Status.RUNNING, Status.FAILED],
    Status.CANCELED: [Status.CANCELED],
}
FAILURE = {"failure_category": "test", "failure_message": "3 tests red"}


def failure_for(status: str) -> dict[str, str]:
    return FAILURE if status == Status.FAILED else {}


def run_in(status: str, issue: Issue, make: Any) -> Run:
    """A run of ``issue`` (with one sealed packet) brought to ``status`` through legal moves."""
    if status == Status.PLANNED:
        return make.run(issue, status="planned", packets=[make.packet(issue)])
    run = make.run(issue, status="ready")
    for step in PATH_FROM_READY[status]:
        writes.transition(run, step, **failure_for(step))
    return writes.reload(run)


ALL_PAIRS = list(itertools.product(Status.values, repeat=2))
LEGAL_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in RUN_TRANSITIONS[a]]
ILLEGAL_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in RUN_TRANSITIONS[a]]


def test_the_table_is_the_contract() -> None:
    assert {a: sorted(b) for a, b in RUN_TRANSITIONS.items()} == {
        "planned": ["canceled", "ready"],
        "ready": ["blocked", "canceled", "running"],
        "running": ["blocked", "canceled", "done", "failed"],
        "blocked": ["canceled", "failed", "ready", "running"],
        "done": [],
        "failed": [],
        "canceled": [],
    }
    assert len(ALL_PAIRS) == 49
    assert len(LEGAL_PAIRS) == 13


@pytest.mark.parametrize(("current", "target"), LEGAL_PAIRS, ids=[f"{a}->{b}" for a, b in LEGAL_PAIRS])
def test_every_legal_move_is_accepted(issue: Issue, make: Any, current: str, target: str) -> None:
    run = run_in(current, issue, make)
    events_before = Event.objects.filter(object_id=run.pk, action="transition").count()
    writes.transition(run, target, **failure_for(target))
    assert run.status == target
    assert Run.objects.get(pk=run.pk).status == target
    event = Event.objects.filter(object_id=run.pk, action="transition").latest("id")
    assert event.changes["status"] == [current, target]
    assert Event.objects.filter(object_id=run.pk, action="transition").count() == events_before + 1


@pytest.mark.parametrize(("current", "target"), ILLEGAL_PAIRS, ids=[f"{a}->{b}" for a, b in ILLEGAL_PAIRS])
def test_every_illegal_move_is_refused_naming_the_legal_moves(
    issue: Issue, make: Any, current: str, target: str
) -> None:
    run = run_in(current, issue, make)
    events_before = Event.objects.filter(object_id=run.pk).count()
    with pytest.raises(RunTransitionError) as caught:
        writes.transition(run, target, **failure_for(target))
    legal = sorted(RUN_TRANSITIONS[current])
    assert (caught.value.current, caught.value.requested, caught.value.legal) == (current, target, legal)
    assert caught.value.code == "illegal_transition"
    message = str(caught.value)
    assert f"from {current} to {target}" in message
    for move in legal:
        assert move in message.split("Legal moves")[1]
    if not legal:
        assert "none (terminal)" in message
    assert run.status == current
    assert Run.objects.get(pk=run.pk).status == current
    assert Event.objects.filter(object_id=run.pk).count() == events_before


def test_a_status_change_in_an_update_body_goes_through_the_state_machine(issue: Issue, make: Any) -> None:
    run = make.run(issue, status="planned")
    with pytest.raises(RunTransitionError):
        writes.update(run, {"status": "done"})
    ready = writes.update(run, {"status": "ready", "inputs": {"context_packets": [make.packet(issue).pk]}})
    assert ready.status == "ready"


# --- telemetry ------------------------------------------------------------------------------------------
def test_entering_running_sets_started_at(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    assert run.started_at is None
    before = timezone.now()
    writes.transition(run, "running")
    stored = Run.objects.get(pk=run.pk)
    assert before <= stored.started_at <= timezone.now()
    assert (stored.ended_at, stored.duration_s) == (None, None)


def test_running_again_after_a_block_keeps_the_first_start(issue: Issue, make: Any) -> None:
    run = run_in("running", issue, make)
    started = run.started_at
    writes.transition(run, "blocked")
    writes.transition(run, "running")
    assert Run.objects.get(pk=run.pk).started_at == started


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_entering_a_terminal_status_sets_ended_at_and_duration(issue: Issue, make: Any, terminal: str) -> None:
    run = run_in("running", issue, make)
    writes.transition(run, terminal, **failure_for(terminal))
    stored = Run.objects.get(pk=run.pk)
    assert stored.ended_at >= stored.started_at
    assert stored.duration_s == pytest.approx((stored.ended_at - stored.started_at).total_seconds(), abs=1e-5)


def test_a_run_canceled_before_it_started_lasted_zero_seconds(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    writes.transition(run, "canceled")
    stored = Run.objects.get(pk=run.pk)
    assert (stored.started_at, stored.ended_at is not None, stored.duration_s) == (None, True, 0.0)


# --- the constraint snapshot is pinned at the start ----------------------------------------------------
def test_the_issue_latest_snapshot_by_capture_time_is_pinned_when_none_is_named(issue: Issue, make: Any) -> None:
    now = timezone.now()
    latest = make.snapshot(captured_at=(now - dt.timedelta(minutes=1)).isoformat())
    older = make.snapshot(captured_at=(now - dt.timedelta(days=1)).isoformat())  # created last, captured first
    make.snapshot(captured_at=now.isoformat())  # newest of all, but not linked to this issue
    writes.update(issue, {"constraints": [older.pk, latest.pk]})
    run = make.run(issue)
    assert run.constraint_snapshot_id is None
    writes.transition(run, "running")
    assert Run.objects.get(pk=run.pk).constraint_snapshot_id == latest.pk


def test_a_named_snapshot_is_kept_at_the_start(issue: Issue, make: Any) -> None:
    named = make.snapshot()
    writes.update(issue, {"constraints": [make.snapshot().pk]})
    run = make.run(issue, inputs={"context_packets": [make.packet(issue).pk], "constraint_snapshot": named.pk})
    writes.transition(run, "running")
    assert Run.objects.get(pk=run.pk).constraint_snapshot_id == named.pk


def test_a_run_of_an_issue_without_snapshots_starts_with_none(issue: Issue, make: Any) -> None:
    run = run_in("running", issue, make)
    assert run.constraint_snapshot_id is None


# --- failure -------------------------------------------------------------------------------------------------
def test_failed_requires_a_failure(issue: Issue, make: Any) -> None:
    run = run_in("running", issue, make)
    with refused("failure", "failure_required"):
        writes.transition(run, "failed")
    assert Run.objects.get(pk=run.pk).status == "running"
    writes.transition(run, "failed", failure_category="build", failure_message="make: *** [all] Error 2")
    stored = Run.objects.get(pk=run.pk)
    assert (stored.failure_category, stored.failure_message) == ("build", "make: *** [all] Error 2")


@pytest.mark.parametrize("target", ["blocked", "done", "canceled"])
def test_a_failure_on_any_other_status_is_refused(issue: Issue, make: Any, target: str) -> None:
    run = run_in("running", issue, make)
    with refused("failure", "failure_not_allowed"):
        writes.transition(run, target, **FAILURE)
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.failure_category) == ("running", None)


def test_an_unknown_failure_category_is_refused(issue: Issue, make: Any) -> None:
    run = run_in("running", issue, make)
    with refused("failure.category", "invalid_choice"):
        writes.transition(run, "failed", failure_category="gremlins", failure_message="?")
    assert Run.objects.get(pk=run.pk).status == "running"


# --- packets needed for ready and running ---------------------------------------------------------------
def test_a_planned_run_may_have_no_packets(issue: Issue, make: Any) -> None:
    assert make.run(issue, status="planned").status == "planned"


def test_a_run_is_not_created_ready_without_a_packet(issue: Issue, make: Any) -> None:
    with refused("inputs.context_packets", "packet_required"):
        make.run(issue, status="ready", packets=[])


def test_a_run_is_not_created_ready_with_a_draft(issue: Issue, make: Any) -> None:
    with refused("inputs.context_packets", "packet_not_sealed"):
        make.run(issue, packets=[make.packet(issue, sealed=False)])


def test_a_planned_run_without_packets_cannot_become_ready(issue: Issue, make: Any) -> None:
    run = make.run(issue, status="planned")
    with refused("inputs", "packet_required"):
        writes.transition(run, "ready")
    assert Run.objects.get(pk=run.pk).status == "planned"


def test_a_planned_run_with_a_draft_cannot_become_ready_until_it_is_sealed(issue: Issue, make: Any) -> None:
    draft = make.packet(issue, sealed=False)
    run = make.run(issue, status="planned", packets=[draft])
    with refused("inputs", "packet_not_sealed"):
        writes.transition(run, "ready")
    writes.seal(draft)
    writes.transition(run, "ready")
    assert Run.objects.get(pk=run.pk).status == "ready"


def test_a_ready_run_cannot_swap_in_a_draft(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    with refused("inputs.context_packets", "packet_not_sealed"):
        writes.update(run, {"inputs": {"context_packets": [make.packet(issue, sealed=False).pk]}})


def test_a_ready_run_cannot_drop_its_last_packet(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    with refused("inputs.context_packets", "packet_required"):
        writes.update(run, {"inputs": {"context_packets": []}})


def test_packets_must_be_for_the_run_issue(issue: Issue, make: Any) -> None:
    foreign = make.packet(make.issue(issue.repo))
    with refused("inputs.context_packets", "packet_issue_mismatch"):
        make.run(issue, status="planned", packets=[foreign])
    with refused("inputs.context_packets", "packet_issue_mismatch"):
        make.run(issue, packets=[make.packet(issue), foreign])


def test_a_foreign_packet_slipped_into_the_link_table_stops_the_start(issue: Issue, make: Any) -> None:
    run = make.run(issue, status="planned", packets=[make.packet(issue)])
    RunContextPacket.objects.create(run=run, packet=make.packet(make.issue(issue.repo)))
    with refused("inputs", "packet_issue_mismatch"):
        writes.transition(run, "ready")
    assert Run.objects.get(pk=run.pk).status == "planned"


def test_a_stale_copy_loses_to_the_first_writer(issue: Issue, make: Any) -> None:
    from cwom.models import RunConflictError

    run = make.run(issue)
    stale = Run.objects.get(pk=run.pk)
    writes.transition(run, "canceled")
    with pytest.raises(RunConflictError) as caught:
        writes.transition(stale, "running")
    assert (caught.value.expected, caught.value.actual) == ("ready", "canceled")
    assert stale.status == "ready"
    assert Run.objects.get(pk=run.pk).status == "canceled"
