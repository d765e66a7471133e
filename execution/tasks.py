"""Celery tasks. They take ids only, re-read the database, and return quietly when there is nothing to do.

Task options: JSON only, acknowledged late and rejected (re-queued) when the worker process dies, one
message prefetched at a time (settings ``CELERY_*`` in the Execution block). Per-run soft/hard time
limits are set at dispatch (:func:`execution.lifecycle.dispatch`). Retries are for transient database
errors only, with exponential backoff, jitter and a cap.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import reaper, runner, subscriptions
from .lifecycle import EXECUTE_RUN_TASK

RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(
    bind=True,
    name=EXECUTE_RUN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    **RETRY_OPTIONS,
)
def execute_run(self: Task, run_id: str) -> str | None:
    """Claim the run and execute it; a duplicate delivery finds nothing to claim and returns None."""
    worker = f"{self.request.hostname or socket.gethostname()}:{os.getpid()}"
    return runner.execute_run(str(run_id), worker=worker, task_id=self.request.id or "")


@shared_task(name="execution.tasks.reap_runs", ignore_result=True, **RETRY_OPTIONS)
def reap_runs() -> dict[str, list[str]]:
    """The periodic reaper (Celery beat): re-queue or fail lost runs, re-dispatch lost messages."""
    return reaper.reap().as_dict()


@shared_task(
    name=subscriptions.DELIVER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True, **RETRY_OPTIONS
)
def deliver_subscription(subscription_id: str) -> int:
    """Send one subscription's due deliveries in event order (another worker holding it: returns 0)."""
    return subscriptions.deliver(str(subscription_id))


@shared_task(name="execution.tasks.sweep_deliveries", ignore_result=True, **RETRY_OPTIONS)
def sweep_deliveries() -> list[str]:
    """The periodic sweep (Celery beat): a delivery task for every subscription with a due delivery."""
    return subscriptions.sweep()
