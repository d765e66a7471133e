from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    """Enqueue service, Celery tasks, executors and the reaper."""

    name = "execution"

    def ready(self) -> None:
        # Register the tasks with the Celery app in every process (web, worker, commands), so domain code
        # sends them by name (``lifecycle.EXECUTE_RUN_TASK``) without importing the task objects.
        # Every event the write path builds: its subscriptions' deliveries are asked for after the commit.
        from cwom.models.base import event_built

        from . import tasks  # noqa: F401
        from .subscriptions import on_event_built

        event_built.connect(on_event_built, dispatch_uid="execution.subscriptions")
