"""N+1-free: every list and detail endpoint answers in the same number of queries for 1 row and 50 rows.

Every count starts with 1 query for the API token; the token's last_used_at is written at most once
a minute, so each test makes one warm-up request first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cwom import writes
from tests import factories as make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _token_read_every_time(settings: Any) -> None:
    """The counts below include the token lookup: with the token cache off, each is the cold-cache worst case
    (tests/api/test_auth.py checks what a cached token saves)."""
    settings.CWOM_TOKEN_CACHE_SECONDS = 0


def rows_of(kind: str, n: int) -> Callable[[], str]:
    """Build ``n`` rows of ``kind``, each with the links its shape prefetches; returns the list path."""

    def build() -> str:
        repo = make.repo()
        doctrine = make.doctrine()
        snapshot = make.snapshot()
        if kind == "repos":
            for _ in range(n - 1):
                make.repo()
        elif kind == "issues":
            for _ in range(n):
                issue = make.issue(repo, doctrine_refs=[doctrine.pk], constraints=[snapshot.pk])
                make.packet(issue)
        elif kind == "context_packets":
            issue = make.issue(repo)
            for _ in range(n):
                make.packet(issue, doctrine_refs=[doctrine.pk])
        elif kind == "constraint_snapshots":
            for _ in range(n - 1):
                make.snapshot()
        elif kind == "doctrine_refs":
            for _ in range(n - 1):
                make.doctrine(applicability={"repo_refs": [repo.pk]})
        elif kind == "runs":
            issue = make.issue(repo)
            for _ in range(n):
                make.run(issue, status="planned", inputs={"doctrine_refs": [doctrine.pk]})
        elif kind == "artifacts":
            run = make.started_run()
            for _ in range(n):
                make.artifact(run)
        return kind

    return build


LISTS = [
    # kind, queries: token + main query + one query for all the rows' ref lists (shapes.Shape.load_refs)
    ("repos", 2),  # token, repos
    ("issues", 3),  # token, issues, doctrine/snapshot/packet links + blocks, blocked_by, duplicates, runs
    ("context_packets", 3),  # token, packets, doctrine links
    ("constraint_snapshots", 2),  # token, snapshots
    ("doctrine_refs", 3),  # token, doctrine refs, repo links
    ("runs", 3),  # token, runs, packet links + doctrine links + artifacts
    ("artifacts", 2),  # token, artifacts
]


@pytest.mark.parametrize(("kind", "queries"), LISTS)
@pytest.mark.parametrize("n", [1, 50])
def test_a_list_costs_the_same_for_1_and_50_rows(writer, django_assert_num_queries, kind, queries, n):
    path = rows_of(kind, n)()
    writer.get("healthz")
    writer.get(path, {"page_size": 1})  # warm-up: token touch

    with django_assert_num_queries(queries):
        response = writer.get(path)

    assert len(response.json()["results"]) >= n


@pytest.mark.parametrize(("kind", "queries"), LISTS)
def test_a_detail_costs_what_one_row_of_its_list_does(writer, django_assert_num_queries, kind, queries):
    rows_of(kind, 3)()
    object_id = writer.get(kind).json()["results"][0]["id"]

    with django_assert_num_queries(queries):
        assert writer.get(f"{kind}/{object_id}").status_code == 200
    # objects/{id}: + 1 query to resolve the id's kind
    with django_assert_num_queries(queries + 1):
        assert writer.get(f"objects/{object_id}").status_code == 200


@pytest.mark.parametrize("n", [1, 50])
def test_the_event_feed_costs_the_same_for_1_and_50_rows(writer, django_assert_num_queries, n):
    for _ in range(n):
        make.repo()
    writer.get("healthz")
    writer.get("events")

    with django_assert_num_queries(2):  # token, events
        response = writer.get("events", {"kind": "Repo"})

    assert len(response.json()["results"]) == n


@pytest.mark.parametrize("n", [1, 50])
def test_one_object_history_costs_the_same_for_1_and_50_events(writer, django_assert_num_queries, n):
    issue = make.issue()
    for i in range(n - 1):
        writes.update(issue, {"title": f"title {i}"})
    writer.get("events")

    with django_assert_num_queries(3):  # token, object exists, events
        response = writer.get(f"issues/{issue.pk}/events")

    assert len(response.json()["results"]) == n


@pytest.mark.parametrize("n", [1, 50])
def test_the_lineage_costs_the_same_for_1_and_50_packets_and_artifacts(writer, django_assert_num_queries, n):
    issue = make.issue(constraints=[make.snapshot().pk])
    doctrine = make.doctrine()
    packets = [make.packet(issue, doctrine_refs=[doctrine.pk]) for _ in range(n)]
    run = make.run(
        issue, packets=packets, inputs={"context_packets": [p.pk for p in packets], "doctrine_refs": [doctrine.pk]}
    )
    writes.transition(run, "running")
    for _ in range(n):
        make.artifact(run)
    writer.get("events")

    # token; run with its issue, repo and snapshot; the run's ref lists; the issue's; packets + their doctrine
    # links (2); doctrine refs + repo links (2); artifacts
    with django_assert_num_queries(9):
        body = writer.get(f"runs/{run.pk}/lineage").json()

    assert len(body["context_packets"]) == n
    assert len(body["artifacts"]) == min(n, 20)  # the run's newest (issue 16)
    assert body["run"]["outputs"]["artifacts_total"] == n
    assert body["constraint_snapshot"] is not None
