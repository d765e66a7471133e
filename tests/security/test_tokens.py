"""API tokens: stored hashed, compared in constant time, revocable at once, never logged; slug names; expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cwom.models import ApiToken, Event, Repo
from cwom.models import access as token_module
from cwom.shapes import iso
from tests.api.conftest import Api, problem

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


# --- names ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ci", "github-importer", "agent_7", "7-builders", "x" * 64])
def test_a_token_name_is_a_lowercase_slug_of_at_most_64_characters(name: str) -> None:
    token, _ = ApiToken.issue(name, can_write=False)
    assert token.name == name


@pytest.mark.parametrize(
    "name",
    ["", "bad name!", "CI", "Ci-Bot", "x" * 65, "-leading-dash", "_leading", "naïve", "a/b", "dot.ted", "line\n"],
    ids=repr,
)
def test_any_other_token_name_is_refused_before_the_database(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ApiToken.issue(name, can_write=False)
    assert "name" in refused.value.message_dict
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("name", ["bad name!", "CI", "x" * 65, "-x", "line\n"], ids=repr)
def test_the_database_refuses_a_bad_name_that_skipped_validation(name: str) -> None:
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        ApiToken.objects.create(name=name, key_id="0123456789ab", secret_hash="0" * 64)


# --- expiry ---------------------------------------------------------------------------------------------
def later(**delta: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(**delta)


def test_a_token_cannot_be_issued_already_expired() -> None:
    with pytest.raises(ValidationError) as refused:
        ApiToken.issue("stillborn", can_write=False, expires_at=later(seconds=-1))
    assert "expires_at" in refused.value.message_dict
    assert not ApiToken.objects.exists()


def test_a_token_works_until_it_expires_then_is_401_token_expired_saying_when(monkeypatch: Any) -> None:
    expires_at = later(hours=1)
    token, presented = ApiToken.issue("short-lived", can_write=True, expires_at=expires_at)
    client = Api(presented)
    assert client.get("repos").status_code == 200
    assert token.status == "active"

    monkeypatch.setattr(timezone, "now", lambda: expires_at + dt.timedelta(seconds=1))
    for response in (client.get("repos"), client.post("repos", {"name": "Late", "slug": "late"})):
        assert response.status_code == 401
        body = problem(response)
        assert body["code"] == "token_expired"
        assert body["type"].endswith("/token_expired")
        when = iso(expires_at)
        assert when is not None and when in body["detail"] and body["expired_at"] == when
        assert response["WWW-Authenticate"] == 'Bearer realm="cwom"'
    assert ApiToken.objects.get(pk=token.pk).status == "expired"
    assert not Repo.objects.filter(slug="late").exists()


def test_expiry_is_judged_at_request_time_even_when_the_row_comes_from_the_cache(monkeypatch: Any) -> None:
    expires_at = later(minutes=10)
    _, presented = ApiToken.issue("cached-expiry", can_write=False, expires_at=expires_at)
    client = Api(presented)
    assert client.get("repos").status_code == 200  # the row (expires_at included) is now cached
    monkeypatch.setattr(timezone, "now", lambda: expires_at)  # the very instant of expiry
    with CaptureQueriesContext(connection) as queries:
        response = client.get("repos")
    assert not [q for q in queries.captured_queries if "cwom_apitoken" in q["sql"]]  # the cached row decided
    assert response.status_code == 401 and problem(response)["code"] == "token_expired"


def test_only_the_holder_of_the_secret_learns_that_a_token_expired(monkeypatch: Any) -> None:
    expires_at = later(hours=1)
    _, presented = ApiToken.issue("secretive", can_write=False, expires_at=expires_at)
    monkeypatch.setattr(timezone, "now", lambda: expires_at + dt.timedelta(days=1))
    wrong = presented[:-4] + ("AAAA" if not presented.endswith("AAAA") else "BBBB")
    response = Api(wrong).get("repos")
    assert response.status_code == 401 and problem(response)["code"] == "authentication_failed"


def test_a_revoked_or_unknown_token_keeps_its_answer_whatever_its_expiry(monkeypatch: Any) -> None:
    expires_at = later(hours=1)
    token, presented = ApiToken.issue("revoked-and-expired", can_write=False, expires_at=expires_at)
    token.revoke()
    monkeypatch.setattr(timezone, "now", lambda: expires_at + dt.timedelta(days=1))
    assert token.status == "revoked"
    for secret in (presented, "cwom_0123456789ab_unknown"):
        response = Api(secret).get("repos")
        assert response.status_code == 401
        body = problem(response)
        assert body["code"] == "authentication_failed" and body["detail"] == "Invalid or revoked token."


def test_a_token_without_an_expiry_never_expires(monkeypatch: Any) -> None:
    token, presented = ApiToken.issue("forever", can_write=False)
    far = later(days=365 * 50)
    monkeypatch.setattr(timezone, "now", lambda: far)
    assert token.expires_at is None and token.status == "active"
    assert Api(presented).get("repos").status_code == 200


def test_changing_the_expiry_drops_the_cached_row() -> None:
    token, presented = ApiToken.issue("extended", can_write=False, expires_at=later(hours=1))
    client = Api(presented)
    assert client.get("repos").status_code == 200
    token.expires_at = later(seconds=-1)
    token.save(update_fields=["expires_at"])  # as an operator would, through the model
    response = client.get("repos")
    assert response.status_code == 401 and problem(response)["code"] == "token_expired"


# --- the migration that brought the name rule -----------------------------------------------------------
def test_the_name_rule_migration_renames_old_names_that_do_not_fit(flushable_db: None, capsys: Any) -> None:
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("cwom", "0004_read_indexes")], [("cwom", "0005_token_expiry_and_name_rule")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_model = executor.loader.project_state(before).apps.get_model("cwom", "ApiToken")
        old_names = ["ci-bot", "CI Bot", "ci bot", "x" * 100, "-lead", "Ünïcode Agent", "!!!", "fine_one"]
        for n, name in enumerate(old_names):
            old_model.objects.create(name=name, key_id=f"{n:012x}", secret_hash="0" * 64)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    try:
        names = dict(ApiToken.objects.order_by("key_id").values_list("key_id", "name"))
        expected = ["ci-bot", "ci-bot-2", "ci-bot-3", "x" * 64, "lead", "unicode-agent", "token", "fine_one"]
        assert list(names.values()) == expected
        for name in names.values():
            token_module.validate_token_name(name)
        printed = capsys.readouterr().out
        assert "'CI Bot' renamed to 'ci-bot-2'" in printed and "'fine_one'" not in printed
    finally:
        # Every app's latest migration again, so the tests after this one meet the schema they expect.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
