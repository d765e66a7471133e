"""The database holds the rules too: QuerySet.update()/delete()/bulk_create() and raw SQL are refused.

Each test runs twice, once per writer (``queryset`` and ``raw_sql``), on whichever database the suite
runs against (SQLite by default, PostgreSQL with DATABASE_URL). Guard triggers answer
``cwom:<code>: ...``; unique and check constraints are recognised by name.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from cwom import db_guards, writes
from cwom.enums import Kind
from cwom.models import (
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineApplicableRepo,
    DoctrineRef,
    Event,
    Issue,
    IssueContextPacket,
    PacketDoctrineRef,
    Repo,
    Run,
    RunContextPacket,
    RunDoctrineRef,
)
from tests.kernel.assertions import fetch_one, refused_by_database
from tests.kernel.writers import WRITERS

pytestmark = pytest.mark.django_db


@pytest.fixture(params=WRITERS, ids=lambda w: w.name)
def write(request: pytest.FixtureRequest) -> Any:
    """A way to write that skips the model layer."""
    return request.param


def installed_triggers() -> set[str]:
    if connection.vendor == "postgresql":
        rows = _all("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    else:
        rows = _all("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    return {row[0] for row in rows}


def _all(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_every_guard_trigger_is_installed_after_the_migrations() -> None:
    expected = {f"cwom_{name}" for name, *_ in db_guards.all_rules(connection.vendor)}
    assert expected <= installed_triggers()


def test_postgres_has_gin_indexes_for_tag_and_assignee_lookups(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("GIN indexes exist on PostgreSQL only; SQLite's lookups scan json_each")
    names = {row[0] for row in _all("SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gin%'")}
    assert {index for index, _table, _column in db_guards.PG_GIN_INDEXES} <= names


# --- ContextPacket --------------------------------------------------------------------------------------
class TestSealedPacket:
    def test_a_sealed_packet_cannot_be_updated(self, write: Any, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        with refused_by_database("cwom:sealed:"):
            write.update(ContextPacket, {"pk": packet.pk}, summary="Rewritten.")
        with refused_by_database("cwom:sealed:"):
            write.update(ContextPacket, {"pk": packet.pk}, sealed=False, sealed_at=None)
        assert ContextPacket.objects.get(pk=packet.pk).summary == "What we know."

    def test_a_sealed_packet_cannot_be_deleted(self, write: Any, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        IssueContextPacket.objects.filter(packet=packet).delete()
        with refused_by_database("cwom:sealed:"):
            write.delete(ContextPacket, pk=packet.pk)
        assert ContextPacket.objects.filter(pk=packet.pk).exists()

    def test_a_draft_can_still_be_written(self, write: Any, issue: Issue, make: Any) -> None:
        draft = make.packet(issue, sealed=False)
        assert write.update(ContextPacket, {"pk": draft.pk}, summary="Draft 2.") == 1

    def test_a_sealed_packet_gets_no_new_doctrine_ref(self, write: Any, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        with refused_by_database("cwom:sealed:"):
            write.insert(PacketDoctrineRef(packet_id=packet.pk, doctrine_ref_id=make.doctrine().pk))
        assert not PacketDoctrineRef.objects.filter(packet=packet).exists()

    def test_a_sealed_packet_keeps_its_doctrine_refs(self, write: Any, issue: Issue, make: Any) -> None:
        doctrine = make.doctrine()
        packet = make.packet(issue, doctrine_refs=[doctrine.pk])
        with refused_by_database("cwom:sealed:"):
            write.update(PacketDoctrineRef, {"packet": packet.pk}, role="changed")
        with refused_by_database("cwom:sealed:"):
            write.delete(PacketDoctrineRef, packet=packet.pk)
        assert list(PacketDoctrineRef.objects.filter(packet=packet).values_list("doctrine_ref_id", "role")) == [
            (doctrine.pk, None)
        ]

    def test_a_draft_may_gain_doctrine_refs(self, write: Any, issue: Issue, make: Any) -> None:
        draft = make.packet(issue, sealed=False)
        write.insert(PacketDoctrineRef(packet_id=draft.pk, doctrine_ref_id=make.doctrine().pk))
        assert PacketDoctrineRef.objects.filter(packet=draft).count() == 1


# --- ConstraintSnapshot -------------------------------------------------------------------------------
class TestSnapshot:
    def test_a_snapshot_cannot_be_updated(self, write: Any, make: Any) -> None:
        snapshot = make.snapshot()
        with refused_by_database("cwom:immutable:"):
            write.update(ConstraintSnapshot, {"pk": snapshot.pk}, energy_score_0_5=3)
        assert ConstraintSnapshot.objects.get(pk=snapshot.pk).energy_score_0_5 is None

    def test_a_snapshot_cannot_be_deleted(self, write: Any, make: Any) -> None:
        snapshot = make.snapshot()
        with refused_by_database("cwom:immutable:"):
            write.delete(ConstraintSnapshot, pk=snapshot.pk)
        assert ConstraintSnapshot.objects.filter(pk=snapshot.pk).exists()


# --- DoctrineRef --------------------------------------------------------------------------------------
class TestPublishedDoctrine:
    def test_a_published_doctrine_ref_cannot_be_updated(self, write: Any, make: Any) -> None:
        doctrine = make.doctrine()
        with refused_by_database("cwom:immutable:"):
            write.update(DoctrineRef, {"pk": doctrine.pk}, statement="Log secrets sometimes.")
        with refused_by_database("cwom:immutable:"):
            write.update(DoctrineRef, {"pk": doctrine.pk}, published=False)
        assert DoctrineRef.objects.get(pk=doctrine.pk).statement == "Never log secrets."

    def test_a_published_doctrine_ref_cannot_be_deleted(self, write: Any, make: Any) -> None:
        doctrine = make.doctrine()
        with refused_by_database("cwom:immutable:"):
            write.delete(DoctrineRef, pk=doctrine.pk)
        assert DoctrineRef.objects.filter(pk=doctrine.pk).exists()

    def test_a_published_doctrine_ref_gets_no_new_applicable_repo(self, write: Any, repo: Repo, make: Any) -> None:
        doctrine = make.doctrine()
        with refused_by_database("cwom:immutable:"):
            write.insert(DoctrineApplicableRepo(doctrine_ref_id=doctrine.pk, repo_id=repo.pk))
        assert not DoctrineApplicableRepo.objects.filter(doctrine_ref=doctrine).exists()

    def test_a_published_doctrine_ref_keeps_its_applicable_repos(self, write: Any, repo: Repo, make: Any) -> None:
        doctrine = make.doctrine(applicability={"repo_refs": [repo.pk]})
        with refused_by_database("cwom:immutable:"):
            write.update(DoctrineApplicableRepo, {"doctrine_ref": doctrine.pk}, repo_id=make.repo().pk)
        with refused_by_database("cwom:immutable:"):
            write.delete(DoctrineApplicableRepo, doctrine_ref=doctrine.pk)
        assert list(DoctrineApplicableRepo.objects.filter(doctrine_ref=doctrine).values_list("repo_id", flat=True)) == [
            repo.pk
        ]


# --- Event ----------------------------------------------------------------------------------------------
class TestEvents:
    def test_an_event_cannot_be_updated(self, write: Any, repo: Repo) -> None:
        event = Event.objects.get(object_id=repo.pk)
        with refused_by_database("cwom:immutable:"):
            write.update(Event, {"pk": event.pk}, principal="someone else")
        assert Event.objects.get(pk=event.pk).principal == "system"

    def test_an_event_cannot_be_deleted(self, write: Any, repo: Repo) -> None:
        event = Event.objects.get(object_id=repo.pk)
        with refused_by_database("cwom:immutable:"):
            write.delete(Event, pk=event.pk)
        assert Event.objects.filter(pk=event.pk).exists()


# --- Repo -----------------------------------------------------------------------------------------------
class TestRepoSlug:
    def test_a_slug_cannot_change(self, write: Any, repo: Repo) -> None:
        with refused_by_database("cwom:immutable:"):
            write.update(Repo, {"pk": repo.pk}, slug="renamed")
        assert Repo.objects.get(pk=repo.pk).slug == repo.slug

    def test_a_name_can_change(self, write: Any, repo: Repo) -> None:
        assert write.update(Repo, {"pk": repo.pk}, name="Renamed") == 1

    def test_two_repos_cannot_share_a_slug(self, write: Any, repo: Repo) -> None:
        with refused_by_database("slug") as caught:
            write.insert(Repo(name="Twin", slug=repo.slug))
        assert writes.integrity_code(caught.value) == "duplicate"


# --- Artifact -------------------------------------------------------------------------------------------
class TestArtifact:
    @pytest.mark.parametrize(
        "change",
        [{"title": "Renamed"}, {"uri": "https://elsewhere.example"}, {"type": "log"}, {"tags": ["late"]}],
        ids=lambda change: next(iter(change)),
    )
    def test_only_the_verification_changes(self, write: Any, issue: Issue, make: Any, change: dict) -> None:
        artifact = make.artifact(make.started_run(issue_obj=issue))
        with refused_by_database("cwom:immutable:"):
            write.update(Artifact, {"pk": artifact.pk}, **change)
        assert Artifact.objects.get(pk=artifact.pk).title == "Report"

    def test_the_verification_can_change(self, write: Any, issue: Issue, make: Any) -> None:
        artifact = make.artifact(make.started_run(issue_obj=issue))
        assert write.update(Artifact, {"pk": artifact.pk}, verification_status="passed") == 1

    @pytest.mark.parametrize("status", ["planned", "ready"])
    def test_no_artifact_for_a_run_that_has_not_started(self, write: Any, issue: Issue, make: Any, status: str) -> None:
        run = make.run(issue, status=status)
        with refused_by_database("cwom:run_not_started:"):
            write.insert(Artifact(produced_by_id=run.pk, for_issue_id=issue.pk, type="report"))
        assert not Artifact.objects.filter(produced_by=run).exists()

    def test_no_artifact_for_another_issue_than_its_run(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        other = make.issue(issue.repo)
        with refused_by_database("cwom:issue_mismatch:"):
            write.insert(Artifact(produced_by_id=run.pk, for_issue_id=other.pk, type="report"))
        assert not Artifact.objects.filter(produced_by=run).exists()


# --- Run ------------------------------------------------------------------------------------------------
class TestRun:
    def test_a_run_is_not_inserted_in_another_repo_than_its_issue(self, write: Any, issue: Issue, make: Any) -> None:
        other = make.repo()
        with refused_by_database("cwom:repo_mismatch:"):
            write.insert(Run(for_issue_id=issue.pk, repo_id=other.pk))
        assert not Run.objects.filter(for_issue=issue).exists()

    def test_a_run_is_not_moved_to_another_repo(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.run(issue, status="planned")
        with refused_by_database("cwom:repo_mismatch:"):
            write.update(Run, {"pk": run.pk}, repo_id=make.repo().pk)
        assert Run.objects.get(pk=run.pk).repo_id == issue.repo_id

    def test_an_issue_with_runs_is_not_moved_to_another_repo(self, write: Any, issue: Issue, make: Any) -> None:
        make.run(issue, status="planned")
        with refused_by_database("cwom:repo_mismatch:"):
            write.update(Issue, {"pk": issue.pk}, repo_id=make.repo().pk)
        assert Issue.objects.get(pk=issue.pk).repo_id == issue.repo_id

    def test_an_issue_without_runs_may_move(self, write: Any, issue: Issue, make: Any) -> None:
        assert write.update(Issue, {"pk": issue.pk}, repo_id=make.repo().pk) == 1

    def test_the_snapshot_is_fixed_once_the_run_started(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        with refused_by_database("cwom:inputs_frozen:"):
            write.update(Run, {"pk": run.pk}, constraint_snapshot_id=make.snapshot().pk)
        assert Run.objects.get(pk=run.pk).constraint_snapshot_id is None

    def test_no_packet_or_doctrine_is_added_once_the_run_started(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        with refused_by_database("cwom:inputs_frozen:"):
            write.insert(RunContextPacket(run_id=run.pk, packet_id=make.packet(issue).pk))
        with refused_by_database("cwom:inputs_frozen:"):
            write.insert(RunDoctrineRef(run_id=run.pk, doctrine_ref_id=make.doctrine().pk))
        assert RunContextPacket.objects.filter(run=run).count() == 1
        assert not RunDoctrineRef.objects.filter(run=run).exists()

    def test_no_packet_or_doctrine_is_removed_once_the_run_started(self, write: Any, issue: Issue, make: Any) -> None:
        doctrine = make.doctrine()
        ready = make.run(issue)
        writes.update(ready, {"inputs": {"doctrine_refs": [doctrine.pk]}})
        run = writes.transition(writes.reload(ready), "running")
        with refused_by_database("cwom:inputs_frozen:"):
            write.delete(RunContextPacket, run=run.pk)
        with refused_by_database("cwom:inputs_frozen:"):
            write.delete(RunDoctrineRef, run=run.pk)
        with refused_by_database("cwom:inputs_frozen:"):
            write.update(RunContextPacket, {"run": run.pk}, role="changed")
        assert RunContextPacket.objects.filter(run=run, role=None).count() == 1
        assert RunDoctrineRef.objects.filter(run=run).count() == 1

    def test_inputs_may_change_before_the_start(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.run(issue)
        write.insert(RunContextPacket(run_id=run.pk, packet_id=make.packet(issue).pk))
        assert write.update(Run, {"pk": run.pk}, constraint_snapshot_id=make.snapshot().pk) == 1
        assert RunContextPacket.objects.filter(run=run).count() == 2

    @pytest.mark.parametrize("terminal", ["done", "failed", "canceled"])
    def test_a_terminal_run_never_moves(self, write: Any, issue: Issue, make: Any, terminal: str) -> None:
        run = make.started_run(issue_obj=issue)
        failure = {"failure_category": "test", "failure_message": "red"} if terminal == "failed" else {}
        writes.transition(run, terminal, **failure)
        with refused_by_database("cwom:illegal_transition:"):
            write.update(Run, {"pk": run.pk}, status="running", failure_category=None, failure_message=None)
        assert Run.objects.get(pk=run.pk).status == terminal

    def test_the_decision_log_only_grows(self, write: Any, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        assert write.update(Run, {"pk": run.pk}, decision_log=["first", "second"]) == 1
        with refused_by_database("cwom:append_only:"):
            write.update(Run, {"pk": run.pk}, decision_log=["first"])
        with refused_by_database("cwom:append_only:"):
            write.update(Run, {"pk": run.pk}, decision_log=["first", "edited"])
        with refused_by_database("cwom:append_only:"):
            write.update(Run, {"pk": run.pk}, decision_log=["second", "first", "third"])
        with refused_by_database("cwom:append_only:"):
            write.update(Run, {"pk": run.pk}, decision_log=[])
        assert write.update(Run, {"pk": run.pk}, decision_log=["first", "second", "third"]) == 1
        assert Run.objects.get(pk=run.pk).decision_log == ["first", "second", "third"]


# --- Unique constraints --------------------------------------------------------------------------------
def _unique_marker(name: str, columns: str) -> str:
    """PostgreSQL names the violated constraint; SQLite names its columns."""
    return name if connection.vendor == "postgresql" else f"UNIQUE constraint failed: {columns}"


class TestUniqueConstraints:
    def test_namespace_name_version_is_unique(self, write: Any, make: Any) -> None:
        doctrine = make.doctrine()
        twin = DoctrineRef(
            namespace=doctrine.namespace,
            name=doctrine.name,
            version=doctrine.version,
            type="policy",
            priority="must",
            statement="A twin.",
        )
        marker = _unique_marker(
            "doctrine_namespace_name_version_unique",
            "cwom_doctrineref.namespace, cwom_doctrineref.name, cwom_doctrineref.version",
        )
        with refused_by_database(marker) as caught:
            write.insert(twin)
        assert writes.integrity_code(caught.value) == "duplicate"

    def test_a_packet_version_is_unique_per_issue(self, write: Any, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        twin = ContextPacket(for_issue_id=issue.pk, version=packet.version, sealed=False)
        marker = _unique_marker(
            "packet_issue_version_unique", "cwom_contextpacket.for_issue_id, cwom_contextpacket.version"
        )
        with refused_by_database(marker) as caught:
            write.insert(twin)
        assert writes.integrity_code(caught.value) == "duplicate"


# --- created_by, the parent chain, data blobs (migration 0006) -----------------------------------------------
SOMEONE_ELSE = {"actor_kind": "human", "actor_id": "mallory", "display": "Mallory"}


class TestCreatedBy:
    @pytest.mark.parametrize(
        ("model", "build"),
        [
            (Repo, lambda make, issue: make.repo()),
            (Issue, lambda make, issue: issue),
            (ContextPacket, lambda make, issue: make.packet(issue, sealed=False)),
            (DoctrineRef, lambda make, issue: make.doctrine()),
            (Run, lambda make, issue: make.run(issue, status="planned")),
        ],
        ids=lambda value: getattr(value, "__name__", ""),
    )
    def test_who_created_an_object_never_changes(
        self, write: Any, issue: Issue, make: Any, model: Any, build: Any
    ) -> None:
        obj = build(make, issue)
        with refused_by_database("cwom:immutable:"):
            write.update(model, {"pk": obj.pk}, created_by=SOMEONE_ELSE)
        with refused_by_database("cwom:immutable:"):
            write.update(model, {"pk": obj.pk}, created_by=None if obj.created_by else SOMEONE_ELSE)
        assert model.objects.get(pk=obj.pk).created_by == obj.created_by

    def test_other_columns_still_change(self, write: Any, issue: Issue) -> None:
        assert write.update(Issue, {"pk": issue.pk}, title="Retitled") == 1


class TestParentChain:
    def test_a_parent_that_closes_a_loop_is_refused(self, write: Any, repo: Repo, make: Any) -> None:
        a = make.issue(repo, title="A")
        b = make.issue(repo, title="B", relationships={"parent": a.pk})
        c = make.issue(repo, title="C", relationships={"parent": b.pk})
        for child, parent in ((a, c), (a, b), (b, c)):
            with refused_by_database("cwom:cycle:"):
                write.update(Issue, {"pk": child.pk}, parent_id=parent.pk)
        assert Issue.objects.get(pk=a.pk).parent_id is None

    def test_a_parent_elsewhere_in_the_tree_is_accepted(self, write: Any, repo: Repo, make: Any) -> None:
        a, b = make.issue(repo, title="A"), make.issue(repo, title="B")
        c = make.issue(repo, title="C", relationships={"parent": a.pk})
        assert write.update(Issue, {"pk": c.pk}, parent_id=b.pk) == 1
        assert write.update(Issue, {"pk": b.pk}, parent_id=a.pk) == 1


class TestDataBlobs:
    BLOB = {"name": "notes.txt", "media_type": "text/plain", "uri": None, "inline": None, "digest": None}

    def test_a_blob_without_uri_or_inline_is_refused(self, write: Any, issue: Issue, make: Any) -> None:
        draft = make.packet(issue, sealed=False)
        with refused_by_database("cwom:required:"):
            write.update(ContextPacket, {"pk": draft.pk}, inputs_data_blobs=[self.BLOB])
        with refused_by_database("cwom:required:"):
            write.insert(ContextPacket(for_issue_id=issue.pk, version="9", inputs_data_blobs=[self.BLOB]))

    @pytest.mark.parametrize("source", [{"uri": "https://example.com/notes.txt"}, {"inline": "hello"}])
    def test_a_blob_with_a_source_is_accepted(self, write: Any, issue: Issue, make: Any, source: dict) -> None:
        draft = make.packet(issue, sealed=False)
        assert write.update(ContextPacket, {"pk": draft.pk}, inputs_data_blobs=[{**self.BLOB, **source}]) == 1


class TestIssuePackets:
    """Migration 0007: an issue lists only its own context packets."""

    def test_another_issues_packet_is_refused(self, write: Any, repo: Repo, make: Any) -> None:
        mine, theirs = make.issue(repo, title="Mine"), make.issue(repo, title="Theirs")
        foreign = make.packet(theirs)
        with refused_by_database("cwom:packet_issue_mismatch:"):
            write.insert(IssueContextPacket(issue_id=mine.pk, packet_id=foreign.pk))
        own = make.packet(mine)
        link = IssueContextPacket.objects.get(issue_id=mine.pk, packet_id=own.pk)
        with refused_by_database("cwom:packet_issue_mismatch:"):
            write.update(IssueContextPacket, {"pk": link.pk}, packet_id=foreign.pk)
        assert list(IssueContextPacket.objects.filter(issue_id=mine.pk).values_list("packet_id", flat=True)) == [own.pk]

    def test_its_own_packet_is_accepted(self, write: Any, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        IssueContextPacket.objects.filter(packet_id=packet.pk).delete()
        write.insert(IssueContextPacket(issue_id=issue.pk, packet_id=packet.pk))
        assert IssueContextPacket.objects.filter(issue_id=issue.pk, packet_id=packet.pk).count() == 1


# --- Check constraints --------------------------------------------------------------------------------
ENUM_COLUMNS_ON_UPDATE = [
    (Repo, "visibility", "secret", "repo_visibility_valid"),
    (Issue, "type", "epic", "issue_type_valid"),
    (Issue, "priority", "P9", "issue_priority_valid"),
    (Issue, "status", "paused", "issue_status_valid"),
    (Run, "status", "paused", "run_status_valid"),
    (Run, "mode", "robot", "run_mode_valid"),
    (Artifact, "verification_status", "maybe", "artifact_verification_valid"),
]


@pytest.fixture
def one_of_each(issue: Issue, make: Any) -> dict[str, Any]:
    run = make.started_run(issue_obj=issue)
    return {Kind.REPO: issue.repo, Kind.ISSUE: issue, Kind.RUN: run, Kind.ARTIFACT: make.artifact(run)}


@pytest.mark.parametrize(
    ("model", "column", "value", "constraint"), ENUM_COLUMNS_ON_UPDATE, ids=[c[-1] for c in ENUM_COLUMNS_ON_UPDATE]
)
def test_an_enum_column_refuses_an_unknown_value(
    write: Any, one_of_each: dict[str, Any], model: Any, column: str, value: str, constraint: str
) -> None:
    obj = one_of_each[model.KIND]
    with refused_by_database(constraint):
        write.update(model, {"pk": obj.pk}, **{column: value})
    assert getattr(model.objects.get(pk=obj.pk), column) == getattr(obj, column)


def _snapshot(**values: Any) -> ConstraintSnapshot:
    return ConstraintSnapshot(**values)


def _doctrine(**values: Any) -> DoctrineRef:
    body = {"namespace": "ns", "name": "n", "version": "1", "type": "policy", "priority": "must", "statement": "s"}
    return DoctrineRef(**{**body, **values})


INSERTS_REFUSED_BY_CHECKS = [
    ("snapshot_scope_valid", lambda: _snapshot(scope="galaxy")),
    ("snapshot_connectivity_valid", lambda: _snapshot(environment_connectivity="carrier-pigeon")),
    ("snapshot_risk_valid", lambda: _snapshot(risk_tolerance="reckless")),
    ("snapshot_energy_0_5", lambda: _snapshot(energy_score_0_5=5.01)),
    ("snapshot_energy_0_5", lambda: _snapshot(energy_score_0_5=-0.01)),
    ("doctrine_type_valid", lambda: _doctrine(type="vibe")),
    ("doctrine_priority_valid", lambda: _doctrine(priority="could")),
]


@pytest.mark.parametrize(
    ("constraint", "build"),
    INSERTS_REFUSED_BY_CHECKS,
    ids=[f"{c}-{i}" for i, (c, _) in enumerate(INSERTS_REFUSED_BY_CHECKS)],
)
def test_an_insert_outside_an_enum_or_range_is_refused(write: Any, constraint: str, build: Any) -> None:
    obj = build()
    with refused_by_database(constraint):
        write.insert(obj)
    assert not type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("score", [0, 5])
def test_energy_at_the_bounds_is_accepted(write: Any, score: int) -> None:
    snapshot = _snapshot(energy_score_0_5=score)
    write.insert(snapshot)
    assert fetch_one("SELECT energy_score_0_5 FROM cwom_constraintsnapshot WHERE id = %s", [snapshot.pk]) == (score,)


def test_an_artifact_type_outside_its_enum_is_refused(write: Any, issue: Issue, make: Any) -> None:
    run = make.started_run(issue_obj=issue)
    with refused_by_database("artifact_type_valid"):
        write.insert(Artifact(produced_by_id=run.pk, for_issue_id=issue.pk, type="hologram"))


def test_a_run_failure_outside_its_enum_is_refused(write: Any, issue: Issue, make: Any) -> None:
    run = make.started_run(issue_obj=issue)
    with refused_by_database("run_failure_category_valid"):
        write.update(Run, {"pk": run.pk}, status="failed", failure_category="gremlins", failure_message="?")


def test_a_failure_only_goes_with_a_failed_run(write: Any, issue: Issue, make: Any) -> None:
    run = make.started_run(issue_obj=issue)
    with refused_by_database("run_failure_iff_failed"):
        write.update(Run, {"pk": run.pk}, failure_category="test", failure_message="red")
    with refused_by_database("run_failure_iff_failed"):
        write.update(Run, {"pk": run.pk}, status="failed")
