"""Fixtures of the admin tests: the operations tests' principals and demo chain."""

from __future__ import annotations

from tests.ops.conftest import (  # noqa: F401 - fixtures, found by pytest by their names
    PASSWORD,
    anonymous_client,
    demo,
    outsider_client,
    storage,
    superuser_client,
    viewer,
    viewer_client,
)
