"""Runs enqueued before ``Run.managed_by`` existed are the service's: those with an execution record."""

from typing import Any

from django.db import migrations


def mark_enqueued_runs(apps: Any, schema_editor: Any) -> None:
    Run = apps.get_model("cwom", "Run")
    Run.objects.filter(execution__isnull=False).update(managed_by="service")


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0001_initial"),
        ("cwom", "0009_run_managed_by"),
    ]

    operations = [
        migrations.RunPython(mark_enqueued_runs, migrations.RunPython.noop),
    ]
