"""One attempt at a run, as the worker performs it: claim, run the executor, record the outcome.

Whatever happens inside the executor (a result, an ExecutorError, a cancel, the time limit, a bug),
the attempt ends with exactly one fenced write of the outcome plus the run's ``log`` and ``trace``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.utils import timezone

from cwom import audit, lineage
from cwom.enums import FailureCategory, Status
from cwom.shapes import iso

from . import lifecycle
from .config import conf
from .executors import get_executor_class
from .executors.base import ExecutionContext, ExecutionResult, ExecutionStopped, ExecutorError, RunInputs

log = logging.getLogger(__name__)


class Attempt:
    """The worker's side of one claimed attempt: its log, its trace steps, its clock and heartbeats."""

    def __init__(self, claim: lifecycle.Claim) -> None:
        self.claim = claim
        self.started = time.monotonic()
        self.deadline = self.started + claim.soft_limit_s
        self.heartbeat_every = float(conf()["heartbeat_seconds"])
        self.last_beat = self.started
        self.lines: list[str] = []
        self.log_bytes = 0
        self.log_cap = int(conf()["log_max_bytes"])
        self.steps: list[dict[str, Any]] = []
        self._inputs: RunInputs | None = None

    # --- what the executor is lent ---------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{iso(timezone.now())} {message}"
        self.log_bytes += len(line) + 1
        if self.log_bytes <= self.log_cap:
            self.lines.append(line)

    def trace(self, step: str, **data: Any) -> None:
        self.steps.append({"at": iso(timezone.now()), "step": step, **data})

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def checkpoint(self) -> None:
        if self.time_left() <= 0:
            raise ExecutionStopped("timeout", f"time limit of {self.claim.soft_limit_s:g}s reached")
        now = time.monotonic()
        if now - self.last_beat < self.heartbeat_every:
            return
        self.last_beat = now
        reason = lifecycle.heartbeat(self.claim.run_id, self.claim.attempt)
        if reason == "canceled":
            raise ExecutionStopped("canceled", "a cancel was requested")
        if reason == "fenced":
            raise ExecutionStopped("fenced", "this attempt is no longer the run's current one")

    def context(self) -> ExecutionContext:
        return ExecutionContext(
            run_id=self.claim.run_id,
            attempt=self.claim.attempt,
            time_limit_s=self.claim.soft_limit_s,
            log=self.log,
            trace=self.trace,
            checkpoint_fn=self.checkpoint,
            time_left_fn=self.time_left,
            inputs_fn=self.inputs,
        )

    def inputs(self) -> RunInputs:
        if self._inputs is None:
            self._inputs = lifecycle.run_inputs(self.claim.run_id)
        return self._inputs

    # --- the outcome ------------------------------------------------------------------------------
    def outcome(self, status: str, **fields: Any) -> lifecycle.Outcome:
        elapsed = round(time.monotonic() - self.started, 3)
        self.trace(
            "attempt.end", outcome=status, elapsed_s=elapsed, **{k: v for k, v in fields.items() if k != "result"}
        )
        self.log(f"attempt {self.claim.attempt} ends {status} after {elapsed}s")
        return lifecycle.Outcome(status=status, log_text="\n".join(self.lines) + "\n", steps=self.steps, **fields)


