"""API tokens: stored hashed, compared in constant time, revocable at once, never logged."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cwom.models import ApiToken, Event
from cwom.models import access as token_module
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db


def every_stored_value() -> str:
    """The whole token table as text, every column of every row (what a database dump would show)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")  # noqa: S608 - a fixed table name
        return "\n".join(repr(row) for row in cursor.fetchall())


def test_only_a_hash_of_the_secret_is_stored() -> None:
    token, presented = ApiToken.issue("hashed", can_write=True)
    secret = presented.removeprefix("cwom_").partition("_")[2]  # cwom_<key id>_<secret>
    dump = every_stored_value()
    assert secret not in dump and presented not in dump
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert len(secret) >= 32  # ~256 bits from secrets.token_urlsafe(32)


def test_tokens_are_compared_in_constant_time(monkeypatch: Any) -> None:
    _, presented = ApiToken.issue("timing", can_write=False)
    compared: list[tuple[str, str]] = []
    real = token_module.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_module.hmac, "compare_digest", spy)
    assert Api(presented).get("repos").status_code == 200
    wrong = presented[:-4] + ("AAAA" if not presented.endswith("AAAA") else "BBBB")
    assert Api(wrong).get("repos").status_code == 401
    # Both the right and the wrong secret went through compare_digest, hash against hash.
    assert len(compared) == 2 and all(len(a) == len(b) == 64 for a, b in compared)


def test_a_revoked_token_is_refused_on_its_very_next_request() -> None:
    token, presented = ApiToken.issue("revoked", can_write=True)
    client = Api(presented)
    assert client.get("repos").status_code == 200
    token.revoke()
    response = client.get("repos")
    assert response.status_code == 401
    assert client.post("repos", {"name": "After revoke", "slug": "after-revoke"}).status_code == 401


def test_a_read_only_token_cannot_write_and_a_writer_is_recorded_as_the_principal() -> None:
    _, reader_secret = ApiToken.issue("only-reads", can_write=False)
    _, writer_secret = ApiToken.issue("writes", can_write=True)
    assert Api(reader_secret).post("repos", {"name": "R", "slug": "r-1"}).status_code == 403
    created = Api(writer_secret).post("repos", {"name": "W", "slug": "w-1"})
    assert created.status_code == 201
    assert Event.objects.get(object_id=created.json()["id"]).principal == "token:writes"


def test_the_secret_never_reaches_a_log_or_a_query(caplog: Any) -> None:
    _, presented = ApiToken.issue("quiet", can_write=True)
    secret = presented.removeprefix("cwom_").partition("_")[2]  # cwom_<key id>_<secret>
    client = Api(presented)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    with CaptureQueriesContext(connection) as queries:
        client.get("repos")
        client.post("repos", {"name": "Logged?", "slug": "logged"})
        client.post("repos", {"name": "Logged?", "slug": "logged"})  # 409, logged by django.request
        client.raw("POST", "repos", b"{not json")  # 400
        Api(presented + "x").get("repos")  # 401 with a wrong secret
        client.get("no/such/endpoint")  # 404
    text = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    assert caplog.records, "nothing was logged: the capture did not work"
    assert secret not in text and presented not in text
    sql = "\n".join(q["sql"] + repr(q.get("params")) for q in queries.captured_queries)
    assert secret not in sql
