"""The Celery application. Configuration comes from Django settings under the CELERY_ namespace."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cwom_site.settings")

app = Celery("cwom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task: Any = None, **_kwargs: Any) -> None:
    """Around each task, as Django does around each request: drop a database connection that is broken
    or older than ``CONN_MAX_AGE``, keep a healthy one. (Celery's Django fixup, left alone, would close
    every connection before and after every task; ``CELERY_DB_REUSE_MAX`` in settings turns that off.)
    Not for an eager task: it runs inside the caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close_old

    close_old()
