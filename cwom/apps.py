from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CwomConfig(AppConfig):
    """The CWOM kernel: models, invariants, representation, admin and commands."""

    name = "cwom"
    verbose_name = "CWOM"

    def ready(self) -> None:
        from .signals import ensure_viewers_group

        # Connected for this app only, so it runs after auth has created this app's permissions.
        post_migrate.connect(ensure_viewers_group, sender=self, dispatch_uid="cwom_viewers_group")
