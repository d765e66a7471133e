"""The transactional outbox of event subscriptions: the database writes the deliveries itself.

A trigger on ``cwom_event`` (PostgreSQL and SQLite, installed by migrations 0003 and 0004 of this app) inserts
one ``execution_delivery`` row per matching active subscription for every new event, in the statement that
inserts the event: every path that records events (the write path, bulk inserts, COPY, raw SQL) queues its
deliveries in the same transaction, and a rolled-back change queues nothing.

A subscription matches an event when it is active, was created no later than the event happened
(``NEW.at >= created_at``: history written with its own times, as ``cwom_import`` does, is never delivered
to a subscription made after it), and its filters (empty: any) hold: the event's object kind, its action,
and the repo the object belongs to (a repo, its issues, their packets, its runs and their artifacts;
snapshots and doctrine refs belong to no single repo and never match a repo filter).

Order: deliveries are sent per subscription in event id order. On PostgreSQL two transactions could commit
event ids out of order (a lower id committed after a higher one was already delivered), so a statement that
inserts events first takes a transaction-scoped advisory lock while any subscription is active: event ids
are then allocated in commit order. SQLite has one writer at a time.
"""

from __future__ import annotations

from typing import Any

# The repo of the event's object, for a subscription's repo filter (NULL for kinds without one repo).
_EVENT_REPO = (
    "CASE {e}.object_kind "
    "WHEN 'Repo' THEN {e}.object_id "
    "WHEN 'Issue' THEN (SELECT repo_id FROM cwom_issue WHERE id = {e}.object_id) "
    "WHEN 'ContextPacket' THEN (SELECT i.repo_id FROM cwom_contextpacket p JOIN cwom_issue i "
    "ON i.id = p.for_issue_id WHERE p.id = {e}.object_id) "
    "WHEN 'Run' THEN (SELECT repo_id FROM cwom_run WHERE id = {e}.object_id) "
    "WHEN 'Artifact' THEN (SELECT r.repo_id FROM cwom_artifact a JOIN cwom_run r ON r.id = a.produced_by_id "
    "WHERE a.id = {e}.object_id) END"
)
_IN_LIST = {
    "postgresql": "(jsonb_array_length(s.{column}) = 0 OR s.{column} @> jsonb_build_array({e}.{field}))",
    "sqlite": "(json_array_length(s.{column}) = 0 OR EXISTS (SELECT 1 FROM json_each(s.{column}) f "
    "WHERE f.value = {e}.{field}))",
}


def deliveries_sql(vendor: str, event: str = "NEW") -> str:
    """The INSERT of the deliveries of the event(s) ``event`` (a row trigger's ``NEW``, or the alias of a
    statement trigger's table of new events, joined in as ``e``), in ``vendor``'s spelling."""
    in_list = _IN_LIST[vendor]
    active = "s.active" if vendor == "postgresql" else "s.active = 1"
    where = (
        f"WHERE {active} AND {event}.at >= s.created_at "
        f"AND {in_list.format(column='kinds', field='object_kind', e=event)} "
        f"AND {in_list.format(column='actions', field='action', e=event)} "
        f"AND (s.repo_id IS NULL OR s.repo_id = {_EVENT_REPO.format(e=event)})"
    )
    source = "execution_subscription s" if event == "NEW" else f"new_events {event} CROSS JOIN execution_subscription s"
    return (
        "INSERT INTO execution_delivery (subscription_id, event_id, status, attempts, created_at, next_attempt_at, "
        f"last_error) SELECT s.id, {event}.id, 'pending', 0, {event}.at, {event}.at, '' FROM {source} {where}"
    )


# PostgreSQL: one statement-level trigger over the inserted events (a transition table), which returns at
# once while no subscription is active: a write pays nothing for subscriptions nobody made, and a bulk insert
# of events pays once, not once per row (migration 0004; 0003's row trigger cost 90% of an event's INSERT).
_PG = [
    """CREATE OR REPLACE FUNCTION execution_outbox_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM execution_subscription WHERE active) THEN
    PERFORM pg_advisory_xact_lock(hashtext('execution_outbox'));
  END IF;
  RETURN NULL;
END $$;""",
    "DROP TRIGGER IF EXISTS execution_outbox_order ON cwom_event;",
    "CREATE TRIGGER execution_outbox_order BEFORE INSERT ON cwom_event FOR EACH STATEMENT "
    "EXECUTE FUNCTION execution_outbox_order();",
    f"""CREATE OR REPLACE FUNCTION execution_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM execution_subscription WHERE active) THEN
    {deliveries_sql("postgresql", "e")};
  END IF;
  RETURN NULL;
END $$;""",
    "DROP TRIGGER IF EXISTS execution_outbox ON cwom_event;",
    "CREATE TRIGGER execution_outbox AFTER INSERT ON cwom_event REFERENCING NEW TABLE AS new_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION execution_outbox();",
]
_SQLITE = [
    "DROP TRIGGER IF EXISTS execution_outbox;",
    "CREATE TRIGGER execution_outbox AFTER INSERT ON cwom_event FOR EACH ROW "
    f"WHEN EXISTS (SELECT 1 FROM execution_subscription WHERE active = 1) BEGIN {deliveries_sql('sqlite')}; END;",
]
TRIGGERS = {"postgresql": ["execution_outbox_order", "execution_outbox"], "sqlite": ["execution_outbox"]}


def install(apps: Any, schema_editor: Any) -> None:
    """Migrations 0003 and 0004: the outbox triggers on ``cwom_event`` (0004 installs them again, in their
    statement-level form)."""
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": _PG, "sqlite": _SQLITE}.get(vendor, []):
        schema_editor.execute(statement, params=None)


def uninstall(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    for name in TRIGGERS.get(vendor, []):
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON cwom_event;", params=None)
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}();", params=None)
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name};", params=None)
