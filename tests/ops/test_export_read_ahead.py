"""The export reads the next chunk in a thread while the current one is written (``read_ahead``)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cwom.models import Issue
from cwom.portability.exporting import read_ahead
from tests.ops.helpers import export_text

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


class Source:
    """Chunks 0..n-1, noting how many were read and in which thread; ``fail_at``: raise there instead."""

    def __init__(self, n: int, fail_at: int | None = None, query: bool = False) -> None:
        self.n, self.fail_at, self.query = n, fail_at, query
        self.read = 0
        self.threads: set[str] = set()
        self.connections: list[Any] = []
        self.finished = False

    def __iter__(self) -> Iterator[int]:
        try:
            for chunk in range(self.n):
                self.threads.add(threading.current_thread().name)
                if chunk == self.fail_at:
                    raise ValueError(f"chunk {chunk} is bad")
                if self.query:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")
                    self.connections.append(connection.connection)
                self.read += 1
                yield chunk
        finally:
            self.finished = True


def readers_alive() -> int:
    return sum(thread.name == "cwom-export-read-ahead" for thread in threading.enumerate())


@postgres_only
@pytest.mark.usefixtures("transactional_db")
def test_chunks_come_in_order_from_a_thread_at_most_one_ahead() -> None:
    source = Source(20)
    ahead = []
    for taken, chunk in enumerate(read_ahead(source)):
        assert chunk == taken
        ahead.append(source.read - (taken + 1))
    assert source.threads == {"cwom-export-read-ahead"}
    assert max(ahead) <= 1  # while chunk k is worked on, k+1 at most is read
    assert readers_alive() == 0


@postgres_only
@pytest.mark.usefixtures("transactional_db")
def test_an_error_in_the_thread_is_raised_where_its_chunk_would_have_been() -> None:
    taken = []
    with pytest.raises(ValueError, match="chunk 3 is bad"):
        for chunk in read_ahead(Source(10, fail_at=3)):
            taken.append(chunk)
    assert taken == [0, 1, 2]
    assert readers_alive() == 0


@postgres_only
@pytest.mark.usefixtures("transactional_db")
def test_stopping_early_ends_the_thread_and_closes_its_connection() -> None:
    source = Source(10, query=True)
    chunks = read_ahead(source)
    assert next(chunks) == 0
    chunks.close()
    assert source.finished and source.read <= 2 and readers_alive() == 0
    assert source.connections and all(used.closed for used in source.connections)
    assert connection.connection not in source.connections  # the caller's connection is its own


@postgres_only
@pytest.mark.usefixtures("transactional_db")
def test_a_whole_read_closes_the_threads_connection() -> None:
    source = Source(3, query=True)
    assert list(read_ahead(source)) == [0, 1, 2]
    assert readers_alive() == 0 and all(used.closed for used in source.connections)


def test_inside_a_transaction_chunks_are_read_in_the_callers_thread(db: None) -> None:
    # Another connection would not see the transaction's rows.
    source = Source(5)
    assert list(read_ahead(source)) == [0, 1, 2, 3, 4]
    assert source.threads == {threading.current_thread().name}


@postgres_only
def test_the_export_read_ahead_is_the_export_read_in_order(flushable_db: None, storage: Any) -> None:
    call_command("cwom_demo", stdout=io.StringIO())
    for chunk_size in ("1", "2", "1000"):
        ahead = export_text("--chunk-size", chunk_size)
        with transaction.atomic():  # read in order, by the caller
            in_order = export_text("--chunk-size", chunk_size)
        assert ahead == in_order
    assert readers_alive() == 0


@postgres_only
def test_an_error_reading_ahead_fails_the_export_and_leaves_no_file(
    flushable_db: None, storage: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_command("cwom_demo", stdout=io.StringIO())
    from cwom.portability import rows

    def broken(self: Any, chunk: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(rows.RowShape, "rows", broken)
    target = tmp_path / "export.jsonl"
    with pytest.raises(RuntimeError, match="went away"):
        call_command("cwom_export", "--output", str(target), stdout=io.StringIO(), stderr=io.StringIO())
    assert not target.exists() and not (tmp_path / "export.jsonl.partial").exists()
    assert readers_alive() == 0


def test_a_chunk_of_objects_costs_a_fixed_number_of_queries(demo: Any) -> None:
    # The keyset query and one query of all its ref lists, however many objects and lists the chunk holds.
    issues = Issue.objects.count()
    for chunk_size, chunks in ((1, issues), (2, -(-issues // 2)), (1000, 1)):
        with CaptureQueriesContext(connection) as queries:
            export_text("--kind", "Issue", "--no-events", "--chunk-size", str(chunk_size))
        keyset = [q for q in queries if 'FROM "cwom_issue"' in q["sql"] and "IS NOT NULL" not in q["sql"]]
        refs = [q for q in queries if "UNION ALL" in q["sql"]]
        assert len(refs) == chunks
        assert chunks <= len(keyset) <= chunks + 1  # a last, empty page when the chunks are full
