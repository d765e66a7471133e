"""What a create costs in SQL: the Refs resolved once, then the rows (issue 7's create throughput).

Not timing-based: statements per request. A body's Refs are resolved in one query through the object
index, which also proves the targets exist, so the model layer asks no foreign-key existence query of
its own; a freshly drawn id is not looked up; a warm token costs no query.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cwom.models import ApiToken, Event, Issue
from tests import factories as make
from tests.api.conftest import Api, problem

pytestmark = pytest.mark.django_db

AGENT = {"actor_kind": "agent", "actor_id": "bench-agent", "display": "Bench agent"}


def statements(call: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    verbs = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
    return response, [verb for verb in verbs if verb in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")]


# A new object's index row, row and create event: one statement of CTEs on PostgreSQL, three INSERTs elsewhere.
NEW_OBJECT = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT", "INSERT"]


def test_creating_an_issue_is_one_ref_lookup_and_one_write(writer: Api) -> None:
    repo = make.repo()
    writer.get("healthz")
    writer.get("repos")  # warm-up: the token is read, touched and cached

    response, sql = statements(lambda: writer.post("issues", {"repo": repo.pk, "title": "Cheap", "assignees": [AGENT]}))

    assert response.status_code == 201, response.content
    # the object index (repo ref); index row, issue, event
    assert sql == ["SELECT", *NEW_OBJECT]
    assert Event.objects.filter(object_id=response.json()["id"], action="create").count() == 1


def test_creating_a_run_reads_its_issue_once(writer: Api) -> None:
    issue = make.issue()
    packet = make.packet(issue)
    writer.get("repos")

    body = {"for_issue": issue.pk, "status": "ready", "inputs": {"context_packets": [packet.pk]}}
    response, sql = statements(lambda: writer.post("runs", body))

    assert response.status_code == 201, response.content
    assert response.json()["repo"]["id"] == issue.repo_id
    # refs; the issue's repo; the packets' issue and seal; index row and run (one statement on PostgreSQL),
    # packet link, event
    rows = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    assert sql == ["SELECT", "SELECT", "SELECT", *rows, "INSERT", "INSERT"]


def test_creating_an_artifact_reads_its_run_once(writer: Api) -> None:
    run = make.started_run()
    writer.get("repos")

    response, sql = statements(lambda: writer.post("artifacts", {"produced_by": run.pk, "type": "log", "title": "L"}))

    assert response.status_code == 201, response.content
    assert response.json()["for_issue"]["id"] == run.for_issue_id
    # refs; the run's issue and status; index row, artifact, event
    assert sql == ["SELECT", "SELECT", *NEW_OBJECT]


def test_an_unknown_ref_is_still_refused_before_any_write(writer: Api) -> None:
    response, sql = statements(lambda: writer.post("issues", {"repo": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "title": "t"}))

    assert response.status_code == 422
    assert problem(response)["errors"][0] == {
        "path": "repo",
        "code": "unknown_ref",
        "message": "No Repo has id 01ARZ3NDEKTSV4RRFFQ69G5FAV.",
    }
    assert "INSERT" not in sql


def test_a_supplied_id_that_is_taken_is_409_duplicate_at_its_path(writer: Api) -> None:
    taken = make.issue()

    response = writer.post("issues", {"id": taken.pk, "repo": taken.repo_id, "title": "Same id"})

    assert response.status_code == 409
    assert problem(response)["code"] == "duplicate"
    assert problem(response)["errors"] == [
        {"path": "id", "code": "duplicate", "message": "An object with this id already exists."}
    ]
    assert Issue.objects.filter(pk=taken.pk).get().title != "Same id"


def test_a_warm_token_costs_no_query_and_a_revocation_is_seen_at_once() -> None:
    token, secret = ApiToken.issue("cached", can_write=True)
    client = Api(secret)
    assert client.get("healthz").status_code == 200
    assert client.get("repos").status_code == 200

    with CaptureQueriesContext(connection) as ctx:
        assert client.get("repos").status_code == 200
    assert not [q for q in ctx.captured_queries if "cwom_apitoken" in q["sql"]]

    token.revoke()  # drops the cached row
    assert client.get("repos").status_code == 401


def test_without_the_token_cache_every_request_reads_the_token(settings: Any) -> None:
    settings.CWOM_TOKEN_CACHE_SECONDS = 0
    token, secret = ApiToken.issue("uncached", can_write=True)
    client = Api(secret)
    assert client.get("repos").status_code == 200
    # A change that bypasses save() (no cache entry to drop) is seen on the next request.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    assert client.get("repos").status_code == 401


def test_a_number_beyond_64_bits_is_kept_exactly(writer: Api) -> None:
    repo = make.repo()
    big = 123456789012345678901234567890
    response = writer.raw("POST", "issues", f'{{"repo": "{repo.pk}", "title": "t", "meta": {{"n": {big}}}}}')

    assert response.status_code == 201, response.content
    assert response.json()["meta"] == {"n": big}


def test_the_rate_limit_keeps_a_small_window_and_never_lets_more_through(
    writer: Api, settings: Any, monkeypatch: Any
) -> None:
    from django.core.cache import cache

    from cwom.api.auth import PrincipalRateThrottle

    clock = [1000.0]
    monkeypatch.setattr(PrincipalRateThrottle, "timer", lambda self: clock[0])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": "5/min"}}
    statuses = []
    for _ in range(6):
        statuses.append(writer.get("repos").status_code)
        clock[0] += 1
    assert statuses == [200, 200, 200, 200, 200, 429]
    clock[0] = 1061.0  # the first request's second has left the window, the others have not
    assert [writer.get("repos").status_code for _ in range(2)] == [200, 429]

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": "100000/min"}}
    for _ in range(150):
        assert writer.get("repos").status_code == 200
        clock[0] += 0.25
    state = cache.get("throttle_principal_token:writer-agent")
    assert len(state) <= PrincipalRateThrottle.BUCKETS + 1  # not one entry per request


def test_an_issue_is_written_without_a_transaction_or_savepoint_of_its_own(writer: Api) -> None:
    # Its one write is atomic alone (on PostgreSQL one statement; elsewhere the INSERTs share the caller's
    # transaction, here the test's): nothing but the look-up and the write goes to the database.
    repo = make.repo()
    writer.get("repos")

    with CaptureQueriesContext(connection) as ctx:
        response = writer.post("issues", {"repo": repo.pk, "title": "No savepoint", "assignees": [AGENT]})

    assert response.status_code == 201, response.content
    assert [q["sql"].split()[0].upper() for q in ctx.captured_queries] == ["SELECT", *NEW_OBJECT]


@pytest.mark.django_db(transaction=True)
def test_a_served_issue_create_sends_no_begin_or_commit(writer: Api, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("an autocommit test database needs PostgreSQL (SQLite's cannot be flushed: events are guarded)")
    repo = make.repo()
    writer.get("repos")

    with CaptureQueriesContext(connection) as ctx:
        response = writer.post("issues", {"repo": repo.pk, "title": "Autocommit", "assignees": [AGENT]})

    assert response.status_code == 201, response.content
    # the object index (repo ref); index row, issue and event in one statement, atomic alone
    assert [q["sql"].split()[0].upper() for q in ctx.captured_queries] == ["SELECT", "WITH"]
    assert Event.objects.filter(object_id=response.json()["id"], action="create").count() == 1
