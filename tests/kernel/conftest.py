"""Fixtures for the kernel tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from cwom import db_guards


@pytest.fixture
def flushable_db(transactional_db: None) -> Iterator[None]:
    """``transactional_db`` whose rows can be flushed afterwards on SQLite too.

    Django flushes SQLite with DELETE, which the guard triggers refuse (events, snapshots, sealed
    packets are never deleted); PostgreSQL flushes with TRUNCATE, which they do not see. On SQLite the
    guards are lifted for the flush and installed again right after.
    """
    yield
    if connection.vendor != "sqlite":
        return
    with connection.schema_editor() as editor:
        db_guards.uninstall_0003(None, editor)
        db_guards.uninstall(None, editor)
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        with connection.schema_editor() as editor:
            db_guards.install_0003(None, editor)


def sqlite_in_memory() -> bool:
    from django.conf import settings

    database: dict[str, Any] = settings.DATABASES["default"]
    test_name = (database.get("TEST") or {}).get("NAME")
    return "sqlite" in database["ENGINE"] and (not test_name or ":memory:" in str(test_name))
