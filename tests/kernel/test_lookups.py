"""JSON list lookups that filters use: ``tags__has_any`` and ``assignees__has_actor``, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from cwom.models import Artifact, Issue, Repo, Run

pytestmark = pytest.mark.django_db

MARIA = {"actor_kind": "human", "actor_id": "maria", "display": "Maria"}
BUILDER = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}


@pytest.fixture
def tagged(repo: Repo, make: Any) -> dict[str, Issue]:
    return {
        "ops": make.issue(repo, tags=["ops", "urgent"]),
        "devops": make.issue(repo, tags=["devops"]),
        "none": make.issue(repo, tags=[]),
        "docs": make.issue(repo, tags=["docs"]),
    }


def ids(queryset: Any) -> set[str]:
    return set(queryset.values_list("pk", flat=True))


def test_has_any_finds_issues_holding_one_of_the_tags(tagged: dict[str, Issue]) -> None:
    assert ids(Issue.objects.filter(tags__has_any=["ops"])) == {tagged["ops"].pk}
    assert ids(Issue.objects.filter(tags__has_any=["docs", "urgent"])) == {tagged["ops"].pk, tagged["docs"].pk}


def test_has_any_matches_whole_tags_not_substrings(tagged: dict[str, Issue]) -> None:
    assert ids(Issue.objects.filter(tags__has_any=["dev"])) == set()
    assert ids(Issue.objects.filter(tags__has_any=["devops"])) == {tagged["devops"].pk}


def test_has_any_accepts_a_single_string(tagged: dict[str, Issue]) -> None:
    assert ids(Issue.objects.filter(tags__has_any="docs")) == {tagged["docs"].pk}


def test_has_any_can_be_negated(tagged: dict[str, Issue]) -> None:
    assert ids(Issue.objects.exclude(tags__has_any=["ops", "devops"])) == {tagged["none"].pk, tagged["docs"].pk}


def test_has_any_works_on_every_kind_with_tags(issue: Issue, make: Any) -> None:
    run = make.started_run(issue_obj=issue, tags=["nightly"])
    artifact = make.artifact(run, tags=["nightly"])
    assert ids(Run.objects.filter(tags__has_any=["nightly"])) == {run.pk}
    assert ids(Artifact.objects.filter(tags__has_any=["nightly"])) == {artifact.pk}
    assert ids(Repo.objects.filter(tags__has_any=["nightly"])) == set()


def test_has_actor_finds_issues_by_assignee_id(repo: Repo, make: Any) -> None:
    both = make.issue(repo, assignees=[MARIA, BUILDER])
    maria = make.issue(repo, assignees=[MARIA])
    make.issue(repo, assignees=[], watchers=[MARIA])
    assert ids(Issue.objects.filter(assignees__has_actor=["maria"])) == {both.pk, maria.pk}
    assert ids(Issue.objects.filter(assignees__has_actor=["builder-7"])) == {both.pk}
    assert ids(Issue.objects.filter(assignees__has_actor=["nobody", "builder-7"])) == {both.pk}


def test_has_actor_matches_the_actor_id_not_the_display_name(repo: Repo, make: Any) -> None:
    make.issue(repo, assignees=[MARIA])
    assert ids(Issue.objects.filter(assignees__has_actor=["Maria"])) == set()


def test_has_actor_looks_at_the_named_list_only(repo: Repo, make: Any) -> None:
    watched = make.issue(repo, watchers=[MARIA])
    assert ids(Issue.objects.filter(watchers__has_actor=["maria"])) == {watched.pk}
    assert ids(Issue.objects.filter(assignees__has_actor=["maria"])) == set()


@pytest.mark.parametrize("lookup", ["tags__has_any", "assignees__has_actor"])
def test_an_empty_list_matches_nothing(tagged: dict[str, Issue], lookup: str) -> None:
    assert ids(Issue.objects.filter(**{lookup: []})) == set()
    assert ids(Issue.objects.exclude(**{lookup: []})) == {issue.pk for issue in tagged.values()}
