"""The execution of one run, step by step, each step a compare-and-set write fenced by the attempt.

    dispatch -> claim (ready -> running, attempt + 1) -> heartbeat ... -> finish (done | failed | canceled)

Every write after the claim names the attempt it belongs to: a worker whose attempt is no longer the
run's current one, or whose run is no longer ``running``, is fenced out and changes nothing. The
reaper (:mod:`execution.reaper`) and cancellation use the same functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.utils import timezone

from cwom import lineage, shapes, writes
from cwom.db.prepared import Prepared
from cwom.enums import RUN_TRANSITIONS, TERMINAL_STATUSES, Kind, ManagedBy, Status
from cwom.models import (
    ConstraintSnapshot,
    Event,
    PacketDoctrineRef,
    Run,
    RunConflictError,
    RunContextPacket,
    RunDoctrineRef,
    RunTransitionError,
)
from cwom.models.runs import RETRYABLE_STATUSES
from cwom.shapes import iso

from . import content
from .config import conf
from .executors.base import ArtifactSpec, ExecutionResult, RunInputs
from .models import RunExecution

log = logging.getLogger(__name__)

WORKER_PRINCIPAL = "system:worker"
WORKER_ACTOR = {"actor_kind": "system", "actor_id": "cwom-worker", "display": "CWOM worker"}
REAPER_PRINCIPAL = "system:reaper"
REAPER_ACTOR = {"actor_kind": "system", "actor_id": "cwom-reaper", "display": "CWOM reaper"}
# The Celery task that executes a run (``execution.tasks.execute_run``), sent by name through the app.
EXECUTE_RUN_TASK = "execution.tasks.execute_run"
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


# --- time limits and dispatch -----------------------------------------------------------------------
def time_limits(run: Run) -> tuple[float, float]:
    """(soft, hard) seconds for ``run``: its snapshot's ``time.available_minutes`` (else the default),
    never above ``max_run_seconds``; the hard limit adds the grace."""
    if run.constraint_snapshot_id:
        minutes = (
            ConstraintSnapshot.objects.filter(pk=run.constraint_snapshot_id)
            .values_list("time_available_minutes", flat=True)
            .first()
        )
    else:
        latest = run.latest_issue_snapshot()  # read with its time_available_minutes
        minutes = latest.time_available_minutes if latest is not None else None
    return limits_for_minutes(minutes)


def limits_for_minutes(minutes: float | None) -> tuple[float, float]:
    """(soft, hard) seconds for a snapshot's ``time.available_minutes`` (None: the default)."""
    seconds = float(minutes) * 60 if minutes is not None else float(conf()["default_run_seconds"])
    soft = max(min(seconds, float(conf()["max_run_seconds"])), 1.0)
    return soft, soft + float(conf()["hard_limit_grace_seconds"])


def dispatch(run_id: str, limits: tuple[float, float] | None = None) -> bool:
    """Send the task for a ``ready`` run (the message carries the run id only). False if not ready.

    ``limits`` are the run's (soft, hard) seconds when the caller knows them (the enqueue that just
    created the run): then the dispatch is one statement and the publish.
    """
    if limits is None:
        run = Run.objects.filter(pk=run_id, execution__isnull=False).first()
        if run is None or run.status != Status.READY:
            return False
        limits = time_limits(run)
    soft, hard = limits
    # Stamp first: an eager (in-process) run must find its own dispatch recorded, not overwrite it later.
    stamped = RunExecution.objects.filter(run_id=run_id, run__status=Status.READY).update(
        dispatched_at=timezone.now(), dispatch_count=F("dispatch_count") + 1
    )
    if not stamped:
        return False
    options: dict[str, Any] = {"queue": conf()["queue"]} if conf().get("queue") else {}
    current_app.tasks[EXECUTE_RUN_TASK].apply_async(
        args=[run_id], soft_time_limit=soft, time_limit=hard, retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options
    )
    return True


