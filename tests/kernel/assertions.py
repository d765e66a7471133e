"""Assertions shared by the kernel tests: error codes, database refusals, raw SQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from cwom.models import Event, ObjectIndex


def codes_of(error: ValidationError) -> dict[str, set[str]]:
    """{path: {codes}} of a ValidationError (path ``""`` for an error without fields)."""
    if hasattr(error, "error_dict"):
        return {path: {e.code for e in errors} for path, errors in error.error_dict.items()}
    return {"": {e.code for e in error.error_list}}


@contextlib.contextmanager
def refused(path: str, code: str) -> Iterator[pytest.ExceptionInfo[ValidationError]]:
    """The block raises a ValidationError carrying ``code`` at ``path``."""
    with pytest.raises(ValidationError) as caught:
        yield caught
    found = codes_of(caught.value)
    assert code in found.get(path, set()), f"expected {code!r} at {path!r}, got {found}"


@contextlib.contextmanager
def refused_by_database(marker: str) -> Iterator[pytest.ExceptionInfo[IntegrityError]]:
    """The block is refused by the database with an IntegrityError whose text contains ``marker``.

    ``marker`` is a guard trigger's ``cwom:<code>:`` prefix or a constraint's name. The block runs in
    a savepoint so the test's transaction stays usable on PostgreSQL.
    """
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        yield caught
    assert marker in str(caught.value), f"expected {marker!r} in {caught.value!s}"


def execute(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
    """Run raw SQL on the default connection; returns the affected row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetch_one(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


class Footprint:
    """Counts of everything a write leaves behind: objects of every kind, events, index rows."""

    def __init__(self) -> None:
        from cwom.models import KIND_MODELS

        self.counts = {kind: model.objects.count() for kind, model in KIND_MODELS.items()}
        self.counts["Event"] = Event.objects.count()
        self.counts["ObjectIndex"] = ObjectIndex.objects.count()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Footprint) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"Footprint({self.counts})"
