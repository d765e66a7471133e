"""Read paths at a million rows (issue 7).

- ``cwom_issuetag``: the tag index of issues, kept by triggers (``cwom.db_guards.install_0004``) and
  backfilled here, with a btree ``(tag, repo_id, status, created_at, issue_id)`` for
  ``GET /issues?repo_id=&status=&tag=`` and ``(tag, created_at, issue_id)`` for ``?tag=`` alone;
- ``id`` last in the composite indexes that lists read in ``(-created_at, -id)`` order;
- ``(for_issue, created_at, id)`` on runs and ``(produced_by, created_at, id)`` on artifacts for the
  embedded ``runs`` / ``outputs.artifacts`` ref lists (index-only scans). They make the foreign keys'
  single-column indexes redundant; those stay (dropping them rebuilds both tables on SQLite).

At 1M issues the backfill writes ~2.5M rows; expect a few minutes on a loaded 2-core machine.
"""

import django.db.models.deletion
from django.db import migrations, models

from cwom import db_guards


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0003_constraint_codes_and_repo_guards'),
    ]

    operations = [
        migrations.CreateModel(
            name='IssueTag',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('tag', models.TextField()),
                ('repo_id', models.CharField(max_length=26)),
                ('status', models.CharField(max_length=16)),
                ('created_at', models.DateTimeField()),
            ],
        ),
        migrations.RemoveIndex(
            model_name='artifact',
            name='artifact_run_type_idx',
        ),
        migrations.RemoveIndex(
            model_name='issue',
            name='issue_repo_status_idx',
        ),
        migrations.RemoveIndex(
            model_name='run',
            name='run_issue_status_idx',
        ),
        migrations.AddIndex(
            model_name='artifact',
            index=models.Index(fields=['produced_by', 'type', 'created_at', 'id'], name='artifact_run_type_idx'),
        ),
        migrations.AddIndex(
            model_name='artifact',
            index=models.Index(fields=['produced_by', 'created_at', 'id'], name='artifact_run_created_idx'),
        ),
        migrations.AddIndex(
            model_name='issue',
            index=models.Index(fields=['repo', 'status', 'created_at', 'id'], name='issue_repo_status_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['for_issue', 'status', 'created_at', 'id'], name='run_issue_status_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['for_issue', 'created_at', 'id'], name='run_issue_created_idx'),
        ),
        migrations.AddField(
            model_name='issuetag',
            name='issue',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='tag_rows', to='cwom.issue'),
        ),
        migrations.AddIndex(
            model_name='issuetag',
            index=models.Index(fields=['tag', 'repo_id', 'status', 'created_at', 'issue'], name='issue_tag_list_idx'),
        ),
        migrations.AddIndex(
            model_name='issuetag',
            index=models.Index(fields=['tag', 'created_at', 'issue'], name='issue_tag_created_idx'),
        ),
        migrations.AddConstraint(
            model_name='issuetag',
            constraint=models.UniqueConstraint(fields=('issue', 'tag'), name='issue_tag_unique'),
        ),
        # Last: SQLite rebuilds cwom_issuetag for its constraint, which a trigger naming the table forbids.
        migrations.RunPython(db_guards.install_0004, db_guards.uninstall_0004),
    ]