def _dispatch_quietly(run_id: str, limits: tuple[float, float] | None) -> None:
    try:
        dispatch(run_id, limits)
    except Exception:
        # The run stays ready and the reaper dispatches it again: a broker outage never loses a run.
        log.exception("Could not dispatch run %s; the reaper will retry.", run_id)
        RunExecution.objects.filter(run_id=run_id).update(dispatched_at=None)


def start(
    run: Run, executor_name: str, executor_config: dict[str, Any], snapshot: ConstraintSnapshot | None
) -> RunExecution:
    """Hand a ready ``run`` (created in the current transaction) to the workers: its execution record, and its
    dispatch once the transaction commits, within its snapshot's time (``snapshot``: its pinned one, if any)."""
    execution = RunExecution.objects.create(
        run=run,
        executor_name=executor_name,
        executor_config=executor_config,
        max_attempts=max(int(conf()["max_attempts"]), 1),
    )
    limits = limits_for_minutes(snapshot.time_available_minutes) if snapshot is not None else time_limits(run)
    dispatch_on_commit(run.pk, limits)
    return execution


def retry(run_id: str) -> Run:
    """Enqueue a new run with the inputs and executor of run ``run_id`` (failed or canceled), its ``retry_of``.

    Raises Run.DoesNotExist; a ValidationError ``not_retryable`` for a run that did not fail and was not
    canceled, or ``no_executor`` for a run the service did not execute (its client drives its retries: it
    creates the next run with ``retry_of``)."""
    with transaction.atomic():
        original = Run.objects.select_related("constraint_snapshot").get(pk=run_id)
        execution = RunExecution.objects.filter(run_id=run_id).first()
        if original.status not in RETRYABLE_STATUSES:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        f"Only a failed or canceled run can be retried; run {run_id} is {original.status}.",
                        code="not_retryable",
                    )
                }
            )
        if execution is None:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        f"Run {run_id} was not executed by the service, so it has no executor to run again; "
                        "create the next run with retry_of instead.",
                        code="no_executor",
                    )
                }
            )
        body = {
            "for_issue": original.for_issue_id,
            "status": Status.READY,
            "mode": original.mode,
            "retry_of": original.pk,
            "executor": {
                "actor": original.executor_actor,
                "runtime": original.executor_runtime,
                "toolchain": original.executor_toolchain,
            },
            "inputs": {
                "context_packets": [
                    {"id": target, "role": role} for target, role in writes.current_links(original, "context_packets")
                ],
                "doctrine_refs": [
                    {"id": target, "role": role} for target, role in writes.current_links(original, "doctrine_refs")
                ],
                "constraint_snapshot": original.constraint_snapshot_id,
            },
        }
        parsed = shapes.parse(Kind.RUN, body)
        parsed.columns["managed_by"] = ManagedBy.SERVICE  # read-only in bodies: the service executes the retry
        run: Run = writes.create_parsed(parsed)  # type: ignore[assignment]
        start(run, execution.executor_name, execution.executor_config, original.constraint_snapshot)
    return run


def dispatch_on_commit(run_id: str, limits: tuple[float, float] | None = None) -> None:
    """Dispatch ``run_id`` once the current transaction commits (nothing at all if it rolls back)."""
    transaction.on_commit(partial(_dispatch_quietly, run_id, limits), robust=True)


# --- claim ----------------------------------------------------------------------------------------
def _locking_read(*related: str) -> Prepared:
    """The execution row of a run and the run (``execution.run``, with ``related`` of it), both locked, in one
    statement compiled once per process (see cwom.db.prepared)."""
    return Prepared(
        lambda run_id: (
            RunExecution.objects.select_for_update(of=("self", "run"))
            .select_related("run", *related)
            .filter(run_id=run_id)
        )
    )


# The claim's (with the snapshot the run names: its time limit) and the finish's.
CLAIMED_EXECUTION = _locking_read("run__constraint_snapshot")
LOCKED_EXECUTION = _locking_read()


@dataclass
class Claim:
    """A won claim: the attempt this worker holds and what it needs to run it."""

    run_id: str
    attempt: int
    executor_name: str
    executor_config: dict[str, Any]
    soft_limit_s: float
    worker: str


