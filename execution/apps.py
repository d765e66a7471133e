from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    """Enqueue service, Celery tasks, executors and the reaper."""

    name = "execution"
