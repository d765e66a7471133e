"""The statements a block sends to the database, with their parameters as the driver gets them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


@contextmanager
def sent_statements() -> Iterator[list[tuple[str, Any]]]:
    """``(sql, params)`` of each statement sent on the default connection inside the block, in order (unlike
    ``CaptureQueriesContext``, whose SQL has its parameters already interpolated)."""
    sent: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield sent