def claim(run_id: str, worker: str, task_id: str = "") -> Claim | None:
    """``ready -> running`` compare-and-set, attempt + 1. None when there is nothing to claim
    (unknown run, not enqueued for execution, already claimed, canceled, finished)."""
    now = timezone.now()
    with transaction.atomic():
        # The execution row and the run locked in one statement, with the snapshot the run names (its
        # time limit); a run naming none is pinned to its issue's latest snapshot by the transition.
        # (RunExecution is 1:1 with its run; a run's snapshot never changes once it has started.)
        found = CLAIMED_EXECUTION.objects(run_id)
        if not found:
            return None
        execution = found[0]
        run = execution.run
        if run.status != Status.READY:
            return None
        attempt = execution.attempt + 1
        # The attempt is written by the move's statement, only if the run moved (its row is locked above; the
        # compare-and-set on the attempt stays).
        taken = RunExecution.objects.filter(run_id=run_id, attempt=execution.attempt)
        taken_values = {
            "attempt": attempt,
            "claimed_by": worker[:255],
            "claimed_at": now,
            "heartbeat_at": now,
            "task_id": task_id[:255] or execution.task_id,
            "updated_at": now,
        }
        try:
            writes.transition(run, Status.RUNNING, locked=True, together=[(taken, taken_values)])
        except (RunConflictError, RunTransitionError):
            return None
    # The snapshot the run names (read with it) or the one the start pinned (kept by the transition).
    snapshot = run.constraint_snapshot
    soft, _hard = limits_for_minutes(snapshot.time_available_minutes if snapshot else None)
    return Claim(run_id, attempt, execution.executor_name, dict(execution.executor_config), soft, worker)


# --- what a run names --------------------------------------------------------------------------------
class LazyBundle(Mapping[str, Any]):
    """The run's bundle (:func:`cwom.lineage.run_bundle`), built on first access, for executors that
    declare they need none: one that reads it anyway gets exactly what the others get."""

    KEYS = ("run", "repo", "issue", "context_packets", "constraint_snapshot", "doctrine_refs", "artifacts")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._built: dict[str, Any] | None = None

    def _bundle(self) -> dict[str, Any]:
        if self._built is None:
            self._built = lineage.run_bundle(self.run_id)
        return self._built

    def __getitem__(self, key: str) -> Any:
        return self._bundle()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)


# The reads of run_inputs, compiled once per process (see cwom.db.prepared).
RUN_PACKETS = Prepared(
    lambda run_id: (
        RunContextPacket.objects.filter(run_id=run_id)
        .order_by("id")
        .values_list(
            "packet_id", "packet__version", "run__for_issue_id", "run__for_issue__title", "run__constraint_snapshot_id"
        )
    )
)
RUN_COLUMNS = Prepared(
    lambda run_id: Run.objects.filter(pk=run_id).values_list(
        "for_issue_id", "for_issue__title", "constraint_snapshot_id"
    )
)
# The run's own doctrine refs (packet ''), then those of its packets, in one query.
RUN_DOCTRINE = Prepared(
    lambda run_id: (
        RunDoctrineRef.objects.filter(run_id=run_id)
        .annotate(packet=Value(""))
        .values_list("packet", "id", "doctrine_ref_id")
        .union(
            PacketDoctrineRef.objects.filter(
                packet_id__in=RunContextPacket.objects.filter(run_id=run_id).values("packet_id")
            ).values_list("packet_id", "id", "doctrine_ref_id"),
            all=True,
        )
    )
)


