"""Rules the database holds itself, so ``QuerySet.update()`` and raw SQL cannot break them either.

Triggers on PostgreSQL (PL/pgSQL) and SQLite refuse:
- any UPDATE or DELETE of a constraint snapshot or an event;
- UPDATE or DELETE of a sealed context packet or a published doctrine ref, and changes to their links;
- a change of a repo's slug;
- changes to an artifact other than its verification (bytes may be attached once);
- changes to a run's inputs after it started, and any move out of a terminal status;
- an artifact for a run that has not started or for another issue than its run's; a run whose repo is
  not its issue's repo (on insert, on update, and by moving an issue that has runs to another repo);
- a decision log that shrinks or rewrites an entry;
- a change of an object's ``created_by``, a parent that makes a cycle in an issue's parent chain, and a
  data blob with neither a ``uri`` nor an ``inline`` value (migration 0006);
- an issue listing another issue's context packet (migration 0007);
- a run retrying a run of another issue, or a change of what a run retries (migration 0008).

Every refusal message starts with ``cwom:<code>:`` so the API can answer with that code.
PostgreSQL also gets GIN indexes for tag and assignee lookups.

One trigger is not a guard but an index the database keeps itself (migration 0004): ``cwom_issuetag``,
a row per tag of each issue with its repo, status and creation time, rewritten whenever an issue's
tags, repo, status or creation time change (see :class:`cwom.models.IssueTag`).
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
        "(SELECT status IN ('planned', 'ready') FROM cwom_run WHERE id = NEW.produced_by_id)",
        "run_not_started",
        "an artifact needs a run that has started",
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

# decision_log only grows (its old value is a prefix of the new one): PostgreSQL's spelling, from 0002.
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

# Added by migration 0003: a run's repo stays its issue's repo after the insert as well, and an
# artifact's issue mismatch has its own code (0002 folded it into run_not_started).
RULES_0003: list[tuple[str, str, str, str, str, str]] = [
    (
        "run_repo_update",
        "cwom_run",
        "UPDATE",
        "NEW.repo_id <> (SELECT repo_id FROM cwom_issue WHERE id = NEW.for_issue_id)",
        "repo_mismatch",
        "a run's repo must be its issue's repo",
    ),
    (
        "artifact_issue_insert",
        "cwom_artifact",
        "INSERT",
        "NEW.for_issue_id <> (SELECT for_issue_id FROM cwom_run WHERE id = NEW.produced_by_id)",
        "issue_mismatch",
        "an artifact's issue must be its run's issue",
    ),
    (
        "issue_repo_update",
        "cwom_issue",
        "UPDATE",
        "NEW.repo_id <> OLD.repo_id AND EXISTS (SELECT 1 FROM cwom_run WHERE for_issue_id = OLD.id)",
        "repo_mismatch",
        "an issue with runs stays in its repo (a run's repo must be its issue's repo)",
    ),
]

# Added by migration 0003, SQLite's spelling of run_decision_log_update: every entry of the old log is
# still at its index in the new one.
_SQLITE_APPEND_ONLY = (
    "run_decision_log_update",
    "cwom_run",
    "UPDATE",
    "json_array_length(NEW.decision_log) < json_array_length(OLD.decision_log) OR EXISTS ("
    "SELECT 1 FROM json_each(OLD.decision_log) AS o WHERE o.value IS NOT "
    "(SELECT n.value FROM json_each(NEW.decision_log) AS n WHERE n.key = o.key))",
    "append_only",
    "decision_log only grows",
)


def _pg_condition(condition: str) -> str:
    # The rules are written in SQLite's spelling; PostgreSQL says IS DISTINCT FROM for IS NOT.
    return condition.replace(" IS NOT OLD.", " IS DISTINCT FROM OLD.").replace(" IS NOT NEW.", " IS DISTINCT FROM NEW.")


# Added by migration 0006: who created an object never changes; the parent chain has no cycle; a data blob
# names where its bytes are. (An artifact's created_by is in artifact_update, a snapshot never changes.)
_CHAIN_REACHES_NEW = (
    "EXISTS (WITH RECURSIVE chain(id) AS (SELECT NEW.parent_id UNION SELECT i.parent_id FROM cwom_issue i "
    "JOIN chain c ON i.id = c.id WHERE i.parent_id IS NOT NULL) SELECT 1 FROM chain WHERE id = NEW.id)"
)
_BLOB_WITHOUT_SOURCE = {
    "postgresql": "jsonb_typeof(NEW.inputs_data_blobs) = 'array' AND EXISTS (SELECT 1 FROM "
    "jsonb_array_elements(NEW.inputs_data_blobs) b WHERE COALESCE(jsonb_typeof(b->'uri'), 'null') = 'null' "
    "AND COALESCE(jsonb_typeof(b->'inline'), 'null') = 'null')",
    "sqlite": "json_type(NEW.inputs_data_blobs) = 'array' AND EXISTS (SELECT 1 FROM json_each(NEW.inputs_data_blobs) b "
    "WHERE COALESCE(json_type(b.value, '$.uri'), 'null') = 'null' "
    "AND COALESCE(json_type(b.value, '$.inline'), 'null') = 'null')",
}
# A new parent, other than the issue itself (that is the check constraint issue_not_own_parent's to refuse).
_PARENT_CHANGED = "NEW.parent_id IS NOT NULL AND NEW.parent_id IS NOT OLD.parent_id AND NEW.parent_id <> NEW.id"
PARENT_CYCLE = (
    "issue_parent_cycle",
    "cwom_issue",
    "UPDATE",
    f"{_PARENT_CHANGED} AND {_CHAIN_REACHES_NEW}",
    "cycle",
    "this parent would make a cycle in the parent chain",
)


def rules_0006(vendor: str) -> list[tuple[str, str, str, str, str, str]]:
    """Migration 0006's guards on ``vendor`` (PostgreSQL's parent check is its own function: see install_0006)."""
    created_by = [
        (
            f"{table.removeprefix('cwom_')}_created_by_update",
            table,
            "UPDATE",
            "NEW.created_by IS NOT OLD.created_by",
            "immutable",
            "created_by records who created the object and never changes",
        )
        for table in ("cwom_repo", "cwom_issue", "cwom_contextpacket", "cwom_doctrineref", "cwom_run")
    ]
    blob = _BLOB_WITHOUT_SOURCE["postgresql" if vendor == "postgresql" else "sqlite"]
    blobs = [
        (
            f"packet_blob_source_{event.lower()}",
            "cwom_contextpacket",
            event,
            blob,
            "required",
            "a data blob needs a uri or an inline value",
        )
        for event in ("INSERT", "UPDATE")
    ]
    return [*created_by, *blobs]


# Added by migration 0007: an issue lists only its own context packets.
_FOREIGN_PACKET = "(SELECT for_issue_id FROM cwom_contextpacket WHERE id = NEW.packet_id) IS NOT NEW.issue_id"
RULES_0007 = [
    (
        f"issue_packet_{event.lower()}",
        "cwom_issuecontextpacket",
        event,
        _FOREIGN_PACKET,
        "packet_issue_mismatch",
        "an issue lists only its own context packets",
    )
    for event in ("INSERT", "UPDATE")
]


# Added by migration 0008: a run retries a run of its own issue, and what it retries never changes. (That the
# retried run failed or was canceled is the model's rule: an import inserts runs open before their status.)
RULES_0008 = [
    (
        "run_retry_of_insert",
        "cwom_run",
        "INSERT",
        "NEW.retry_of_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM cwom_run r WHERE r.id = NEW.retry_of_id AND r.for_issue_id = NEW.for_issue_id)",
        "not_retryable",
        "a run retries a run of its own issue",
    ),
    (
        "run_retry_of_update",
        "cwom_run",
        "UPDATE",
        "NEW.retry_of_id IS NOT OLD.retry_of_id",
        "immutable",
        "what a run retries never changes",
    ),
]


# PostgreSQL: two writers could each add one edge of a cycle, each checking a chain that does not yet hold
# the other's. The check takes a transaction-scoped advisory lock first, so parent changes are checked one
# at a time, and reads the chain in a statement of its own (a fresh snapshot, after the lock).
_PG_PARENT_CYCLE = f"""
CREATE OR REPLACE FUNCTION cwom_guard_issue_parent_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_pg_condition(_PARENT_CHANGED)} THEN
    PERFORM pg_advisory_xact_lock(hashtext('cwom_issue_parent'));
    IF {_CHAIN_REACHES_NEW} THEN
      RAISE EXCEPTION 'cwom:{PARENT_CYCLE[4]}: {PARENT_CYCLE[5]}' USING ERRCODE = '23000';
    END IF;
  END IF;
  RETURN NEW;
