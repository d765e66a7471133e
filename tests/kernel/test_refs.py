"""Refs: a Ref resolves to exactly one existing object of exactly the right kind.

On input a Ref may be a bare id or a full Ref (``kind`` and ``role`` optional); on output it is always
a full Ref. Resolution happens in ``shapes.parse``, so ``writes.create``/``update`` never see a bad one.
"""

from __future__ import annotations

from typing import Any

import pytest

from cwom import shapes, writes
from cwom.ids import new_ulid
from cwom.models import Issue, IssueContextPacket, Repo
from tests.kernel.assertions import Footprint, refused

pytestmark = pytest.mark.django_db


def test_a_bare_id_is_accepted_where_a_ref_is_expected(repo: Repo) -> None:
    parsed = shapes.parse("Issue", {"repo": repo.pk, "title": "t"})
    assert parsed.columns["repo_id"] == repo.pk


@pytest.mark.parametrize(
    "as_ref",
    [
        lambda pk: {"kind": "Repo", "id": pk, "role": None},
        lambda pk: {"kind": "Repo", "id": pk},
        lambda pk: {"id": pk},
    ],
    ids=["full", "without-role", "id-only"],
)
def test_a_full_ref_is_accepted(repo: Repo, as_ref: Any) -> None:
    issue = writes.create("Issue", {"repo": as_ref(repo.pk), "title": "t"})
    assert issue.repo_id == repo.pk


def test_output_always_carries_full_refs(repo: Repo) -> None:
    issue = writes.create("Issue", {"repo": repo.pk, "title": "t"})
    assert shapes.dump(issue)["repo"] == {"kind": "Repo", "id": repo.pk, "role": None}


def test_a_ref_declaring_another_kind_is_refused(repo: Repo) -> None:
    with refused("repo", "wrong_kind"):
        shapes.parse("Issue", {"repo": {"kind": "Issue", "id": repo.pk}, "title": "t"})


def test_an_id_of_another_kind_is_refused(issue: Issue) -> None:
    before = Footprint()
    with refused("repo", "wrong_kind") as caught:
        writes.create("Issue", {"repo": issue.pk, "title": "t"})
    assert f"{issue.pk} is an Issue, not a Repo" in str(caught.value)
    assert Footprint() == before


def test_a_full_ref_whose_id_is_of_another_kind_is_refused(issue: Issue) -> None:
    with refused("repo", "wrong_kind"):
        writes.create("Issue", {"repo": {"kind": "Repo", "id": issue.pk}, "title": "t"})


def test_an_unknown_id_is_refused(db: None) -> None:
    before = Footprint()
    with refused("repo", "unknown_ref"):
        writes.create("Issue", {"repo": new_ulid(), "title": "t"})
    assert Footprint() == before


def test_a_malformed_id_is_refused(db: None) -> None:
    with refused("for_issue", "invalid_id") as caught:
        shapes.parse("Run", {"for_issue": "not-a-ulid"})
    assert "'not-a-ulid' is not a valid id" in str(caught.value)


def test_a_string_that_is_neither_an_id_nor_a_slug_is_refused_where_a_repo_is_wanted(db: None) -> None:
    with refused("repo", "invalid_id") as caught:
        shapes.parse("Issue", {"repo": "not a slug!", "title": "t"})
    assert "not a valid id" in str(caught.value) and "slug" in str(caught.value)


def test_a_repo_is_named_by_its_slug_wherever_a_repo_ref_is(repo: Repo, make: Any) -> None:
    other = make.repo()
    parsed = shapes.parse("Issue", {"repo": repo.slug, "title": "t"})
    assert parsed.columns["repo_id"] == repo.pk
    assert parsed.known_refs == {repo.pk: "Repo"}
    doctrine = shapes.parse(
        "DoctrineRef",
        {
            "namespace": "n",
            "name": "d",
            "version": "1",
            "type": "policy",
            "priority": "must",
            "statement": "s",
            "applicability": {"repo_refs": [repo.slug, {"id": other.pk, "role": "also"}]},
        },
    )
    assert doctrine.links["repo_refs"] == [(repo.pk, None), (other.pk, "also")]


