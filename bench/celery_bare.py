"""A task that does nothing, for the worker benchmark's ceiling (``bench/worker_burst.py --bare``).

Loaded into a bench worker with ``celery -A cwom_site worker --include bench.celery_bare``: it runs on the
service's Celery app, so it has the same settings (JSON, acks late, prefetch 1, the task signals that look
after the database connection) and comes through the same broker as ``execution.tasks.execute_run``. The first
and the last task of a burst write their time to Redis (two writes per burst, nothing else).
"""

from __future__ import annotations

import time

from cwom_site.celery import app

BARE_TASK = "bench.celery_bare.bare"


@app.task(name=BARE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def bare(self: object, index: int, last: int, key: str) -> None:
    if index in (0, last):
        import redis

        stamp = "first" if index == 0 else "last"
        redis.Redis.from_url(app.conf.broker_url).set(f"{key}:{stamp}", repr(time.time()))
