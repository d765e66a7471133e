"""The worker's fast path: no bundle for an executor that needs none, artifacts written in bulk with the
same checks and events, and a bounded number of queries per run (guards, not timings)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cwom import lineage
from cwom.models import Artifact, Event, Run
from execution import lifecycle, runner
from execution.content import create_many
from execution.enqueue import enqueue
from execution.executors.base import ArtifactSpec, ExecutionResult, Executor
from tests import factories
from tests.execution.helpers import artifacts_by_type, assert_digest_matches, client_with, enqueue_body

pytestmark = pytest.mark.django_db

SEEN: dict[str, Any] = {}


class LazyReader(Executor):
    """Declares it needs no bundle, then reads it anyway."""

    name = "lazy-reader"
    needs_bundle = False

    def execute(self, bundle: Any, ctx: Any) -> ExecutionResult:
        SEEN["bundle"] = dict(bundle)
        SEEN["inputs"] = ctx.inputs
        return ExecutionResult(summary="read")


@pytest.fixture
def lazy_reader(execution_settings: dict[str, Any]) -> None:
    execution_settings["executors"]["lazy-reader"] = f"{__name__}.LazyReader"
    SEEN.clear()


def enqueued(executor: str = "noop", **overrides: Any) -> Run:
    return enqueue(enqueue_body(executor={"name": executor, "config": {}}, **overrides)).run


def test_noop_builds_no_bundle_and_reports_what_the_run_names(dispatched, monkeypatch):
    doctrine, of_packet, both = factories.doctrine(), factories.doctrine(), factories.doctrine()
    body = enqueue_body(executor={"name": "noop", "config": {}}, doctrine_refs=[both.pk, doctrine.pk])
    body["context"]["doctrine_refs"] = [of_packet.pk, both.pk]
    run = enqueue(body).run
    expected_doctrine = [d["id"] for d in lineage.run_bundle(run.pk)["doctrine_refs"]]
    monkeypatch.setattr(lineage, "run_bundle", lambda run_id: pytest.fail("the noop executor needs no bundle"))
    assert runner.execute_run(run.pk, worker="w:1") == "done"
    report = json.loads(assert_digest_matches(artifacts_by_type(run.pk)["report"][0]))
    run.refresh_from_db()
    assert report["issue"] == {"id": run.for_issue_id, "title": "Add /healthz endpoint"}
    (packet_id,) = run.context_packet_links.values_list("packet_id", flat=True)
    assert report["context_packets"] == [{"id": packet_id, "version": "1"}]
    assert report["doctrine_refs"] == expected_doctrine == [both.pk, doctrine.pk, of_packet.pk]
    assert report["constraint_snapshot"] == run.constraint_snapshot_id is not None


def test_an_executor_that_reads_the_bundle_it_declined_gets_the_full_bundle(dispatched, lazy_reader):
    run = enqueued("lazy-reader")
    assert runner.execute_run(run.pk, worker="w:1") == "done"
    expected = lineage.run_bundle(run.pk)
    assert set(SEEN["bundle"]) == set(expected)
    assert SEEN["bundle"]["issue"] == expected["issue"]
    assert SEEN["bundle"]["context_packets"] == expected["context_packets"]
    assert SEEN["inputs"].issue_id == expected["issue"]["id"]
    assert SEEN["inputs"].context_packets == [
        {"id": p["id"], "version": p["version"]} for p in expected["context_packets"]
    ]


def test_every_artifact_of_a_run_has_its_create_event_by_the_worker(dispatched):
    run = enqueued("scripted")
    assert runner.execute_run(run.pk, worker="w:1") == "done"
    artifacts = list(Artifact.objects.filter(produced_by_id=run.pk))
    assert sorted(a.type for a in artifacts) == ["link", "log", "report", "trace"]
    for artifact in artifacts:
        (event,) = Event.objects.filter(object_id=artifact.pk)
        assert (event.action, event.object_kind, event.principal) == ("create", "Artifact", "system:worker")
        assert event.changes["digest"] == [None, artifact.digest]
        assert event.changes["for_issue_id"] == [None, run.for_issue_id]
        assert event.actor == lifecycle.WORKER_ACTOR
        assert artifact.for_issue_id == run.for_issue_id
    # The ids are registered like any other object's.
    from cwom.models import ObjectIndex

    assert ObjectIndex.objects.filter(pk__in=[a.pk for a in artifacts], kind="Artifact").count() == 4


def test_bulk_artifacts_are_refused_for_a_run_that_has_not_started(execution_settings):
    from django.core.exceptions import ValidationError

    run = factories.run(status="ready")
    saved: list[str] = []
    with pytest.raises(ValidationError) as caught:
        create_many(run, [ArtifactSpec(type="log", content=b"x")], saved)
    assert "produced_by" in caught.value.message_dict
    assert saved == [] and not Artifact.objects.filter(produced_by_id=run.pk).exists()


def test_bulk_artifacts_validate_each_body_like_a_create(execution_settings):
    from django.core.exceptions import ValidationError

    run = factories.started_run()
    with pytest.raises(ValidationError) as caught:
        create_many(run, [ArtifactSpec(type="link", uri="https://example.com/" + "x" * 3000)], [])
    assert "uri" in caught.value.message_dict
    assert not Artifact.objects.filter(produced_by_id=run.pk).exists()


def test_the_worker_s_own_artifacts_are_validated_by_the_model_layer(execution_settings):
    """The log and the trace are not parsed as a client's body, and still checked like any artifact."""
    from django.core.exceptions import ValidationError

    from cwom import shapes

    run = factories.started_run()
    with pytest.raises(ValidationError) as caught:
        create_many(run, [], [], own=[ArtifactSpec(type="log", content=b"x", media_type="text/" + "x" * 300)])
    assert "media_type" in caught.value.message_dict
    assert not Artifact.objects.filter(produced_by_id=run.pk).exists()
    (log,) = create_many(run, [], [], own=[ArtifactSpec(type="log", title="Log", content=b"x")])
    parsed = shapes.parse("Artifact", {"produced_by": run.pk, "type": "log", "title": "Log"})
    assert {name: getattr(log, name) for name in parsed.columns} == parsed.columns
    with pytest.raises(ValueError, match="names only objects it holds"):
        shapes.parse_own("Artifact", {"produced_by": run.pk, "type": "log"}, known={})


