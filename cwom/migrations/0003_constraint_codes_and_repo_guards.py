"""Codes on every constraint's validation error, and more guards (see cwom.db_guards.install_0003).

``repo_slug_unique`` leaves the migration state only (the model keeps ``unique=True`` on the field):
when 0001 created ``cwom_repo``, PostgreSQL folded the column's UNIQUE into that identical named
constraint, so in the database it is what keeps slugs unique and must stay.
"""

from django.db import migrations, models

from cwom import db_guards


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0002_db_guards'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveConstraint(model_name='repo', name='repo_slug_unique')],
        ),
        migrations.AlterConstraint(
            model_name='artifact',
            name='artifact_type_valid',
            constraint=models.CheckConstraint(condition=models.Q(('type__in', ['code_patch', 'commit', 'pr', 'build', 'container_image', 'doc', 'report', 'dataset', 'log', 'trace', 'binary', 'link'])), name='artifact_type_valid', violation_error_code='invalid_choice', violation_error_message='type must be one of: code_patch, commit, pr, build, container_image, doc, report, dataset, log, trace, binary, link.'),
        ),
        migrations.AlterConstraint(
            model_name='artifact',
            name='artifact_verification_valid',
            constraint=models.CheckConstraint(condition=models.Q(('verification_status__in', ['unverified', 'passed', 'failed'])), name='artifact_verification_valid', violation_error_code='invalid_choice', violation_error_message='verification_status must be one of: unverified, passed, failed.'),
        ),
        migrations.AlterConstraint(
            model_name='artifact',
            name='artifact_size_nonnegative',
            constraint=models.CheckConstraint(condition=models.Q(('size_bytes__isnull', True), ('size_bytes__gte', 0), _connector='OR'), name='artifact_size_nonnegative', violation_error_code='out_of_range', violation_error_message='size_bytes cannot be negative.'),
        ),
        migrations.AlterConstraint(
            model_name='constraintsnapshot',
            name='snapshot_scope_valid',
            constraint=models.CheckConstraint(condition=models.Q(('scope__in', ['personal', 'repo', 'org', 'system', 'run'])), name='snapshot_scope_valid', violation_error_code='invalid_choice', violation_error_message='scope must be one of: personal, repo, org, system, run.'),
        ),
        migrations.AlterConstraint(
            model_name='constraintsnapshot',
            name='snapshot_connectivity_valid',
            constraint=models.CheckConstraint(condition=models.Q(('environment_connectivity__in', ['offline', 'limited', 'ok']), ('environment_connectivity__isnull', True), _connector='OR'), name='snapshot_connectivity_valid', violation_error_code='invalid_choice', violation_error_message='environment_connectivity must be one of: offline, limited, ok.'),
        ),
        migrations.AlterConstraint(
            model_name='constraintsnapshot',
            name='snapshot_risk_valid',
            constraint=models.CheckConstraint(condition=models.Q(('risk_tolerance__in', ['low', 'medium', 'high']), ('risk_tolerance__isnull', True), _connector='OR'), name='snapshot_risk_valid', violation_error_code='invalid_choice', violation_error_message='risk_tolerance must be one of: low, medium, high.'),
        ),
        migrations.AlterConstraint(
            model_name='constraintsnapshot',
            name='snapshot_energy_0_5',
            constraint=models.CheckConstraint(condition=models.Q(('energy_score_0_5__isnull', True), models.Q(('energy_score_0_5__gte', 0), ('energy_score_0_5__lte', 5)), _connector='OR'), name='snapshot_energy_0_5', violation_error_code='out_of_range', violation_error_message='energy.score_0_5 must be between 0 and 5.'),
        ),
        migrations.AlterConstraint(
            model_name='constraintsnapshot',
            name='snapshot_minutes_nonnegative',
            constraint=models.CheckConstraint(condition=models.Q(('time_available_minutes__isnull', True), ('time_available_minutes__gte', 0), _connector='OR'), name='snapshot_minutes_nonnegative', violation_error_code='out_of_range', violation_error_message='time.available_minutes cannot be negative.'),
        ),
        migrations.AlterConstraint(
            model_name='contextpacket',
            name='packet_issue_version_unique',
            constraint=models.UniqueConstraint(fields=('for_issue', 'version'), name='packet_issue_version_unique', violation_error_code='duplicate', violation_error_message='This issue already has a context packet with this version.'),
        ),
        migrations.AlterConstraint(
            model_name='contextpacket',
            name='packet_sealed_at_consistent',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('sealed', True), ('sealed_at__isnull', False)), models.Q(('sealed', False), ('sealed_at__isnull', True)), _connector='OR'), name='packet_sealed_at_consistent', violation_error_code='invalid', violation_error_message='sealed_at is set exactly when the packet is sealed.'),
        ),
        migrations.AlterConstraint(
            model_name='doctrineref',
            name='doctrine_namespace_name_version_unique',
            constraint=models.UniqueConstraint(fields=('namespace', 'name', 'version'), name='doctrine_namespace_name_version_unique', violation_error_code='duplicate', violation_error_message='This (namespace, name, version) is already published.'),
        ),
        migrations.AlterConstraint(
            model_name='doctrineref',
            name='doctrine_type_valid',
            constraint=models.CheckConstraint(condition=models.Q(('type__in', ['principle', 'policy', 'procedure', 'heuristic', 'pattern'])), name='doctrine_type_valid', violation_error_code='invalid_choice', violation_error_message='type must be one of: principle, policy, procedure, heuristic, pattern.'),
        ),
        migrations.AlterConstraint(
            model_name='doctrineref',
            name='doctrine_priority_valid',
            constraint=models.CheckConstraint(condition=models.Q(('priority__in', ['must', 'should', 'may'])), name='doctrine_priority_valid', violation_error_code='invalid_choice', violation_error_message='priority must be one of: must, should, may.'),
        ),
        migrations.AlterConstraint(
            model_name='event',
            name='event_action_valid',
            constraint=models.CheckConstraint(condition=models.Q(('action__in', ['create', 'update', 'seal', 'transition'])), name='event_action_valid', violation_error_code='invalid_choice', violation_error_message='Unknown event action.'),
        ),
        migrations.AlterConstraint(
            model_name='issue',
            name='issue_type_valid',
            constraint=models.CheckConstraint(condition=models.Q(('type__in', ['feature', 'bug', 'chore', 'research', 'ops', 'doc', 'incident'])), name='issue_type_valid', violation_error_code='invalid_choice', violation_error_message='type must be one of: feature, bug, chore, research, ops, doc, incident.'),
        ),
        migrations.AlterConstraint(
            model_name='issue',
            name='issue_priority_valid',
            constraint=models.CheckConstraint(condition=models.Q(('priority__in', ['P0', 'P1', 'P2', 'P3', 'P4'])), name='issue_priority_valid', violation_error_code='invalid_choice', violation_error_message='priority must be one of: P0, P1, P2, P3, P4.'),
        ),
        migrations.AlterConstraint(
            model_name='issue',
            name='issue_status_valid',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['planned', 'ready', 'running', 'blocked', 'done', 'failed', 'canceled'])), name='issue_status_valid', violation_error_code='invalid_choice', violation_error_message='status must be one of: planned, ready, running, blocked, done, failed, canceled.'),
        ),
        migrations.AlterConstraint(
            model_name='issue',
            name='issue_not_own_parent',
            constraint=models.CheckConstraint(condition=models.Q(('parent', models.F('id')), _negated=True), name='issue_not_own_parent', violation_error_code='cycle', violation_error_message='An issue cannot be its own parent.'),
        ),
        migrations.AlterConstraint(
            model_name='issueblock',
            name='issue_block_not_self',
            constraint=models.CheckConstraint(condition=models.Q(('blocker', models.F('blocked')), _negated=True), name='issue_block_not_self', violation_error_code='self_reference', violation_error_message='An issue cannot block itself.'),
        ),
        migrations.AlterConstraint(
            model_name='issueduplicate',
            name='issue_duplicate_not_self',
            constraint=models.CheckConstraint(condition=models.Q(('issue', models.F('duplicate_of')), _negated=True), name='issue_duplicate_not_self', violation_error_code='self_reference', violation_error_message='An issue cannot duplicate itself.'),
        ),
        migrations.AlterConstraint(
            model_name='repo',
            name='repo_visibility_valid',
            constraint=models.CheckConstraint(condition=models.Q(('visibility__in', ['public', 'private', 'internal'])), name='repo_visibility_valid', violation_error_code='invalid_choice', violation_error_message='visibility must be one of: public, private, internal.'),
        ),
        migrations.AlterConstraint(
            model_name='run',
            name='run_status_valid',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['planned', 'ready', 'running', 'blocked', 'done', 'failed', 'canceled'])), name='run_status_valid', violation_error_code='invalid_choice', violation_error_message='status must be one of: planned, ready, running, blocked, done, failed, canceled.'),
        ),
        migrations.AlterConstraint(
            model_name='run',
            name='run_mode_valid',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['human', 'agent', 'hybrid', 'system'])), name='run_mode_valid', violation_error_code='invalid_choice', violation_error_message='mode must be one of: human, agent, hybrid, system.'),
        ),
        migrations.AlterConstraint(
            model_name='run',
            name='run_failure_category_valid',
            constraint=models.CheckConstraint(condition=models.Q(('failure_category__in', ['policy', 'build', 'test', 'runtime', 'dependency', 'unknown']), ('failure_category__isnull', True), _connector='OR'), name='run_failure_category_valid', violation_error_code='invalid_choice', violation_error_message='failure_category must be one of: policy, build, test, runtime, dependency, unknown.'),
        ),
        migrations.AlterConstraint(
            model_name='run',
            name='run_failure_iff_failed',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('failure_category__isnull', False), ('status', 'failed')), models.Q(models.Q(('status', 'failed'), _negated=True), ('failure_category__isnull', True)), _connector='OR'), name='run_failure_iff_failed', violation_error_code='failure_mismatch', violation_error_message='A failure is required with status failed and refused on any other status.'),
        ),
        migrations.AlterConstraint(
            model_name='run',
            name='run_ended_after_started',
            constraint=models.CheckConstraint(condition=models.Q(('ended_at__isnull', True), ('started_at__isnull', True), ('ended_at__gte', models.F('started_at')), _connector='OR'), name='run_ended_after_started', violation_error_code='invalid_telemetry', violation_error_message='telemetry.ended_at cannot be before started_at.'),
        ),
        migrations.RunPython(db_guards.install_0003, db_guards.uninstall_0003),
    ]
