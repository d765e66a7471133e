"""Rules the database holds itself, so ``QuerySet.update()`` and raw SQL cannot break them either.

Triggers on PostgreSQL (PL/pgSQL) and SQLite refuse:
- any UPDATE or DELETE of a constraint snapshot or an event;
- UPDATE or DELETE of a sealed context packet or a published doctrine ref, and changes to their links;
- a change of a repo's slug;
- changes to an artifact other than its verification (bytes may be attached once);
- changes to a run's inputs after it started, and any move out of a terminal status;
- an artifact for a run that has not started; a run whose repo is not its issue's repo.

Every refusal message starts with ``cwom:<code>:`` so the API can answer with that code.
PostgreSQL also gets GIN indexes for tag and assignee lookups.
"""

from __future__ import annotations

from typing import Any

# (trigger name, table, event, condition, code, message). The condition is SQL over OLD/NEW that is
# true when the change must be refused; it is shared by both dialects where the SQL is the same.
_SEALED_PACKET = "(SELECT sealed FROM cwom_contextpacket WHERE id = {ref}.packet_id)"
_PUBLISHED_DOCTRINE = "(SELECT published FROM cwom_doctrineref WHERE id = {ref}.doctrine_ref_id)"
_STARTED_RUN = (
    "(SELECT started_at IS NOT NULL OR status IN ('done','failed','canceled') FROM cwom_run WHERE id = {ref}.run_id)"
)
_TERMINAL = "('done', 'failed', 'canceled')"

