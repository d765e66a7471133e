"""A run says who drives it: ``managed_by`` (service: enqueued, the workers run it; client: its maker does).

The column is added in place on both databases (``ADD COLUMN ... DEFAULT 'client'``): Django would rebuild
``cwom_run`` on SQLite for a NOT NULL column with a default, which the guard triggers naming the table do not
survive. Enqueued runs that exist already are marked by execution's 0002 (this app does not know that table).
"""

from typing import Any

from django.db import migrations, models

CHECK = "CONSTRAINT run_managed_by_valid CHECK (managed_by IN ('service', 'client'))"


def add_column(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE cwom_run ADD COLUMN managed_by varchar(16) DEFAULT 'client' NOT NULL")
        schema_editor.execute("ALTER TABLE cwom_run ALTER COLUMN managed_by DROP DEFAULT")
        schema_editor.execute(f"ALTER TABLE cwom_run ADD {CHECK}")
    else:
        schema_editor.execute(f"ALTER TABLE cwom_run ADD COLUMN managed_by varchar(16) NOT NULL DEFAULT 'client' {CHECK}")


def drop_column(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute("ALTER TABLE cwom_run DROP COLUMN managed_by")


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0008_run_retry_of'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_column, drop_column)],
            state_operations=[
                migrations.AddField(
                    model_name='run',
                    name='managed_by',
                    field=models.CharField(choices=[('service', 'Service'), ('client', 'Client')], default='client', max_length=16),
                ),
                migrations.AddConstraint(
                    model_name='run',
                    constraint=models.CheckConstraint(condition=models.Q(('managed_by__in', ['service', 'client'])), name='run_managed_by_valid', violation_error_code='invalid_choice', violation_error_message='managed_by must be one of: service, client.'),
                ),
            ],
        ),
    ]
