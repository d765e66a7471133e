from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    """Enqueue service, Celery tasks, executors and the reaper."""

    name = "execution"

    def ready(self) -> None:
        # Register the tasks with the Celery app in every process (web, worker, commands), so domain code
        # sends them by name (``lifecycle.EXECUTE_RUN_TASK``) without importing the task objects.
        from . import tasks  # noqa: F401
