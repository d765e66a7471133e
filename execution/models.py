"""How a run is executed: which executor, which attempt, and the liveness of that attempt.

A :class:`RunExecution` sits beside a kernel :class:`~cwom.models.Run` (one to one). The run carries
the contract's state; the execution row carries the worker's bookkeeping: the executor chosen at
enqueue, the attempt number that fences every write of a worker, its heartbeat, and a pending cancel.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from cwom.models import Run


class RunExecution(models.Model):
    """The worker-side record of a run enqueued for execution.

    ``attempt`` counts claims. A worker holding attempt N may write to the run only while ``attempt``
    is still N and the run is still ``running``: a newer attempt (after the reaper re-queued the run)
    or a cancel fences the older one out.
    """

    run = models.OneToOneField(Run, primary_key=True, on_delete=models.PROTECT, related_name="execution")
    executor_name = models.CharField(max_length=64)
    executor_config = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=255, blank=True, default="")
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["heartbeat_at"], name="execution_heartbeat_idx"),
            models.Index(fields=["dispatched_at"], name="execution_dispatched_idx"),
            models.Index(fields=["cancel_requested_at"], name="execution_cancel_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_attempts__gte=1),
                name="execution_max_attempts_positive",
                violation_error_message="max_attempts must be at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"execution of run {self.run_id} ({self.executor_name}, attempt {self.attempt})"

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempt, 0)
