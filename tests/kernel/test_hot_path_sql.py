"""The SQL of the worker's hot path: a compare-and-set and its event in one statement, reads compiled once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cwom import audit, writes
from cwom.db import bulk
from cwom.db.prepared import Prepared
from cwom.models import Event, Run, RunConflictError
from cwom.models.base import event_built, new_event
from tests import factories

pytestmark = pytest.mark.django_db


def test_update_then_insert_writes_the_row_only_when_the_update_changed_one() -> None:
    run = factories.run(status="ready")
    event = new_event(run, "transition", {"meta": ({}, {"x": 1})}, announce=False)
    with CaptureQueriesContext(connection) as queries:
        assert bulk.update_then_insert(Run.objects.filter(pk=run.pk, status="ready"), {"meta": {"x": 1}}, event)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    assert Run.objects.get(pk=run.pk).meta == {"x": 1}
    assert event.pk is not None and Event.objects.get(pk=event.pk).changes == {"meta": [{}, {"x": 1}]}
    # Nothing matches (the status moved on): no update, no row.
    other = new_event(run, "transition", {"meta": ({"x": 1}, {"x": 2})}, announce=False)
    assert not bulk.update_then_insert(Run.objects.filter(pk=run.pk, status="running"), {"meta": {"x": 2}}, other)
    assert other.pk is None and Run.objects.get(pk=run.pk).meta == {"x": 1}
    assert Event.objects.filter(object_id=run.pk, action="transition").count() == 1


def test_update_then_insert_updates_the_rows_together_only_when_the_update_changed_one() -> None:
    run, other = factories.run(status="ready"), factories.run(status="ready")
    together = [(Run.objects.filter(pk=other.pk), {"meta": {"with": run.pk}})]
    event = new_event(run, "transition", {"meta": ({}, {"x": 1})}, announce=False)
    with CaptureQueriesContext(connection) as queries:
        assert bulk.update_then_insert(
            Run.objects.filter(pk=run.pk, status="ready"), {"meta": {"x": 1}}, event, together
        )
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)
    assert Run.objects.get(pk=other.pk).meta == {"with": run.pk} and event.pk is not None
    # Nothing matches: neither the row nor the others are written.
    together = [(Run.objects.filter(pk=other.pk), {"meta": {}})]
    lost = new_event(run, "transition", {"meta": ({"x": 1}, {"x": 2})}, announce=False)
    assert not bulk.update_then_insert(Run.objects.filter(pk=run.pk, status="running"), {"meta": {}}, lost, together)
    assert Run.objects.get(pk=other.pk).meta == {"with": run.pk} and lost.pk is None


def test_a_lost_transition_writes_no_event_and_announces_none(monkeypatch: Any) -> None:
    run = factories.run(status="ready")
    stale = Run.objects.get(pk=run.pk)
    writes.transition(run, "running")
    announced: list[Event] = []

    def receiver(sender: Any, event: Event, **kwargs: Any) -> None:
        announced.append(event)

    event_built.connect(receiver)
    try:
        before = Event.objects.filter(object_id=run.pk).count()
        with pytest.raises(RunConflictError):
            writes.transition(stale, "canceled")
        assert Event.objects.filter(object_id=run.pk).count() == before
        assert announced == []
        writes.transition(run, "done")
        assert [(e.action, e.changes["status"]) for e in announced] == [("transition", ["running", "done"])]
        assert announced[0].pk is not None  # announced once written: the outbox reads its id after the commit
    finally:
        event_built.disconnect(receiver)


def test_a_prepared_read_answers_what_the_orm_answers_for_each_value() -> None:
    runs = [factories.started_run() for _ in range(2)]
    with audit.acting_as("someone", None):
        writes.transition(runs[1], "done")
    events = Prepared(
        lambda run_id: Event.objects.filter(object_id=run_id).order_by("id").values_list("at", "action", "changes")
    )
    for run in runs:
        expected = list(Event.objects.filter(object_id=run.pk).order_by("id").values_list("at", "action", "changes"))
        with CaptureQueriesContext(connection) as queries:
            assert events.rows(run.pk) == expected  # datetimes and JSON converted as the ORM converts them
        assert len(queries) == 1
    assert events.rows("01ZZZZZZZZZZZZZZZZZZZZZZZZ") == []


def test_a_prepared_read_refuses_a_parameter_that_does_not_reach_its_sql() -> None:
    lost = Prepared(lambda run_id: Run.objects.filter(pk__startswith=run_id).values_list("id"))
    with pytest.raises(ValueError, match="must reach its SQL"):
        lost.rows("01")


def column_values(obj: Any) -> dict[str, Any] | None:
    return None if obj is None else {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_a_prepared_read_of_instances_builds_what_the_orm_builds() -> None:
    """A locking read with select_related (as the worker's claim and finish): the same instance, its related ones
    read with it (a missing one None), the same stored values; locked as the ORM locks them (FOR UPDATE OF)."""
    issue = factories.issue()
    inputs = {"context_packets": [factories.packet(issue).pk], "constraint_snapshot": factories.snapshot().pk}
    runs = [factories.run(issue, inputs=inputs), factories.run()]
    assert runs[0].constraint_snapshot_id is not None
    assert runs[1].constraint_snapshot_id is None

    def build(run_id: Any) -> Any:
        return (
            Run.objects.select_for_update(of=("self",))
            .select_related("for_issue", "constraint_snapshot")
            .filter(pk=run_id)
        )

    locked = Prepared(build)
    for run in runs:
        with transaction.atomic():
            (orm,) = build(run.pk)
            with CaptureQueriesContext(connection) as queries:
                (got,) = locked.objects(run.pk)
                related = (got.for_issue, got.constraint_snapshot)  # read with the run: no query
        assert len(queries) == 1
        assert type(got) is Run and not got._state.adding and got._state.db == connection.alias
        assert column_values(got) == column_values(orm) and got.loaded_values() == orm.loaded_values()
        assert [column_values(obj) for obj in related] == [
            column_values(orm.for_issue),
            column_values(orm.constraint_snapshot),
        ]
        if connection.vendor == "postgresql":
            assert "FOR UPDATE OF" in queries[0]["sql"]
    with transaction.atomic():
        assert locked.objects("01ZZZZZZZZZZZZZZZZZZZZZZZZ") == []
    with pytest.raises(TypeError, match="model queryset"):
        Prepared(lambda run_id: Run.objects.filter(pk=run_id).values_list("id")).objects(runs[0].pk)
