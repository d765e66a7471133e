"""The issue tag index (``cwom_issuetag``): the database keeps it in step, and ``?tag=`` answers through it
exactly what the jsonb lookup answers.

Runs on both backends (the triggers exist on PostgreSQL and SQLite alike).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from cwom import writes
from cwom.api.filters import IssueFilterSet
from cwom.models import ApiToken, Issue, IssueTag

pytestmark = pytest.mark.django_db


def tag_rows(issue: Issue) -> set[tuple[str, str, str, Any]]:
    rows = IssueTag.objects.filter(issue=issue).values_list("tag", "repo_id", "status", "created_at")
    return set(rows)


def expected_rows(issue: Issue) -> set[tuple[str, str, str, Any]]:
    issue = Issue.objects.get(pk=issue.pk)
    return {(tag, issue.repo_id, issue.status, issue.created_at) for tag in issue.tags}


def test_a_new_issue_gets_one_row_per_distinct_tag(make: Any) -> None:
    issue = make.issue(tags=["api", "perf"])
    assert tag_rows(issue) == expected_rows(issue)
    assert {tag for tag, *_ in tag_rows(issue)} == {"api", "perf"}
    assert tag_rows(make.issue(tags=[])) == set()
    Issue.objects.filter(pk=issue.pk).update(tags=["ops", "ops"])  # past validation: still one row per tag
    assert [tag for tag, *_ in tag_rows(issue)] == ["ops"]


def test_the_rows_follow_tag_status_and_repo_changes_on_every_write_path(make: Any) -> None:
    issue = make.issue(tags=["api", "perf"])
    writes.update(issue, {"tags": ["perf", "ui"]})
    assert {tag for tag, *_ in tag_rows(issue)} == {"perf", "ui"}
    assert tag_rows(issue) == expected_rows(issue)

    Issue.objects.filter(pk=issue.pk).update(status="done")  # QuerySet.update: no model code runs
    assert tag_rows(issue) == expected_rows(issue)

    other = make.repo()
    with connection.cursor() as cursor:  # raw SQL (an issue without runs may move)
        cursor.execute("UPDATE cwom_issue SET repo_id = %s WHERE id = %s", [other.pk, issue.pk])
    assert {repo for _, repo, _, _ in tag_rows(issue)} == {other.pk}

    Issue.objects.filter(pk=issue.pk).update(tags=[])
    assert tag_rows(issue) == set()


def test_an_update_that_changes_nothing_indexed_keeps_the_rows(make: Any) -> None:
    issue = make.issue(tags=["api"])
    before = set(IssueTag.objects.filter(issue=issue).values_list("id", flat=True))
    writes.update(issue, {"title": "Another title"})
    assert set(IssueTag.objects.filter(issue=issue).values_list("id", flat=True)) == before


@pytest.mark.parametrize(
    "params",
    [
        {"tag": "api"},
        {"tag": "api", "status": "done"},
        {"tag": "perf", "status": "done,planned"},
        {"tag": "api,perf"},
        {"tag": "api,perf", "status": "done"},
        {"tag": "nope"},
    ],
)
def test_the_tag_filter_matches_the_jsonb_lookup(make: Any, params: dict[str, str]) -> None:
    repo, other = make.repo(), make.repo()
    tag_sets = [["api"], ["api", "perf"], ["perf"], [], ["ui", "api"]]
    for i, tags in enumerate(tag_sets * 2):
        issue = make.issue(repo if i % 3 else other, tags=tags)
        if i % 2:
            Issue.objects.filter(pk=issue.pk).update(status="done")
    params = {**params, "repo_id": repo.pk}
    got = list(IssueFilterSet(params, queryset=Issue.objects.all()).qs.order_by("-created_at", "-id"))

    statuses = params.get("status", "").split(",") if "status" in params else None
    want = Issue.objects.filter(repo_id=repo.pk, tags__has_any=params["tag"].split(","))
    if statuses:
        want = want.filter(status__in=statuses)
    assert [i.pk for i in got] == [i.pk for i in want.order_by("-created_at", "-id")]
    assert len({i.pk for i in got}) == len(got)  # an issue carrying two of the tags comes once


def test_the_issue_list_filters_by_tag_through_the_api(make: Any) -> None:
    repo = make.repo()
    tagged = [make.issue(repo, tags=["perf"]) for _ in range(3)]
    make.issue(repo, tags=["ui"])
    _, secret = ApiToken.issue("tag-reader", can_write=False)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = client.get("/api/v1/issues", {"repo_id": repo.pk, "tag": "perf", "page_size": 2}).json()
    second = client.get(body["next"]).json()
    assert [i["id"] for i in body["results"] + second["results"]] == [i.pk for i in reversed(tagged)]


@pytest.mark.parametrize("ordering", ["created_at", "-created_at", "-updated_at"])
def test_a_tag_list_keeps_every_ordering_and_its_cursor(make: Any, ordering: str) -> None:
    repo = make.repo()
    tagged = [make.issue(repo, tags=["perf"]) for _ in range(3)]
    _, secret = ApiToken.issue("tag-orderer", can_write=False)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    query = {"tag": "perf", "repo_id": repo.pk, "ordering": ordering, "page_size": 2}
    body = client.get("/api/v1/issues", query).json()
    ids = [i["id"] for i in body["results"] + client.get(body["next"]).json()["results"]]
    tie = "-id" if ordering.startswith("-") else "id"
    want = Issue.objects.filter(pk__in=[i.pk for i in tagged]).order_by(ordering, tie)
    assert ids == [i.pk for i in want]


@pytest.mark.parametrize(
    "params,asked,served",
    [
        ({"tag": "perf"}, ("-created_at", "-id"), ("-tag_created_at", "-id")),
        ({"tag": "perf,perf", "status": "done"}, ("created_at", "id"), ("tag_created_at", "id")),
        ({"tag": "perf"}, ("-updated_at", "-id"), ("-updated_at", "-id")),
        ({"tag": "perf,ui"}, ("-created_at", "-id"), ("-created_at", "-id")),
        ({"status": "done"}, ("-created_at", "-id"), ("-created_at", "-id")),
        ({"tag": "perf", "status": "nope"}, ("-created_at", "-id"), ("-created_at", "-id")),
    ],
)
def test_the_issue_filterset_decides_the_order_of_a_tag_list(
    params: dict[str, str], asked: tuple[str, ...], served: tuple[str, ...]
) -> None:
    # One place decides both the tag-index queryset and its order: the ordering it serves is one the
    # queryset it builds can be ordered by.
    filterset = IssueFilterSet(params, queryset=Issue.objects.all())
    assert filterset.ordering_for(asked) == served
    if filterset.is_valid():
        assert list(filterset.qs.order_by(*served)) == []
