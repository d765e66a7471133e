"""Shared fixtures. Objects are built through cwom.writes, the same path the API uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from cwom import db_guards
from tests import factories


def pytest_report_header(config: Any) -> str:
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}; broker: {settings.CELERY_BROKER_URL}"


@pytest.fixture
def make() -> Any:
    """The object builders in tests/factories.py."""
    return factories


@pytest.fixture
def repo(db: None) -> Any:
    return factories.repo()


@pytest.fixture
def issue(repo: Any) -> Any:
    return factories.issue(repo)


@pytest.fixture
def ready_run(issue: Any) -> Any:
    return factories.run(issue)


@pytest.fixture
def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


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


integration_enabled = pytest.mark.skipif(
    not os.environ.get("CWOM_INTEGRATION"),
    reason="set CWOM_INTEGRATION=1 with CELERY_BROKER_URL pointing at a real Redis (.ci/run does)",
)
