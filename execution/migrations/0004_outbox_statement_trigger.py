from django.db import migrations

from execution import outbox


class Migration(migrations.Migration):
    """The outbox trigger in its statement-level form on PostgreSQL (one INSERT per statement of events, none
    while no subscription is active) and guarded by the same test on SQLite. Going back keeps it: it queues
    exactly what the row trigger of 0003 queued."""

    dependencies = [("execution", "0003_subscriptions")]

    operations = [migrations.RunPython(outbox.install, migrations.RunPython.noop)]
