"""Issue 16: lists that grow with other objects' creation are embedded bounded.

An issue's runs, context packets and constraint snapshots and a run's artifacts are the newest 20, newest
first, with ``<name>_total`` and ``<name>_url``; the totals are kept exact by triggers (``cwom_reftotal``);
link lists change by add/remove, a whole list only under If-Match and never for a bounded list.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from cwom import writes
from cwom.db_guards import REF_TOTALS_0011
from cwom.ids import new_ulid
from cwom.models import Event, Issue, RefTotal, Run
from cwom.shapes import NEWEST, SHAPES
from tests import factories
from tests.api.conftest import problem
from tests.statements import sent_statements

pytestmark = pytest.mark.django_db


def add_runs(issue: Issue, count: int, days_ago: int = 1) -> list[str]:
    """``count`` planned runs of ``issue`` in one statement (created a second apart, oldest first)."""
    start = timezone.now() - dt.timedelta(days=days_ago)
    runs = [
        Run(
            id=new_ulid(),
            for_issue_id=issue.pk,
            repo_id=issue.repo_id,
            status="planned",
            executor_runtime="local",
            created_at=start + dt.timedelta(seconds=i),
            updated_at=start + dt.timedelta(seconds=i),
        )
        for i in range(count)
    ]
    Run.objects.bulk_create(runs, batch_size=2000)
    return [run.pk for run in runs]


def assert_totals_exact() -> None:
    """Every total in cwom_reftotal is the count of its rows, for every owner that has rows."""
    with connection.cursor() as cursor:
        for related, table, owner in REF_TOTALS_0011:
            cursor.execute(f"SELECT {owner}, count(*) FROM {table} GROUP BY {owner}")  # noqa: S608 - our names
            counted = dict(cursor.fetchall())
            kept = dict(RefTotal.objects.filter(related=related, total__gt=0).values_list("owner_id", "total"))
            assert kept == counted, related


def test_the_bounded_lists_are_the_ones_the_triggers_count() -> None:
    declared = {node.related for shape in SHAPES.values() for node in shape.bounded}
    assert declared == {related for related, _table, _owner in REF_TOTALS_0011}
    assert declared == {"runs", "artifacts", "context_packet_links", "constraint_links"}


def test_an_issue_with_10000_runs_is_as_big_and_as_cheap_to_read_as_one_with_20(
    writer, make, django_assert_num_queries
):
    small, busy = make.issue(), make.issue()
    add_runs(small, NEWEST)
    ids = add_runs(busy, 10_000)
    writer.get("healthz")
    writer.get(f"issues/{small.pk}")  # the token's row is cached from here on

    with django_assert_num_queries(2):  # the issue; its ref lists and totals
        small_response = writer.get(f"issues/{small.pk}")
    with django_assert_num_queries(2):
        busy_response = writer.get(f"issues/{busy.pk}")

    body = busy_response.json()
    assert [ref["id"] for ref in body["runs"]] == ids[::-1][:NEWEST]  # the newest, newest first
    assert body["runs_total"] == 10_000
    assert body["runs_url"] == f"/api/v1/runs?issue_id={busy.pk}"
    # Constant size: the two differ only in the digits of their totals.
    assert len(busy_response.content) - len(small_response.content) == len("10000") - len(str(NEWEST))
    page = writer.get(body["runs_url"], {"page_size": 500}).json()
    assert len(page["results"]) == 500 and page["results"][0]["id"] == ids[-1]
    assert_totals_exact()


def test_a_list_page_embeds_the_same_bounded_lists(writer, make, django_assert_num_queries):
    busy = make.issue()
    add_runs(busy, 45)
    writer.get("issues")

    with django_assert_num_queries(2):  # the issues; their ref lists and totals (the token's row is cached)
        rows = writer.get("issues", {"page_size": 10}).json()["results"]

    row = next(row for row in rows if row["id"] == busy.pk)
    assert len(row["runs"]) == NEWEST and row["runs_total"] == 45


def test_a_run_embeds_its_newest_artifacts_and_their_total(writer, make):
    run = make.started_run()
    artifacts = [make.artifact(run, title=f"a{i}") for i in range(NEWEST + 3)]

    outputs = writer.get(f"runs/{run.pk}").json()["outputs"]

    assert [ref["id"] for ref in outputs["artifacts"]] == [a.pk for a in artifacts][::-1][:NEWEST]
    assert outputs["artifacts_total"] == NEWEST + 3
    assert outputs["artifacts_url"] == f"/api/v1/artifacts?run_id={run.pk}"
    lineage = writer.get(f"runs/{run.pk}/lineage").json()
    assert [a["id"] for a in lineage["artifacts"]] == [ref["id"] for ref in outputs["artifacts"]]


def test_packets_and_snapshots_are_bounded_and_listed_whole_under_their_url(writer, make, issue):
    packets = [make.packet(issue) for _ in range(NEWEST + 5)]  # each links itself to its issue
    snapshots = [make.snapshot() for _ in range(NEWEST + 2)]
    writes.update(issue, {"constraints": [s.pk for s in snapshots]})

    body = writer.get(f"issues/{issue.pk}").json()

    assert [ref["id"] for ref in body["context_packets"]] == [p.pk for p in packets][::-1][:NEWEST]
    assert body["context_packets_total"] == NEWEST + 5
    assert body["constraints_total"] == NEWEST + 2 and len(body["constraints"]) == NEWEST
    first = writer.get(body["context_packets_url"], {"page_size": 20}).json()
    second = writer.get(urlsplit(first["next"])._replace(scheme="", netloc="").geturl()).json()
    assert [ref["id"] for ref in first["results"] + second["results"]] == [p.pk for p in packets][::-1]
    snapshot_ids = [ref["id"] for ref in writer.get(body["constraints_url"], {"page_size": 500}).json()["results"]]
    assert snapshot_ids == [s.pk for s in snapshots][::-1]
    assert writer.get(f"issues/{issue.pk}/constraints", {"nope": "1"}).status_code == 400
    assert problem(writer.get(f"issues/{new_ulid()}/constraints"))["code"] == "not_found"
    assert_totals_exact()


def test_add_and_remove_change_a_bounded_list_and_record_only_what_changed(writer, make, issue):
    old, new = make.snapshot(), make.snapshot()
    writes.update(issue, {"constraints": [old.pk]})

    response = writer.patch(f"issues/{issue.pk}", {"constraints": {"add": [new.pk], "remove": [old.pk]}})

    assert response.status_code == 200, response.content
    assert [ref["id"] for ref in response.json()["constraints"]] == [new.pk]
    assert response.json()["constraints_total"] == 1
    event = Event.objects.filter(object_id=issue.pk).latest("id")
    assert event.changes["constraints"] == {"added": [new.pk], "removed": [old.pk]}
    # Adding what is there and removing what is not change nothing (a retry is harmless).
    again = writer.patch(f"issues/{issue.pk}", {"constraints": {"add": [new.pk], "remove": [old.pk]}})
    assert again.status_code == 200 and Event.objects.filter(object_id=issue.pk).latest("id") == event
    assert_totals_exact()


def test_a_role_changes_by_removing_and_adding_in_one_change(writer, make, issue):
    packet = make.packet(issue)
    refused = writer.patch(f"issues/{issue.pk}", {"context_packets": {"add": [{"id": packet.pk, "role": "main"}]}})
    assert refused.status_code == 409 and problem(refused)["code"] == "link_exists"

    change = {"context_packets": {"remove": [packet.pk], "add": [{"id": packet.pk, "role": "main"}]}}
    response = writer.patch(f"issues/{issue.pk}", change)

    assert response.status_code == 200, response.content
    assert response.json()["context_packets"] == [{"kind": "ContextPacket", "id": packet.pk, "role": "main"}]


def test_a_bounded_list_is_never_replaced_whole_but_may_be_sent_back_as_read(writer, make, issue):
    make.packet(issue)
    other = make.packet(issue)
    read = writer.get(f"issues/{issue.pk}")

    echoed = writer.patch(f"issues/{issue.pk}", {"context_packets": read.json()["context_packets"]})
    assert echoed.status_code == 200 and echoed.json()["context_packets_total"] == 2

    replaced = writer.patch(f"issues/{issue.pk}", {"context_packets": [other.pk]}, **{"If-Match": read["ETag"]})
    assert replaced.status_code == 422 and problem(replaced)["code"] == "bounded_list"
    assert writer.get(f"issues/{issue.pk}").json()["context_packets_total"] == 2


def test_a_whole_link_list_is_replaced_only_under_if_match(writer, make, issue):
    blocked, other = make.issue(), make.issue()
    writes.update(issue, {"relationships": {"blocks": [blocked.pk]}})
    read = writer.get(f"issues/{issue.pk}")
    change = {"relationships": {"blocks": [other.pk]}}

    refused = writer.patch(f"issues/{issue.pk}", change)
    assert refused.status_code == 428 and problem(refused)["code"] == "precondition_required"
    assert writer.get(f"issues/{issue.pk}").json()["relationships"]["blocks"][0]["id"] == blocked.pk

    done = writer.patch(f"issues/{issue.pk}", change, **{"If-Match": read["ETag"]})
    assert done.status_code == 200, done.content
    assert [ref["id"] for ref in done.json()["relationships"]["blocks"]] == [other.pk]
    added = writer.patch(f"issues/{issue.pk}", {"relationships": {"blocks": {"add": [blocked.pk]}}})
    assert [ref["id"] for ref in added.json()["relationships"]["blocks"]] == [other.pk, blocked.pk]


def test_a_list_embedded_whole_stays_at_200_refs(writer, make, issue):
    doctrines = [factories.doctrine() for _ in range(201)]
    writes.update(issue, {"doctrine_refs": [d.pk for d in doctrines[:150]]})

    response = writer.patch(f"issues/{issue.pk}", {"doctrine_refs": {"add": [d.pk for d in doctrines[150:]]}})

    assert response.status_code == 422 and problem(response)["code"] == "too_many_links"
    assert len(writer.get(f"issues/{issue.pk}").json()["doctrine_refs"]) == 150


def test_totals_follow_every_write_path(make):
    issue = make.issue()
    run = make.started_run(issue_obj=issue)
    for _ in range(3):
        make.artifact(run)
    snapshots = [make.snapshot() for _ in range(3)]
    writes.update(issue, {"constraints": [s.pk for s in snapshots]})
    writes.update(issue, {"constraints": [snapshots[0].pk]})  # the service's own replace: 2 rows deleted
    Run.objects.bulk_create([Run(id=new_ulid(), for_issue_id=issue.pk, repo_id=issue.repo_id, status="planned")])

    assert_totals_exact()
    assert RefTotal.objects.get(owner_id=issue.pk, related="runs").total == 2
    assert RefTotal.objects.get(owner_id=issue.pk, related="constraint_links").total == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_newest_runs_of_a_busy_issue_are_read_by_an_index_that_stops_after_20(make) -> None:
    busy, other = make.issue(), make.issue()
    add_runs(busy, 5000, days_ago=2)
    add_runs(other, 5000)  # newer: a scan of all runs newest first would meet these first
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cwom_run")
    with sent_statements() as calls:
        SHAPES["Issue"].ref_rows([busy.pk])
    sql, params = calls[0]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    runs = plan[plan.index("on cwom_run") - 60 :]
    assert "Seq Scan on cwom_run" not in plan, plan
    assert "Backward using run_issue_created_idx on cwom_run" in runs, plan
    assert "rows=20 loops=1" in runs.split("\n")[0] and "Rows Removed" not in runs.split("->")[0], plan
