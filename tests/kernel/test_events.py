"""History: one event per create, update, seal and transition, in the same transaction as the change."""

from __future__ import annotations

from typing import Any

import pytest

from cwom import audit, writes
from cwom.db import bulk
from cwom.models import ContextPacket, Event, Issue, Repo
from tests.kernel.assertions import Footprint, refused

pytestmark = pytest.mark.django_db

MARIA = {"actor_kind": "human", "actor_id": "maria", "display": "Maria"}
BUILDER = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}


def events_of(obj: Any) -> list[Event]:
    return list(Event.objects.filter(object_id=obj.pk).order_by("id"))


def test_a_create_writes_one_event_with_every_field_after(db: None) -> None:
    with audit.acting_as("token:importer"):
        repo = writes.create("Repo", {"name": "Docs", "slug": "docs", "created_by": MARIA})
    [event] = events_of(repo)
    assert (event.object_kind, event.action, event.principal) == ("Repo", "create", "token:importer")
    assert event.actor == MARIA  # the declared creator, when the request declares no actor
    assert event.changes["slug"] == [None, "docs"]
    assert event.changes["name"] == [None, "Docs"]
    assert event.at is not None


def test_a_create_records_its_links(issue: Issue, make: Any) -> None:
    doctrine = make.doctrine()
    packet = make.packet(issue, doctrine_refs=[doctrine.pk])
    [event] = events_of(packet)
    assert event.changes["doctrine_refs"] == [None, [doctrine.pk]]
    assert event.changes["sealed"] == [None, True]


def test_the_principal_and_the_declared_actor_come_from_acting_as(repo: Repo) -> None:
    with audit.acting_as("token:builder", actor=BUILDER):
        writes.update(repo, {"name": "Renamed"})
    event = events_of(repo)[-1]
    assert (event.principal, event.actor) == ("token:builder", BUILDER)


def test_outside_acting_as_the_principal_is_system(repo: Repo) -> None:
    writes.update(repo, {"name": "Renamed"})
    assert (events_of(repo)[-1].principal, events_of(repo)[-1].actor) == ("system", None)


def test_an_update_writes_one_event_with_before_and_after_of_what_changed(repo: Repo) -> None:
    writes.update(repo, {"name": "Renamed", "default_branch": "trunk"})
    create, update = events_of(repo)
    assert update.action == "update"
    assert update.changes == {"name": ["Control Tower", "Renamed"], "default_branch": ["main", "trunk"]}


def test_an_update_that_changes_nothing_writes_no_event(repo: Repo) -> None:
    writes.update(repo, {"name": repo.name})
    assert [e.action for e in events_of(repo)] == ["create"]


def test_a_link_change_is_recorded_with_the_ids_before_and_after(issue: Issue, make: Any) -> None:
    first, second = make.issue(issue.repo), make.issue(issue.repo)
    writes.update(issue, {"relationships": {"blocks": [first.pk]}})
    writes.update(issue, {"relationships": {"blocks": [second.pk]}})
    assert events_of(issue)[-1].changes == {"blocks": [[first.pk], [second.pk]]}


def test_sealing_writes_one_seal_event(issue: Issue, make: Any) -> None:
    draft = make.packet(issue, sealed=False)
    sealed = writes.seal(draft)
    seal = events_of(draft)[-1]
    assert [e.action for e in events_of(draft)] == ["create", "seal"]
    assert seal.changes["sealed"] == [False, True]
    assert seal.changes["sealed_at"][1] == sealed.sealed_at.isoformat().replace("+00:00", "Z")


def test_sealing_through_an_update_writes_one_seal_event(issue: Issue, make: Any) -> None:
    draft = make.packet(issue, sealed=False)
    writes.update(draft, {"sealed": True, "summary": "Final."})
    seal = events_of(draft)[-1]
    assert [e.action for e in events_of(draft)] == ["create", "seal"]
    assert seal.changes["summary"] == ["What we know.", "Final."]


def test_a_transition_writes_one_event_with_the_status_and_telemetry(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    with audit.acting_as("worker:1", actor=BUILDER):
        writes.transition(run, "running")
    event = events_of(run)[-1]
    assert (event.action, event.principal, event.actor) == ("transition", "worker:1", BUILDER)
    assert event.changes["status"] == ["ready", "running"]
    assert event.changes["started_at"][0] is None and event.changes["started_at"][1]


def test_a_patch_with_a_status_writes_an_update_then_a_transition(issue: Issue, make: Any) -> None:
    run = make.run(issue)
    writes.update(run, {"status": "running", "plan": {"steps": ["one"], "risk_notes": []}})
    assert [e.action for e in events_of(run)] == ["create", "update", "transition"]


# --- nothing written when a write fails -------------------------------------------------------------------
DOCTRINE_WITH_UNKNOWN_TYPE = {
    "namespace": "n", "name": "x", "version": "1", "type": "vibe", "priority": "must", "statement": "s",
}  # fmt: skip
NO_URI_NO_INLINE = {"name": "n", "media_type": "t"}
FAILING_CREATES = [
    ("Repo", lambda make, issue: {"name": "x", "slug": issue.repo.slug}),
    ("Issue", lambda make, issue: {"repo": issue.pk, "title": "wrong kind"}),
    ("ContextPacket", lambda make, issue: {"for_issue": issue.pk, "inputs": {"data_blobs": [NO_URI_NO_INLINE]}}),
    ("ConstraintSnapshot", lambda make, issue: {"constraints": {"energy": {"score_0_5": 9}}}),
    ("DoctrineRef", lambda make, issue: DOCTRINE_WITH_UNKNOWN_TYPE),
    ("Run", lambda make, issue: {"for_issue": issue.pk, "status": "ready"}),
    ("Artifact", lambda make, issue: {"produced_by": make.run(issue).pk, "type": "log"}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "body"), FAILING_CREATES, ids=[k for k, _ in FAILING_CREATES])
def test_a_refused_create_writes_no_object_no_event_no_index_row(issue: Issue, make: Any, kind: str, body: Any) -> None:
    data = body(make, issue)
    before = Footprint()
    with pytest.raises(Exception) as caught:
        writes.create(kind, data)
    assert type(caught.value).__name__ == "ValidationError"
    assert Footprint() == before


def test_a_refused_update_writes_nothing(issue: Issue, make: Any) -> None:
    foreign = make.packet(make.issue(issue.repo))
    before = Footprint()
    with refused("context_packets", "packet_issue_mismatch"):
        writes.update(issue, {"title": "Renamed", "context_packets": [foreign.pk]})
    assert Footprint() == before
    assert Issue.objects.get(pk=issue.pk).title == "Add /healthz"


def test_a_refused_transition_writes_nothing(issue: Issue, make: Any) -> None:
    run = make.run(issue, status="planned")
    before = Footprint()
    with refused("inputs", "packet_required"):
        writes.transition(run, "ready")
    assert Footprint() == before


def test_a_failure_after_the_row_is_written_rolls_the_whole_create_back(
    issue: Issue, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctrine = make.doctrine()
    written: list[str] = []

    def explode(objs: Any, *args: Any, **kwargs: Any) -> None:
        # The seal, after the packet's row and its links are written and before its event is.
        written.extend(ContextPacket.objects.values_list("id", flat=True))
        raise RuntimeError("the seal could not be written")

    monkeypatch.setattr(bulk, "update", explode)
    before = Footprint()
    with pytest.raises(RuntimeError):
        writes.create("ContextPacket", {"for_issue": issue.pk, "doctrine_refs": [doctrine.pk]})
    assert len(written) == 1  # the packet's row was there when the write failed
    assert Footprint() == before
