"""Issue relationships: a parent chain without cycles, blocks/blocked_by as one relation, duplicates."""

from __future__ import annotations

from typing import Any

import pytest

from cwom import shapes, writes
from cwom.models import Issue, IssueBlock, IssueDuplicate, Repo
from tests.kernel.assertions import Footprint, refused, refused_by_database
from tests.kernel.writers import WRITERS

pytestmark = pytest.mark.django_db


def relationships(issue: Issue) -> dict[str, Any]:
    rel = shapes.dump(writes.reload(issue))["relationships"]
    return {
        "parent": rel["parent"] and rel["parent"]["id"],
        **{name: [ref["id"] for ref in rel[name]] for name in ("blocks", "blocked_by", "duplicates")},
    }


@pytest.fixture
def chain(repo: Repo, make: Any) -> tuple[Issue, Issue, Issue]:
    """A <- B <- C: B's parent is A, C's parent is B."""
    a = make.issue(repo, title="A")
    b = make.issue(repo, title="B", relationships={"parent": a.pk})
    c = make.issue(repo, title="C", relationships={"parent": b.pk})
    return a, b, c


# --- parent chain -------------------------------------------------------------------------------------------
def test_an_issue_is_not_its_own_parent(issue: Issue) -> None:
    before = Footprint()
    with refused("relationships.parent", "cycle"):
        writes.update(issue, {"relationships": {"parent": issue.pk}})
    assert Footprint() == before


def test_full_clean_refuses_an_issue_as_its_own_parent(issue: Issue) -> None:
    issue.parent_id = issue.pk
    with refused("parent", "cycle"):
        issue.full_clean()


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.name)
def test_the_database_refuses_an_issue_as_its_own_parent(issue: Issue, write: Any) -> None:
    with refused_by_database("issue_not_own_parent"):
        write.update(Issue, {"pk": issue.pk}, parent_id=issue.pk)


def test_a_parent_chain_may_not_loop(chain: tuple[Issue, Issue, Issue]) -> None:
    a, _b, c = chain
    with refused("relationships.parent", "cycle"):
        writes.update(a, {"relationships": {"parent": c.pk}})
    assert Issue.objects.get(pk=a.pk).parent_id is None


def test_a_two_issue_loop_is_refused(chain: tuple[Issue, Issue, Issue]) -> None:
    a, b, _c = chain
    with refused("relationships.parent", "cycle"):
        writes.update(a, {"relationships": {"parent": b.pk}})


def test_a_parent_can_be_moved_within_the_tree(chain: tuple[Issue, Issue, Issue]) -> None:
    a, _b, c = chain
    assert writes.update(c, {"relationships": {"parent": a.pk}}).parent_id == a.pk
    assert writes.update(c, {"relationships": {"parent": None}}).parent_id is None


# --- blocks / blocked_by ---------------------------------------------------------------------------------
def test_a_blocks_b_exactly_when_b_is_blocked_by_a(repo: Repo, make: Any) -> None:
    a, b = make.issue(repo), make.issue(repo)
    writes.update(a, {"relationships": {"blocks": [b.pk]}})
    assert relationships(a)["blocks"] == [b.pk]
    assert relationships(b)["blocked_by"] == [a.pk]
    assert IssueBlock.objects.count() == 1


def test_the_relation_can_be_written_from_the_blocked_side(repo: Repo, make: Any) -> None:
    a, b = make.issue(repo), make.issue(repo)
    writes.update(b, {"relationships": {"blocked_by": [a.pk]}})
    assert relationships(a)["blocks"] == [b.pk]
    assert list(IssueBlock.objects.values_list("blocker_id", "blocked_id")) == [(a.pk, b.pk)]


def test_removing_it_from_one_side_removes_it_from_the_other(repo: Repo, make: Any) -> None:
    a, b = make.issue(repo), make.issue(repo)
    writes.update(a, {"relationships": {"blocks": [b.pk]}})
    writes.update(writes.reload(b), {"relationships": {"blocked_by": []}})
    assert relationships(a)["blocks"] == []
    assert not IssueBlock.objects.exists()


def test_a_new_issue_can_be_created_blocking_and_blocked(repo: Repo, make: Any) -> None:
    up, down = make.issue(repo), make.issue(repo)
    middle = make.issue(repo, relationships={"blocks": [down.pk], "blocked_by": [up.pk]})
    assert relationships(middle) == {"parent": None, "blocks": [down.pk], "blocked_by": [up.pk], "duplicates": []}
    assert relationships(up)["blocks"] == [middle.pk]
    assert relationships(down)["blocked_by"] == [middle.pk]


@pytest.mark.parametrize("name", ["blocks", "blocked_by", "duplicates"])
def test_an_issue_does_not_relate_to_itself(issue: Issue, name: str) -> None:
    with refused(f"relationships.{name}", "self_reference"):
        writes.update(issue, {"relationships": {name: [issue.pk]}})


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.name)
def test_the_database_refuses_self_blocks_and_self_duplicates(issue: Issue, write: Any) -> None:
    with refused_by_database("issue_block_not_self"):
        write.insert(IssueBlock(blocker_id=issue.pk, blocked_id=issue.pk))
    with refused_by_database("issue_duplicate_not_self"):
        write.insert(IssueDuplicate(issue_id=issue.pk, duplicate_of_id=issue.pk))


def test_duplicates_point_one_way(repo: Repo, make: Any) -> None:
    original, copy = make.issue(repo), make.issue(repo)
    writes.update(copy, {"relationships": {"duplicates": [original.pk]}})
    assert relationships(copy)["duplicates"] == [original.pk]
    assert relationships(original)["duplicates"] == []
