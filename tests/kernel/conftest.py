"""Fixtures for the kernel tests."""

from __future__ import annotations

from typing import Any


def sqlite_in_memory() -> bool:
    from django.conf import settings

    database: dict[str, Any] = settings.DATABASES["default"]
    test_name = (database.get("TEST") or {}).get("NAME")
    return "sqlite" in database["ENGINE"] and (not test_name or ":memory:" in str(test_name))
