"""Shared fixtures. Objects are built through cwom.writes, the same path the API uses."""

from __future__ import annotations

import os
from typing import Any

import pytest

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


integration_enabled = pytest.mark.skipif(
    not os.environ.get("CWOM_INTEGRATION"),
    reason="set CWOM_INTEGRATION=1 with CELERY_BROKER_URL pointing at a real Redis (.ci/run does)",
)