def run_inputs(run_id: str) -> RunInputs:
    """The ids ``run_id`` names and its issue's title, in two small queries (no object is dumped): the
    run's packets with the run's own columns on each row, then the doctrine refs."""
    rows = RUN_PACKETS.rows(run_id)
    # A run with no packet yet (not ready) has its columns read alone.
    (run_row,) = [row[2:] for row in rows[:1]] or RUN_COLUMNS.rows(run_id)
    issue_id, issue_title, snapshot_id = run_row
    packets = [(packet_id, version) for packet_id, version, *_run in rows]
    # The run's own doctrine refs first, then its packets' in the run's packet order.
    position = {packet_id: index for index, (packet_id, _version) in enumerate(packets, start=1)}
    doctrine = sorted(RUN_DOCTRINE.rows(run_id), key=lambda row: (position.get(row[0], 0), row[1]))
    return RunInputs(
        issue_id=issue_id,
        issue_title=issue_title,
        context_packets=[{"id": packet_id, "version": version} for packet_id, version in packets],
        doctrine_ref_ids=list(dict.fromkeys(doctrine_id for _packet, _id, doctrine_id in doctrine)),
        constraint_snapshot_id=snapshot_id,
    )


# --- heartbeat ---------------------------------------------------------------------------------------
def heartbeat(run_id: str, attempt: int) -> str | None:
    """Record that ``attempt`` is alive. Returns why it must stop (``canceled``/``fenced``) or None."""
    now = timezone.now()
    alive = RunExecution.objects.filter(
        run_id=run_id, attempt=attempt, run__status=Status.RUNNING, cancel_requested_at__isnull=True
    ).update(heartbeat_at=now)
    if alive:
        return None
    row = RunExecution.objects.filter(run_id=run_id).values("attempt", "cancel_requested_at", "run__status").first()
    if row and row["attempt"] == attempt and row["run__status"] == Status.RUNNING and row["cancel_requested_at"]:
        RunExecution.objects.filter(run_id=run_id, attempt=attempt).update(heartbeat_at=now)
        return "canceled"
    return "fenced"


# --- finish ------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How an attempt ended, as the worker saw it, with what it produced."""

    status: str  # done | failed | canceled
    failure_category: str | None = None
    failure_message: str | None = None
    result: ExecutionResult | None = None
    log_text: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


def finish(claim_: Claim, outcome: Outcome) -> str:
    """Record ``outcome`` for the claimed attempt; returns the run's final status, or ``fenced``.

    Fenced (nothing written) when a newer attempt exists or the run left ``running`` meanwhile (the
    reaper re-queued or ended it, an agent moved it). A pending cancel wins over any result: a late
    success never overwrites a cancel. One transaction: the terminal transition with its event, then
    every artifact (results, ``log``, ``trace``) with its create event in three bulk statements.
    """
    saved: list[str] = []
    try:
        with transaction.atomic():
            execution = _lock_execution(claim_.run_id)
            run = execution.run
            if execution.attempt != claim_.attempt or run.status != Status.RUNNING:
                return "fenced"
            status = Status.CANCELED if execution.cancel_requested_at else outcome.status
            if status == Status.CANCELED and outcome.status != Status.CANCELED:
                outcome.log_text += f"\nA cancel was requested: the {outcome.status} result is not recorded.\n"
            _end_run(run, status, outcome)
            results = outcome.result.artifacts if outcome.result and status != Status.CANCELED else []
            store_log_and_trace(run, execution, outcome.log_text, outcome.steps, saved, results)
            return status
    except BaseException:
        content.delete_stored(saved)
        raise


def _lock_execution(run_id: str) -> RunExecution:
    """The run's execution row and the run itself (``execution.run``), both locked, in one statement."""
    found = LOCKED_EXECUTION.objects(run_id)
    if not found:
        raise RunExecution.DoesNotExist(f"Run {run_id} has no execution.")
    return found[0]


def _end_run(run: Run, status: str, outcome: Outcome) -> None:
    result = outcome.result
    extra: dict[str, Any] = {}
    if result is not None and status != Status.CANCELED:
        if result.summary is not None:
            extra["result_summary"] = result.summary
        if result.decision_log:
            extra["decision_log"] = [*run.decision_log, *result.decision_log]
        for column, value in (
            ("cost_usd", result.cost_usd),
            ("cost_tokens", result.cost_tokens),
            ("cost_compute_s", result.cost_compute_s),
        ):
            if value is not None:
                extra[column] = value
    if status == Status.FAILED:
        writes.transition(
            run,
            status,
            failure_category=outcome.failure_category,
            failure_message=(outcome.failure_message or "")[:20_000],
            locked=True,
            **extra,
        )
    else:
        writes.transition(run, status, locked=True, **extra)