def _run_executor(attempt: Attempt) -> lifecycle.Outcome:
    claim = attempt.claim
    try:
        try:
            executor_class = get_executor_class(claim.executor_name)
        except KeyError:
            raise ExecutorError(f"No executor named {claim.executor_name!r} is registered.", "policy") from None
        executor_class.check_enabled()
        executor = executor_class(claim.executor_config)
        bundle: Mapping[str, Any] = (
            lineage.run_bundle(claim.run_id) if executor_class.needs_bundle else lifecycle.LazyBundle(claim.run_id)
        )
        attempt.trace("executor.start", executor=claim.executor_name)
        result: ExecutionResult = executor.execute(bundle, attempt.context())
        attempt.trace("executor.end", failed=result.failed, artifacts=len(result.artifacts))
    except ExecutionStopped as stop:
        attempt.log(f"stopped: {stop.detail}")
        if stop.reason == "timeout":
            return attempt.outcome(
                Status.FAILED, failure_category=FailureCategory.RUNTIME, failure_message=f"Timed out: {stop.detail}."
            )
        return attempt.outcome(Status.CANCELED)
    except ExecutorError as error:
        attempt.log(f"executor error ({error.category}): {error.message}")
        return attempt.outcome(Status.FAILED, failure_category=error.category, failure_message=error.message)
    except SoftTimeLimitExceeded:
        attempt.log(f"time limit of {claim.soft_limit_s:g}s exceeded")
        return attempt.outcome(
            Status.FAILED,
            failure_category=FailureCategory.RUNTIME,
            failure_message=f"Timed out: time limit of {claim.soft_limit_s:g}s exceeded.",
        )
    except Exception as error:
        attempt.log("executor crashed:\n" + traceback.format_exc())
        return attempt.outcome(
            Status.FAILED,
            failure_category=FailureCategory.RUNTIME,
            failure_message=f"Executor crashed: {type(error).__name__}: {error}"[:2000],
        )
    if result.failed:
        attempt.log(f"executor reports failure ({result.failure_category}): {result.failure_message}")
        return attempt.outcome(
            Status.FAILED,
            failure_category=result.failure_category,
            failure_message=result.failure_message or "The executor reported a failure.",
            result=result,
        )
    return attempt.outcome(Status.DONE, result=result)


def _finish(attempt: Attempt, outcome: lifecycle.Outcome) -> str:
    """Record the outcome; an executor result the kernel refuses (an invalid artifact, an over-long summary)
    fails the run instead of leaving it running for the reaper to retry forever."""
    try:
        return lifecycle.finish(attempt.claim, outcome)
    except ValidationError as error:
        detail = "; ".join(f"{path}: {', '.join(messages)}" for path, messages in _messages(error).items())
        attempt.log(f"the executor's result was refused: {detail}")
        refused = attempt.outcome(
            Status.FAILED,
            failure_category=FailureCategory.RUNTIME,
            failure_message=f"The executor's result was refused: {detail}"[:2000],
        )
        return lifecycle.finish(attempt.claim, refused)


def _messages(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {"result": error.messages}


def execute_run(run_id: str, worker: str, task_id: str = "") -> str | None:
    """Claim and execute ``run_id``. Returns the final status, ``fenced``, or None (nothing to claim)."""
    with audit.acting_as(lifecycle.WORKER_PRINCIPAL, lifecycle.WORKER_ACTOR):
        claim = lifecycle.claim(run_id, worker, task_id)
        if claim is None:
            log.info("Run %s: nothing to claim (already claimed, ended or not enqueued).", run_id)
            return None
        attempt = Attempt(claim)
        attempt.trace("attempt.claimed", attempt=claim.attempt, worker=worker, time_limit_s=claim.soft_limit_s)
        attempt.log(
            f"attempt {claim.attempt} claimed by {worker}; executor {claim.executor_name}; "
            f"time limit {claim.soft_limit_s:g}s"
        )
        try:
            outcome = _run_executor(attempt)
        except SoftTimeLimitExceeded:  # raised between the executor's end and the outcome: still a timeout
            outcome = attempt.outcome(
                Status.FAILED, failure_category=FailureCategory.RUNTIME, failure_message="Timed out."
            )
        try:
            final = _finish(attempt, outcome)
        except SoftTimeLimitExceeded:
            # The soft limit fired while the outcome was being written (its transaction rolled back):
            # write it once more inside the hard limit's grace.
            final = _finish(attempt, outcome)
        log.info("Run %s attempt %s: %s.", run_id, claim.attempt, final)
        return final
