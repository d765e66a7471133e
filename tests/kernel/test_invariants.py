"""Every MUST of the contract, broken on purpose through full_clean() and the kernel write path."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from cwom import writes
from cwom.models import (
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineRef,
    Event,
    Issue,
    IssueContextPacket,
    Repo,
    Run,
)
from tests.kernel.assertions import Footprint, codes_of, refused

pytestmark = pytest.mark.django_db


# --- Repo ---------------------------------------------------------------------------------------------
class TestRepoSlug:
    def test_a_repo_can_be_renamed_but_keeps_its_slug(self, repo: Repo) -> None:
        renamed = writes.update(repo, {"name": "Control Tower 2"})
        assert renamed.name == "Control Tower 2"
        with refused("slug", "immutable"):
            writes.update(renamed, {"slug": "another-slug"})
        assert Repo.objects.get(pk=repo.pk).slug == repo.slug

    def test_full_clean_and_save_refuse_a_slug_change(self, repo: Repo) -> None:
        repo.slug = "another-slug"
        with refused("slug", "immutable"):
            repo.full_clean()
        with refused("slug", "immutable"):
            repo.save()

    def test_two_repos_cannot_share_a_slug(self, repo: Repo, make: Any) -> None:
        with refused("slug", "duplicate"):
            make.repo(slug=repo.slug)


# --- ConstraintSnapshot ---------------------------------------------------------------------------
class TestSnapshotImmutability:
    def test_the_write_path_refuses_any_update(self, make: Any) -> None:
        snapshot = make.snapshot()
        with refused("non_field_errors", "immutable"):
            writes.update(snapshot, {"tags": ["changed"]})

    def test_save_refuses_a_changed_snapshot(self, make: Any) -> None:
        snapshot = make.snapshot()
        snapshot.energy_score_0_5 = 1
        with refused("energy_score_0_5", "immutable"):
            snapshot.full_clean()
        with refused("energy_score_0_5", "immutable"):
            snapshot.save()
        assert ConstraintSnapshot.objects.get(pk=snapshot.pk).energy_score_0_5 is None

    def test_a_snapshot_is_never_deleted(self, make: Any) -> None:
        snapshot = make.snapshot()
        with refused("", "immutable"):
            snapshot.delete()
        assert ConstraintSnapshot.objects.filter(pk=snapshot.pk).exists()

    @pytest.mark.parametrize("score", [-0.5, 5.5])
    def test_energy_outside_0_to_5_is_refused_on_the_way_in(self, make: Any, score: float) -> None:
        with refused("constraints.energy.score_0_5", "out_of_range"):
            make.snapshot(constraints={"energy": {"score_0_5": score, "notes": ""}})

    @pytest.mark.parametrize("score", [-1, 6])
    def test_full_clean_refuses_energy_outside_0_to_5(self, score: float) -> None:
        with refused("__all__", "out_of_range"):
            ConstraintSnapshot(energy_score_0_5=score).full_clean()

    @pytest.mark.parametrize("score", [0, 2.5, 5])
    def test_energy_from_0_to_5_is_accepted(self, make: Any, score: float) -> None:
        snapshot = make.snapshot(constraints={"energy": {"score_0_5": score, "notes": "ok"}})
        assert snapshot.energy_score_0_5 == score


# --- DoctrineRef ------------------------------------------------------------------------------------
class TestDoctrinePublication:
    def test_a_doctrine_ref_is_published_when_created(self, make: Any) -> None:
        assert make.doctrine().published is True

    def test_the_write_path_refuses_to_change_a_published_version(self, make: Any) -> None:
        doctrine = make.doctrine()
        with refused("non_field_errors", "immutable"):
            writes.update(doctrine, {"statement": "Log secrets sometimes."})

    def test_save_refuses_to_change_a_published_version(self, make: Any) -> None:
        doctrine = make.doctrine()
        doctrine.statement = "Log secrets sometimes."
        with refused("statement", "immutable"):
            doctrine.save()
        assert DoctrineRef.objects.get(pk=doctrine.pk).statement == "Never log secrets."

    def test_namespace_name_version_is_unique(self, make: Any) -> None:
        doctrine = make.doctrine()
        before = Footprint()
        with refused("non_field_errors", "duplicate"):
            make.doctrine(name=doctrine.name, version=doctrine.version)
        assert Footprint() == before

    def test_a_new_rule_is_a_new_version(self, make: Any) -> None:
        doctrine = make.doctrine()
        newer = make.doctrine(name=doctrine.name, version="1.1.0", statement="Never log or print secrets.")
        assert (newer.namespace, newer.name) == (doctrine.namespace, doctrine.name)
        assert newer.pk != doctrine.pk


# --- ContextPacket ----------------------------------------------------------------------------------
class TestPacketSealing:
    def test_a_packet_is_sealed_on_creation_unless_asked_for_a_draft(self, issue: Issue, make: Any) -> None:
        sealed = make.packet(issue)
        draft = make.packet(issue, sealed=False)
        assert (sealed.sealed, sealed.sealed_at is not None) == (True, True)
        assert (draft.sealed, draft.sealed_at) == (False, None)

    def test_creating_a_packet_links_it_into_its_issue(self, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        assert IssueContextPacket.objects.filter(issue=issue, packet=packet).exists()
        assert [ref["id"] for ref in writes.shapes.dump(writes.reload(issue))["context_packets"]] == [packet.pk]

    def test_versions_count_up_per_issue_when_not_given(self, issue: Issue, make: Any) -> None:
        assert [make.packet(issue).version for _ in range(3)] == ["1", "2", "3"]
        assert make.packet(make.issue()).version == "1"

    def test_a_draft_may_be_edited_then_sealed(self, issue: Issue, make: Any) -> None:
        draft = make.packet(issue, sealed=False)
        edited = writes.update(draft, {"summary": "Now we know more."})
        sealed = writes.seal(edited)
        assert (sealed.summary, sealed.sealed) == ("Now we know more.", True)

    def test_a_draft_may_be_sealed_through_an_update(self, issue: Issue, make: Any) -> None:
        draft = make.packet(issue, sealed=False)
        sealed = writes.update(draft, {"sealed": True, "summary": "Final."})
        assert (sealed.summary, sealed.sealed, sealed.sealed_at is not None) == ("Final.", True, True)

    def test_sealing_is_one_way(self, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        with refused("sealed", "sealed"):
            writes.update(packet, {"sealed": False})
        with refused("", "sealed"):
            packet.seal()

    def test_sealing_twice_through_the_write_path_is_refused(self, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        with refused("", "sealed"):
            writes.seal(packet)

    @pytest.mark.parametrize(
        "patch",
        [
            {"summary": "Rewritten."},
            {"instructions": "Do it differently."},
            {"inputs": {"links": ["https://example.com"]}},
            {"tags": ["late"]},
        ],
    )
    def test_nothing_about_a_sealed_packet_changes(self, issue: Issue, make: Any, patch: dict[str, Any]) -> None:
        packet = make.packet(issue)
        before = Footprint()
        with pytest.raises(ValidationError) as caught:
            writes.update(packet, patch)
        # The model layer says "sealed", as the database's guard does: one rule, one code.
        assert {"sealed"} <= set().union(*codes_of(caught.value).values())
        assert "is sealed" in str(caught.value) and "new ContextPacket" in str(caught.value)
        assert Footprint() == before

    def test_a_sealed_packet_keeps_its_doctrine_refs(self, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        with refused("doctrine_refs", "sealed"):
            writes.update(packet, {"doctrine_refs": [make.doctrine().pk]})
        assert not packet.doctrine_refs.exists()

    def test_save_refuses_a_changed_sealed_packet(self, issue: Issue, make: Any) -> None:
        packet = make.packet(issue)
        packet.summary = "Rewritten."
        with refused("summary", "sealed"):
            packet.save()
        assert ContextPacket.objects.get(pk=packet.pk).summary == "What we know."

    def test_a_version_is_unique_per_issue(self, issue: Issue, make: Any) -> None:
        make.packet(issue, version="v1")
        with refused("non_field_errors", "duplicate"):
            make.packet(issue, version="v1")
        assert make.packet(make.issue(), version="v1").version == "v1"

    def test_a_data_blob_needs_a_uri_or_an_inline_value(self, issue: Issue, make: Any) -> None:
        blob = {"name": "notes.txt", "media_type": "text/plain", "uri": None, "inline": None}
        with refused("inputs.data_blobs", "required"):
            make.packet(issue, inputs={"data_blobs": [blob]})

    def test_an_inline_data_blob_is_size_capped(self, issue: Issue, make: Any, settings: Any) -> None:
        settings.CWOM_LIMITS = {**settings.CWOM_LIMITS, "inline_blob_bytes": 16}
        blob = {"name": "notes.txt", "media_type": "text/plain", "inline": "x" * 17}
        with refused("inputs.data_blobs", "too_large"):
            make.packet(issue, inputs={"data_blobs": [blob]})


# --- Run (the state machine has its own module) ---------------------------------------------------
class TestRunConsistency:
    def test_a_run_defaults_to_its_issue_repo(self, issue: Issue, make: Any) -> None:
        run = make.run(issue, status="planned")
        assert run.repo_id == issue.repo_id

    def test_a_run_in_another_repo_than_its_issue_is_refused(self, issue: Issue, make: Any) -> None:
        other = make.repo()
        before = Footprint()
        with refused("repo", "repo_mismatch"):
            make.run(issue, status="planned", repo=other.pk)
        assert Footprint() == before

    def test_full_clean_refuses_a_run_in_another_repo(self, issue: Issue, make: Any) -> None:
        with refused("repo", "repo_mismatch"):
            Run(for_issue=issue, repo=make.repo()).full_clean()

    @pytest.mark.parametrize("status", ["running", "blocked", "done", "failed", "canceled"])
    def test_a_run_is_created_planned_or_ready(self, issue: Issue, make: Any, status: str) -> None:
        with refused("status", "invalid_initial_status"):
            make.run(issue, status=status)

    def test_a_failure_on_a_run_that_has_not_failed_is_refused(self, issue: Issue, make: Any) -> None:
        with refused("failure", "failure_not_allowed"):
            make.run(issue, failure={"category": "build", "message": "boom"})

    def test_a_run_in_the_issue_repo_may_name_it(self, issue: Issue, make: Any) -> None:
        assert make.run(issue, status="planned", repo=issue.repo_id).repo_id == issue.repo_id

    def test_an_issue_with_runs_cannot_move_to_another_repo(self, issue: Issue, make: Any) -> None:
        make.run(issue, status="planned")
        with refused("repo", "repo_mismatch"):
            writes.update(issue, {"repo": make.repo().pk})
        assert Issue.objects.get(pk=issue.pk).repo_id == issue.repo_id

    def test_an_issue_without_runs_may_move_to_another_repo(self, issue: Issue, make: Any) -> None:
        other = make.repo()
        assert writes.update(issue, {"repo": other.pk}).repo_id == other.pk


class TestRunInputsAndOutputs:
    def test_inputs_may_change_before_the_start(self, issue: Issue, make: Any) -> None:
        run = make.run(issue)
        extra = make.packet(issue)
        doctrine = make.doctrine()
        changed = writes.update(run, {"inputs": {"context_packets": [extra.pk], "doctrine_refs": [doctrine.pk]}})
        assert list(changed.context_packets.values_list("pk", flat=True)) == [extra.pk]
        assert list(changed.doctrine_refs.values_list("pk", flat=True)) == [doctrine.pk]

    @pytest.mark.parametrize("part", ["context_packets", "doctrine_refs", "constraint_snapshot"])
    def test_inputs_never_change_after_the_start(self, issue: Issue, make: Any, part: str) -> None:
        run = make.started_run(issue_obj=issue)
        value = {
            "context_packets": [make.packet(issue).pk],
            "doctrine_refs": [make.doctrine().pk],
            "constraint_snapshot": make.snapshot().pk,
        }[part]
        before = Footprint()
        with refused("inputs", "inputs_frozen"):
            writes.update(run, {"inputs": {part: value}})
        assert Footprint() == before

    def test_full_clean_refuses_a_new_snapshot_after_the_start(self, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        run.constraint_snapshot = make.snapshot()
        with refused("inputs", "inputs_frozen"):
            run.full_clean()

    def test_the_decision_log_only_grows(self, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        grown = writes.update(run, {"outputs": {"decision_log": ["first"]}})
        grown = writes.update(grown, {"outputs": {"decision_log": ["first", "second"]}})
        assert grown.decision_log == ["first", "second"]
        with refused("outputs.decision_log", "append_only"):
            writes.update(grown, {"outputs": {"decision_log": ["second"]}})
        with refused("outputs.decision_log", "append_only"):
            writes.update(grown, {"outputs": {"decision_log": ["first", "edited"]}})
        assert Run.objects.get(pk=run.pk).decision_log == ["first", "second"]

    def test_a_status_change_through_save_is_refused(self, issue: Issue, make: Any) -> None:
        run = make.run(issue)
        run.status = "running"
        with refused("status", "use_transition"):
            run.full_clean()


# --- Artifact ------------------------------------------------------------------------------------------
class TestArtifacts:
    @pytest.mark.parametrize("status", ["planned", "ready"])
    def test_an_artifact_needs_a_run_that_has_started(self, issue: Issue, make: Any, status: str) -> None:
        run = make.run(issue, status=status)
        before = Footprint()
        with refused("produced_by", "run_not_started"):
            make.artifact(run)
        assert Footprint() == before

    def test_an_artifact_defaults_to_its_run_issue(self, issue: Issue, make: Any) -> None:
        artifact = make.artifact(make.started_run(issue_obj=issue))
        assert artifact.for_issue_id == issue.pk

    def test_an_artifact_for_another_issue_than_its_run_is_refused(self, issue: Issue, make: Any) -> None:
        run = make.started_run(issue_obj=issue)
        with refused("for_issue", "issue_mismatch"):
            make.artifact(run, for_issue=make.issue(issue.repo).pk)

    def test_only_the_verification_changes_after_creation(self, issue: Issue, make: Any) -> None:
        artifact = make.artifact(make.started_run(issue_obj=issue))
        checks = [{"name": "pytest", "status": "passed", "evidence_uri": None}]
        verified = writes.update(artifact, {"verification": {"status": "passed", "checks": checks}})
        assert (verified.verification_status, verified.verification_checks) == ("passed", checks)
        verified.title = "Renamed"
        with refused("title", "immutable"):
            verified.full_clean()
        with refused("title", "immutable"):
            verified.save()
        assert Artifact.objects.get(pk=artifact.pk).title == "Report"

    @pytest.mark.parametrize(
        "patch", [{"title": "Renamed"}, {"uri": "https://elsewhere"}, {"tags": ["x"]}, {"meta": {"a": 1}}]
    )
    def test_the_write_path_refuses_any_other_change(self, issue: Issue, make: Any, patch: dict[str, Any]) -> None:
        artifact = make.artifact(make.started_run(issue_obj=issue))
        before = Footprint()
        with pytest.raises(ValidationError):
            writes.update(artifact, patch)
        assert Footprint() == before


# --- Enums ----------------------------------------------------------------------------------------------
ENUM_FIELDS = [
    (Repo, "visibility", "secret"),
    (Issue, "type", "epic"),
    (Issue, "priority", "P9"),
    (Issue, "status", "paused"),
    (ConstraintSnapshot, "scope", "galaxy"),
    (ConstraintSnapshot, "environment_connectivity", "carrier-pigeon"),
    (ConstraintSnapshot, "risk_tolerance", "reckless"),
    (DoctrineRef, "type", "vibe"),
    (DoctrineRef, "priority", "could"),
    (Run, "mode", "robot"),
    (Artifact, "type", "hologram"),
    (Artifact, "verification_status", "maybe"),
]


@pytest.mark.parametrize(("model", "field", "value"), ENUM_FIELDS, ids=[f"{m.__name__}.{f}" for m, f, _ in ENUM_FIELDS])
def test_full_clean_refuses_a_value_outside_the_enum(model: Any, field: str, value: str) -> None:
    with refused(field, "invalid_choice"):
        model(**{field: value}).full_clean()


# --- Nothing is deleted ---------------------------------------------------------------------------------
def test_no_cwom_object_is_deleted_through_the_model(make: Any, issue: Issue) -> None:
    run = make.started_run(issue_obj=issue)
    for obj in (issue.repo, issue, make.packet(issue), make.snapshot(), make.doctrine(), run, make.artifact(run)):
        with refused("", "immutable"):
            obj.delete()
        assert type(obj).objects.filter(pk=obj.pk).exists()


def test_events_are_never_edited_or_deleted_through_the_model(repo: Repo) -> None:
    event = Event.objects.get(object_id=repo.pk)
    event.principal = "someone else"
    with refused("", "immutable"):
        event.save()
    with refused("", "immutable"):
        event.delete()
    assert Event.objects.get(pk=event.pk).principal == "system"


# --- created_by records who created an object ---------------------------------------------------------------
def test_created_by_cannot_be_changed_by_an_update(issue: Issue) -> None:
    before = Footprint()
    with refused("created_by", "immutable"):
        writes.update(issue, {"created_by": {"actor_kind": "human", "actor_id": "mallory", "display": "Mallory"}})
    assert Footprint() == before


def test_created_by_sent_back_unchanged_is_no_change(make: Any) -> None:
    issue = make.issue(created_by={"actor_kind": "agent", "actor_id": "a-1", "display": "A"})
    writes.update(issue, {"created_by": issue.created_by, "title": "Retitled"})
    assert writes.reload(issue).title == "Retitled"
