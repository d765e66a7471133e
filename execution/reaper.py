"""The reaper: no run stays ``running`` or ``ready`` forever.

Run periodically by Celery beat (``execution.tasks.reap_runs``) and on demand by ``manage.py cwom_reap``:

- a ``running`` run whose cancel was requested more than ``cancel_grace_seconds`` ago is ended
  ``canceled`` (its worker, if alive, is fenced out and its task is revoked);
- a ``running`` run whose heartbeat is older than ``stale_after_seconds`` lost its worker: it is
  re-queued (``running -> blocked -> ready``, dispatched again) while attempts are left and its time
  limit is not spent, otherwise ended ``failed`` (category ``runtime``, "worker lost");
- a ``ready`` run that was never dispatched, or whose last dispatch is older than
  ``redispatch_after_seconds``, is dispatched again (a lost message). A duplicate message is harmless:
  the claim is compare-and-set.

Each run is handled in its own transaction under a row lock (``SKIP LOCKED`` on PostgreSQL), so
several reapers, or a reaper and a finishing worker, never act twice on one run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cwom import audit, writes
from cwom.enums import FailureCategory, Status
from cwom.models import Run
from cwom.shapes import iso

from . import content, lifecycle
from .config import conf
from .models import RunExecution

log = logging.getLogger(__name__)
NEVER_DISPATCHED_GRACE_S = 15.0


@dataclass
class ReapReport:
    """What one pass did, by run id."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    redispatched: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "requeued": self.requeued,
            "failed": self.failed,
            "canceled": self.canceled,
            "redispatched": self.redispatched,
        }


def reap(now: Any = None) -> ReapReport:
    """One pass of the reaper (see the module docstring)."""
    now = now or timezone.now()
    limits = conf()
    report = ReapReport()
    with audit.acting_as(lifecycle.REAPER_PRINCIPAL, lifecycle.REAPER_ACTOR):
        cancel_before = now - timedelta(seconds=float(limits["cancel_grace_seconds"]))
        for run_id in _ids(run__status=Status.RUNNING, cancel_requested_at__lt=cancel_before):
            if _force_cancel(run_id, cancel_before):
                report.canceled.append(run_id)
        stale = lifecycle.stale_before(now)
        for run_id in _ids(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True), run__status=Status.RUNNING):
            verdict = _reap_stale(run_id, stale, now)
            if verdict:
                getattr(report, verdict).append(run_id)
        redispatch_before = now - timedelta(seconds=float(limits["redispatch_after_seconds"]))
        never_before = now - timedelta(seconds=min(NEVER_DISPATCHED_GRACE_S, float(limits["redispatch_after_seconds"])))
        lost = Q(dispatched_at__lt=redispatch_before) | Q(dispatched_at__isnull=True, created_at__lt=never_before)
        for run_id in _ids(lost, run__status=Status.READY):
            if _redispatch(run_id, lost):
                report.redispatched.append(run_id)
    if any(report.as_dict().values()):
        log.warning("Reaper: %s", report.as_dict())
    return report


def _ids(*conditions: Q, **filters: Any) -> list[str]:
    return list(
        RunExecution.objects.filter(*conditions, **filters).order_by("run_id").values_list("run_id", flat=True)[:500]
    )


def _lock(run_id: str, *conditions: Q, **filters: Any) -> tuple[RunExecution, Run] | None:
    """The execution and run rows, locked, if they still match (another reaper may hold or have taken them)."""
    execution = (
        RunExecution.objects.select_for_update(skip_locked=True).filter(*conditions, run_id=run_id, **filters).first()
    )
    if execution is None:
        return None
    run = Run.objects.select_for_update().get(pk=run_id)
    return execution, run


def _force_cancel(run_id: str, cancel_before: Any) -> bool:
    saved: list[str] = []
    try:
        with transaction.atomic():
            locked = _lock(run_id, run__status=Status.RUNNING, cancel_requested_at__lt=cancel_before)
            if locked is None:
                return False
            execution, run = locked
            writes.transition(run, Status.CANCELED)
            lines = [
                f"{iso(timezone.now())} reaper: cancel requested at {iso(execution.cancel_requested_at)} was not "
                f"honored by attempt {execution.attempt} ({execution.claimed_by}) within the grace period; "
                "the run is canceled and the attempt is fenced out."
            ]
            lifecycle.store_log_and_trace(run, execution, "\n".join(lines) + "\n", [], saved)
            task_id = execution.task_id
    except BaseException:
        content.delete_stored(saved)
        raise
    if task_id:
        try:  # best effort: stop the stuck worker child now rather than at its hard time limit
            current_app.control.revoke(task_id, terminate=True, signal="SIGKILL")
        except Exception:  # noqa: BLE001 - a broker without broadcast support still gets the fence
            log.warning("Could not revoke task %s of run %s.", task_id, run_id, exc_info=True)
    return True


def _reap_stale(run_id: str, stale: Any, now: Any) -> str | None:
    saved: list[str] = []
    try:
        with transaction.atomic():
            locked = _lock(run_id, Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True), run__status=Status.RUNNING)
            if locked is None:
                return None
            execution, run = locked
            if execution.cancel_requested_at:
                writes.transition(run, Status.CANCELED)
                verdict, note = "canceled", "its cancel was pending, so the run is canceled"
            else:
                _soft, hard = lifecycle.time_limits(run)
                claimed = execution.claimed_at or run.started_at or now
                out_of_time = (now - claimed).total_seconds() >= hard
                if execution.attempts_left > 0 and not out_of_time:
                    writes.transition(run, Status.BLOCKED)
                    writes.transition(run, Status.READY)
                    lifecycle.dispatch_on_commit(run_id)
                    log.warning("Run %s: attempt %s lost its worker; re-queued.", run_id, execution.attempt)
                    return "requeued"
                reason = (
                    f"its time limit of {hard:g}s is spent"
                    if out_of_time
                    else f"no attempts left ({execution.attempt} of {execution.max_attempts})"
                )
                writes.transition(
                    run,
                    Status.FAILED,
                    failure_category=FailureCategory.RUNTIME,
                    failure_message=(
                        f"Worker lost: no heartbeat since {iso(execution.heartbeat_at)} "
                        f"(attempt {execution.attempt} of {execution.max_attempts}); {reason}."
                    ),
                )
                verdict, note = "failed", f"the run is failed: {reason}"
            text = (
                f"{iso(timezone.now())} reaper: attempt {execution.attempt} ({execution.claimed_by}) stopped "
                f"heartbeating (last at {iso(execution.heartbeat_at)}); {note}.\n"
            )
            lifecycle.store_log_and_trace(run, execution, text, [], saved)
            return verdict
    except BaseException:
        content.delete_stored(saved)
        raise


def _redispatch(run_id: str, lost: Q) -> bool:
    with transaction.atomic():
        locked = _lock(run_id, lost, run__status=Status.READY)
        if locked is None:
            return False
        lifecycle.dispatch_on_commit(run_id)
    return True
