"""Safe retries with Idempotency-Key."""

from __future__ import annotations

import os

import pytest

from cwom.models import Event, IdempotencyRecord, Repo
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db


def test_a_retry_replays_the_first_answer_without_writing_again(writer):
    body = {"name": "Once", "slug": "once"}
    first = writer.post("repos", body, **{"Idempotency-Key": "k-1"})
    events = Event.objects.count()

    retry = writer.post("repos", body, **{"Idempotency-Key": "k-1"})

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Location"] == first["Location"]
    assert retry["ETag"] == first["ETag"]
    assert retry["Idempotent-Replayed"] == "true"
    assert Repo.objects.filter(slug="once").count() == 1
    assert Event.objects.count() == events


def test_key_order_and_whitespace_do_not_make_a_different_request(writer):
    writer.post("repos", {"name": "Once", "slug": "once"}, **{"Idempotency-Key": "k-2"})
    retry = writer.raw("POST", "repos", '{ "slug": "once",  "name": "Once" }', HTTP_IDEMPOTENCY_KEY="k-2")
    assert retry.status_code == 201


def test_the_same_key_with_another_body_is_422(writer):
    writer.post("repos", {"name": "Once", "slug": "once"}, **{"Idempotency-Key": "k-3"})

    response = writer.post("repos", {"name": "Twice", "slug": "twice"}, **{"Idempotency-Key": "k-3"})

    assert response.status_code == 422
    assert problem(response)["code"] == "idempotency_key_reused"
    assert not Repo.objects.filter(slug="twice").exists()


def test_the_same_key_on_another_endpoint_is_422(writer, repo):
    writer.post("repos", {"name": "Once", "slug": "once"}, **{"Idempotency-Key": "k-4"})
    response = writer.post("issues", {"name": "Once", "slug": "once"}, **{"Idempotency-Key": "k-4"})
    assert response.status_code == 422


def test_keys_are_scoped_to_the_principal(writer, db):
    from cwom.models import ApiToken
    from tests.api.conftest import Api

    _, secret = ApiToken.issue("another-writer", can_write=True)
    other = Api(secret)
    writer.post("repos", {"name": "A", "slug": "a"}, **{"Idempotency-Key": "shared"})

    response = other.post("repos", {"name": "B", "slug": "b"}, **{"Idempotency-Key": "shared"})

    assert response.status_code == 201
    assert response.json()["slug"] == "b"


def test_a_failed_first_attempt_leaves_no_record_so_a_corrected_retry_runs(writer):
    refused = writer.post("repos", {"name": "No slug"}, **{"Idempotency-Key": "k-5"})
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="k-5").exists()

    corrected = writer.post("repos", {"name": "Slug", "slug": "slug"}, **{"Idempotency-Key": "k-5"})
    assert corrected.status_code == 201


def test_actions_are_idempotent_too(writer, issue, make):
    packet = make.packet(issue, sealed=False)
    first = writer.post(f"context_packets/{packet.pk}/seal", **{"Idempotency-Key": "seal-1"})
    retry = writer.post(f"context_packets/{packet.pk}/seal", **{"Idempotency-Key": "seal-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()


def test_expired_keys_are_forgotten(writer, settings):
    settings.CWOM_IDEMPOTENCY_TTL_HOURS = 0
    writer.post("repos", {"name": "A", "slug": "a"}, **{"Idempotency-Key": "old"})
    response = writer.post("repos", {"name": "B", "slug": "b"}, **{"Idempotency-Key": "old"})
    assert response.status_code == 201


def test_records_are_kept_a_day_by_default(writer):
    from cwom.api.idempotency import purge_expired, ttl

    writer.post("repos", {"name": "A", "slug": "a"}, **{"Idempotency-Key": "kept"})
    assert ttl().total_seconds() >= 24 * 3600
    assert purge_expired() == 0
    assert IdempotencyRecord.objects.filter(key="kept").exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(writer, key):
    response = writer.raw("POST", "repos", '{"name": "A", "slug": "a"}', HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert problem(response)["code"] == "invalid_idempotency_key"


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL: the SQLite test database is one in-memory connection shared by the server threads",
)
def test_concurrent_requests_with_one_key_write_once(flushable_db, live_server):
    import json as jsonlib
    import threading
    import urllib.error
    import urllib.request

    from cwom.models import ApiToken

    _, secret = ApiToken.issue("racer", can_write=True)
    body = jsonlib.dumps({"name": "Raced", "slug": "raced"}).encode()
    answers: list[tuple[int, bytes]] = []
    start = threading.Barrier(8)

    def post() -> None:
        request = urllib.request.Request(f"{live_server.url}/api/v1/repos", data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {secret}")
        request.add_header("Idempotency-Key", "race-1")
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answers.append((response.status, response.read()))
        except urllib.error.HTTPError as error:
            answers.append((error.code, error.read()))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Repo.objects.filter(slug="raced").count() == 1
    assert {status for status, _ in answers} == {201}
    assert len({payload for _, payload in answers}) == 1
    assert IdempotencyRecord.objects.filter(key="race-1").count() == 1