END $$;"""


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


def all_rules(vendor: str) -> list[tuple[str, str, str, str, str, str]]:
    """Every guard the migrations install on ``vendor``."""
    if vendor == "postgresql":
        return [*RULES, _PG_APPEND_ONLY, *RULES_0003, *rules_0006(vendor), PARENT_CYCLE, *RULES_0007, *RULES_0008]
    return [*RULES, *RULES_0003, _SQLITE_APPEND_ONLY, *rules_0006(vendor), PARENT_CYCLE, *RULES_0007, *RULES_0008]


def _pg_statements(rules: list[tuple[str, str, str, str, str, str]], gin: bool = True) -> list[str]:
    statements = []
    for name, table, event, condition, code, message in rules:
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
    for index, table, column in PG_GIN_INDEXES if gin else []:
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin ({column});")
    return statements


def _sqlite_statements(rules: list[tuple[str, str, str, str, str, str]]) -> list[str]:
    statements = []
    for name, table, event, condition, code, message in rules:
        message = message.replace("'", "''")
        statements.append(f"DROP TRIGGER IF EXISTS cwom_{name};")
        statements.append(
            f"CREATE TRIGGER cwom_{name} BEFORE {event} ON {table} FOR EACH ROW "
            f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'cwom:{code}: {message}'); END;"
        )
    return statements


def _install(schema_editor: Any, rules: list[tuple[str, str, str, str, str, str]], pg_extra: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _pg_statements([*rules, _PG_APPEND_ONLY] if pg_extra else rules, gin=pg_extra)
    elif vendor == "sqlite":
        statements = _sqlite_statements(rules)
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def _uninstall(schema_editor: Any, rules: list[tuple[str, str, str, str, str, str]], pg_extra: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for name, table, *_ in [*rules, _PG_APPEND_ONLY] if pg_extra else rules:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS cwom_{name} ON {table};", params=None)
            schema_editor.execute(f"DROP FUNCTION IF EXISTS cwom_guard_{name}();", params=None)
        for index, _table, _column in PG_GIN_INDEXES if pg_extra else []:
            schema_editor.execute(f"DROP INDEX IF EXISTS {index};", params=None)
    elif vendor == "sqlite":
        for name, *_ in rules:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS cwom_{name};", params=None)


def install(apps: Any, schema_editor: Any) -> None:
    """Migration 0002: create the triggers (and PostgreSQL's GIN indexes) for this database."""
    _install(schema_editor, RULES, pg_extra=True)


def uninstall(apps: Any, schema_editor: Any) -> None:
    _uninstall(schema_editor, RULES, pg_extra=True)


def install_0003(apps: Any, schema_editor: Any) -> None:
    """Migration 0003: a run's repo stays its issue's repo on UPDATE of a run or of its issue, an
    artifact's issue mismatch gets its own code, and SQLite gets the append-only decision log too.

    Also re-creates 0002's guards (every statement is idempotent), so a database migrated before
    0003 gets their current definitions (artifact_run_insert no longer folds in the issue check).
    """
    _install(schema_editor, RULES, pg_extra=True)
    vendor = schema_editor.connection.vendor
    _install(schema_editor, [*RULES_0003, _SQLITE_APPEND_ONLY] if vendor == "sqlite" else RULES_0003, pg_extra=False)


def uninstall_0003(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    _uninstall(schema_editor, [*RULES_0003, _SQLITE_APPEND_ONLY] if vendor == "sqlite" else RULES_0003, pg_extra=False)


# --- migration 0004: the issue tag index -----------------------------------------------------------------
_PG_TAG_FUNCTION = """
CREATE OR REPLACE FUNCTION cwom_issue_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.tags IS NOT DISTINCT FROM OLD.tags AND NEW.repo_id = OLD.repo_id AND NEW.status = OLD.status
       AND NEW.created_at = OLD.created_at THEN
      RETURN NULL;
    END IF;
    DELETE FROM cwom_issuetag WHERE issue_id = OLD.id;
  END IF;
  IF jsonb_typeof(NEW.tags) = 'array' THEN
    INSERT INTO cwom_issuetag (issue_id, tag, repo_id, status, created_at)
      SELECT DISTINCT NEW.id, t, NEW.repo_id, NEW.status, NEW.created_at FROM jsonb_array_elements_text(NEW.tags) t;
  END IF;
  RETURN NULL;
END $$;"""
_SQLITE_TAG_ROWS = (
    "INSERT INTO cwom_issuetag (issue_id, tag, repo_id, status, created_at) "
    "SELECT DISTINCT NEW.id, value, NEW.repo_id, NEW.status, "
    "NEW.created_at FROM json_each(CASE json_type(NEW.tags) WHEN 'array' THEN NEW.tags ELSE '[]' END);"
)
_SQLITE_TAG_DELETE = "DELETE FROM cwom_issuetag WHERE issue_id = OLD.id;"
# Rebuilds the whole tag index from cwom_issue (the migration's backfill; bench/generate.py after its load).
PG_TAG_BACKFILL = (
    "INSERT INTO cwom_issuetag (issue_id, tag, repo_id, status, created_at) "
    "SELECT DISTINCT i.id, t, i.repo_id, i.status, i.created_at "
    "FROM cwom_issue i CROSS JOIN LATERAL jsonb_array_elements_text("
    "CASE jsonb_typeof(i.tags) WHEN 'array' THEN i.tags ELSE '[]' END) t"
)
_SQLITE_TAG_BACKFILL = (
    "INSERT INTO cwom_issuetag (issue_id, tag, repo_id, status, created_at) "
    "SELECT DISTINCT i.id, j.value, i.repo_id, i.status, i.created_at "
    "FROM cwom_issue i, json_each(CASE json_type(i.tags) WHEN 'array' THEN i.tags ELSE '[]' END) j"
)
TAG_TRIGGERS = {
    "postgresql": ["cwom_issue_tags_sync"],
    "sqlite": ["cwom_issue_tags_insert", "cwom_issue_tags_update"],
}


def install_0004(apps: Any, schema_editor: Any) -> None:
    """Migration 0004: the triggers that keep ``cwom_issuetag`` in step with ``cwom_issue``, then its backfill."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [
            _PG_TAG_FUNCTION,
            "DROP TRIGGER IF EXISTS cwom_issue_tags_sync ON cwom_issue;",
            "CREATE TRIGGER cwom_issue_tags_sync AFTER INSERT OR UPDATE OF tags, repo_id, status, created_at "
            "ON cwom_issue FOR EACH ROW EXECUTE FUNCTION cwom_issue_tags_sync();",
            "DELETE FROM cwom_issuetag;",
            PG_TAG_BACKFILL + ";",
        ]
    elif vendor == "sqlite":
        statements = [
            "DROP TRIGGER IF EXISTS cwom_issue_tags_insert;",
            f"CREATE TRIGGER cwom_issue_tags_insert AFTER INSERT ON cwom_issue BEGIN {_SQLITE_TAG_ROWS} END;",
            "DROP TRIGGER IF EXISTS cwom_issue_tags_update;",
            "CREATE TRIGGER cwom_issue_tags_update AFTER UPDATE OF tags, repo_id, status, created_at ON cwom_issue "
            "WHEN NEW.tags IS NOT OLD.tags OR NEW.repo_id IS NOT OLD.repo_id OR NEW.status IS NOT OLD.status "
            f"OR NEW.created_at IS NOT OLD.created_at BEGIN {_SQLITE_TAG_DELETE} {_SQLITE_TAG_ROWS} END;",
            "DELETE FROM cwom_issuetag;",
            _SQLITE_TAG_BACKFILL + ";",
        ]
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def uninstall_0004(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS cwom_issue_tags_sync ON cwom_issue;", params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS cwom_issue_tags_sync();", params=None)
    elif vendor == "sqlite":
        for name in TAG_TRIGGERS["sqlite"]:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name};", params=None)


# --- migration 0006: created_by, the parent chain, data blobs ------------------------------------------
def install_0006(apps: Any, schema_editor: Any) -> None:
    """Migration 0006: created_by never changes, no cycle in the parent chain, a data blob has a source."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _install(schema_editor, [*rules_0006(vendor), PARENT_CYCLE], pg_extra=False)
    elif vendor == "postgresql":
        _install(schema_editor, rules_0006(vendor), pg_extra=False)
        for statement in (
            _PG_PARENT_CYCLE,
            "DROP TRIGGER IF EXISTS cwom_issue_parent_cycle ON cwom_issue;",
            "CREATE TRIGGER cwom_issue_parent_cycle BEFORE UPDATE OF parent_id ON cwom_issue "
            "FOR EACH ROW EXECUTE FUNCTION cwom_guard_issue_parent_cycle();",
        ):
            schema_editor.execute(statement, params=None)


def uninstall_0006(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    _uninstall(schema_editor, [*rules_0006(vendor), PARENT_CYCLE], pg_extra=False)


# --- migration 0007: an issue's context packets ---------------------------------------------------------
def install_0007(apps: Any, schema_editor: Any) -> None:
    """Migration 0007: an issue lists only its own context packets (the model layer's rule, held again)."""
    _install(schema_editor, RULES_0007, pg_extra=False)


def uninstall_0007(apps: Any, schema_editor: Any) -> None:
    _uninstall(schema_editor, RULES_0007, pg_extra=False)


# --- migration 0008: what a run retries ------------------------------------------------------------------
def install_0008(apps: Any, schema_editor: Any) -> None:
    """Migration 0008: a run retries a run of its own issue, and never another later."""
    _install(schema_editor, RULES_0008, pg_extra=False)


def uninstall_0008(apps: Any, schema_editor: Any) -> None:
    _uninstall(schema_editor, RULES_0008, pg_extra=False)


# --- SQLite: a table rebuilt by a migration keeps the triggers that name it ----------------------------------
def sqlite_triggers_set_aside(table: str) -> Any:
    """A migration step for SQLite that takes out the triggers on or naming ``table`` (kept in a temporary
    table) before Django rebuilds ``table`` (its ALTER TABLE ... RENAME re-reads every trigger, and a trigger
    naming the table being swapped fails it); :func:`sqlite_triggers_put_back` puts them back after."""

    def set_aside(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS cwom_set_aside_trigger (name TEXT, sql TEXT)")
            cursor.execute(
                "INSERT INTO cwom_set_aside_trigger SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND (tbl_name = %s OR sql LIKE %s)",
                [table, f"%{table}%"],
            )
            cursor.execute("SELECT name FROM cwom_set_aside_trigger")
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')

    return set_aside


def sqlite_triggers_put_back(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS cwom_set_aside_trigger (name TEXT, sql TEXT)")
        cursor.execute("SELECT name, sql FROM cwom_set_aside_trigger")
        for name, sql in cursor.fetchall():
            cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
            cursor.execute(sql)
        cursor.execute("DROP TABLE cwom_set_aside_trigger")


# --- migration 0011: the totals of the bounded ref lists ------------------------------------------------
# (related, table, owner column): the rows each bounded list is read from (see cwom.models.RefTotal).
# ``tests/kernel/test_bounded_lists.py`` holds this list equal to the bounded lists the shapes declare.
REF_TOTALS_0011: list[tuple[str, str, str]] = [
    ("runs", "cwom_run", "for_issue_id"),
    ("artifacts", "cwom_artifact", "produced_by_id"),
    ("context_packet_links", "cwom_issuecontextpacket", "issue_id"),
    ("constraint_links", "cwom_issueconstraintsnapshot", "issue_id"),
]


def _pg_ref_total(related: str, table: str, owner: str) -> list[str]:
    """Statement-level triggers with transition tables: one upsert per statement, whatever its row count
    (a COPY of a million runs adds to each issue once). Owners are taken in id order, so two statements
    adding to the same owners lock their counters in the same order."""
    name = f"cwom_reftotal_{related}"
    return [
        f"""CREATE OR REPLACE FUNCTION {name}_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cwom_reftotal (owner_id, related, total)
    SELECT {owner}, '{related}', count(*) FROM new_rows GROUP BY {owner} ORDER BY {owner}
  ON CONFLICT (owner_id, related) DO UPDATE SET total = cwom_reftotal.total + EXCLUDED.total;
  RETURN NULL;
END $$;""",
        f"""CREATE OR REPLACE FUNCTION {name}_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE cwom_reftotal t SET total = t.total - gone.n
    FROM (SELECT {owner} AS owner_id, count(*) AS n FROM old_rows GROUP BY {owner} ORDER BY {owner}) gone
   WHERE t.owner_id = gone.owner_id AND t.related = '{related}';
  RETURN NULL;
END $$;""",
        f"DROP TRIGGER IF EXISTS {name}_insert ON {table};",
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_insert();",
        f"DROP TRIGGER IF EXISTS {name}_delete ON {table};",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_delete();",
    ]


def _sqlite_ref_total(related: str, table: str, owner: str) -> list[str]:
    name = f"cwom_reftotal_{related}"
    return [
        f"DROP TRIGGER IF EXISTS {name}_insert;",
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO cwom_reftotal (owner_id, related, total) VALUES (NEW.{owner}, '{related}', 1) "
        "ON CONFLICT (owner_id, related) DO UPDATE SET total = total + 1; END;",
        f"DROP TRIGGER IF EXISTS {name}_delete;",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN "
        f"UPDATE cwom_reftotal SET total = total - 1 WHERE owner_id = OLD.{owner} AND related = '{related}'; END;",
    ]


def ref_total_backfill() -> list[str]:
    """Every total counted again from the rows (the migration's backfill; bench/generate.py after its load,
    which runs with the triggers off)."""
    return [
        "DELETE FROM cwom_reftotal;",
        *(
            f"INSERT INTO cwom_reftotal (owner_id, related, total) "
            f"SELECT {owner}, '{related}', count(*) FROM {table} GROUP BY {owner};"
            for related, table, owner in REF_TOTALS_0011
        ),
    ]


def install_0011(apps: Any, schema_editor: Any) -> None:
    """Migration 0011: triggers that keep ``cwom_reftotal`` exact, then the totals of the rows already there."""
    vendor = schema_editor.connection.vendor
    per_list = {"postgresql": _pg_ref_total, "sqlite": _sqlite_ref_total}.get(vendor)
    if per_list is None:
        return
    for related, table, owner in REF_TOTALS_0011:
        for statement in per_list(related, table, owner):
            schema_editor.execute(statement, params=None)
    for statement in ref_total_backfill():
        schema_editor.execute(statement, params=None)
    if vendor == "postgresql":
        # Statistics now, not at autovacuum's leisure: without them a page's totals were read by a sequential
        # scan (88 ms for 500 issues at 1M, 13 ms with them).
        schema_editor.execute("ANALYZE cwom_reftotal;", params=None)


def uninstall_0011(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    for related, table, _owner in REF_TOTALS_0011:
        for event in ("insert", "delete"):
            name = f"cwom_reftotal_{related}_{event}"
            if vendor == "postgresql":
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table};", params=None)
                schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}();", params=None)
            elif vendor == "sqlite":
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name};", params=None)
