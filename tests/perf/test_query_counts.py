"""Cost grows with the page, not with the table: query counts that must not depend on row counts.

Not timing-based. Lineage is counted through the kernel (``cwom.lineage.run_bundle``, what the endpoint and
the executors serve); list endpoints through the API when it is routed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

from cwom import writes
from cwom.lineage import run_bundle
from cwom.models import ApiToken

pytestmark = pytest.mark.django_db


def count_queries(fn: Any) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        value = fn()
    return len(ctx.captured_queries), value


def test_lineage_query_count_does_not_grow_with_packets_or_artifacts(make: Any) -> None:
    small_issue, big_issue = make.issue(), make.issue()
    doctrine = make.doctrine()
    small = make.run(small_issue, packets=[make.packet(small_issue, doctrine_refs=[doctrine.pk])])
    big = make.run(big_issue, packets=[make.packet(big_issue, doctrine_refs=[doctrine.pk]) for _ in range(3)])
    for run_obj, artifacts in ((small, 1), (big, 8)):
        writes.transition(run_obj, "running")
        for _ in range(artifacts):
            make.artifact(run_obj)

    small_count, small_bundle = count_queries(lambda: run_bundle(small.pk))
    big_count, big_bundle = count_queries(lambda: run_bundle(big.pk))

    assert len(small_bundle["artifacts"]) == 1 and len(big_bundle["artifacts"]) == 8
    assert len(big_bundle["context_packets"]) == 3
    assert big_count == small_count


def _routed(path: str) -> bool:
    try:
        return resolve(path).url_name not in (None, "not-found")
    except Resolver404:
        return False


@pytest.mark.parametrize("endpoint", ["issues", "runs", "artifacts"])
def test_list_query_count_does_not_grow_with_page_size(make: Any, endpoint: str) -> None:
    if not _routed(f"/api/v1/{endpoint}"):
        pytest.skip(f"/api/v1/{endpoint} is not routed yet")
    repo = make.repo()
    for _ in range(3):
        run_obj = make.started_run(issue_obj=make.issue(repo))
        make.artifact(run_obj)
        make.artifact(run_obj)
    _, secret = ApiToken.issue("perf-reader", can_write=False)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.get(f"/api/v1/{endpoint}")  # first use of the token records last_used_at

    one, first = count_queries(lambda: client.get(f"/api/v1/{endpoint}", {"page_size": 1}))
    many, second = count_queries(lambda: client.get(f"/api/v1/{endpoint}", {"page_size": 50}))

    assert first.status_code == 200 and second.status_code == 200
    assert len(second.json()["results"]) > 1
    assert many == one