RUN_EVENTS = Prepared(
    lambda run_id: (
        Event.objects.filter(object_id=run_id).order_by("id").values_list("at", "action", "changes", "principal")
    )
)


def trace_document(run: Run, execution: RunExecution, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's timeline: its recorded state changes merged with the worker's steps, by time."""
    timeline: list[dict[str, Any]] = []
    for at, action, changes, principal in RUN_EVENTS.rows(run.pk):
        entry: dict[str, Any] = {"at": iso(at), "source": "event", "action": action}
        if "status" in changes:
            entry["from"], entry["to"] = changes["status"]
        if "failure_category" in changes:
            entry["failure_category"] = changes["failure_category"][1]
        entry["principal"] = principal
        timeline.append(entry)
    timeline += [{"source": "worker", **step} for step in steps]
    timeline.sort(key=lambda entry: entry["at"])
    return {
        "run": run.pk,
        "status": run.status,
        "executor": execution.executor_name,
        "attempt": execution.attempt,
        "max_attempts": execution.max_attempts,
        "timeline": timeline,
    }


def store_log_and_trace(
    run: Run,
    execution: RunExecution,
    log_text: str,
    steps: list[dict[str, Any]],
    saved: list[str],
    results: list[ArtifactSpec] | None = None,
) -> None:
    """Attach the ``log`` and ``trace`` artifacts every started run leaves, after ``results`` (the
    executor's outputs), all in one bulk write inside the caller's transaction."""
    cap = int(conf()["log_max_bytes"])
    log_bytes = log_text.encode("utf-8", errors="replace")
    if len(log_bytes) > cap:
        log_bytes = log_bytes[:cap] + f"\n[log truncated at {cap} bytes]\n".encode()
    trace = json.dumps(trace_document(run, execution, steps), indent=2).encode()
    content.create_many(
        run,
        results or [],
        saved,
        own=[
            ArtifactSpec(
                type="log",
                title=f"Run log (attempt {execution.attempt})",
                content=log_bytes,
                media_type="text/plain; charset=utf-8",
            ),
            ArtifactSpec(
                type="trace",
                title=f"Run trace (attempt {execution.attempt})",
                content=trace,
                media_type="application/json",
            ),
        ],
    )


# --- cancel ------------------------------------------------------------------------------------------
@dataclass
class CancelResult:
    """``canceled``: the run ended at once; ``requested``: a worker holds it and will stop."""

    outcome: str
    run: Run


def request_cancel(run_id: str, requested_by: str = "") -> CancelResult:
    """Cancel a run: at once when no worker holds it, else ask its worker to stop.

    Raises Run.DoesNotExist, or RunTransitionError when the run already ended.
    """
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        execution = RunExecution.objects.select_for_update().filter(run_id=run_id).first()
        if run.status in TERMINAL_STATUSES:
            raise RunTransitionError(run.status, Status.CANCELED, RUN_TRANSITIONS[run.status])
        if run.status == Status.RUNNING and execution is not None:
            if execution.cancel_requested_at is None:
                now = timezone.now()
                RunExecution.objects.filter(run_id=run_id).update(
                    cancel_requested_at=now, cancel_requested_by=requested_by[:255], updated_at=now
                )
            return CancelResult("requested", run)
        writes.transition(run, Status.CANCELED)
        if execution is not None:
            RunExecution.objects.filter(run_id=run_id).update(
                cancel_requested_at=timezone.now(), cancel_requested_by=requested_by[:255]
            )
    return CancelResult("canceled", writes.reload(run))


# --- the reaper's moves ----------------------------------------------------------------------------
def stale_before(now: Any = None) -> Any:
    return (now or timezone.now()) - timedelta(seconds=float(conf()["stale_after_seconds"]))