def statement(sql: str) -> str:
    """A statement as ``VERB table`` (a data-modifying CTE: its statements, in order, joined by ``+``)."""
    words = re.findall(r'(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s+(?:.*?\bFROM\s+)?"(\w+)"', sql)
    if sql.startswith("WITH"):
        return " + ".join(f"{verb.split()[0]} {table}" for verb, table in words)
    verb, table = words[0]
    return f"{verb.split()[0]} {table}"


# One noop run as its worker executes it: the claim, the executor (a heartbeat: the test settings beat at every
# checkpoint; the run's ids: no bundle), the finish. A transition and its event are one statement on
# PostgreSQL (two elsewhere), the claim's with its attempt (three elsewhere); so are the artifacts with their index
# rows and events (three elsewhere).
CLAIM = ["SELECT execution_runexecution", "CLAIMED"]
WORK = ["UPDATE execution_runexecution", "SELECT cwom_runcontextpacket", "SELECT cwom_rundoctrineref"]
FINISH = ["SELECT execution_runexecution", "TRANSITION", "SELECT cwom_event", "ARTIFACTS"]
SPELLED = {
    "postgresql": {
        "TRANSITION": ["UPDATE cwom_run + INSERT cwom_event"],
        "CLAIMED": ["UPDATE cwom_run + UPDATE execution_runexecution + INSERT cwom_event"],
        "ARTIFACTS": ["INSERT cwom_objectindex + INSERT cwom_artifact + INSERT cwom_event"],
    },
    "sqlite": {
        "TRANSITION": ["UPDATE cwom_run", "INSERT cwom_event"],
        "CLAIMED": ["UPDATE cwom_run", "UPDATE execution_runexecution", "INSERT cwom_event"],
        "ARTIFACTS": ["INSERT cwom_objectindex", "INSERT cwom_artifact", "INSERT cwom_event"],
    },
}


def expected(steps: list[str]) -> list[str]:
    spelled = SPELLED[connection.vendor]
    return [one for step in steps for one in spelled.get(step, [step])]


