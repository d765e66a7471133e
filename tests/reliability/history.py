"""What a run's recorded history must look like, whoever wrote it and however they raced.

Shared by the property tests, the concurrency tests and the fault tests: each reads the run's
``transition`` events back from the database and checks them against ``cwom.enums.RUN_TRANSITIONS``.
"""

from __future__ import annotations

from typing import Any

from cwom.enums import RUN_TRANSITIONS, TERMINAL_STATUSES, EventAction, Status
from cwom.models import Event, Run
from cwom.models.base import jsonable


def status_moves(run_id: str) -> list[tuple[str, str]]:
    """The run's recorded status changes, oldest first, as (from, to) pairs."""
    events = Event.objects.filter(object_id=run_id, action=EventAction.TRANSITION).order_by("id")
    return [tuple(event.changes["status"]) for event in events]  # type: ignore[misc]


def assert_legal_history(run_id: str, initial: str | None = None) -> list[tuple[str, str]]:
    """Every transition event names a legal move, each starts where the previous one ended, the last
    one ends in the run's current status, and nothing follows a terminal status. Returns the moves."""
    run = Run.objects.get(pk=run_id)
    events = list(Event.objects.filter(object_id=run_id, action=EventAction.TRANSITION).order_by("id"))
    moves = []
    for event in events:
        assert "status" in event.changes, f"transition event without a status change: {event.changes}"
        moves.append(tuple(event.changes["status"]))
    created = Event.objects.filter(object_id=run_id, action=EventAction.CREATE).get()
    start = initial or created.changes["status"][1]
    assert start in (Status.PLANNED, Status.READY), f"run {run_id} was created {start}"
    current = start
    for before, after in moves:
        assert before == current, f"history of {run_id} jumps: {moves} (expected a move from {current})"
        assert after in RUN_TRANSITIONS[before], f"illegal move {before} -> {after} in {moves}"
        current = after
    assert run.status == current, f"run {run_id} is {run.status} but its history ends in {current}: {moves}"
    return moves  # type: ignore[return-value]


def assert_consistent_telemetry(run_id: str, check_start: bool = True) -> None:
    """started_at is set once the run has run (and, with ``check_start``, is the moment of the first
    move into running and never moves again); ended_at and duration_s are set exactly when the run is
    terminal, and agree with started_at; a failure is recorded exactly on a failed run."""
    run = Run.objects.get(pk=run_id)
    events = list(Event.objects.filter(object_id=run_id, action=EventAction.TRANSITION).order_by("id"))
    starts = [event for event in events if event.changes["status"][1] == Status.RUNNING]
    if not starts:
        assert run.started_at is None, f"run {run_id} never ran but has started_at {run.started_at}"
    elif not check_start:
        assert run.started_at is not None, f"run {run_id} ran but has no started_at"
    else:
        first = starts[0].changes.get("started_at")
        assert first is not None and first[0] is None, f"first start of {run_id} did not set started_at: {first}"
        assert jsonable(run.started_at) == first[1], f"started_at of {run_id} moved after its first start"
        later = [
            event.changes["started_at"]
            for event in events[events.index(starts[0]) + 1 :]
            if "started_at" in event.changes
        ]
        assert not later, f"started_at of {run_id} was rewritten by later transitions: {later}"
    if run.status in TERMINAL_STATUSES:
        assert run.ended_at is not None and run.duration_s is not None
        if run.started_at is None:
            assert run.duration_s == 0.0
        else:
            assert run.ended_at >= run.started_at
            if check_start:
                expected = (run.ended_at - run.started_at).total_seconds()
                assert abs(run.duration_s - expected) < 1e-5, (run.duration_s, expected)
    else:
        assert run.ended_at is None and run.duration_s is None, f"open run {run_id} has ended telemetry"
    if run.status == Status.FAILED:
        assert run.failure_category is not None
    else:
        assert run.failure_category is None and run.failure_message is None


def describe(outcomes: list[Any]) -> str:
    return ", ".join(sorted(str(outcome) for outcome in outcomes))