RULES: list[tuple[str, str, str, str, str, str]] = [
    (
        "snapshot_no_update",
        "cwom_constraintsnapshot",
        "UPDATE",
        "1=1",
        "immutable",
        "constraint snapshots never change",
    ),
    (
        "snapshot_no_delete",
        "cwom_constraintsnapshot",
        "DELETE",
        "1=1",
        "immutable",
        "constraint snapshots are never deleted",
    ),
    ("event_no_update", "cwom_event", "UPDATE", "1=1", "immutable", "events are never edited"),
    ("event_no_delete", "cwom_event", "DELETE", "1=1", "immutable", "events are never deleted"),
    (
        "packet_sealed_update",
        "cwom_contextpacket",
        "UPDATE",
        "OLD.sealed",
        "sealed",
        "a sealed context packet never changes",
    ),
    (
        "packet_sealed_delete",
        "cwom_contextpacket",
        "DELETE",
        "OLD.sealed",
        "sealed",
        "a sealed context packet is never deleted",
    ),
    (
        "packet_doctrine_insert",
        "cwom_packetdoctrineref",
        "INSERT",
        _SEALED_PACKET.format(ref="NEW"),
        "sealed",
        "a sealed context packet's doctrine refs never change",
    ),
    (
        "packet_doctrine_delete",
        "cwom_packetdoctrineref",
        "DELETE",
        _SEALED_PACKET.format(ref="OLD"),
        "sealed",
        "a sealed context packet's doctrine refs never change",
    ),
    (
        "packet_doctrine_update",
        "cwom_packetdoctrineref",
        "UPDATE",
        _SEALED_PACKET.format(ref="OLD"),
        "sealed",
        "a sealed context packet's doctrine refs never change",
    ),
    (
        "doctrine_published_update",
        "cwom_doctrineref",
        "UPDATE",
        "OLD.published",
        "immutable",
        "a published doctrine ref never changes; publish a new version",
    ),
    (
        "doctrine_published_delete",
        "cwom_doctrineref",
        "DELETE",
        "OLD.published",
        "immutable",
        "a published doctrine ref is never deleted",
    ),
    (
        "doctrine_repo_insert",
        "cwom_doctrineapplicablerepo",
        "INSERT",
        _PUBLISHED_DOCTRINE.format(ref="NEW"),
        "immutable",
        "a published doctrine ref's applicability never changes",
    ),
    (
        "doctrine_repo_delete",
        "cwom_doctrineapplicablerepo",
        "DELETE",
        _PUBLISHED_DOCTRINE.format(ref="OLD"),
        "immutable",
        "a published doctrine ref's applicability never changes",
    ),
    (
        "doctrine_repo_update",
        "cwom_doctrineapplicablerepo",
        "UPDATE",
        _PUBLISHED_DOCTRINE.format(ref="OLD"),
        "immutable",
        "a published doctrine ref's applicability never changes",
    ),
    ("repo_slug_update", "cwom_repo", "UPDATE", "NEW.slug <> OLD.slug", "immutable", "a repo's slug never changes"),
    (
        "run_terminal_update",
        "cwom_run",
        "UPDATE",
        f"OLD.status IN {_TERMINAL} AND NEW.status <> OLD.status",
        "illegal_transition",
        "a run in a terminal status never moves again",
    ),
    (
        "run_inputs_update",
        "cwom_run",
        "UPDATE",
        "OLD.started_at IS NOT NULL AND (NEW.constraint_snapshot_id IS NOT OLD.constraint_snapshot_id "
        "OR NEW.for_issue_id <> OLD.for_issue_id OR NEW.repo_id <> OLD.repo_id)",
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_repo_insert",
        "cwom_run",
        "INSERT",
        "NEW.repo_id <> (SELECT repo_id FROM cwom_issue WHERE id = NEW.for_issue_id)",
        "repo_mismatch",
        "a run's repo must be its issue's repo",
    ),
    (
        "run_packet_insert",
        "cwom_runcontextpacket",
        "INSERT",
        _STARTED_RUN.format(ref="NEW"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_packet_delete",
        "cwom_runcontextpacket",
        "DELETE",
        _STARTED_RUN.format(ref="OLD"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_packet_update",
        "cwom_runcontextpacket",
        "UPDATE",
        _STARTED_RUN.format(ref="OLD"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_doctrine_insert",
        "cwom_rundoctrineref",
        "INSERT",
        _STARTED_RUN.format(ref="NEW"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_doctrine_delete",
        "cwom_rundoctrineref",
        "DELETE",
        _STARTED_RUN.format(ref="OLD"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "run_doctrine_update",
        "cwom_rundoctrineref",
        "UPDATE",
        _STARTED_RUN.format(ref="OLD"),
        "inputs_frozen",
        "a run's inputs never change after it starts",
    ),
    (
        "artifact_run_insert",
        "cwom_artifact",
        "INSERT",
        "(SELECT status IN ('planned', 'ready') FROM cwom_run WHERE id = NEW.produced_by_id) "
        "OR NEW.for_issue_id <> (SELECT for_issue_id FROM cwom_run WHERE id = NEW.produced_by_id)",
        "run_not_started",
        "an artifact needs a started run and that run's issue",
    ),
    (
        "artifact_update",
        "cwom_artifact",
        "UPDATE",
        "NEW.id <> OLD.id OR NEW.produced_by_id <> OLD.produced_by_id OR NEW.for_issue_id <> OLD.for_issue_id "
        "OR NEW.type <> OLD.type OR NEW.title <> OLD.title OR NEW.uri IS NOT OLD.uri OR NEW.preview IS NOT OLD.preview "
        "OR NEW.created_at <> OLD.created_at OR NEW.created_by IS NOT OLD.created_by OR NEW.tags IS NOT OLD.tags "
        "OR NEW.meta IS NOT OLD.meta OR (OLD.stored_name <> '' AND (NEW.stored_name <> OLD.stored_name "
        "OR NEW.digest IS NOT OLD.digest OR NEW.size_bytes IS NOT OLD.size_bytes "
        "OR NEW.media_type IS NOT OLD.media_type))",
        "immutable",
        "only an artifact's verification changes after creation",
    ),
]

# PostgreSQL-only: decision_log only grows (its old value is a prefix of the new one).
_PG_APPEND_ONLY = (
    "run_decision_log_update",
    "cwom_run",
    "UPDATE",
    "jsonb_array_length(NEW.decision_log) < jsonb_array_length(OLD.decision_log) OR "
    "(SELECT COALESCE(jsonb_agg(e ORDER BY i), '[]'::jsonb) FROM jsonb_array_elements(NEW.decision_log) "
    "WITH ORDINALITY AS t(e, i) WHERE i <= jsonb_array_length(OLD.decision_log)) <> OLD.decision_log",
    "append_only",
    "decision_log only grows",
)

PG_GIN_INDEXES = [
    ("cwom_issue_tags_gin", "cwom_issue", "tags"),
    ("cwom_issue_assignees_gin", "cwom_issue", "assignees"),
    ("cwom_run_tags_gin", "cwom_run", "tags"),
    ("cwom_artifact_tags_gin", "cwom_artifact", "tags"),
    ("cwom_repo_tags_gin", "cwom_repo", "tags"),
    ("cwom_contextpacket_tags_gin", "cwom_contextpacket", "tags"),
    ("cwom_constraintsnapshot_tags_gin", "cwom_constraintsnapshot", "tags"),
    ("cwom_doctrineref_tags_gin", "cwom_doctrineref", "tags"),
    ("cwom_doctrineref_issue_types_gin", "cwom_doctrineref", "applicability_issue_types"),
]


def _pg_condition(condition: str) -> str:
    # The rules are written in SQLite's spelling; PostgreSQL says IS DISTINCT FROM for IS NOT.
    return condition.replace(" IS NOT OLD.", " IS DISTINCT FROM OLD.")


def _pg_statements() -> list[str]:
    statements = []
    for name, table, event, condition, code, message in [*RULES, _PG_APPEND_ONLY]:
        row = "OLD" if event == "DELETE" else "NEW"
        message = message.replace("'", "''")
        function = f"cwom_guard_{name}"
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n  IF {_pg_condition(condition)} THEN\n"
            f"    RAISE EXCEPTION 'cwom:{code}: {message}' USING ERRCODE = '23000';\n  END IF;\n"
            f"  RETURN {row};\nEND $$;"
        )
        statements.append(f"DROP TRIGGER IF EXISTS cwom_{name} ON {table};")
        statements.append(
            f"CREATE TRIGGER cwom_{name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}();"
        )
    for index, table, column in PG_GIN_INDEXES:
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin ({column});")
    return statements


def _sqlite_statements() -> list[str]:
    statements = []
    for name, table, event, condition, code, message in RULES:
        message = message.replace("'", "''")
        statements.append(f"DROP TRIGGER IF EXISTS cwom_{name};")
        statements.append(
            f"CREATE TRIGGER cwom_{name} BEFORE {event} ON {table} FOR EACH ROW "
            f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'cwom:{code}: {message}'); END;"
        )
    return statements


def install(apps: Any, schema_editor: Any) -> None:
    """Migration step: create the triggers (and PostgreSQL's GIN indexes) for this database."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _pg_statements()
    elif vendor == "sqlite":
        statements = _sqlite_statements()
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def uninstall(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for name, table, *_ in [*RULES, _PG_APPEND_ONLY]:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS cwom_{name} ON {table};", params=None)
            schema_editor.execute(f"DROP FUNCTION IF EXISTS cwom_guard_{name}();", params=None)
        for index, _table, _column in PG_GIN_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {index};", params=None)
    elif vendor == "sqlite":
        for name, *_ in RULES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS cwom_{name};", params=None)
