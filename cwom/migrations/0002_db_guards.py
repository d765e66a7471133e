"""Database-held rules: triggers on PostgreSQL and SQLite, GIN indexes on PostgreSQL (see cwom.db_guards)."""

from django.db import migrations

from cwom import db_guards


class Migration(migrations.Migration):
    dependencies = [("cwom", "0001_initial")]

    operations = [migrations.RunPython(db_guards.install, db_guards.uninstall)]
