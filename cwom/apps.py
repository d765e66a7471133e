from django.apps import AppConfig


class CwomConfig(AppConfig):
    """The CWOM kernel: models, invariants, representation, admin and commands."""

    name = "cwom"
    verbose_name = "CWOM"
