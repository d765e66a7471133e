"""Helpers of the operations tests: running a command, emptying the CWOM tables despite their guards,
exporting to text."""

from __future__ import annotations

import io
import json
from collections import Counter

from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction


def run(name: str, *args: str) -> tuple[str, str]:
    """A management command's stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# Apps whose tables hold CWOM objects or point at them.
WIPED_APPS = ("cwom", "execution")


def _tables() -> list[str]:
    return [
        model._meta.db_table
        for label in WIPED_APPS
        if label in {config.label for config in apps.get_app_configs()}
        for model in apps.get_app_config(label).get_models()
    ]


def wipe_cwom_tables() -> None:
    """Empty every CWOM table, as if the database were new (inside the test's transaction).

    The guard triggers refuse deleting snapshots, events and sealed packets, by design. PostgreSQL's
    TRUNCATE fires no row triggers; on SQLite the triggers are dropped, the rows deleted and the
    triggers re-created from their own stored SQL.
    """
    tables = _tables()
    # One transaction: SQLite checks its (deferred) foreign keys only once every table is empty.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Deferred foreign-key checks still pending in this transaction would block TRUNCATE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")  # noqa: S608 - our own table names
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            return
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cwom_%'")
        triggers = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        for table in tables:
            cursor.execute(f'DELETE FROM "{table}"')  # noqa: S608 - our own table names
        for _name, sql in triggers:
            cursor.execute(sql)


def export_text(*args: str) -> str:
    """What ``cwom_export`` writes to stdout, with these arguments."""
    out = io.StringIO()
    call_command("cwom_export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def with_trailer(lines: list[str]) -> list[str]:
    """An export's ``lines`` (header first, no trailer) ended with the trailer that counts them, as
    ``cwom_export`` writes it: a whole file, whatever lines a test put in."""
    counts = Counter(json.loads(line)["kind"] for line in lines[1:] if line.strip())
    trailer = {"kind": "CwomExportEnd", "counts": dict(sorted(counts.items()))}
    return [*lines, json.dumps(trailer, separators=(",", ":"))]
