"""The seed queries are served by an index, never by a sequential scan (issue 7's regression guard).

Not timing-based: the test reads the planner's choice from ``EXPLAIN (FORMAT JSON)``.

How the choice is made meaningful in a small test database: a few thousand rows are inserted with
``bulk_create`` (skewed like production: a hot repo, mostly ``done``) and ANALYZEd, and the query is explained
under ``SET LOCAL enable_seqscan = off``. With sequential scans priced out the planner still falls back to one
when *no* index can serve the filter, so "no Seq Scan on the table" asserts that a usable index exists and is
chosen, independent of the table size. ``bench/run.py`` checks the plans without that setting at 1M rows.

The querysets are the ones the API's filters build (``?repo_id=&status=&tag=``, ``?issue_id=&status=``,
``?run_id=&type=``), ordered and sliced like a cursor page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from cwom.api.filters import TAG_CREATED_AT, IssueFilterSet
from cwom.ids import new_ulid
from cwom.models import Artifact, Issue, Repo, Run

pytestmark = pytest.mark.django_db

ROWS = 3000
PAGE = 50


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(queryset: QuerySet[Any]) -> list[dict[str, Any]]:
    """The plan nodes of ``queryset``'s SQL, explained with sequential scans priced out."""
    query_sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {query_sql}", params)
        raw = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_seqscan = on")
    document = json.loads(raw) if isinstance(raw, str) else raw
    return list(plan_nodes(document[0]["Plan"]))


def assert_index_served(queryset: QuerySet[Any], table: str) -> list[str]:
    """No Seq Scan on ``table``; at least one index of ``table`` is scanned. Returns the index names."""
    nodes = explain(queryset)
    seq = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table]
    assert not seq, f"sequential scan on {table}: {json.dumps(nodes, indent=1)[:2000]}"
    indexes = [n["Index Name"] for n in nodes if "Index Name" in n]
    scanned_tables = {n.get("Relation Name") for n in nodes if n["Node Type"] in {"Index Scan", "Index Only Scan"}}
    assert indexes, f"no index used for {table}: {nodes}"
    assert table in scanned_tables or any(n["Node Type"] == "Bitmap Index Scan" for n in nodes)
    return indexes


@pytest.fixture
def seeded(is_postgres: bool) -> dict[str, Any]:
    """A few thousand skewed rows per seed table, ANALYZEd."""
    if not is_postgres:
        pytest.skip("EXPLAIN plans are checked on PostgreSQL; SQLite has no comparable planner or GIN index.")
    now = timezone.now()
    repos = Repo.objects.bulk_create([Repo(id=new_ulid(), name=f"Repo {i}", slug=f"perf-repo-{i}") for i in range(5)])
    statuses = ["done"] * 7 + ["planned", "ready", "running"]
    tags = [["api"], ["api", "perf"], ["ui"], [], ["db", "ops"]]
    issues = Issue.objects.bulk_create(
        [
            Issue(
                id=new_ulid(),
                repo=repos[0 if i % 3 else i % 5],  # two thirds of the issues in one hot repo
                title=f"Issue {i}",
                status=statuses[i % len(statuses)],
                tags=tags[i % len(tags)],
                created_at=now - dt.timedelta(minutes=ROWS - i),
            )
            for i in range(ROWS)
        ],
        batch_size=1000,
    )
    hot_issue = issues[1]
    runs = Run.objects.bulk_create(
        [
            Run(
                id=new_ulid(),
                for_issue=hot_issue if i % 2 else issues[i],
                repo_id=(hot_issue if i % 2 else issues[i]).repo_id,
                status="running",
                started_at=now - dt.timedelta(minutes=ROWS - i),
                created_at=now - dt.timedelta(minutes=ROWS - i),
            )
            for i in range(ROWS)
        ],
        batch_size=1000,
    )
    hot_run = runs[1]
    types = ["log", "log", "code_patch", "report", "pr"]
    Artifact.objects.bulk_create(
        [
            Artifact(
                id=new_ulid(),
                produced_by=hot_run if i % 2 else runs[i],
                for_issue_id=(hot_run if i % 2 else runs[i]).for_issue_id,
                type=types[i % len(types)],
                created_at=now - dt.timedelta(seconds=ROWS - i),
            )
            for i in range(ROWS)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        for table in ("cwom_repo", "cwom_issue", "cwom_run", "cwom_artifact"):
            cursor.execute(f"ANALYZE {table}")
    return {"repo": repos[0], "issue": hot_issue, "run": hot_run}


def test_issues_by_repo_status_and_tag_use_an_index(seeded: dict[str, Any]) -> None:
    queryset = Issue.objects.filter(repo_id=seeded["repo"].pk, status__in=["done"], tags__has_any=["perf"]).order_by(
        "-created_at", "-id"
    )[:PAGE]
    assert_index_served(queryset, "cwom_issue")


def test_issues_by_repo_and_status_use_an_index(seeded: dict[str, Any]) -> None:
    queryset = Issue.objects.filter(repo_id=seeded["repo"].pk, status="done").order_by("-created_at", "-id")[:PAGE]
    assert_index_served(queryset, "cwom_issue")


def test_issues_by_tag_alone_use_the_gin_index(seeded: dict[str, Any]) -> None:
    queryset = Issue.objects.filter(tags__has_any=["perf"]).order_by("-created_at", "-id")[:PAGE]
    assert_index_served(queryset, "cwom_issue")


def test_runs_by_issue_and_status_use_an_index(seeded: dict[str, Any]) -> None:
    queryset = Run.objects.filter(for_issue_id=seeded["issue"].pk, status__in=["running"]).order_by(
        "-created_at", "-id"
    )[:PAGE]
    assert_index_served(queryset, "cwom_run")


def test_artifacts_by_run_and_type_use_an_index(seeded: dict[str, Any]) -> None:
    queryset = Artifact.objects.filter(produced_by_id=seeded["run"].pk, type__in=["log"]).order_by(
        "-created_at", "-id"
    )[:PAGE]
    assert_index_served(queryset, "cwom_artifact")


@pytest.mark.parametrize("model,table", [(Issue, "cwom_issue"), (Run, "cwom_run"), (Artifact, "cwom_artifact")])
def test_deep_cursor_pages_use_the_created_index(seeded: dict[str, Any], model: Any, table: str) -> None:
    # A cursor page deep in an unfiltered list: the position filter plus the page's ordering.
    position = timezone.now() - dt.timedelta(minutes=ROWS // 2)
    queryset = model.objects.filter(created_at__lt=position).order_by("-created_at", "-id")[:PAGE]
    assert_index_served(queryset, table)


def test_issues_by_repo_status_and_one_tag_read_a_page_in_order_from_an_index(seeded: dict[str, Any]) -> None:
    # The API's own queryset (IssueFilterSet) in the order it serves the list's default order in:
    # one tag goes through the tag index cwom_issuetag.
    params = {"repo_id": seeded["repo"].pk, "status": "done", "tag": "perf"}
    filterset = IssueFilterSet(params, queryset=Issue.objects.all())
    ordering = filterset.ordering_for(("-created_at", "-id"))
    assert ordering == (f"-{TAG_CREATED_AT}", "-id")
    queryset = filterset.qs.order_by(*ordering)[:PAGE]
    nodes = explain(queryset)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort"}], nodes
    assert "issue_tag_list_idx" in {n.get("Index Name") for n in nodes}, nodes