def test_a_repo_named_by_its_slug_and_by_its_id_in_one_list_is_listed_twice(repo: Repo) -> None:
    body = {
        "namespace": "n",
        "name": "twice",
        "version": "1",
        "type": "policy",
        "priority": "must",
        "statement": "s",
        "applicability": {"repo_refs": [repo.slug, repo.pk]},
    }
    with refused("applicability.repo_refs", "duplicate_ref"):
        shapes.parse("DoctrineRef", body)


def test_an_unknown_slug_is_an_unknown_ref(db: None) -> None:
    with refused("repo", "unknown_ref") as caught:
        shapes.parse("Issue", {"repo": "no-such-repo", "title": "t"})
    assert "No Repo has slug 'no-such-repo'" in str(caught.value)


def test_refs_in_lists_are_resolved_one_by_one_with_their_position(issue: Issue, make: Any) -> None:
    packet = make.packet(issue)
    doctrine = make.doctrine()
    body = {
        "for_issue": issue.pk,
        "status": "planned",
        "inputs": {"context_packets": [packet.pk, doctrine.pk, new_ulid()]},
    }
    with pytest.raises(Exception) as caught:
        writes.create("Run", body)
    codes = {path: {e.code for e in errors} for path, errors in caught.value.error_dict.items()}
    assert codes == {"inputs.context_packets.1": {"wrong_kind"}, "inputs.context_packets.2": {"unknown_ref"}}


def test_the_same_object_twice_in_one_list_is_refused(issue: Issue, make: Any) -> None:
    packet = make.packet(issue)
    with refused("inputs.context_packets", "invalid"):  # written alike: the schema's uniqueItems
        make.run(issue, packets=[packet, packet])
    body = {"for_issue": issue.pk, "inputs": {"context_packets": [packet.pk, {"id": packet.pk}]}}
    with refused("inputs.context_packets", "duplicate_ref"):  # the same id written two ways
        writes.create("Run", body)


def test_a_role_given_on_input_comes_back_on_output(issue: Issue, make: Any) -> None:
    packet = make.packet(issue)
    run = writes.create(
        "Run",
        {"for_issue": issue.pk, "inputs": {"context_packets": [{"id": packet.pk, "role": "primary_context"}]}},
    )
    assert shapes.dump(run)["inputs"]["context_packets"] == [
        {"kind": "ContextPacket", "id": packet.pk, "role": "primary_context"}
    ]


def test_parse_writes_nothing(repo: Repo) -> None:
    before = Footprint()
    parsed = shapes.parse("Issue", {"repo": repo.pk, "title": "t", "relationships": {"blocks": []}})
    assert (parsed.kind, parsed.links) == ("Issue", {"blocks": []})
    assert Footprint() == before


# --- consistency across objects --------------------------------------------------------------------------
def test_an_issue_lists_only_its_own_context_packets(issue: Issue, make: Any) -> None:
    own = make.packet(issue)
    foreign = make.packet(make.issue(issue.repo))
    with refused("context_packets", "packet_issue_mismatch"):
        writes.update(issue, {"context_packets": [own.pk, foreign.pk]})
    assert list(IssueContextPacket.objects.filter(issue=issue).values_list("packet_id", flat=True)) == [own.pk]


def test_a_run_and_its_issue_share_a_repo_through_the_write_path(issue: Issue, make: Any) -> None:
    with refused("repo", "repo_mismatch"):
        writes.create("Run", {"for_issue": issue.pk, "repo": {"kind": "Repo", "id": make.repo().pk}})


def test_an_artifact_and_its_run_share_an_issue_through_the_write_path(issue: Issue, make: Any) -> None:
    run = make.started_run(issue_obj=issue)
    body = {"produced_by": run.pk, "for_issue": make.issue(issue.repo).pk, "type": "log"}
    with refused("for_issue", "issue_mismatch"):
        writes.create("Artifact", body)


def test_related_issues_may_sit_in_other_repos(issue: Issue, make: Any) -> None:
    elsewhere = make.issue(make.repo())
    related = writes.update(issue, {"relationships": {"parent": elsewhere.pk, "duplicates": [elsewhere.pk]}})
    assert related.parent_id == elsewhere.pk