def is_transaction_control(sql: str) -> bool:
    return sql.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def test_a_noop_run_is_a_fixed_list_of_statements(dispatched):
    run = enqueued()
    with CaptureQueriesContext(connection) as claim_queries:
        claim = lifecycle.claim(run.pk, "w:1")
    assert claim is not None
    attempt = runner.Attempt(claim)
    with CaptureQueriesContext(connection) as work_queries:
        outcome = runner._run_executor(attempt)
    with CaptureQueriesContext(connection) as finish_queries:
        assert runner._finish(attempt, outcome) == "done"
    claim_sql, work_sql, finish_sql = (
        [q["sql"] for q in captured] for captured in (claim_queries, work_queries, finish_queries)
    )
    # The claim: one locking read (with the snapshot the run names: its time limit), the move to running with its
    # event and the attempt (the packets were checked when the run became ready).
    assert [statement(sql) for sql in claim_sql if not is_transaction_control(sql)] == expected(CLAIM), claim_sql
    assert [statement(sql) for sql in work_sql] == expected(WORK), work_sql
    # The finish: one locking read of the execution and the run, the terminal move with its event, the run's events
    # (its trace), the artifacts (the locked run is not looked up again for them).
    assert [statement(sql) for sql in finish_sql if not is_transaction_control(sql)] == expected(FINISH), finish_sql
    # A transition validates only what it writes: no existence query for keys that did not change, and no
    # savepoint of its own (the one savepoint is the claim's or the finish's transaction, inside the test's).
    for sql in (claim_sql, finish_sql):
        assert len([s for s in sql if s.startswith("SAVEPOINT")]) == 1, sql


def test_a_run_naming_no_snapshot_reads_its_issue_s_latest_once_at_the_claim(dispatched):
    run = enqueued(constraints=None)
    with CaptureQueriesContext(connection) as claim_queries:
        claim = lifecycle.claim(run.pk, "w:1")
    assert claim is not None
    steps = [statement(q["sql"]) for q in claim_queries if not is_transaction_control(q["sql"])]
    assert steps == [expected(CLAIM)[0], "SELECT cwom_constraintsnapshot", *expected(CLAIM)[1:]], steps


def test_the_dispatch_after_an_enqueue_is_one_statement_and_the_publish(dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        result = enqueue(enqueue_body())
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert [(m["args"], m["soft_time_limit"]) for m in dispatched] == [([result.run.pk], 1800)]
    # A second enqueue for the issue, naming no snapshot: the limits of the issue's latest one.
    with django_capture_on_commit_callbacks(execute=True):
        again = enqueue({"issue": result.issue.pk, "context": {"summary": "again"}, "constraints": None})
    assert dispatched[-1]["args"] == [again.run.pk] and dispatched[-1]["soft_time_limit"] == 1800


def test_a_worker_keeps_its_database_connection_between_tasks(monkeypatch):
    import django.db

    from cwom_site import celery as celery_module

    # Celery's Django fixup would close it around every task; the setting turns that off ...
    assert int(celery_module.app.conf.get("CELERY_DB_REUSE_MAX") or 0) >= 100
    calls: list[str] = []
    monkeypatch.setattr(django.db, "close_old_connections", lambda: calls.append("closed old"))

    class Task:
        class request:  # noqa: N801 - Celery's attribute name
            is_eager = False

    # ... and around a task the connection is dropped only if broken or too old, as around a request.
    celery_module.close_old_connections(task=Task())
    assert calls == ["closed old"]
    Task.request.is_eager = True  # an eager task runs inside its caller's transaction: left alone
    celery_module.close_old_connections(task=Task())
    assert calls == ["closed old"]


def test_an_enqueue_for_an_existing_issue_is_a_fixed_list_of_statements(dispatched):
    """POST /enqueue (existing issue, no constraints): its Refs resolved once, the rows it holds (the locked issue,
    the new packet) not read again. Statements besides the transaction's own, in order."""
    issue = factories.issue()
    client = client_with(can_write=True)
    client.get("/api/v1/repos")  # the token read and cached

    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            "/api/v1/enqueue",
            {"issue": issue.pk, "context": {"summary": "s"}, "executor": {"name": "noop"}},
            format="json",
        )

    assert response.status_code == 202, response.content
    new_object = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    assert [
        verb
        for verb in (q["sql"].split()[0].upper() for q in ctx.captured_queries)
        if verb != "SAVEPOINT" and verb != "RELEASE"
    ] == [
        "SELECT",  # the body's Refs, one look-up
        "SELECT",  # the issue, locked
        "SELECT",  # the packet's next version
        "SELECT",  # the packet's (issue, version) is free
        *new_object,  # packet: index row and row
        "INSERT",  # the issue's packet link
        "UPDATE",  # sealed (links are written while a draft)
        "INSERT",  # its create event
        "SELECT",  # the run's packets (sealed, of the issue)
        *new_object,  # run: index row and row
        "INSERT",  # its packet link
        "INSERT",  # its create event
        "INSERT",  # its execution
        "SELECT",  # the issue's latest snapshot, for the time limits
    ]
