"""Two workers claim one ready run at the same moment: exactly one wins, the other is told it lost.

Each claimant is a thread with its own database connection. A barrier releases both at once; the
claim is ``transition_to("running")``, whose compare-and-set UPDATE (``WHERE status = 'ready'``) lets
only one of them change the row. On PostgreSQL the loser's UPDATE waits for the winner's row lock,
then re-checks the WHERE and matches nothing. On a SQLite file, IMMEDIATE transactions serialise the
writers and the second one finds the status already moved.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction

from cwom.models import Event, Issue, Run, RunConflictError
from tests.kernel.conftest import sqlite_in_memory

ROUNDS = 20
CLAIMANTS = 2


def claim(run_id: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
    """One worker: read the run, wait for the other, try to start it; record won/lost/error."""
    try:
        run = Run.objects.get(pk=run_id)
        barrier.wait(timeout=30)
        try:
            run.transition_to("running")
        except RunConflictError:
            outcomes.append("lost")
        else:
            outcomes.append("won")
    except Exception as error:  # noqa: BLE001 - reported by the test, not swallowed
        outcomes.append(f"error: {error!r}")
    finally:
        connections.close_all()


@pytest.mark.skipif(
    sqlite_in_memory(),
    reason="SQLite's in-memory test database uses a shared cache, whose table locks fail at once "
    "('database table is locked') instead of waiting like the file database the service runs on; "
    "set DATABASES['default']['TEST']['NAME'] to a file to run this race on SQLite",
)
def test_two_concurrent_claims_of_one_ready_run_have_exactly_one_winner(flushable_db: None, make: Any) -> None:
    issue = make.issue()
    for _ in range(ROUNDS):
        run = make.run(issue)
        barrier = threading.Barrier(CLAIMANTS)
        outcomes: list[str] = []
        threads = [threading.Thread(target=claim, args=(run.pk, barrier, outcomes)) for _ in range(CLAIMANTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert sorted(outcomes) == ["lost", "won"], outcomes
        assert Run.objects.get(pk=run.pk).status == "running"
        assert Event.objects.filter(object_id=run.pk, action="transition").count() == 1


def test_two_concurrent_parent_changes_cannot_close_a_loop(flushable_db: None, make: Any) -> None:
    """A.parent = B and B.parent = A in two transactions at once: each alone is fine, together a loop.

    The first writer holds its transaction open after its UPDATE; the second then writes the other edge.
    Without the guard's lock the second would check a chain that does not yet show the first's edge.
    Both write past the model layer (QuerySet.update), so only the database can refuse.
    """
    if sqlite_in_memory():
        pytest.skip("needs two connections to one database that wait for each other's locks")
    a, b = make.issue(title="A"), make.issue(title="B")
    first_wrote = threading.Event()
    outcomes: dict[str, str] = {}

    def set_parent(name: str, child: str, parent: str, hold: bool) -> None:
        try:
            if not hold:
                first_wrote.wait(timeout=30)
            with transaction.atomic():
                Issue.objects.filter(pk=child).update(parent_id=parent)
                if hold:
                    first_wrote.set()
                    time.sleep(0.5)  # the second writer runs its UPDATE while this transaction is open
            outcomes[name] = "written"
        except IntegrityError as error:
            outcomes[name] = str(error).splitlines()[0]
        finally:
            first_wrote.set()
            connections.close_all()

    threads = [
        threading.Thread(target=set_parent, args=("first", a.pk, b.pk, True)),
        threading.Thread(target=set_parent, args=("second", b.pk, a.pk, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes["first"] == "written"
    assert outcomes["second"].startswith("cwom:cycle:"), outcomes
    assert Issue.objects.get(pk=b.pk).parent_id is None
