"""Fixtures for the reliability suite (races, faults, properties)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings


def on_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


postgres_only = pytest.mark.skipif(
    not on_postgres(),
    reason="real parallel writers need PostgreSQL: the SQLite test database is in memory with a shared "
    "cache, whose table locks fail at once instead of waiting (set DATABASE_URL to a PostgreSQL database)",
)


@pytest.fixture
def committed_db(transactional_db: None) -> Iterator[None]:
    """Committed rows that other threads (each with its own connection) can see; PostgreSQL empties
    the tables afterwards with TRUNCATE, which the append-only guards do not see."""
    yield


@pytest.fixture
def fresh_cache() -> Iterator[Any]:
    """Throttle counters and token-touch marks live in the cache: start and end empty."""
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()
